"""The verl extension: what VL Norm adds to verl, through verl's registries and config classes.

- :mod:`.settings` - ``algorithm.vl_norm`` parsed and validated; the config error and how a bad run stops.
- :mod:`.registry` - the names registered with verl and the registration helpers (:mod:`vlnorm_verl.plugin` calls).
- :mod:`.base_estimator` - the verl estimator a wrapping estimator wraps: looked up, checked, called.
- :mod:`.estimator` - the ``vl_norm`` advantage estimator; :mod:`.overlong_filter` - DAPO's overlong filter.
- :mod:`.policy_loss` - the ``vl_norm`` policy loss; :mod:`.loss_config` - its worker-side config class.
- :mod:`.engine_hook` - mini-batch statistics from verl's FSDP engine (``scope=minibatch`` only; guarded).
- :mod:`.bounded_sampler` - verl's replay buffer with DAPO's ``max_num_gen_batches`` bound (guarded).
- :mod:`.startup_check` / :mod:`.run_checks` - the start-up check of every entry point.
- :mod:`.verl_compat` - the version and signature guards of the verl internals touched.
"""
