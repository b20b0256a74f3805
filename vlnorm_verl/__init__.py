"""vlnorm-verl: VL Norm loss aggregation for RLVR, a verl 0.9.x plugin (importing it has no side effects). The map:

aggregation.py  the method's math, no verl: the weights x_i of every aggregator - a new aggregator's math goes here
extension/      the verl extension: settings, estimators (vl_norm, overlong_filter), policy loss and its worker config
                (loss_config.py at the top re-exports it), engine hook, DAPO sampler, start-up checks, verl guards -
                a new estimator or policy loss goes here, its name in extension/registry.py
plugin.py       the ``verl.plugins`` entry point: registers everything on ``import verl``, in every process
cpu/            verl's trainer without a GPU: platform, run checks, tiny model, the ``hf`` rollout backend
                (cpu/rollout/) - a new rollout backend is a package like it, registered from plugin.py
tasks/          CountDown and math behind one interface (tasks/base.py) - a new task is a subpackage there, listed in
                tasks/__init__.py, plus configs/task/<name>.yaml; rewards.py dispatches (pkg://vlnorm_verl.rewards)
launch/         the ``vlnorm-verl`` CLI, ``train`` launcher, composition, run environment - a new launcher goes here
configs/        Hydra groups composed on verl's ppo_trainer; the paper's recipes in configs/recipes/
compare/ probe/ runs against DAPO baselines; the gradient-variance probe
quickstart/ warmstart/  the two-command CPU demo and the warm-started tiny model it trains
"""

__version__ = "0.1.0"
