"""The aggregation math against closed forms and independent references (no verl)."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch
from closed_forms import vl_norm_variance

from vlnorm_verl.aggregation import (
    AGGREGATIONS,
    HOST_PYTHON_MAX_ROWS,
    WeightSums,
    aggregation_weights,
    batch_scope_advantage_scale,
    dapo_norm_weights,
    drgrpo_norm_weights,
    grpo_norm_weights,
    minibatch_scope_row_factors,
    response_lengths,
    variance_under_length_model,
    vl_norm_weights,
    weight_stats,
)

M = 4096


def random_lengths(n: int, seed: int, low: int = 1, high: int = M, zeros: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(low, high + 1, (n,), generator=g).to(torch.float64)
    if zeros:
        lengths[torch.randperm(n, generator=g)[:zeros]] = 0
    return lengths


@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.75, 1.0, 2.0])
@pytest.mark.parametrize("seed", range(5))
def test_vl_norm_weights_sum_to_one_over_m(alpha: float, seed: int) -> None:
    lengths = random_lengths(64, seed, zeros=3)
    x = vl_norm_weights(lengths, alpha, M)
    assert x.dtype == torch.float64
    assert float(x.sum()) == pytest.approx(1.0 / M, rel=1e-12)
    # proportional to L^-alpha on non-empty rows
    valid = lengths > 0
    ratio = x[valid] * lengths[valid] ** alpha
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-10)


def test_sums_of_other_aggregators_match_their_closed_forms() -> None:
    lengths = torch.tensor([10.0, 20.0, 0.0, 70.0])
    n, total = 3, 100.0
    assert float(drgrpo_norm_weights(lengths, M).sum()) == pytest.approx(1.0 / M)
    # DAPO: N / sum L (length dependent: biased); GRPO: (1/N) sum 1/L_i
    assert float(dapo_norm_weights(lengths).sum()) == pytest.approx(n / total)
    assert float(grpo_norm_weights(lengths).sum()) == pytest.approx((1 / 10 + 1 / 20 + 1 / 70) / n)


def test_alpha_zero_is_dr_grpo_norm() -> None:
    lengths = random_lengths(50, 7, zeros=5)
    assert torch.allclose(vl_norm_weights(lengths, 0.0, M), drgrpo_norm_weights(lengths, M), rtol=1e-14, atol=0)


@pytest.mark.parametrize("method", AGGREGATIONS)
def test_zero_length_rows_get_zero_weight_and_no_nan(method: str) -> None:
    lengths = torch.tensor([0.0, 5.0, 0.0, 9.0])
    x = aggregation_weights(method, lengths, M, alpha=1.0)
    assert torch.isfinite(x).all()
    assert x[0] == 0 and x[2] == 0 and (x[[1, 3]] > 0).all()
    empty = aggregation_weights(method, torch.zeros(3), M, alpha=1.0)
    assert torch.equal(empty, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.75, 1.0, 1.5, 2.0])
def test_extreme_lengths_match_a_50_digit_reference(alpha: float) -> None:
    lengths = torch.tensor([1.0, 2.0, 3.0, 32767.0, 32768.0, 0.0, 16000.0, 1.0])
    x = vl_norm_weights(lengths, alpha, 32768)
    mpmath.mp.dps = 50
    valid = [mpmath.mpf(int(v)) for v in lengths.tolist() if v > 0]
    denom = sum(v ** (-mpmath.mpf(alpha)) for v in valid)
    expected = [
        float(mpmath.mpf(int(v)) ** (-mpmath.mpf(alpha)) / denom / 32768) if v > 0 else 0.0 for v in lengths.tolist()
    ]
    assert torch.isfinite(x).all()
    assert torch.allclose(x, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)


def test_invalid_alpha_and_lengths_are_rejected() -> None:
    for bad in (-0.1, float("nan"), float("inf"), "one"):
        with pytest.raises(ValueError, match="alpha"):
            vl_norm_weights(torch.tensor([1.0]), bad, M)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        vl_norm_weights(torch.tensor([-1.0, 2.0]), 1.0, M)
    with pytest.raises(ValueError, match="positive"):
        vl_norm_weights(torch.tensor([1.0]), 1.0, 0)
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregation_weights("mean", torch.tensor([1.0]), M)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0])
def test_closed_form_variance_matches_the_length_model(alpha: float) -> None:
    lengths = random_lengths(40, 3)
    by_model = variance_under_length_model(vl_norm_weights(lengths, alpha, M), lengths)
    assert vl_norm_variance(lengths, alpha, M) == pytest.approx(by_model, rel=1e-12)


def test_monte_carlo_variance_matches_closed_forms_and_alpha_one_is_smallest() -> None:
    """Per-response gradients g_i = sum of L_i iid N(0, 1) token terms, so Var(g_i) = L_i; each aggregator's
    estimate sum_i x_i g_i must show the variance V sum_i x_i^2 L_i, and VL Norm at alpha = 1 the least."""
    max_len = 512
    lengths = torch.tensor([8.0, 20.0, 64.0, 100.0, 200.0, 350.0, 500.0, 512.0])
    trials = 40_000
    g = torch.Generator().manual_seed(0)
    # a sum of L iid N(0,1) is exactly N(0, L): sample it directly
    grads = torch.randn(trials, len(lengths), generator=g, dtype=torch.float64) * lengths.sqrt()
    methods = {
        "grpo_norm": grpo_norm_weights(lengths),
        "dapo_norm": dapo_norm_weights(lengths),
        "drgrpo_norm": drgrpo_norm_weights(lengths, max_len),
        **{f"vl_norm@{a}": vl_norm_weights(lengths, a, max_len) for a in (0.25, 0.5, 0.75, 1.0, 1.5)},
    }
    measured = {}
    for name, x in methods.items():
        est = grads @ x
        measured[name] = float(est.var())
        closed = variance_under_length_model(x, lengths)
        # the sample variance of 40k normals has relative s.d. sqrt(2/40k) = 0.7 %: 4 % is > 5 sigma
        assert measured[name] == pytest.approx(closed, rel=0.04), name
    unbiased = {k: v for k, v in measured.items() if k.startswith(("vl_norm", "drgrpo"))}
    assert min(unbiased, key=unbiased.get) == "vl_norm@1.0"
    # and the closed form is minimised at alpha = 1 over a fine grid
    grid = [i / 20 for i in range(41)]
    best = min(grid, key=lambda a: vl_norm_variance(lengths, a, max_len))
    assert best == 1.0


def test_batch_scope_scale_is_n_m_times_the_vl_weight() -> None:
    lengths = random_lengths(32, 11, zeros=2)
    for alpha in (0.0, 0.75, 1.0):
        w = batch_scope_advantage_scale(lengths, alpha)
        valid = lengths > 0
        assert float(w[valid].mean()) == pytest.approx(1.0, rel=1e-12)
        assert torch.allclose(w, vl_norm_weights(lengths, alpha, M) * valid.sum() * M, rtol=1e-12)
        assert torch.all(w[~valid] == 0)


def test_weight_sums_merge_across_chunks() -> None:
    lengths = random_lengths(30, 5, zeros=4)
    whole = weight_stats(lengths, 0.75)
    parts = [WeightSums.from_lengths(chunk, 0.75).to_tensor() for chunk in lengths.split(7)]
    sums = torch.stack(parts)
    merged = sums.sum(0)
    merged[3] = sums[:, 3].max()
    merged[4] = sums[:, 4].max()
    stats = WeightSums.from_tensor(merged).stats()
    assert stats.num_responses == whole.num_responses == 26
    for field in ("ess_fraction", "weight_min", "weight_max", "length_mean", "length_cv"):
        assert getattr(stats, field) == pytest.approx(getattr(whole, field), rel=1e-12)
    # independent definitions
    valid = lengths[lengths > 0]
    u = valid**-0.75
    assert whole.ess_fraction == pytest.approx(float(u.sum() ** 2 / (len(u) * (u * u).sum())))
    assert whole.weight_max == pytest.approx(float(u.max() / u.mean()))
    assert whole.length_cv == pytest.approx(float(valid.std(unbiased=False) / valid.mean()))
    assert math.isclose(weight_stats(torch.full((5,), 7.0), 1.0).ess_fraction, 1.0)


def test_weight_sums_of_a_large_set_equal_the_independent_definitions() -> None:
    """Above HOST_PYTHON_MAX_ROWS the sums are taken in numpy; both ways give the definitions' values."""
    lengths = random_lengths(HOST_PYTHON_MAX_ROWS + 100, 8, zeros=9)
    big = WeightSums.from_lengths(lengths, 0.6)
    halves = [WeightSums.from_lengths(part, 0.6) for part in lengths.split(HOST_PYTHON_MAX_ROWS // 2 + 50)]
    valid = lengths[lengths > 0]
    u = valid**-0.6
    expected = (len(valid), u.sum(), (u * u).sum(), u.min(), u.max(), valid.sum(), (valid * valid).sum())
    for got, want in zip(tuple(big), expected, strict=True):
        assert got == pytest.approx(float(want), rel=1e-12)
    assert big.count == sum(h.count for h in halves)
    assert big.sum_u == pytest.approx(sum(h.sum_u for h in halves), rel=1e-12)
    assert big.min_u == pytest.approx(min(h.min_u for h in halves), rel=1e-12)
    assert big.max_u == pytest.approx(max(h.max_u for h in halves), rel=1e-12)
    with pytest.raises(ValueError, match="finite and >= 0"):
        WeightSums.from_lengths(torch.cat([lengths, torch.tensor([-1.0])]), 0.6)
    with pytest.raises(ValueError, match="finite and >= 0"):
        WeightSums.from_lengths(torch.tensor([3.0, math.inf]), 0.6)


def test_response_lengths_of_a_jagged_mask_equal_the_padded_ones() -> None:
    rows = [torch.ones(5), torch.zeros(3), torch.tensor([1.0, 1.0, 0.0, 1.0]), torch.ones(1)]
    padded = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
    jagged = torch.nested.as_nested_tensor(rows, layout=torch.jagged)
    assert response_lengths(padded).tolist() == [5.0, 0.0, 3.0, 1.0]
    assert response_lengths(jagged).tolist() == [5.0, 0.0, 3.0, 1.0]
    assert response_lengths(jagged).dtype == torch.int64
    assert response_lengths(padded.bool()).tolist() == [5, 0, 3, 1]


def test_minibatch_row_factors_are_vl_norm_weights_over_the_mini_batch() -> None:
    lengths = random_lengths(24, 13, zeros=3)
    for alpha in (0.0, 0.75, 1.0):
        weight_sum = float((lengths[lengths > 0] ** -alpha).sum())
        factors = minibatch_scope_row_factors(lengths, alpha, M, weight_sum)
        assert torch.allclose(factors, vl_norm_weights(lengths, alpha, M), rtol=1e-12, atol=0)
    assert torch.all(minibatch_scope_row_factors(torch.zeros(3), 1.0, M, 0.0) == 0)
