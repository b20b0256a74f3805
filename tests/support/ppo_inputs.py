"""Build verl ``ppo_loss`` inputs (actor config, model output, micro-batch TensorDict) on CPU.

The actor config comes from verl's composed ``ppo_trainer`` through verl's own
``omega_conf_to_dataclass``; the model output is the flat (total_nnz,) layout verl's engine
returns, with each response token's log-prob at the position ``no_padding_2_padding`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tensordict import TensorDict

PROMPT_LEN = 3


def actor_config(overrides: list[str]):
    import verl  # noqa: F401  (plugin registration, as in every verl process)
    from verl.utils.config import omega_conf_to_dataclass

    from vlnorm_verl.launch.compose import compose_config

    base = [
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.rollout.n=2",
        "data.max_response_length=16",
    ]
    cfg = compose_config("ppo_trainer", base + list(overrides))
    return omega_conf_to_dataclass(cfg.actor_rollout_ref.actor), cfg


@dataclass
class PpoInputs:
    log_prob: torch.Tensor  # (B, R) leaf, requires grad; padded positions unused
    entropy: torch.Tensor  # (B, R) leaf, requires grad
    old_log_prob: torch.Tensor
    ref_log_prob: torch.Tensor
    advantages: torch.Tensor
    response_mask: torch.Tensor
    lengths: list[int]


def random_inputs(lengths: list[int], seed: int = 0, width: int | None = None) -> PpoInputs:
    g = torch.Generator().manual_seed(seed)
    rows, width = len(lengths), width or max(max(lengths), 1)
    mask = torch.zeros(rows, width)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    log_prob = (-torch.rand(rows, width, generator=g) * 2 - 0.05).requires_grad_(True)
    old = (log_prob.detach() + 0.3 * torch.randn(rows, width, generator=g)) * mask
    ref = (log_prob.detach() + 0.2 * torch.randn(rows, width, generator=g)) * mask
    adv = torch.randn(rows, 1, generator=g).expand(rows, width) * mask
    entropy = (torch.rand(rows, width, generator=g) * 3).requires_grad_(True)
    return PpoInputs(log_prob, entropy, old, ref, adv.contiguous(), mask, list(lengths))


def _flat(values: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """(B, R) per-response-token values -> verl's flat layout over prompt+response tokens."""
    pieces = []
    for i, n in enumerate(lengths):
        filler = torch.zeros(PROMPT_LEN - 1 + 1, dtype=values.dtype)
        # positions [PROMPT_LEN-1, PROMPT_LEN-1+n) hold the response tokens' values, one filler after
        pieces += [filler[: PROMPT_LEN - 1], values[i, :n], filler[:1]]
    return torch.cat(pieces)


def ppo_loss_call(
    config,
    inputs: PpoInputs,
    advantages: torch.Tensor | None = None,
    global_batch_size: int | None = None,
    batch_num_tokens: int | None = None,
    dp_size: int = 1,
):
    """Call verl's ppo_loss on one micro-batch built from `inputs`; returns (loss, metrics)."""
    from verl.utils import tensordict_utils as tu
    from verl.workers.utils.losses import ppo_loss

    rows, width = inputs.response_mask.shape
    prompts = torch.ones(rows, PROMPT_LEN, dtype=torch.long)
    responses = torch.ones(rows, width, dtype=torch.long)
    attention = torch.cat([torch.ones(rows, PROMPT_LEN), inputs.response_mask], dim=1).long()
    td = TensorDict(
        {
            "prompts": prompts,
            "responses": responses,
            "attention_mask": attention,
            "response_mask": inputs.response_mask,
            "old_log_probs": inputs.old_log_prob,
            "advantages": inputs.advantages if advantages is None else advantages,
            "ref_log_prob": inputs.ref_log_prob,
        },
        batch_size=[rows],
    )
    tu.assign_non_tensor(
        td,
        dp_size=dp_size,
        batch_num_tokens=int(inputs.response_mask.sum()) if batch_num_tokens is None else batch_num_tokens,
        global_batch_size=rows if global_batch_size is None else global_batch_size,
    )
    # verl's flat layout has one extra token per sequence: prompt + response tokens
    model_output = {
        "log_probs": _flat(inputs.log_prob, inputs.lengths),
        "entropy": _flat(inputs.entropy, inputs.lengths),
    }
    return ppo_loss(config, model_output, td)
