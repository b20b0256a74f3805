"""README command 1 on the CPU: the paper's headline pair through verl's trainer on a tiny warm-started model.

``vlnorm-verl quickstart`` (:mod:`~.cli`) warm-starts the ``model=tiny`` policy (:mod:`vlnorm_verl.warmstart`)
and trains ``countdown_dapo_vlnorm`` and ``countdown_dapo_plain`` with ``vlnorm-verl train ... cluster=cpu
model=tiny``, one line per step; :mod:`~.processes` keeps every process the runs start accountable (Ctrl-C
leaves none behind); :mod:`~.report` computes the closing figures (response-length percentiles from verl's
rollout dump, the probe's headline). ``scripts/quickstart.sh`` adds ``vlnorm-verl compare`` and
``vlnorm-verl probe``.
"""
