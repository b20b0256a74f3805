"""The TensorDicts verl 0.9.1's worker receives, built from token lists (no padding, jagged layout).

PPO rows follow the v1 trainer's layout for ``update_actor`` / ``compute_log_prob`` (jagged ``prompts``,
``responses``, ``response_mask``, ``loss_mask``, ``input_ids``, ``position_ids``, ``old_log_probs``,
``advantages``, ``returns``; per-row ``uid``) with its batch-level ``extra_info`` as non-tensor data
(``PPOTrainer._update_actor``'s keys). SFT rows follow verl's SFT trainer: ``input_ids``, ``position_ids`` and a
``loss_mask`` over the whole sequence that is 1 on the response tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def nested(rows: Sequence[Sequence[float | int]], dtype: torch.dtype) -> torch.Tensor:
    return torch.nested.as_nested_tensor([torch.tensor(list(r), dtype=dtype) for r in rows], layout=torch.jagged)


def _attach(td: Any, info: dict[str, Any]) -> Any:
    from verl.utils import tensordict_utils as tu

    for key, val in info.items():
        tu.assign_non_tensor_data(tensor_dict=td, key=key, val=val)
    return td


def update_extra_info(cfg: Any) -> dict[str, Any]:
    """The batch-level ``extra_info`` of verl 0.9.1's ``PPOTrainer._update_actor`` (no distillation)."""
    actor = cfg.actor_rollout_ref.actor
    rollout = cfg.actor_rollout_ref.rollout
    mini = int(actor.ppo_mini_batch_size) * int(rollout.n)
    return {
        "calculate_entropy": bool(actor.calculate_entropy or actor.entropy_coeff != 0.0),
        "distillation_use_topk": False,
        "distillation_only": False,
        "global_batch_size": mini,
        "mini_batch_size": mini,
        "epochs": int(actor.ppo_epochs),
        "seed": int(actor.data_loader_seed),
        "dataloader_kwargs": {"shuffle": bool(actor.shuffle)},
        "temperature": float(rollout.temperature),
    }


def ppo_batch(
    prompts: Sequence[Sequence[int]],
    responses: Sequence[Sequence[int]],
    uids: Sequence[str],
    extra_info: dict[str, Any],
    old_log_probs: Sequence[Sequence[float]] | None = None,
    advantages: Sequence[Sequence[float]] | None = None,
):
    """Rows for ``compute_log_prob`` (without log-probs/advantages) or ``update_actor`` (with both)."""
    from tensordict import NonTensorStack, TensorDict

    if any(len(r) == 0 for r in responses):
        raise ValueError("every response needs at least one token (the EOS or the cut-off token)")
    fields = {
        "prompts": nested(prompts, torch.int64),
        "responses": nested(responses, torch.int64),
        "response_mask": nested([[1] * len(r) for r in responses], torch.int64),
        "loss_mask": nested([[1] * len(r) for r in responses], torch.int64),
        "input_ids": nested([list(p) + list(r) for p, r in zip(prompts, responses, strict=True)], torch.int64),
        "position_ids": nested([range(len(p) + len(r)) for p, r in zip(prompts, responses, strict=True)], torch.int64),
    }
    if old_log_probs is not None:
        fields["old_log_probs"] = nested(old_log_probs, torch.float32)
    if advantages is not None:
        fields["advantages"] = nested(advantages, torch.float32)
        fields["returns"] = nested(advantages, torch.float32)
    td = TensorDict(fields, batch_size=[len(prompts)])
    td["uid"] = NonTensorStack(*uids)
    return _attach(td, extra_info)


def sft_batch(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], seed: int):
    """One supervised mini-batch: loss on the response tokens only (verl's ``sft_loss``, no-padding mode)."""
    from tensordict import TensorDict

    seqs = [list(p) + list(r) for p, r in zip(prompts, responses, strict=True)]
    fields = {
        "input_ids": nested(seqs, torch.int64),
        "position_ids": nested([range(len(s)) for s in seqs], torch.int64),
        "loss_mask": nested(
            [[0] * len(p) + [1] * len(r) for p, r in zip(prompts, responses, strict=True)], torch.int64
        ),
    }
    td = TensorDict(fields, batch_size=[len(seqs)])
    return _attach(
        td,
        {
            "temperature": 1.0,
            "calculate_entropy": False,
            "global_batch_size": len(seqs),
            "mini_batch_size": len(seqs),
            "micro_batch_size_per_gpu": len(seqs),  # the whole mini-batch in one forward
            "epochs": 1,
            "seed": seed,
            "dataloader_kwargs": {"shuffle": False},
        },
    )
