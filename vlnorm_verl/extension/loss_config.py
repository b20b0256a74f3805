"""The actor-side VL Norm config: verl's ``PolicyLossConfig`` plus ``alpha`` and ``scope``.

The policy-loss function runs inside verl's Ray workers, which see only the actor config.
Selecting this class with Hydra's ``_target_`` (verl instantiates ``actor.policy_loss`` through
it, in the driver's config validation and in every worker) carries alpha and scope there, with
no environment variables, however Ray was started::

    actor_rollout_ref.actor.policy_loss:
      _target_: vlnorm_verl.loss_config.VLNormPolicyLossConfig
      loss_mode: vl_norm
      alpha: ${algorithm.vl_norm.alpha}
      scope: ${algorithm.vl_norm.scope}

Instantiating it also imports this package in the worker, so a plugin that fails to import there
raises its real error instead of verl's silent entry-point fallback; and, for the VL Norm loss with
``scope=minibatch`` only, installs the mini-batch hook on verl's FSDP engine (see
:mod:`vlnorm_verl.extension.engine_hook`). Users name the class by its stable path
``vlnorm_verl.loss_config.VLNormPolicyLossConfig`` (:data:`TARGET`), a re-export of this module's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from verl.workers.config import PolicyLossConfig

from vlnorm_verl.extension import engine_hook
from vlnorm_verl.extension.settings import LOSS_MODE, SCOPES, VLNormConfigError, VLNormSettings

logger = logging.getLogger(__name__)

#: the ``_target_`` users write (the stable path, re-exported from here)
TARGET = "vlnorm_verl.loss_config.VLNormPolicyLossConfig"


@dataclass
class VLNormPolicyLossConfig(PolicyLossConfig):
    """PolicyLossConfig with VL Norm's worker-side settings (ignored unless loss_mode == 'vl_norm')."""

    alpha: float | None = None
    scope: str | None = None

    def __post_init__(self) -> None:
        parent_post_init = getattr(super(), "__post_init__", None)
        if parent_post_init is not None:
            parent_post_init()
        if self.loss_mode != LOSS_MODE:
            return
        if self.alpha is None or self.scope is None:
            raise VLNormConfigError(
                "actor_rollout_ref.actor.policy_loss.alpha and .scope must be set for loss_mode=vl_norm; "
                "set them to ${algorithm.vl_norm.alpha} and ${algorithm.vl_norm.scope} "
                "(the vl_norm aggregation config group does this)"
            )
        VLNormSettings.from_mapping(
            {"alpha": self.alpha, "scope": self.scope}, where="actor_rollout_ref.actor.policy_loss"
        )
        if self.scope == "minibatch":  # the batch scope needs nothing from the engine
            engine_hook.install()


def vl_norm_loss_settings(actor_config) -> tuple[float, str]:
    """(alpha, scope) from an ActorConfig whose policy_loss selects VL Norm, or a clear error."""
    policy_loss = actor_config.policy_loss
    if not isinstance(policy_loss, VLNormPolicyLossConfig):
        raise VLNormConfigError(
            "policy_loss.loss_mode=vl_norm needs the VL Norm policy-loss config in the workers: set "
            f"actor_rollout_ref.actor.policy_loss._target_={TARGET} with "
            "+actor_rollout_ref.actor.policy_loss.alpha=${algorithm.vl_norm.alpha} and "
            "+actor_rollout_ref.actor.policy_loss.scope=${algorithm.vl_norm.scope} "
            "(or compose the vl_norm aggregation config group)"
        )
    assert policy_loss.scope in SCOPES and policy_loss.alpha is not None  # validated in __post_init__
    return float(policy_loss.alpha), str(policy_loss.scope)
