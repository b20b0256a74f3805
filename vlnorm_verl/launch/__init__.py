"""Launching runs: the ``vlnorm-verl`` command line and what it needs.

- :mod:`.cli` - the console script and its sub-commands (each loaded on use).
- :mod:`.launcher` - ``vlnorm-verl train RECIPE``: compose, check, and start verl's ``main_ppo``.
- :mod:`.compose` - Hydra composition of the packaged configs on verl's ``ppo_trainer``.
- :mod:`.check_cli` - ``vlnorm-verl check``: the start-up check alone.
- :mod:`.run_env` - the environment a run's verl processes get: tracking, data and log locations.
- :mod:`.cluster_probe` - ``--dry-run --probe-cluster``: does every Ray node see the plugin and that environment?
"""
