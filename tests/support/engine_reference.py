"""Hand-written references for gradients taken through the CPU engine harness.

The clipped PPO surrogate with dual clip, written out in plain PyTorch,
    l_t = max(-A_t r_t, -A_t clip(r_t, 1-eps, 1+eps)),  for A_t < 0: min(l_t, -A_t c),  r_t = exp(logp_t - old_t),
and the gradient of any per-step aggregation  loss = sum_{i in step} x_i * sum_t m_it l_it  with the weights
x_i given by the caller, computed on the same tiny model in one process.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from engine_harness import MiniBatchData, reference_token_log_probs

EPS = 0.2
CLIP_C = 3.0


def make_data(seed: int, rows: int = 16, noise: float = 0.15) -> tuple[MiniBatchData, list[torch.Tensor]]:
    """Rows of varied lengths; old log-probs = the model's own plus noise, so ratios differ from 1 (some clip)."""
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(2, 64, (2 + i % 4,), generator=g).tolist() for i in range(rows)]
    responses = [torch.randint(2, 64, (1 + (7 * i + seed) % 11,), generator=g).tolist() for i in range(rows)]
    blank = [[0.0] * len(r) for r in responses]
    _, logp = reference_token_log_probs(MiniBatchData(prompts, responses, blank, blank))
    old = [(lp.detach() + noise * torch.randn(lp.shape, generator=g)).tolist() for lp in logp]
    adv = [torch.randn(len(r), generator=g).tolist() for r in responses]
    return MiniBatchData(prompts, responses, old, adv), logp


def token_losses(logp: torch.Tensor, old: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    ratio = torch.exp(logp - old)
    loss = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - EPS, 1 + EPS))
    return torch.where(adv < 0, torch.minimum(loss, -adv * CLIP_C), loss)


def token_mean_weights(data: MiniBatchData, rows: list[int]) -> dict[int, float]:
    """verl's token-mean over the step: x_i = 1 / (masked-in tokens of the whole step)."""
    tokens = sum(sum(data.mask(i)) for i in rows)
    return dict.fromkeys(rows, 1.0 / tokens)


def reference_grads(
    data: MiniBatchData,
    steps: list[list[int]],
    weights: Callable[[MiniBatchData, list[int]], dict[int, float]] = token_mean_weights,
) -> list[dict[str, torch.Tensor]]:
    """Gradient of sum_{i in step} x_i * S_i for each optimizer step, with x = weights(data, step)."""
    out = []
    for rows in steps:
        model, logp = reference_token_log_probs(data)
        x = weights(data, rows)
        total = torch.zeros(())
        for i in rows:
            mask = torch.tensor(data.mask(i), dtype=torch.float32)
            old = torch.tensor(data.old_log_probs[i], dtype=torch.float32)
            adv = torch.tensor(data.advantages[i], dtype=torch.float32)
            total = total + x[i] * (token_losses(logp[i], old, adv) * mask).sum()
        total.backward()
        out.append({name: p.grad.detach().clone() for name, p in model.named_parameters()})
    return out


def assert_grads_equal(got: list[dict[str, torch.Tensor]], want: list[dict[str, torch.Tensor]]) -> None:
    assert len(got) == len(want), f"{len(got)} optimizer steps, expected {len(want)}"
    for step, (g, w) in enumerate(zip(got, want, strict=True)):
        assert set(g) == set(w), f"step {step}: parameter names differ: {sorted(set(g) ^ set(w))}"
        for name in w:
            torch.testing.assert_close(
                g[name], w[name], rtol=1e-4, atol=1e-6, msg=lambda m, s=step, n=name: f"{s}/{n}: {m}"
            )
