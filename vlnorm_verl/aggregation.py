"""Loss-aggregation weights for RLVR, all in one notation: the method's math (torch and numpy, no verl import).

For a normalisation set S of sampled responses, response i with L_i response tokens and summed
per-token surrogate loss S_i = sum_t l_{i,t}, every aggregator is

    loss = sum_{i in S} x_i * S_i

and they differ only in the per-response weight x_i (N = number of non-empty responses in S,
M = the constant maximum response length, alpha >= 0):

    GRPO Norm      (seq-mean-token-mean)      x_i = 1 / (N * L_i)
    DAPO Norm      (token-mean, global)       x_i = 1 / sum_j L_j
    Dr. GRPO Norm  (seq-mean-token-sum-norm)  x_i = 1 / (N * M)
    VL Norm                                   x_i = (1/M) * L_i^-alpha / sum_j L_j^-alpha

VL Norm's weights sum to 1/M whatever the lengths (unbiased); alpha = 0 is Dr. GRPO Norm and
alpha = 1 minimises the variance sum_i x_i^2 * V * L_i under the model Var(g_i) = V * L_i:

    Var_VL(alpha) = (V / M^2) * sum_i L_i^(1 - 2 alpha) / (sum_j L_j^-alpha)^2

Responses with L_i = 0 (padding rows) get weight 0 under every aggregator and never produce
inf/NaN. Weights are computed in float64; VL Norm normalises in log space (a softmax of
-alpha * log L), so lengths up to 32k and alpha in [0, 2] neither overflow nor underflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

AGGREGATIONS = ("grpo_norm", "dapo_norm", "drgrpo_norm", "vl_norm")


def response_lengths(response_mask: torch.Tensor) -> torch.Tensor:
    """L_i: the number of response tokens of each row of a (rows, width) mask, padded or nested (jagged).

    The one row-length helper of the package (the estimator, the policy loss and the engine hook use it). The
    counts come in the sum's own dtype, exact: int64 for a bool or integer mask, the mask's dtype for a float
    one (exact below 2^24 tokens); every function here that does arithmetic on lengths casts them to float64.
    """
    if response_mask.is_nested:
        # jagged layout (verl's): row i is values[offsets[i]:offsets[i+1]]; row sums from one cumulative sum
        offsets = response_mask.offsets()
        cumulative = torch.nn.functional.pad(response_mask.values().to(torch.int64).cumsum(0), (1, 0))
        return cumulative[offsets[1:]] - cumulative[offsets[:-1]]
    if response_mask.dim() != 2:
        raise ValueError(f"response_mask must be 2-D (rows, tokens), got shape {tuple(response_mask.shape)}")
    # no cast of the (rows, width) mask, and none of the row counts either: each costs ~2-20x the sum
    return response_mask.sum(dim=-1)


def _check_lengths(lengths: torch.Tensor) -> torch.Tensor:
    lengths = torch.as_tensor(lengths).to(torch.float64)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D, got shape {tuple(lengths.shape)}")
    if bool((lengths < 0).any()) or not bool(torch.isfinite(lengths).all()):
        raise ValueError("response lengths must be finite and >= 0")
    return lengths


def check_alpha(alpha: float) -> float:
    """Return alpha as a float, or raise if it is not a number (a bool is not), negative or not finite."""
    if isinstance(alpha, bool):
        raise ValueError(f"VL Norm alpha must be a number >= 0, got {alpha!r}")
    try:
        value = float(alpha)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"VL Norm alpha must be a number >= 0, got {alpha!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"VL Norm alpha must be finite and >= 0 (paper range [0, 1]), got {alpha!r}")
    return value


def check_max_length(max_length: float) -> float:
    value = float(max_length)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"the maximum response length M must be a positive number, got {max_length!r}")
    return value


def inverse_length_powers(lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """u_i = L_i^-alpha for L_i > 0 and 0 for L_i = 0, in float64 (un-normalised VL Norm weights)."""
    lengths = _check_lengths(lengths)
    alpha = check_alpha(alpha)
    valid = lengths > 0
    log_u = torch.where(valid, -alpha * torch.log(lengths.clamp_min(1.0)), torch.zeros_like(lengths))
    return torch.where(valid, torch.exp(log_u), torch.zeros_like(lengths))


def vl_norm_weights(lengths: torch.Tensor, alpha: float, max_length: float) -> torch.Tensor:
    """x_i = (1/M) * L_i^-alpha / sum_{j: L_j > 0} L_j^-alpha; 0 for empty rows (all zero if S is empty)."""
    lengths = _check_lengths(lengths)
    alpha = check_alpha(alpha)
    max_length = check_max_length(max_length)
    valid = lengths > 0
    if not bool(valid.any()):
        return torch.zeros_like(lengths)
    logits = torch.full_like(lengths, -math.inf)
    logits[valid] = -alpha * torch.log(lengths[valid])
    return torch.softmax(logits, dim=0) / max_length


def grpo_norm_weights(lengths: torch.Tensor) -> torch.Tensor:
    """x_i = 1 / (N * L_i) with N the number of non-empty responses (verl `seq-mean-token-mean`)."""
    lengths = _check_lengths(lengths)
    valid = lengths > 0
    n = valid.sum()
    return torch.where(valid, 1.0 / (n * lengths.clamp_min(1.0)), torch.zeros_like(lengths))


def dapo_norm_weights(lengths: torch.Tensor) -> torch.Tensor:
    """x_i = 1 / sum_j L_j for every non-empty response (verl `token-mean` over the global token count)."""
    lengths = _check_lengths(lengths)
    valid = lengths > 0
    total = lengths.sum()
    return torch.where(valid, 1.0 / total.clamp_min(1.0), torch.zeros_like(lengths))


def drgrpo_norm_weights(lengths: torch.Tensor, max_length: float) -> torch.Tensor:
    """x_i = 1 / (N * M) for every non-empty response (verl `seq-mean-token-sum-norm`, loss_scale_factor=M)."""
    lengths = _check_lengths(lengths)
    max_length = check_max_length(max_length)
    valid = lengths > 0
    n = valid.sum().clamp_min(1)
    return torch.where(valid, torch.full_like(lengths, 1.0) / (n * max_length), torch.zeros_like(lengths))


def aggregation_weights(method: str, lengths: torch.Tensor, max_length: float, alpha: float = 1.0) -> torch.Tensor:
    """The weights x_i of `method` (one of AGGREGATIONS) for one normalisation set."""
    if method == "vl_norm":
        return vl_norm_weights(lengths, alpha, max_length)
    if method == "grpo_norm":
        return grpo_norm_weights(lengths)
    if method == "dapo_norm":
        return dapo_norm_weights(lengths)
    if method == "drgrpo_norm":
        return drgrpo_norm_weights(lengths, max_length)
    raise ValueError(f"unknown aggregation {method!r}; choose one of {AGGREGATIONS}")


def variance_under_length_model(weights: torch.Tensor, lengths: torch.Tensor, unit_variance: float = 1.0) -> float:
    """Var(sum_i x_i g_i) = V * sum_i x_i^2 * L_i for independent g_i with Var(g_i) = V * L_i."""
    lengths = _check_lengths(lengths)
    return float(unit_variance * (weights.to(torch.float64) ** 2 * lengths).sum())


def batch_scope_advantage_scale(lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """w_i = L_i^-alpha / mean_{j: L_j > 0} L_j^-alpha (0 for empty rows): the factor folded into advantages.

    With the policy-gradient term aggregated as (sum of masked losses) / (N * M), this gives
    x_i = w_i / (N * M) = VL Norm's weight over the set the mean was taken on.
    """
    u = inverse_length_powers(lengths, alpha)
    valid = _check_lengths(lengths) > 0
    if not bool(valid.any()):
        return u
    # normalise in log space: u_i / mean(u) = N * softmax(-alpha log L)_i
    return vl_norm_weights(lengths, alpha, 1.0) * valid.sum()


def minibatch_scope_row_factors(
    lengths: torch.Tensor, alpha: float, max_length: float, weight_sum: float
) -> torch.Tensor:
    """c_i = L_i^-alpha / (M * D), 0 for empty rows, with D = sum_j L_j^-alpha over the mini-batch (all ranks).

    Summed over the mini-batch, sum_i c_i S_i = (1/M) sum_i L_i^-alpha S_i / D: VL Norm's weights over the
    mini-batch; D = 0 (no non-empty row) gives 0, never 0/0.
    """
    scale = 1.0 / (check_max_length(max_length) * max(float(weight_sum), 1e-300))
    return inverse_length_powers(lengths, alpha) * scale


class WeightStats(NamedTuple):
    """Summary of per-response weights over one normalisation set (weights relative to their mean)."""

    num_responses: int
    ess_fraction: float  # (sum w)^2 / (N * sum w^2): 1 = uniform weights
    weight_min: float  # min_i w_i / mean(w)
    weight_max: float  # max_i w_i / mean(w)
    length_mean: float
    length_cv: float  # population std / mean of L over non-empty responses

    def as_metrics(self, prefix: str = "vl_norm/") -> dict[str, float]:
        return {
            f"{prefix}ess_fraction": self.ess_fraction,
            f"{prefix}weight_min": self.weight_min,
            f"{prefix}weight_max": self.weight_max,
            f"{prefix}length_mean": self.length_mean,
            f"{prefix}length_cv": self.length_cv,
            f"{prefix}responses": float(self.num_responses),  # non-empty responses in the set (all ranks)
        }


#: rows up to which :meth:`WeightSums.from_lengths` sums in plain Python rather than numpy
HOST_PYTHON_MAX_ROWS = 512


class WeightSums(NamedTuple):
    """Additive sufficient statistics of lengths and weights u_i = L_i^-alpha; sums (and min/max) merge across
    micro-batches and data-parallel ranks, so a set's statistics never need all its rows in one place. Immutable
    tuples: the batch-scope loss builds one per micro-batch, and a tuple is the cheapest record to build."""

    count: float
    sum_u: float
    sum_u2: float
    min_u: float
    max_u: float
    sum_len: float
    sum_len2: float

    @classmethod
    def from_lengths(cls, lengths: torch.Tensor, alpha: float) -> WeightSums:
        """The sums over the non-empty rows of `lengths` (1-D, >= 0), computed on the host: in plain Python up to
        :data:`HOST_PYTHON_MAX_ROWS` rows (a micro-batch: cheaper than any tensor library's per-call overhead,
        which costs a loss call ~10%), vectorised in numpy above (a mini-batch in the engine hook)."""
        alpha = check_alpha(alpha)
        values = torch.as_tensor(lengths).detach()
        if values.dim() != 1:
            raise ValueError(f"lengths must be 1-D, got shape {tuple(values.shape)}")
        if values.numel() <= HOST_PYTHON_MAX_ROWS:
            return cls.from_values(values.tolist(), alpha)
        array = values.to("cpu", torch.float64).numpy()
        if not np.isfinite(array).all() or (array < 0).any():
            raise ValueError("response lengths must be finite and >= 0")
        valid_array = array[array > 0]
        w = np.exp(-alpha * np.log(valid_array))
        sums = (valid_array.size, w.sum(), (w * w).sum(), w.min(initial=np.inf), w.max(initial=0.0))
        return cls._of(*sums, valid_array.sum(), (valid_array * valid_array).sum())

    @classmethod
    def from_values(cls, lengths: Sequence[float], alpha: float) -> WeightSums:
        """:meth:`from_lengths` of lengths already on the host (a list), in plain Python."""
        if not all(0 <= v < math.inf for v in lengths):  # False for NaN too
            raise ValueError("response lengths must be finite and >= 0")
        valid = [v for v in lengths if v > 0]
        u = [v**-alpha for v in valid]
        sums = (len(valid), sum(u), sum(x * x for x in u), min(u, default=0), max(u, default=0))
        return cls._of(*sums, sum(valid), sum(v * v for v in valid))

    @classmethod
    def _of(cls, count, sum_u, sum_u2, min_u, max_u, sum_len, sum_len2) -> WeightSums:
        if count == 0:
            return cls(0.0, 0.0, 0.0, math.inf, -math.inf, 0.0, 0.0)
        return cls(*(float(v) for v in (count, sum_u, sum_u2, min_u, max_u, sum_len, sum_len2)))

    def to_tensor(self) -> torch.Tensor:
        """[count, sum_u, sum_u2, -min_u, max_u, sum_len, sum_len2]: SUM-reduce the first 3 and last 2, MAX the rest."""
        return torch.tensor(
            [self.count, self.sum_u, self.sum_u2, -self.min_u, self.max_u, self.sum_len, self.sum_len2],
            dtype=torch.float64,
        )

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> WeightSums:
        c, su, su2, neg_min, mx, sl, sl2 = (float(v) for v in t.tolist())
        return cls(c, su, su2, -neg_min, mx, sl, sl2)

    def stats(self) -> WeightStats:
        if self.count == 0:
            return WeightStats(0, 1.0, 0.0, 0.0, 0.0, 0.0)
        mean_u = self.sum_u / self.count
        mean_len = self.sum_len / self.count
        var_len = max(self.sum_len2 / self.count - mean_len**2, 0.0)
        return WeightStats(
            num_responses=int(self.count),
            ess_fraction=self.sum_u**2 / (self.count * self.sum_u2),
            weight_min=self.min_u / mean_u,
            weight_max=self.max_u / mean_u,
            length_mean=mean_len,
            length_cv=math.sqrt(var_len) / mean_len,
        )


def weight_stats(lengths: torch.Tensor, alpha: float) -> WeightStats:
    """Diagnostics of VL Norm's weights over one set: effective sample size, min/max, length CV."""
    return WeightSums.from_lengths(lengths, alpha).stats()
