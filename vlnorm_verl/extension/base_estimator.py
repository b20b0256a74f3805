"""The estimator a wrapping estimator (``vl_norm``, ``overlong_filter``) wraps: looked up, checked and called.

:func:`check_base_estimator` returns verl's registered estimator for a ``base_estimator`` setting, or raises
naming the setting when the name is unknown, is one of this package's wrappers that cannot sit there, or needs
inputs verl passes only to its own branch for that estimator (critic values for ``gae``).
:func:`call_base_estimator` calls it with the arguments verl would give it, plus
``algorithm.norm_adv_by_std_in_grpo`` for estimators that take it (so Dr. GRPO works as a base).
:func:`trainer_config` reaches the whole trainer config from the ``algorithm`` node verl hands an estimator.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, get_adv_estimator_fn

from vlnorm_verl.extension.settings import ESTIMATOR_NAME as VL_NORM
from vlnorm_verl.extension.settings import OVERLONG_FILTER_ESTIMATOR as OVERLONG_FILTER
from vlnorm_verl.extension.settings import VLNormConfigError

# what verl's compute_advantage can hand a registered estimator (and what we add for GRPO-like ones)
PROVIDED_ARGS = {"token_level_rewards", "response_mask", "config", "index", "reward_baselines", "epsilon"}


def check_base_estimator(
    name: str,
    setting: str = "algorithm.vl_norm.base_estimator",
    error: type[VLNormConfigError] = VLNormConfigError,
) -> Any:
    """The registered estimator function `name`, or a clear `error` naming `setting` if it is unknown, one of
    this project's wrappers that cannot sit there, or needs inputs (e.g. critic values for 'gae') that verl
    does not pass to a registered estimator."""
    owner = setting.split(".")[1]  # the wrapper this setting belongs to: vl_norm | overlong_filter
    if name in (VL_NORM, owner):
        raise error(f"{setting} cannot be {name!r}; use a verl estimator such as 'grpo'")
    try:
        fn = get_adv_estimator_fn(name)
    except ValueError:
        choices = sorted(k for k in ADV_ESTIMATOR_REGISTRY if k not in (VL_NORM, OVERLONG_FILTER, owner))
        message = f"{setting}={name!r} is not a registered verl advantage estimator; choose one of {choices}"
        raise error(message) from None
    params = inspect.signature(fn).parameters
    required = {
        p.name
        for p in params.values()
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    missing = sorted(required - PROVIDED_ARGS - {"norm_adv_by_std_in_grpo"})
    if missing:
        raise error(
            f"{setting}={name!r} needs {missing}, which verl only passes to its built-in branch for that estimator, "
            "not to a wrapping estimator; use an outcome-reward estimator such as 'grpo'"
        )
    return fn


def call_base_estimator(
    name: str,
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    config: Any = None,
    index: np.ndarray | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the registered estimator `name` with the arguments verl would give it.

    Unlike verl's generic dispatch, this forwards ``algorithm.norm_adv_by_std_in_grpo`` to estimators
    that take it, so e.g. Dr. GRPO (no std division) works as a base.
    """
    fn = check_base_estimator(name)
    params = inspect.signature(fn).parameters
    accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    call: dict[str, Any] = {"token_level_rewards": token_level_rewards, "response_mask": response_mask, **kwargs}
    if "config" in params or accepts_any:
        call["config"] = config
    if index is not None:
        call["index"] = index
    if "norm_adv_by_std_in_grpo" in params and config is not None:
        call["norm_adv_by_std_in_grpo"] = bool(config.get("norm_adv_by_std_in_grpo", True))
    if not accepts_any:
        call = {k: v for k, v in call.items() if k in params}
    return fn(**call)


def trainer_config(algorithm_config: Any) -> DictConfig | None:
    """The whole trainer DictConfig that the ``algorithm`` node verl hands an estimator belongs to, or None (not a
    DictConfig, or omegaconf's internals changed: callers then fall back to what the node itself holds)."""
    try:
        if isinstance(algorithm_config, DictConfig):
            root = algorithm_config._get_root()
            if isinstance(root, DictConfig):
                return root
    except Exception:  # noqa: BLE001 - a private omegaconf method: any failure means "not reachable"
        return None
    return None
