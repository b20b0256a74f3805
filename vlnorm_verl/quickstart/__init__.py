"""The CPU quickstart: a small real RL loop built from verl 0.9.1's own parts, VL Norm vs the DAPO baseline.

``python -m vlnorm_verl.quickstart [hydra overrides]`` (see :mod:`~vlnorm_verl.quickstart.cli`) runs, in one
process on CPU (verl's FSDP2 engine on the :mod:`vlnorm_verl.cpu_platform`, a world-size-1 gloo group):

1. a tiny randomly initialised Qwen2 with the locally built tokenizer (:mod:`~.tiny_model`);
2. a supervised warm-start through verl's worker, engine and ``sft_loss`` on the CountDown rows' reference
   solutions, cached by a content hash (:mod:`~.warmstart`);
3. per arm (``vl_norm``: the registered ``vl_norm`` estimator over ``grpo`` and the ``vl_norm`` policy loss;
   ``dapo``: verl's ``grpo`` with ``token-mean``) a GRPO-style loop (:mod:`~.rl`): sample ``n`` answers per
   prompt with Hugging Face ``generate`` from the engine's current weights, score them with the project's
   CountDown reward, compute advantages with verl's ``compute_advantage`` (registry dispatch), old log-probs
   with the worker's ``compute_log_prob`` and update with its ``update_actor`` (``ppo_loss``); metrics under
   verl's names through ``verl.utils.tracking.Tracking`` (``file`` and wandb offline).

The driver owns only the loop order, the sampling and the bookkeeping; every training computation is verl's
or the project's registered code.
"""
