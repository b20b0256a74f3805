"""Trainer settings that verl 0.9.x accepts at start-up but that fail, or silently run differently, on the cluster.

Each check takes the composed trainer config (verl's ``ppo_trainer`` DictConfig) and raises
:class:`RunConfigError` naming the setting and the fix:

* gradient clipping: verl's FSDP engine clips with ``actor.optim.clip_grad`` (its optimizer config, or the
  deprecated ``actor.optim.grad_clip`` when set); ``actor.grad_clip`` is a legacy key the engine never reads.
  The two must agree, so the value a user sets is the value that trains (:func:`engine_clip_grad` reads it
  through verl's own optimizer dataclass).
* the ``hf`` rollout backend (``rollout.name=hf``) needs verl's private rollout registry where this package
  writes it (:func:`vlnorm_verl.rollout.backend.check_registry`; a moved registry raises
  :class:`~vlnorm_verl.verl_compat.UnsupportedVerlError` naming the verl version).
"""

from __future__ import annotations

import warnings
from typing import Any

from omegaconf import OmegaConf

from vlnorm_verl.settings import VLNormConfigError

CLIP_KEY = "actor_rollout_ref.actor.optim.clip_grad"
LEGACY_CLIP_KEY = "actor_rollout_ref.actor.grad_clip"


class RunConfigError(VLNormConfigError):
    """A trainer setting that would fail or be ignored on the cluster; the message names it and the fix."""


def engine_clip_grad(cfg: Any) -> float:
    """The gradient-norm clip verl's engine will use: ``clip_grad`` of verl's optimizer config for the actor."""
    from verl.utils.config import omega_conf_to_dataclass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optim.grad_clip, if set, is verl's deprecated alias
        optim = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor.optim)
    return float(optim.clip_grad)


def check_grad_clip(cfg: Any) -> None:
    engine = engine_clip_grad(cfg)
    legacy = OmegaConf.select(cfg, LEGACY_CLIP_KEY, default=None)
    if legacy is not None and float(legacy) != engine:
        raise RunConfigError(
            f"{LEGACY_CLIP_KEY}={legacy} differs from {CLIP_KEY}={engine:g}, the gradient clip verl's engine "
            f"uses ({LEGACY_CLIP_KEY} is a legacy key it ignores); set {CLIP_KEY} to the clip you want and leave "
            f"{LEGACY_CLIP_KEY} unset (the packaged configs keep it equal) or set it to the same value"
        )


def check_rollout_backend(cfg: Any) -> None:
    from vlnorm_verl.rollout import backend

    if backend.is_selected(cfg):
        backend.check_registry()


def check_run(cfg: Any) -> None:
    """Every check of this module."""
    check_grad_clip(cfg)
    check_rollout_backend(cfg)
