"""vlnorm-verl: VL Norm loss aggregation for RLVR, as a verl 0.9.x plugin. Where things live (and go):

aggregation.py  the method's math, no verl: per-response weights x_i of every aggregator - a new aggregator's math
extension/      the verl extension: settings, estimators (vl_norm, overlong_filter), policy loss and its worker
                config, engine hook, bounded DAPO sampler, start-up and run checks, verl-internal guards;
                registry.py names what is registered - a new estimator or loss goes here, registered in plugin.py
plugin.py       the ``verl.plugins`` entry point: registers everything on ``import verl`` in every process
cpu/            verl's trainer without a GPU: platform, run checks, tiny model, the ``hf`` rollout (rollout/)
                - a new rollout backend goes beside it, registered the same way
tasks/          CountDown and math behind one task interface (tasks/base.py) - a new task is a module there
                plus configs/task/<name>.yaml; rewards.py is the reward entry point (pkg://vlnorm_verl.rewards)
launch/         the ``vlnorm-verl`` CLI, ``train`` launcher, run environment, cluster probe - a new launcher here
configs/        Hydra groups composed on verl's ppo_trainer and the paper's recipes
compare/ probe/ run comparison against DAPO baselines; the gradient-variance probe
quickstart/ warmstart/  the two-command demo and the warm-started tiny model it trains
Importing this package has no side effects; loss_config.py re-exports the worker config at its stable path.
"""

__version__ = "0.1.0"
