"""verl plugin entry point (group ``verl.plugins``): registers VL Norm in every verl process.

verl imports this module (``EntryPoint.load()``) on ``import verl`` in the driver, the TaskRunner
and every Ray worker; importing it calls :func:`register`, which registers the ``vl_norm`` advantage
estimator, the ``vl_norm`` policy loss and the ``overlong_filter`` estimator through verl's public
registries; the ``hf`` rollout backend only where it can be used (CPU runs, or runs with
``rollout.name=hf``; it writes a private verl table, guarded: :mod:`vlnorm_verl.rollout.backend`); and,
only when ``VERL_PLATFORM=cpu``, the CPU platform with its (guarded) fix of verl's process-group start-up
(:func:`vlnorm_verl.cpu_platform.install_if_requested`). It is idempotent. The verl internals touched, and
their guards, are listed in :mod:`vlnorm_verl.verl_compat`.
verl logs a failing plugin at DEBUG level only, so the start-up check
(:func:`vlnorm_verl.startup_check.check_plugin`) re-loads the entry point and raises the real
error, and the worker-side config class makes a worker fail loudly too.
"""

from __future__ import annotations

import os
import sys

ENTRY_POINT_GROUP = "verl.plugins"
ENTRY_POINT_NAME = "vlnorm_verl"


def register_estimator(name: str, fn) -> None:
    """register_adv_est(name)(fn), idempotent: verl refuses a second, different function object under one
    name, which re-importing our own module would produce; another package's estimator is never replaced."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, register_adv_est

    current = ADV_ESTIMATOR_REGISTRY.get(name)
    if current is fn:
        return
    if current is not None:
        if getattr(current, "__module__", None) != fn.__module__:
            raise RuntimeError(f"another package already registered the advantage estimator {name!r}: {current}")
        del ADV_ESTIMATOR_REGISTRY[name]  # our own module was re-imported
    register_adv_est(name)(fn)


def register() -> None:
    from verl.trainer.ppo.core_algos import register_policy_loss

    from vlnorm_verl import overlong_filter
    from vlnorm_verl.estimator import compute_vl_norm_advantage
    from vlnorm_verl.policy_loss import compute_policy_loss_vl_norm
    from vlnorm_verl.settings import ESTIMATOR_NAME, LOSS_MODE

    register_estimator(ESTIMATOR_NAME, compute_vl_norm_advantage)
    register_policy_loss(LOSS_MODE)(compute_policy_loss_vl_norm)
    overlong_filter.register()  # the DAPO overlong-filtering estimator (recipes)
    from vlnorm_verl.rollout import backend

    backend.register_if_wanted()  # rollout.name=hf, only in processes that can use it (CPU runs, or hf selected)
    from vlnorm_verl.tiny_model import register_resolver

    register_resolver()  # ${vlnorm_tiny_model:} (model=tiny), resolved in the TaskRunner too
    if os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu":  # CPU runs only: GPU processes are left alone
        partial = sys.modules.get("vlnorm_verl.cpu_platform")
        if partial is not None and not hasattr(partial, "install_if_requested"):
            return  # cpu_platform's own import of verl brought us here: it installs itself when it finishes
        from vlnorm_verl import cpu_platform

        cpu_platform.install_if_requested()


def is_registered() -> bool:
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY

    from vlnorm_verl.settings import ESTIMATOR_NAME, LOSS_MODE

    return ESTIMATOR_NAME in ADV_ESTIMATOR_REGISTRY and LOSS_MODE in POLICY_LOSS_REGISTRY


register()
