"""verl plugin entry point (group ``verl.plugins``): registers VL Norm in every verl process.

verl imports this module (``EntryPoint.load()``) on ``import verl`` in the driver, the TaskRunner
and every Ray worker; importing it calls :func:`register`, which registers the ``vl_norm`` advantage
estimator, the ``vl_norm`` policy loss and the ``overlong_filter`` estimator through verl's public
registries (:mod:`vlnorm_verl.extension.registry`); the ``hf`` rollout backend only where it can be used
(CPU runs, or runs with ``rollout.name=hf``; it writes a private verl table, guarded:
:mod:`vlnorm_verl.cpu.rollout.backend`); the ``${vlnorm_tiny_model:}`` resolver; and, only when
``VERL_PLATFORM=cpu``, the CPU platform with its (guarded) fix of verl's process-group start-up
(:func:`vlnorm_verl.cpu.platform.install_if_requested`). It is idempotent. The verl internals touched, and
their guards, are listed in :mod:`vlnorm_verl.extension.verl_compat`.
verl logs a failing plugin at DEBUG level only, so the start-up check
(:func:`vlnorm_verl.extension.startup_check.check_plugin`) re-loads the entry point and raises the real
error, and the worker-side config class makes a worker fail loudly too.
"""

from __future__ import annotations

import os
import sys

from verl.trainer.ppo.core_algos import register_policy_loss

from vlnorm_verl.cpu import tiny_model
from vlnorm_verl.cpu.rollout import backend
from vlnorm_verl.extension.estimator import compute_vl_norm_advantage
from vlnorm_verl.extension.overlong_filter import compute_overlong_filter_advantage
from vlnorm_verl.extension.policy_loss import compute_policy_loss_vl_norm
from vlnorm_verl.extension.registry import register_estimator
from vlnorm_verl.extension.settings import ESTIMATOR_NAME, LOSS_MODE, OVERLONG_FILTER_ESTIMATOR

__all__ = ["register"]


def register() -> None:
    register_estimator(ESTIMATOR_NAME, compute_vl_norm_advantage)
    register_estimator(OVERLONG_FILTER_ESTIMATOR, compute_overlong_filter_advantage)  # DAPO recipes
    register_policy_loss(LOSS_MODE)(compute_policy_loss_vl_norm)
    backend.register_if_wanted()  # rollout.name=hf, only in processes that can use it (CPU runs, or hf selected)
    tiny_model.register_resolver()  # ${vlnorm_tiny_model:} (model=tiny), resolved in the TaskRunner too
    if os.environ.get("VERL_PLATFORM", "").strip().lower() == "cpu":  # CPU runs only: GPU processes are left alone
        partial = sys.modules.get("vlnorm_verl.cpu.platform")
        if partial is not None and not hasattr(partial, "install_if_requested"):
            return  # cpu.platform's own import of verl brought us here: it installs itself when it finishes
        # imported here, not at the top: a GPU process never imports the CPU platform
        from vlnorm_verl.cpu import platform

        platform.install_if_requested()


register()
