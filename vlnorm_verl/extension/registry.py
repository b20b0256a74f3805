"""What this package registers with verl, under which names, and how: the one place that writes verl's registries.

verl loads the ``verl.plugins`` entry point :data:`ENTRY_POINT_NAME` (the module :mod:`vlnorm_verl.plugin`) on
``import verl`` in every process; that module calls these functions. Registration goes through verl's public
registries (``register_adv_est``, ``register_policy_loss``); :func:`is_registered` is what the start-up check
asks after re-loading the entry point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY, register_adv_est

from vlnorm_verl.extension.settings import ESTIMATOR_NAME, LOSS_MODE, OVERLONG_FILTER_ESTIMATOR

ENTRY_POINT_GROUP = "verl.plugins"
ENTRY_POINT_NAME = "vlnorm_verl"


def register_estimator(name: str, fn: Callable[..., Any]) -> None:
    """register_adv_est(name)(fn), idempotent: verl refuses a second, different function object under one
    name, which re-importing our own module would produce; another package's estimator is never replaced."""
    current = ADV_ESTIMATOR_REGISTRY.get(name)
    if current is fn:
        return
    if current is not None:
        if getattr(current, "__module__", None) != fn.__module__:
            raise RuntimeError(f"another package already registered the advantage estimator {name!r}: {current}")
        del ADV_ESTIMATOR_REGISTRY[name]  # our own module was re-imported
    register_adv_est(name)(fn)


def is_registered() -> bool:
    """Whether verl's registries hold the ``vl_norm`` estimator and loss and the ``overlong_filter`` estimator."""
    estimators = (ESTIMATOR_NAME, OVERLONG_FILTER_ESTIMATOR)
    return all(name in ADV_ESTIMATOR_REGISTRY for name in estimators) and LOSS_MODE in POLICY_LOSS_REGISTRY
