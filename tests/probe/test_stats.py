"""The probe's statistics on synthetic gradients with a known length law (no model).

Expectations are independent of the code under test: the true beta of the generator, the paper's closed form
(``closed_forms.vl_norm_variance``), and hand-built cases where the power law is misspecified or weight can hide
on zero-advantage rows (negative controls for the matched-step-size normalisation).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from closed_forms import vl_norm_variance
from probe_testlib import synthetic

from vlnorm_verl import aggregation
from vlnorm_verl.probe import stats
from vlnorm_verl.probe.errors import ProbeError

FAST = stats.Settings(n_batches=200, n_boot_beta=400, n_boot_alpha=40, ci_batches=50)


@pytest.fixture(scope="module", params=[0.5, 1.0, 1.5], ids=lambda b: f"beta={b}")
def known(request):
    beta = request.param
    lengths, grads = synthetic(beta, n=2000, seed=int(beta * 10))
    analysis = stats.analyze(stats.from_vectors(lengths, grads, settings=FAST), FAST)
    return beta, lengths, analysis


def test_synthetic_lengths_span_ten_times(known):
    _, lengths, analysis = known
    assert analysis.n == 2000
    assert lengths.max() / lengths.min() >= 10


def test_beta_recovered(known):
    beta, _, analysis = known
    assert abs(analysis.fit.beta - beta) <= 0.15
    lo, hi = analysis.fit.beta_ci
    assert lo <= analysis.fit.beta <= hi and hi - lo < 0.2
    assert analysis.fit.flat is True  # the generator follows one power law


def test_measured_variances_match_closed_forms(known):
    _, _, analysis = known
    for row in analysis.monte_carlo.results:
        assert row.measured == pytest.approx(row.closed_form, rel=0.10), row.label
        assert row.measured_rel_dapo == pytest.approx(row.closed_form_rel_dapo, rel=0.10), row.label


def test_vl_norm_at_beta_hat_has_least_variance_among_unbiased(known):
    beta, _, analysis = known
    rows = analysis.monte_carlo.results
    unbiased = [r for r in rows if not r.biased]
    at_beta_hat = next(r for r in rows if r.label.endswith("(β̂)"))
    best = min(r.measured for r in unbiased)
    assert at_beta_hat.measured <= best * 1.01  # ties with grid alphas within 0.1 of beta-hat
    # negative control: alphas clearly off beta are clearly worse
    for r in unbiased:
        if r.alpha is None or abs(r.alpha - beta) >= 0.25:
            assert r.measured > at_beta_hat.measured * 1.02, r.label


def test_recommended_alpha_near_beta(known):
    beta, _, analysis = known
    assert abs(analysis.choice.alpha - beta) <= 0.15
    lo, hi = analysis.choice.ci
    assert lo <= analysis.choice.alpha <= hi
    assert analysis.agreement.agree


def test_bias_flags_follow_the_weights(known):
    _, _, analysis = known
    flags = {r.name: r.biased for r in analysis.monte_carlo.results}
    assert flags == {"grpo_norm": True, "dapo_norm": True, "drgrpo_norm": False, "vl_norm": False}
    for r in analysis.monte_carlo.results:
        if not r.biased:
            assert r.sum_weights_cv < 1e-9


def test_table_rows_lie_on_the_alpha_curve(known):
    _, _, analysis = known
    grid = analysis.choice.grid
    for r in analysis.monte_carlo.results:
        if r.name == "vl_norm" and r.alpha is not None and np.isclose(grid, r.alpha).any():
            on_curve = analysis.choice.curve_rel_dapo[int(np.argmin(abs(grid - r.alpha)))]
            assert r.measured_rel_dapo == pytest.approx(on_curve, rel=1e-6), r.label


def test_closed_form_agrees_with_the_papers_formula():
    """At beta = 1 the probe's closed form for VL Norm is the paper's (V/M^2 sum L^(1-2a)/...)."""
    rng = np.random.default_rng(3)
    lengths = rng.integers(5, 300, 64).astype(float)
    for alpha in (0.0, 0.5, 1.0, 1.7):
        x = aggregation.vl_norm_weights(torch.from_numpy(lengths), alpha, 300.0).numpy()
        ours = stats._closed(x, lengths, np.ones_like(lengths), 1.0, 2.5)
        paper = vl_norm_variance(lengths, alpha, 300.0, unit_variance=2.5)
        assert ours == pytest.approx(paper, rel=1e-12)


def test_batched_weights_equal_aggregation_weights():
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 8192, (5, 33)).astype(float)
    grid = np.array([0.0, 0.35, 1.0, 2.0])
    batched = stats.vl_norm_batch_weights(lengths, grid, 8192.0)
    for a, alpha in enumerate(grid):
        for r in range(lengths.shape[0]):
            ref = aggregation.vl_norm_weights(torch.from_numpy(lengths[r]), float(alpha), 8192.0).numpy()
            np.testing.assert_allclose(batched[a, r], ref, rtol=1e-12, atol=0)


def test_misspecified_power_law_is_reported():
    """Two clusters (short formatted answers, long rambling) with a variance jump: beta-hat and alpha-hat part."""
    rng = np.random.default_rng(1)
    lengths = np.concatenate([rng.integers(20, 60, 1400), rng.integers(150, 400, 600)]).astype(float)
    var = np.where(lengths < 100, 1.0, 30.0) * lengths**0.3
    grads = rng.standard_normal((lengths.size, 48)) * np.sqrt(var / 48)[:, None]
    analysis = stats.analyze(stats.from_vectors(lengths, grads, settings=FAST), FAST)
    assert analysis.fit.flat is False
    assert analysis.fit.beta > analysis.choice.ci[1] + 0.1  # beta-hat outside alpha-hat's interval
    assert not analysis.agreement.agree
    assert "disagree" in analysis.agreement.statement
    assert f"Use the measured α = {analysis.choice.alpha:.2f}" in analysis.agreement.statement
    # the measured choice beats alpha = beta-hat by its own yardstick
    curve = analysis.choice.curve_rel_dapo
    beta_point = int(np.argmin(abs(analysis.choice.grid - min(analysis.fit.beta, 2.0))))
    assert curve.min() < curve[beta_point]


def test_matched_step_size_ignores_weight_on_zero_advantage_rows():
    """Negative control: short zero-advantage rows (g_i = 0) soak up weight at large alpha.

    The raw variance keeps falling with alpha (weight moves onto rows without gradient), so a raw comparison would
    pick alpha = 2; at matched step size the optimum stays at the true beta = 1.
    """
    lengths, grads = synthetic(1.0, n=1600, seed=7)
    rng = np.random.default_rng(8)
    zero_lengths = rng.integers(2, 10, 1000).astype(float)
    lengths = np.concatenate([lengths, zero_lengths])
    grads = np.concatenate([grads, np.zeros((1000, grads.shape[1]))])
    analysis = stats.analyze(stats.from_vectors(lengths, grads, settings=FAST), FAST, extra_alphas=(2.0,))
    assert analysis.n_nonzero == 1600
    assert abs(analysis.fit.beta - 1.0) <= 0.15
    assert abs(analysis.choice.alpha - 1.0) <= 0.15
    at_1 = analysis.result("vl_norm", 1.0)
    at_2 = analysis.result("vl_norm", 2.0)
    assert at_2.raw_measured_rel_dapo < at_1.raw_measured_rel_dapo  # the trap a raw comparison falls into
    assert at_2.measured_rel_dapo > at_1.measured_rel_dapo * 1.2  # matched: alpha = 2 is much worse
    assert at_2.mean_step < at_1.mean_step * 0.5  # ... because its weight went to zero-advantage rows


def test_sample_weights_reproduce_the_natural_distribution():
    """A length-stratified subset with inverse-inclusion weights measures what the full set measures."""
    from vlnorm_verl.probe.sampling import stratified_selection

    long_l, long_g = synthetic(1.0, n=2600, seed=11, lo=300, hi=500, mean_scale=0.0)
    short_l, short_g = synthetic(1.0, n=400, seed=12, lo=10, hi=300, mean_scale=0.0)  # a thin short tail
    lengths, grads = np.concatenate([long_l, short_l]), np.concatenate([long_g, short_g])
    full = stats.analyze(stats.from_vectors(lengths, grads, settings=FAST), FAST)
    sel = stratified_selection(lengths, np.ones(lengths.size, dtype=bool), 900, 8, seed=0)
    assert sel.indices.size == 900 and sel.weights.max() > sel.weights.min()
    sub = stats.analyze(
        stats.from_vectors(lengths[sel.indices], grads[sel.indices], sample_weight=sel.weights, settings=FAST), FAST
    )
    assert abs(sub.fit.beta - 1.0) <= 0.15
    ratio_full = full.result("vl_norm", 1.0).measured_rel_dapo
    ratio_sub = sub.result("vl_norm", 1.0).measured_rel_dapo
    assert ratio_sub == pytest.approx(ratio_full, rel=0.15)
    # negative control: the same subset without its weights over-represents long and short strata
    mean_natural = lengths.mean()
    mean_weighted = np.average(lengths[sel.indices], weights=sel.weights)
    assert mean_weighted == pytest.approx(mean_natural, rel=0.05)
    assert lengths[sel.indices].mean() < 0.8 * mean_natural
    unweighted = stats.analyze(stats.from_vectors(lengths[sel.indices], grads[sel.indices], settings=FAST), FAST)
    assert abs(unweighted.result("vl_norm", 1.0).measured_rel_dapo - ratio_full) > abs(ratio_sub - ratio_full)


def test_stratified_selection_keeps_zero_advantage_rows_and_thin_strata():
    from vlnorm_verl.probe.sampling import stratified_selection

    lengths = np.array([5.0] * 10 + [50.0] * 500 + [400.0] * 10)
    needs = np.ones(lengths.size, dtype=bool)
    needs[:3] = False  # zero-advantage rows are free
    sel = stratified_selection(lengths, needs, 60, 4, seed=0)
    kept = lengths[sel.indices]
    assert set(sel.indices[:3]) == {0, 1, 2}
    assert (kept == 400.0).sum() == 10 and (kept == 5.0).sum() == 10  # thin strata kept whole
    assert int(needs[sel.indices].sum()) == 60
    np.testing.assert_allclose(np.sum(sel.weights[needs[sel.indices]]), needs.sum())


# --------------------------------------------------------------------------------------------- bad input


def test_fewer_than_two_distinct_lengths():
    with pytest.raises(ProbeError, match="fewer than 2 distinct lengths"):
        stats.from_vectors(np.full(50, 64.0), np.random.default_rng(0).standard_normal((50, 4)))


def test_too_few_rows():
    lengths, grads = synthetic(1.0, n=6)
    with pytest.raises(ProbeError, match="too few responses for the fit"):
        stats.from_vectors(lengths, grads)


def test_too_few_nonzero_rows():
    lengths, grads = synthetic(1.0, n=200)
    grads[5:] = 0.0
    with pytest.raises(ProbeError, match="5 with a non-zero gradient"):
        stats.from_vectors(lengths, grads)


def test_non_finite_gradients():
    lengths, grads = synthetic(1.0, n=100)
    grads[7, 2] = np.nan
    with pytest.raises(ProbeError, match="non-finite values in 1 rows .first: row 7"):
        stats.from_vectors(lengths, grads)


def test_mismatched_shapes():
    lengths, grads = synthetic(1.0, n=100)
    with pytest.raises(ProbeError, match="grads has 99 rows but lengths has 100"):
        stats.from_vectors(lengths, grads[:99])
    with pytest.raises(ProbeError, match="2-D"):
        stats.from_vectors(lengths, grads[:, 0])
    with pytest.raises(ProbeError, match="advantages has 3 entries"):
        stats.from_vectors(lengths, grads, advantages=[1.0, 2.0, 3.0])


def test_zero_length_and_inconsistent_advantage():
    lengths, grads = synthetic(1.0, n=100)
    bad = lengths.copy()
    bad[4] = 0
    with pytest.raises(ProbeError, match="count the EOS token"):
        stats.from_vectors(bad, grads)
    adv = np.ones(100)
    adv[9] = 0.0
    with pytest.raises(ProbeError, match="row 9 has advantage 0 but a non-zero gradient"):
        stats.from_vectors(lengths, grads, advantages=adv)


def test_identical_gradients_have_no_variance():
    lengths = np.arange(1, 41, dtype=float)
    with pytest.raises(ProbeError, match="identical"):
        stats.from_vectors(lengths, np.ones((40, 3)))


def test_length_bins_split_off_a_dominant_length():
    """Truncated responses pile up at the cap: they get their own bin instead of swallowing the short tail."""
    lengths = np.array([3.0, 5, 8, 9, 12, 15, 20] + [48.0] * 80)
    bins = stats.length_bins(lengths, 12, 5)
    assert len(bins) == 2
    assert sorted(lengths[bins[0]]) == [3, 5, 8, 9, 12, 15, 20] and set(lengths[bins[1]]) == {48.0}
