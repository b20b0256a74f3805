"""The ``vl_norm`` advantage estimator: a base verl estimator, re-weighted for VL Norm.

It calls the base estimator named by ``algorithm.vl_norm.base_estimator`` (GRPO by default, group
mean and std normalisation as configured by ``algorithm.norm_adv_by_std_in_grpo``) on the whole
rollout batch, then

* scope ``batch``: multiplies each response's advantages by w_i = L_i^-alpha / mean_j L_j^-alpha
  (mean over the batch's non-empty responses), the authors' released formulation; the ``vl_norm``
  policy loss then divides the summed loss by rows * M.
* scope ``minibatch``: returns the base advantages unchanged; the ``vl_norm`` policy loss applies
  L_i^-alpha / sum_{mini-batch} L_j^-alpha per optimizer step.

The weights are applied in place to the base estimator's fresh output; estimators that return
the same tensor as advantages and returns (the GRPO family) therefore return re-weighted returns
too, which only a critic would read and these estimators never use one. On its first call in
a process the estimator runs the start-up check on the whole trainer config (reached through the
``algorithm`` node's root) so a mis-set run launched straight with verl stops at its first step.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import get_adv_estimator_fn

from vlnorm_verl.aggregation import batch_scope_advantage_scale, response_lengths, weight_stats
from vlnorm_verl.settings import ESTIMATOR_NAME, VLNormConfigError, VLNormSettings

logger = logging.getLogger(__name__)

# what verl's compute_advantage can hand a registered estimator (and what we add for GRPO-like ones)
PROVIDED_ARGS = {"token_level_rewards", "response_mask", "config", "index", "reward_baselines", "epsilon"}
_checked_once = False


def check_base_estimator(
    name: str,
    setting: str = "algorithm.vl_norm.base_estimator",
    error: type[VLNormConfigError] = VLNormConfigError,
) -> Any:
    """The registered estimator function `name`, or a clear `error` naming `setting` if it is unknown, one of
    this project's wrappers that cannot sit there, or needs inputs (e.g. critic values for 'gae') that verl
    does not pass to a registered estimator."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    from vlnorm_verl.overlong_filter import ESTIMATOR_NAME as OVERLONG_FILTER

    owner = setting.split(".")[1]  # the wrapper this setting belongs to: vl_norm | overlong_filter
    if name == ESTIMATOR_NAME or name == owner:
        raise error(f"{setting} cannot be {name!r}; use a verl estimator such as 'grpo'")
    try:
        fn = get_adv_estimator_fn(name)
    except ValueError:
        choices = sorted(k for k in ADV_ESTIMATOR_REGISTRY if k not in (ESTIMATOR_NAME, OVERLONG_FILTER, owner))
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


def _root_config(config: Any) -> Any | None:
    """The whole trainer DictConfig when `config` is its ``algorithm`` node, else None."""
    try:
        from omegaconf import DictConfig

        if isinstance(config, DictConfig):
            root = config._get_root()
            if isinstance(root, DictConfig) and "actor_rollout_ref" in root and "data" in root:
                return root
    except Exception:  # noqa: BLE001 - omegaconf internals changed: fall back to the local check
        return None
    return None


def _settings_with_startup_check(config: Any) -> VLNormSettings:
    global _checked_once
    if config is None:
        raise VLNormConfigError("the vl_norm estimator needs the algorithm config (verl passes it)")
    if not _checked_once:
        root = _root_config(config)
        if root is not None:
            from vlnorm_verl.startup_check import check_config

            check_config(root)
        else:
            logger.warning(
                "VL Norm: the full trainer config is not reachable from the estimator; only algorithm.vl_norm was "
                "checked. Run `vlnorm-verl check` on your config to check the rest."
            )
        _checked_once = True
    settings = VLNormSettings.from_mapping(config.get("vl_norm", None))
    return settings


def compute_vl_norm_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    config: Any = None,
    index: np.ndarray | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl advantage estimator ``vl_norm`` (see the module docstring)."""
    settings = _settings_with_startup_check(config)
    advantages, returns = call_base_estimator(
        settings.base_estimator, token_level_rewards, response_mask, config=config, index=index, **kwargs
    )
    if settings.scope == "minibatch" and not logger.isEnabledFor(logging.INFO):
        return advantages, returns  # the policy loss applies the weights per optimizer step
    lengths = response_lengths(response_mask)
    if settings.scope == "batch":
        scale = batch_scope_advantage_scale(lengths, settings.alpha).to(advantages.dtype)
        # in place: the base estimator's output is ours, and a new (rows x width) tensor costs ~10x more
        advantages.mul_(scale.unsqueeze(-1))
    if logger.isEnabledFor(logging.INFO):
        logger.info("VL Norm rollout-batch weights: %s", weight_stats(lengths, settings.alpha))
    return advantages, returns
