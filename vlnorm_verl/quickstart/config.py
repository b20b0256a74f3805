"""The quickstart's Hydra config: ``configs/quickstart/cpu.yaml`` composed per arm like a recipe.

``compose_arm(arm, overrides)`` = verl's ``ppo_trainer`` + the arm's aggregation group + ``cpu.yaml`` +
``trainer.experiment_name=<arm>`` + the caller's Hydra overrides (an explicit override wins).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "quickstart"
CONFIG_NAME = "cpu"

#: arm name -> the aggregation config group it selects (the VL Norm arm and the DAPO token-mean baseline)
ARMS: dict[str, tuple[str, ...]] = {
    "vl_norm": ("aggregation=vl_norm",),
    "dapo": ("aggregation=dapo_norm",),
}
BASELINE = "dapo"


def compose_arm(arm: str, overrides: Sequence[str] = ()) -> Any:
    """The resolved-on-demand config of ``arm`` (``vl_norm`` or ``dapo``)."""
    from vlnorm_verl.compose import compose_config

    if arm not in ARMS:
        raise ValueError(f"unknown quickstart arm {arm!r}; choose from {sorted(ARMS)}")
    return compose_config(
        CONFIG_NAME, [*ARMS[arm], f"trainer.experiment_name={arm}", *overrides], config_dir=CONFIG_DIR
    )


def check(cfg: Any) -> None:
    """Reject settings the quickstart loop cannot honour, naming the fix."""
    actor, rollout = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    if actor.strategy != "fsdp2":
        raise ValueError("the CPU quickstart needs actor_rollout_ref.actor.strategy=fsdp2 (FSDP1 needs a GPU)")
    if int(rollout.n) < 2:
        raise ValueError("actor_rollout_ref.rollout.n must be >= 2: GRPO advantages need groups")
    if int(actor.ppo_mini_batch_size) != int(cfg.data.train_batch_size):
        raise ValueError(
            "the quickstart runs one optimizer step per RL step: set actor_rollout_ref.actor.ppo_mini_batch_size "
            f"= data.train_batch_size (got {actor.ppo_mini_batch_size} and {cfg.data.train_batch_size})"
        )
    rows = int(cfg.data.train_batch_size) * int(rollout.n)
    for key, micro in (
        ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", actor.ppo_micro_batch_size_per_gpu),
        ("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", rollout.log_prob_micro_batch_size_per_gpu),
    ):
        if micro is None or rows % int(micro):
            raise ValueError(
                f"{key}={micro} must divide the {rows} responses of a step (data.train_batch_size x rollout.n); "
                f"e.g. set it to {rows}"
            )
    if int(cfg.quickstart.rl.steps) < 1 or int(cfg.quickstart.rl.val_every) < 1:
        raise ValueError("quickstart.rl.steps and quickstart.rl.val_every must be >= 1")
