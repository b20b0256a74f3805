"""The ``vl_norm`` advantage estimator: a base verl estimator, re-weighted for VL Norm.

It calls the base estimator named by ``algorithm.vl_norm.base_estimator`` (GRPO by default, group
mean and std normalisation as configured by ``algorithm.norm_adv_by_std_in_grpo``) on the whole
rollout batch, then

* scope ``batch``: multiplies each response's advantages by w_i = L_i^-alpha / mean_j L_j^-alpha
  (mean over the batch's non-empty responses), the authors' released formulation; the ``vl_norm``
  policy loss then divides the summed loss by the mini-batch's rows * M.
* scope ``minibatch``: returns the base advantages unchanged; the engine hook scales them by
  L_i^-alpha / (M sum_{mini-batch} L_j^-alpha) per optimizer step (:mod:`vlnorm_verl.extension.engine_hook`).

The weights are applied in place to the base estimator's fresh output; estimators that return
the same tensor as advantages and returns (the GRPO family) therefore return re-weighted returns
too, which only a critic would read and these estimators never use one. On its first call in
a process the estimator runs the start-up check on the whole trainer config (reached through the
``algorithm`` node's root) so a mis-set run launched straight with verl stops at its first step.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from vlnorm_verl.aggregation import batch_scope_advantage_scale, response_lengths, weight_stats
from vlnorm_verl.extension.base_estimator import call_base_estimator, trainer_config
from vlnorm_verl.extension.settings import VLNormConfigError, VLNormSettings

logger = logging.getLogger(__name__)

_checked_once = False


def _settings_with_startup_check(config: Any) -> VLNormSettings:
    global _checked_once
    if config is None:
        raise VLNormConfigError("the vl_norm estimator needs the algorithm config (verl passes it)")
    if not _checked_once:
        root = trainer_config(config)
        if root is not None and "actor_rollout_ref" in root and "data" in root:
            # imported here: it brings Hydra (~0.26 s), which the plugin's import in every Ray worker does not need
            from vlnorm_verl.extension.startup_check import check_config

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
