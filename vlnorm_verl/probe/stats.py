"""Statistics of per-response policy gradients g_i against response length L_i (numpy; weights from
:mod:`vlnorm_verl.aggregation`, never restated here).

Input: lengths L_i >= 1 (the EOS token counted), the gradients g_i = grad_theta(A_i * sum_t log pi(y_it | ...))
through any factor F with F F^T = [g_i . g_j] (the vectors themselves, a random projection of them, or a factor of
their Gram matrix), a mask z_i of the rows with a non-zero advantage, and optional sample weights pi_i (inverse
inclusion probabilities of a length-stratified selection; 1 for natural samples).

1. Mean and deviations. gbar = the pi-weighted mean of g_i over the rows with z_i = 1; e_i = ||g_i - gbar||^2.
   A zero-advantage row has g_i = 0 exactly and no noise: it is left out of gbar and of the fit and adds nothing to
   an aggregated deviation, but it still counts in every aggregator's normaliser (token count, sum_j L_j^-alpha).
2. beta. The non-zero rows are put in equal-count bins of whole lengths; v_b = the weighted mean of e_i in bin b,
   Lbar_b = the bin's mean length; weighted least squares log v_b = log V + beta log Lbar_b (weights: bin sizes).
   90% interval: percentile bootstrap over rows (5th and 95th percentiles; bins fixed). Fit check: the ratio
   r_b = v_b / (V Lbar_b^beta) per bin and chi^2 = sum_b (log r_b / se_b)^2, se_b the bootstrap sd of log v_b, on
   nbins - 2 degrees of freedom; the fit is called flat when the chi^2 p-value is at least 0.01.
3. Aggregators at matched step size. A resampled batch S is B draws with replacement (probability proportional to
   pi_i) from the N rows; x_i(S) are the aggregator's weights for S's lengths; D(S) = sum_{i in S} x_i z_i (g_i -
   gbar) and step(S) = sum_{i in S} x_i z_i. Over R such batches (the same batches for every aggregator)::

       measured = tr Cov_S[D(S)] / (E_S step(S))^2                            (unbiased sample covariance)
       closed   = E_S[V sum_{i in S} z_i x_i^2 L_i^beta] / (E_S step(S))^2     (fitted V and beta)

   both reported relative to DAPO Norm's. Dividing by the squared expected weight on non-zero-advantage rows
   compares aggregators at the same expected step along gbar, so neither a smaller sum x_i nor an alpha that moves
   weight onto zero-advantage rows passes for lower variance. Under the model (g_i independent, E g_i = gbar,
   Var g_i = V L_i^beta) E||D||^2 = V sum z x^2 L^beta: measured and closed agree up to Monte Carlo noise when the
   power law holds, and differ where it does not. "biased": sum_i x_i(S) varies across the batches (coefficient of
   variation above 1e-9); the unbiased aggregators (Dr. GRPO Norm, VL Norm) sum to 1/M on every batch.
4. Recommended alpha. alpha-hat = the alpha of the grid 0, 0.05, ..., 2 whose VL Norm estimator has the least
   measured variance of item 3 (the same R batches for every alpha, so the curve is smooth in alpha; the table's
   VL Norm rows lie on it). No large-batch approximation is used: with a few very short responses the weights
   L^-alpha are heavy-tailed and VL Norm's self-normalisation (sum_j L_j^-alpha over the batch) matters. The 90%
   interval is a double bootstrap: each replicate resamples the N rows (gbar re-estimated), draws ``ci_batches``
   batches from the replicate and takes the argmin of its curve, with the gradients reduced to ``ci_dim``
   dimensions by a fixed Gaussian sketch (inner products preserved in expectation) and float32 arithmetic, over
   the grid points within 0.6 of alpha-hat; the interval therefore also holds the inner Monte Carlo noise, and is
   widened to contain alpha-hat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from vlnorm_verl import aggregation
from vlnorm_verl.probe.errors import ProbeError

GRID_STEP = 0.05
GRID_MAX = 2.0
TABLE_ALPHAS: tuple[float, ...] = (0.0, 0.5, 0.75, 1.0)
CI_LEVEL = 0.90
CI_WINDOW = 0.6  # replicates search alpha-hat +- this (a replicate at the window's edge counts at the edge)
FLAT_P_VALUE = 0.01
BIAS_CV = 1e-9
NAMES = {
    "grpo_norm": "GRPO Norm",
    "dapo_norm": "DAPO Norm",
    "drgrpo_norm": "Dr. GRPO Norm",
    "vl_norm": "VL Norm",
}


def alpha_grid(step: float = GRID_STEP, top: float = GRID_MAX) -> np.ndarray:
    """0, step, ..., top (rounded to 1e-9 so grid values print and compare exactly)."""
    count = int(round(top / step)) + 1
    return np.round(np.arange(count) * step, 9)


@dataclass(frozen=True)
class Settings:
    """Knobs of the statistics (defaults are what the CLI uses)."""

    batch_size: int | None = None  # B; None: the number of rows (the run's size)
    max_length: float | None = None  # M for Dr. GRPO / VL Norm weights (cancels at matched step size)
    n_batches: int = 400  # R: Monte Carlo batches for the aggregator table
    n_boot_beta: int = 1000
    n_boot_alpha: int = 200  # outer bootstrap replicates for alpha-hat's interval
    ci_batches: int = 100  # resampled batches per replicate
    ci_dim: int = 32  # gradient sketch dimension inside the replicates
    max_bins: int = 12
    min_per_bin: int = 5
    min_rows: int = 10
    seed: int = 0

    def check(self) -> None:
        names = (
            "n_batches",
            "n_boot_beta",
            "n_boot_alpha",
            "ci_batches",
            "ci_dim",
            "max_bins",
            "min_per_bin",
            "min_rows",
        )
        for name in names:
            if int(getattr(self, name)) < 2:
                raise ProbeError(f"{name}={getattr(self, name)} is too small: it must be at least 2")
        if self.batch_size is not None and int(self.batch_size) < 2:
            raise ProbeError(f"batch size {self.batch_size} is too small: a batch needs at least 2 responses")
        if self.max_length is not None and not (math.isfinite(self.max_length) and self.max_length > 0):
            raise ProbeError(f"max_length must be a positive number, got {self.max_length}")


@dataclass(frozen=True)
class ProbeData:
    """Validated input: lengths, the centred gradient factor and the masks (see the module docstring)."""

    lengths: np.ndarray  # (N,) float64, >= 1
    factor: np.ndarray  # (N, r) float64; row i = g_i - gbar for non-zero rows, 0 for zero-advantage rows
    nonzero: np.ndarray  # (N,) bool
    sample_weight: np.ndarray  # (N,) float64 > 0, mean 1
    mean_norm_sq: float  # ||gbar||^2

    @property
    def n(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def deviations(self) -> np.ndarray:
        """e_i = ||g_i - gbar||^2 (0 for zero-advantage rows)."""
        return np.einsum("ij,ij->i", self.factor, self.factor)


def _as_1d(name: str, values: Any, n: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProbeError(f"{name} must be numeric: {exc}") from exc
    if arr.ndim != 1:
        raise ProbeError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ProbeError(f"{name} has {arr.shape[0]} entries but lengths has {n}: the shapes do not match")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ProbeError(f"{name} has {int(bad.sum())} non-finite values (first at index {int(np.argmax(bad))})")
    return arr


def _check_lengths(lengths: Any) -> np.ndarray:
    arr = _as_1d("lengths", lengths)
    if arr.shape[0] == 0:
        raise ProbeError("no responses: lengths is empty")
    if (arr < 1).any():
        i = int(np.argmax(arr < 1))
        raise ProbeError(
            f"lengths must be >= 1 (count the EOS token in L), got {arr[i]:g} at index {i}; drop empty responses"
        )
    return arr


def _check_weights(sample_weight: Any, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = _as_1d("sample_weight", sample_weight, n)
    if (w <= 0).any():
        raise ProbeError("sample weights must be > 0 (inverse inclusion probabilities)")
    return w / w.mean()


def _center(raw: np.ndarray, nonzero: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, float]:
    w = weight * nonzero
    mean = (w @ raw) / w.sum()
    centred = np.where(nonzero[:, None], raw - mean, 0.0)
    return centred, float(mean @ mean)


def _finish(
    lengths: np.ndarray, raw: np.ndarray, nonzero: np.ndarray, weight: np.ndarray, settings: Settings
) -> ProbeData:
    n_nz = int(nonzero.sum())
    if n_nz < max(settings.min_rows, 2 * settings.min_per_bin):
        raise ProbeError(
            f"too few responses for the fit: {n_nz} with a non-zero gradient (advantage), need at least "
            f"{max(settings.min_rows, 2 * settings.min_per_bin)}; sample more responses or prompts"
        )
    distinct = np.unique(lengths[nonzero])
    if distinct.size < 2:
        raise ProbeError(
            f"the responses with a non-zero gradient have fewer than 2 distinct lengths ({distinct.size}: "
            f"{', '.join(f'{v:g}' for v in distinct[:3])}); beta cannot be fitted (raise the length cap, sample "
            "more, or stratify by length)"
        )
    factor, mean_sq = _center(raw, nonzero, weight)
    data = ProbeData(lengths, factor, nonzero, weight, mean_sq)
    e = data.deviations
    if not (e[nonzero] > 0).any():
        raise ProbeError("all non-zero gradients are identical: their variance is 0 and beta is undefined")
    return data


def from_vectors(
    lengths: Any,
    grads: Any,
    advantages: Any | None = None,
    sample_weight: Any | None = None,
    settings: Settings | None = None,
) -> ProbeData:
    """Validate (lengths (N,), grads (N, D)[, advantages (N,)][, sample_weight (N,)]) into :class:`ProbeData`.

    Without ``advantages`` a row is zero-advantage when its gradient is exactly zero; with them, when A_i = 0 (its
    gradient must then be zero: g_i includes A_i).
    """
    settings = settings or Settings()
    settings.check()
    lens = _check_lengths(lengths)
    n = lens.shape[0]
    try:
        g = np.asarray(grads, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProbeError(f"grads must be a numeric (N, D) array: {exc}") from exc
    if g.ndim != 2:
        raise ProbeError(f"grads must be a 2-D array (N, D), got shape {g.shape}")
    if g.shape[0] != n:
        raise ProbeError(f"grads has {g.shape[0]} rows but lengths has {n} entries: the shapes do not match")
    if g.shape[1] == 0:
        raise ProbeError("grads has 0 columns: no gradient coordinates")
    finite = np.isfinite(g).all(axis=1)
    if not finite.all():
        raise ProbeError(
            f"grads has non-finite values in {int((~finite).sum())} rows (first: row {int(np.argmax(~finite))})"
        )
    has_grad = (g != 0).any(axis=1)
    if advantages is None:
        nonzero = has_grad
    else:
        adv = _as_1d("advantages", advantages, n)
        nonzero = adv != 0
        clash = ~nonzero & has_grad
        if clash.any():
            raise ProbeError(
                f"row {int(np.argmax(clash))} has advantage 0 but a non-zero gradient: grads must include A_i "
                "(g_i = grad(A_i * sum_t log pi))"
            )
    weight = _check_weights(sample_weight, n)
    if g.shape[1] > n:  # a factor of the Gram matrix is smaller than the vectors
        return from_gram(lens, g @ g.T, nonzero, weight, settings)
    return _finish(lens, g, nonzero, weight, settings)


def gram_factor(gram: np.ndarray) -> np.ndarray:
    """F (N, r) with F F^T = gram (a symmetric PSD matrix), dropping eigenvalues below 1e-12 of the largest."""
    sym = 0.5 * (gram + gram.T)
    vals, vecs = np.linalg.eigh(sym)
    top = max(float(vals.max()), 0.0)
    keep = vals > 1e-12 * top if top > 0 else vals > 0
    if not keep.any():
        return np.zeros((gram.shape[0], 1))
    return vecs[:, keep] * np.sqrt(vals[keep])


def from_gram(
    lengths: Any,
    gram: Any,
    nonzero: Any,
    sample_weight: Any | None = None,
    settings: Settings | None = None,
) -> ProbeData:
    """:class:`ProbeData` from the Gram matrix [g_i . g_j] (N, N) of the raw gradients."""
    settings = settings or Settings()
    settings.check()
    lens = _check_lengths(lengths)
    n = lens.shape[0]
    g = np.asarray(gram, dtype=np.float64)
    if g.shape != (n, n):
        raise ProbeError(f"the Gram matrix has shape {g.shape}, expected ({n}, {n})")
    if not np.isfinite(g).all():
        raise ProbeError("the gradients' Gram matrix has non-finite entries (overflow or NaN gradients)")
    nz = np.asarray(nonzero, dtype=bool)
    if nz.shape != (n,):
        raise ProbeError(f"nonzero mask has shape {nz.shape}, expected ({n},)")
    weight = _check_weights(sample_weight, n)
    return _finish(lens, gram_factor(g), nz, weight, settings)


# ----------------------------------------------------------------------------------------------------- beta


@dataclass(frozen=True)
class LengthBin:
    length_lo: float
    length_hi: float
    length_mean: float
    count: int
    variance: float  # v_b: mean ||g - gbar||^2 in the bin
    se_log: float  # bootstrap sd of log v_b
    ratio_to_fit: float  # v_b / (V Lbar_b^beta)


@dataclass(frozen=True)
class BetaFit:
    beta: float
    beta_ci: tuple[float, float]
    log_v: float  # log V
    bins: tuple[LengthBin, ...]
    chi2: float
    dof: int
    p_value: float | None  # None when dof = 0 (two bins: the check is not possible)
    flat: bool | None

    @property
    def unit_variance(self) -> float:
        return math.exp(self.log_v)

    def ratio_span(self) -> tuple[float, float]:
        ratios = [b.ratio_to_fit for b in self.bins]
        return min(ratios), max(ratios)


def length_bins(lengths: np.ndarray, max_bins: int, min_per_bin: int) -> list[np.ndarray]:
    """Equal-count bins of whole lengths: lists of row positions (into ``lengths``), in increasing length.

    Rows of one length always share a bin; a bin closes once it holds about len/nbins rows (or before a length
    whose rows would overfill it, e.g. the truncated responses at the cap), and a last bin smaller than
    ``min_per_bin`` joins the previous one.
    """
    order = np.argsort(lengths, kind="stable")
    values, starts, counts = np.unique(lengths[order], return_index=True, return_counts=True)
    n = lengths.shape[0]
    nbins = max(1, min(max_bins, values.size, n // min_per_bin))
    target = n / nbins
    groups: list[list[int]] = [[]]
    filled = 0
    for start, count in zip(starts, counts, strict=True):
        # close the bin when full, or before a length so common that it would overfill it
        full = filled >= target or filled + count > 1.5 * target
        if full and len(groups[-1]) >= min_per_bin:
            groups.append([])
            filled = 0
        groups[-1].extend(order[start : start + count].tolist())
        filled += count
    if len(groups) > 1 and len(groups[-1]) < min_per_bin:
        tail = groups.pop()
        groups[-1].extend(tail)
    return [np.asarray(g, dtype=np.int64) for g in groups]


def _wls(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted least squares y = a + b x; returns (b, a)."""
    xm = (w * x).sum() / w.sum()
    ym = (w * y).sum() / w.sum()
    sxx = (w * (x - xm) ** 2).sum()
    b = (w * (x - xm) * (y - ym)).sum() / sxx
    return float(b), float(ym - b * xm)


def _chi2_sf(x: float, dof: int) -> float:
    return float(torch.special.gammaincc(torch.tensor(dof / 2.0, dtype=torch.float64), torch.tensor(x / 2.0)))


def fit_beta(data: ProbeData, settings: Settings, rng: np.random.Generator) -> BetaFit:
    """beta, its 90% bootstrap interval and the per-bin fit check (module docstring, item 2)."""
    rows = np.flatnonzero(data.nonzero)
    lens = data.lengths[rows]
    e = data.deviations[rows]
    w = data.sample_weight[rows]
    bins = length_bins(lens, settings.max_bins, settings.min_per_bin)
    if len(bins) < 2:
        raise ProbeError(
            f"the {rows.size} responses with a non-zero gradient fill only one length bin of >= "
            f"{settings.min_per_bin} rows; beta needs two: sample more responses or lower min_per_bin"
        )
    member = np.zeros((rows.size, len(bins)))
    for b, idx in enumerate(bins):
        member[idx, b] = 1.0
    lbar = np.array([(w[idx] * lens[idx]).sum() / w[idx].sum() for idx in bins])
    counts = np.array([idx.size for idx in bins], dtype=np.float64)
    x = np.log(lbar)

    def bin_means(mult: np.ndarray) -> np.ndarray:  # mult: (R, rows) resampling multiplicities
        num = (mult * (w * e)) @ member
        den = (mult * w) @ member
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / den

    v = bin_means(np.ones((1, rows.size)))[0]
    if (v <= 0).any():
        raise ProbeError("a length bin has zero gradient variance; beta cannot be fitted on a log scale")
    y = np.log(v)
    beta, log_v = _wls(x, y, counts)

    p = w / w.sum()
    mult = rng.multinomial(rows.size, p, size=settings.n_boot_beta).astype(np.float64)
    vb = bin_means(mult)
    with np.errstate(divide="ignore", invalid="ignore"):
        yb = np.log(vb)
    betas = []
    for row in yb:
        ok = np.isfinite(row)
        if ok.sum() >= 2:
            betas.append(_wls(x[ok], row[ok], counts[ok])[0])
    if len(betas) < settings.n_boot_beta // 2:
        raise ProbeError("too few responses per length bin for a bootstrap interval of beta; sample more")
    lo_q, hi_q = (1 - CI_LEVEL) / 2, 1 - (1 - CI_LEVEL) / 2
    beta_ci = (float(np.quantile(betas, lo_q)), float(np.quantile(betas, hi_q)))

    se = np.array([np.nanstd(yb[:, b][np.isfinite(yb[:, b])]) for b in range(len(bins))])
    fitted = log_v + beta * x
    resid = y - fitted
    dof = len(bins) - 2
    se_safe = np.where(se > 0, se, np.inf)
    chi2 = float(((resid / se_safe) ** 2).sum())
    p_value = _chi2_sf(chi2, dof) if dof > 0 else None
    flat = None if p_value is None else bool(p_value >= FLAT_P_VALUE)
    out_bins = tuple(
        LengthBin(
            length_lo=float(lens[idx].min()),
            length_hi=float(lens[idx].max()),
            length_mean=float(lbar[b]),
            count=int(idx.size),
            variance=float(v[b]),
            se_log=float(se[b]),
            ratio_to_fit=float(math.exp(resid[b])),
        )
        for b, idx in enumerate(bins)
    )
    return BetaFit(beta, beta_ci, log_v, out_bins, chi2, dof, p_value, flat)


# ----------------------------------------------------------------------------------------------- aggregators


@dataclass(frozen=True)
class AggregatorSpec:
    method: str  # one of aggregation.AGGREGATIONS
    alpha: float | None = None
    note: str = ""

    @property
    def label(self) -> str:
        name = NAMES[self.method]
        if self.alpha is None:
            return name
        suffix = f" ({self.note})" if self.note else ""
        return f"{name} α={self.alpha:.2f}{suffix}"


@dataclass(frozen=True)
class AggregatorResult:
    name: str  # method
    label: str
    alpha: float | None
    measured: float  # tr Cov D / (E step)^2
    closed_form: float
    measured_rel_dapo: float
    closed_form_rel_dapo: float
    raw_measured_rel_dapo: float  # tr Cov D relative to DAPO's, without the step-size matching
    mc_rel_se: float  # Monte Carlo relative standard error of `measured`
    biased: bool
    sum_weights_cv: float
    mean_sum_weights: float
    mean_step: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _weights(spec: AggregatorSpec, lengths: np.ndarray, max_length: float) -> np.ndarray:
    t = torch.from_numpy(lengths)
    alpha = 1.0 if spec.alpha is None else spec.alpha
    return aggregation.aggregation_weights(spec.method, t, max_length, alpha).numpy()


def _closed(x: np.ndarray, lengths: np.ndarray, z: np.ndarray, beta: float, unit_variance: float) -> float:
    # V sum_i z_i x_i^2 L_i^beta: aggregation's closed form for Var(g_i) = V * (L_i^beta)
    return aggregation.variance_under_length_model(
        torch.from_numpy(x * z), torch.from_numpy(lengths**beta), unit_variance
    )


@dataclass(frozen=True)
class MonteCarlo:
    results: tuple[AggregatorResult, ...]
    batch_size: int
    n_batches: int


def draw_batches(weights: np.ndarray, batch_size: int, n_batches: int, rng: np.random.Generator) -> np.ndarray:
    """(n_batches, batch_size) row indices drawn with replacement, probability proportional to ``weights``."""
    cdf = np.cumsum(weights / weights.sum())
    idx = np.searchsorted(cdf, rng.random((n_batches, batch_size)) * cdf[-1], side="right")
    return np.minimum(idx, weights.shape[0] - 1)


def _measure(
    data: ProbeData,
    batches: np.ndarray,
    spec: AggregatorSpec,
    max_length: float,
    fit: BetaFit,
) -> dict[str, float]:
    n = data.n
    z_all = data.nonzero.astype(np.float64)
    coef = np.zeros((batches.shape[0], n))
    steps = np.empty(batches.shape[0])
    sums = np.empty(batches.shape[0])
    closed = np.empty(batches.shape[0])
    for r, idx in enumerate(batches):
        lens = data.lengths[idx]
        z = z_all[idx]
        x = _weights(spec, lens, max_length)
        coef[r] = np.bincount(idx, weights=x * z, minlength=n)
        steps[r] = float((x * z).sum())
        sums[r] = float(x.sum())
        closed[r] = _closed(x, lens, z, fit.beta, fit.unit_variance)
    dev = coef @ data.factor  # (R, r): D(S) per batch
    centred = dev - dev.mean(axis=0)
    sq = np.einsum("ij,ij->i", centred, centred)
    r_count = batches.shape[0]
    mean_sum = float(sums.mean())
    return {
        "cov_trace": float(sq.sum() / (r_count - 1)),
        "mc_rel_se": float(sq.std(ddof=1) / math.sqrt(r_count) / max(sq.mean(), 1e-300)),
        "mean_step": float(steps.mean()),
        "mean_sum": mean_sum,
        "sum_cv": float(sums.std() / mean_sum) if mean_sum > 0 else 0.0,
        "closed": float(closed.mean()),
    }


def table_specs(
    beta: float, recommended: float | None = None, extra_alphas: Sequence[float] = ()
) -> list[AggregatorSpec]:
    """The table's aggregators: GRPO, DAPO, Dr. GRPO Norm; VL Norm at 0, 0.5, 0.75, 1, beta-hat, alpha-hat, extras."""
    specs = [AggregatorSpec("grpo_norm"), AggregatorSpec("dapo_norm"), AggregatorSpec("drgrpo_norm")]
    specs += [AggregatorSpec("vl_norm", a) for a in TABLE_ALPHAS]
    specs.append(AggregatorSpec("vl_norm", round(max(beta, 0.0), 4), "β̂"))
    if recommended is not None:
        specs.append(AggregatorSpec("vl_norm", float(recommended), "recommended"))
    for a in extra_alphas:
        a = aggregation.check_alpha(a)
        if not any(s.method == "vl_norm" and s.alpha == a and not s.note for s in specs):
            specs.append(AggregatorSpec("vl_norm", a, "asked"))
    return specs


def monte_carlo(
    data: ProbeData,
    fit: BetaFit,
    settings: Settings,
    batches: np.ndarray,
    specs: Sequence[AggregatorSpec],
) -> MonteCarlo:
    """The aggregator table (module docstring, item 3) on the given resampled batches."""
    max_length = float(settings.max_length or data.lengths.max())
    measured = [_measure(data, batches, s, max_length, fit) for s in specs]
    dapo = next(m for s, m in zip(specs, measured, strict=True) if s.method == "dapo_norm")

    def matched(m: dict[str, float], key: str) -> float:
        return m[key] / m["mean_step"] ** 2

    dapo_meas, dapo_closed = matched(dapo, "cov_trace"), matched(dapo, "closed")
    results = []
    for spec, m in zip(specs, measured, strict=True):
        results.append(
            AggregatorResult(
                name=spec.method,
                label=spec.label,
                alpha=spec.alpha,
                measured=matched(m, "cov_trace"),
                closed_form=matched(m, "closed"),
                measured_rel_dapo=matched(m, "cov_trace") / dapo_meas,
                closed_form_rel_dapo=matched(m, "closed") / dapo_closed,
                raw_measured_rel_dapo=m["cov_trace"] / dapo["cov_trace"],
                mc_rel_se=m["mc_rel_se"],
                biased=bool(m["sum_cv"] > BIAS_CV),
                sum_weights_cv=m["sum_cv"],
                mean_sum_weights=m["mean_sum"],
                mean_step=m["mean_step"],
            )
        )
    return MonteCarlo(tuple(results), int(batches.shape[1]), int(batches.shape[0]))


# --------------------------------------------------------------------------------------------- alpha-hat


def vl_norm_batch_weights(
    lengths: np.ndarray, alpha: np.ndarray, max_length: float, dtype: type = np.float64
) -> np.ndarray:
    """VL Norm's weights for many batches and alphas at once: (A, R, B) from lengths (R, B) and alpha (A,).

    The batched form of :func:`vlnorm_verl.aggregation.vl_norm_weights` (the same log-space softmax of
    -alpha log L divided by M, over each batch); a test checks that the two agree.
    """
    logits = -np.asarray(alpha, dtype=dtype)[:, None, None] * np.log(lengths.astype(dtype))[None]
    logits -= logits.max(axis=2, keepdims=True)
    u = np.exp(logits, out=logits)
    u /= u.sum(axis=2, keepdims=True) * max_length
    return u


def _matched_variance(x: np.ndarray, z: np.ndarray, batches: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """tr Cov_S[D(S)] / (E_S step(S))^2 for weights x (A, R, B) on ``batches`` (R, B), z (R, B) the mask: (A,)."""
    n_a, n_r, n_b = x.shape
    xz = x * z[None].astype(x.dtype)
    dim = factor.shape[1]
    per = max(1, (1 << 22) // max(n_b * dim, 1))
    dev = np.empty((n_r, n_a, dim), dtype=x.dtype)
    for start in range(0, n_r, per):
        rows = slice(start, start + per)
        gathered = factor[batches[rows]]  # (r, B, d): the batch's rows g_i - gbar
        dev[rows] = np.matmul(xz[:, rows].transpose(1, 0, 2), gathered)  # D(S) per batch and alpha
    dev -= dev.mean(axis=0, keepdims=True)
    cov = np.einsum("rad,rad->a", dev, dev).astype(np.float64) / (n_r - 1)
    step = xz.sum(axis=2, dtype=np.float64).mean(axis=1)
    return cov / step**2


def vl_norm_curve(
    lengths: np.ndarray,
    nonzero: np.ndarray,
    factor: np.ndarray,
    batches: np.ndarray,
    grid: np.ndarray,
    max_length: float,
    dtype: type = np.float64,
) -> tuple[np.ndarray, float]:
    """VL Norm's matched-step variance at each alpha of ``grid`` on ``batches``, and DAPO Norm's (absolute)."""
    lens = lengths[batches]
    z = nonzero[batches]
    factor = factor.astype(dtype, copy=False)
    dapo = (1.0 / lens.sum(axis=1, keepdims=True) * np.ones_like(lens))[None].astype(dtype)  # x_i = 1 / sum_j L_j
    dapo_value = float(_matched_variance(dapo, z, batches, factor)[0])
    x = vl_norm_batch_weights(lens, grid, max_length, dtype)
    return _matched_variance(x, z, batches, factor), dapo_value


@dataclass(frozen=True)
class AlphaChoice:
    alpha: float
    ci: tuple[float, float]
    grid: np.ndarray
    curve_rel_dapo: np.ndarray  # measured VL Norm variance / DAPO Norm's, matched step size, on the grid
    replicates: int


def _ci_factor(factor: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian sketch of the rows to ``dim`` columns (inner products preserved in expectation), if smaller."""
    if factor.shape[1] <= dim:
        return factor
    return factor @ (rng.standard_normal((factor.shape[1], dim)) / math.sqrt(dim))


def recommend_alpha(
    data: ProbeData, settings: Settings, batches: np.ndarray, rng: np.random.Generator, grid: np.ndarray
) -> AlphaChoice:
    """alpha-hat and its interval (module docstring, item 4)."""
    max_length = float(settings.max_length or data.lengths.max())
    batch_size = batches.shape[1]
    curve, dapo = vl_norm_curve(data.lengths, data.nonzero, data.factor, batches, grid, max_length)
    if not (np.isfinite(curve).all() and math.isfinite(dapo) and dapo > 0):
        raise ProbeError("the measured variance over alpha is not finite or zero (degenerate gradients)")
    best = float(grid[int(np.argmin(curve))])
    small = _ci_factor(data.factor, settings.ci_dim, rng).astype(np.float32)
    window = grid[np.abs(grid - best) <= CI_WINDOW + 1e-9]
    uniform = bool(np.all(data.sample_weight == data.sample_weight[0]))
    z = data.nonzero.astype(np.float64)
    p = data.sample_weight / data.sample_weight.sum()
    picks = []
    for _ in range(settings.n_boot_alpha):
        mult = rng.multinomial(data.n, p).astype(np.float64)
        p_rep = mult * data.sample_weight
        mass = float((p_rep * z).sum())
        if mass <= 0:
            continue
        shift = (p_rep * z) @ small / mass  # the replicate's mean gradient, in the centred coordinates
        if uniform:  # the replicate's rows with their multiplicities: draw from them directly
            inner = np.repeat(np.arange(data.n), mult.astype(np.int64))[
                rng.integers(0, data.n, (settings.ci_batches, batch_size))
            ]
        else:
            inner = draw_batches(p_rep, batch_size, settings.ci_batches, rng)
        rep, _ = vl_norm_curve(data.lengths, data.nonzero, small - shift, inner, window, max_length, np.float32)
        if np.isfinite(rep).all():
            picks.append(float(window[int(np.argmin(rep))]))
    if len(picks) < max(2, settings.n_boot_alpha // 2):
        raise ProbeError("the bootstrap of alpha failed on most replicates (too few non-zero responses)")
    lo_q, hi_q = (1 - CI_LEVEL) / 2, 1 - (1 - CI_LEVEL) / 2
    ci = (float(np.quantile(picks, lo_q, method="lower")), float(np.quantile(picks, hi_q, method="higher")))
    ci = (min(ci[0], best), max(ci[1], best))  # grid values
    return AlphaChoice(best, ci, grid, curve / dapo, len(picks))


# --------------------------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Agreement:
    agree: bool
    statement: str


def agreement(fit: BetaFit, choice: AlphaChoice) -> Agreement:
    """Whether beta-hat and the variance-minimising alpha tell the same story, in one plain sentence."""
    beta_c = min(max(fit.beta, 0.0), GRID_MAX)
    lo, hi = choice.ci
    inside = lo - 1e-9 <= beta_c <= hi + 1e-9
    close = abs(choice.alpha - beta_c) <= 0.1 + 1e-9
    span = fit.ratio_span()
    check = "flat" if fit.flat else ("not flat" if fit.flat is False else "untestable with two bins")
    if inside or close:
        return Agreement(
            True,
            f"β̂ = {fit.beta:.2f} and the variance-minimising α = {choice.alpha:.2f} agree; the fit check "
            f"(variance / L^β̂ per bin, {span[0]:.2f}–{span[1]:.2f}) is {check}. Use α = {choice.alpha:.2f}.",
        )
    return Agreement(
        False,
        f"β̂ = {fit.beta:.2f} [{fit.beta_ci[0]:.2f}, {fit.beta_ci[1]:.2f}] and the variance-minimising "
        f"α = {choice.alpha:.2f} [{lo:.2f}, {hi:.2f}] disagree: the power law Var ∝ L^β does not describe how "
        f"the variance grows here (variance / L^β̂ per bin runs {span[0]:.2f}–{span[1]:.2f}, {check}). "
        f"Use the measured α = {choice.alpha:.2f}, not β̂.",
    )


@dataclass(frozen=True)
class Analysis:
    n: int
    n_nonzero: int
    lengths: tuple[float, float]
    fit: BetaFit
    choice: AlphaChoice
    monte_carlo: MonteCarlo | None
    agreement: Agreement
    mean_norm_sq: float
    mean_deviation: float
    extras: dict[str, Any] = field(default_factory=dict)

    def result(self, method: str, alpha: float | None = None) -> AggregatorResult:
        """The table row of ``method`` (VL Norm: at ``alpha``)."""
        if self.monte_carlo is None:
            raise ProbeError("this analysis was run without the aggregator table")
        for r in self.monte_carlo.results:
            if r.name == method and (alpha is None or (r.alpha is not None and abs(r.alpha - alpha) < 1e-9)):
                return r
        raise KeyError(f"{method} alpha={alpha} is not in the table")

    def summary(self) -> dict[str, Any]:
        """The compact form (per block, without embedding): beta, its interval, alpha-hat, its interval."""
        return {
            "beta": self.fit.beta,
            "beta_ci": list(self.fit.beta_ci),
            "recommended_alpha": self.choice.alpha,
            "recommended_alpha_ci": list(self.choice.ci),
            "fit_flat": self.fit.flat,
            "n_nonzero": self.n_nonzero,
        }

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "n_responses": self.n,
            "n_nonzero_advantage": self.n_nonzero,
            "length_range": list(self.lengths),
            "beta": self.fit.beta,
            "beta_ci": list(self.fit.beta_ci),
            "recommended_alpha": self.choice.alpha,
            "recommended_alpha_ci": list(self.choice.ci),
            "recommended_alpha_replicates": self.choice.replicates,
            "agreement": asdict(self.agreement),
            "fit": {
                "unit_variance": self.fit.unit_variance,
                "chi2": self.fit.chi2,
                "dof": self.fit.dof,
                "p_value": self.fit.p_value,
                "flat": self.fit.flat,
                "bins": [asdict(b) for b in self.fit.bins],
            },
            "mean_gradient_norm_sq": self.mean_norm_sq,
            "mean_deviation_norm_sq": self.mean_deviation,
            "alpha_curve": {
                "alpha": self.choice.grid.tolist(),
                "measured_rel_dapo": self.choice.curve_rel_dapo.tolist(),
            },
        }
        if self.monte_carlo is not None:
            mc = self.monte_carlo
            doc["batch_size"] = mc.batch_size
            doc["n_batches"] = mc.n_batches
            doc["aggregators"] = [r.as_dict() for r in mc.results]
        doc.update(self.extras)
        return doc


def analyze(
    data: ProbeData, settings: Settings | None = None, table: bool = True, extra_alphas: Sequence[float] = ()
) -> Analysis:
    """All statistics of the module docstring on validated data (``table=False``: beta and alpha-hat only).

    ``extra_alphas``: more VL Norm alphas for the table (e.g. the run's configured alpha)."""
    settings = settings or Settings()
    settings.check()
    seeds = np.random.SeedSequence(settings.seed).spawn(3)
    fit = fit_beta(data, settings, np.random.default_rng(seeds[0]))
    grid = alpha_grid()
    batch_size = int(settings.batch_size or data.n)
    batches = draw_batches(data.sample_weight, batch_size, settings.n_batches, np.random.default_rng(seeds[2]))
    choice = recommend_alpha(data, settings, batches, np.random.default_rng(seeds[1]), grid)
    mc = None
    if table:  # the same batches as alpha-hat's curve: the table's VL Norm rows lie on it
        specs = table_specs(fit.beta, choice.alpha, extra_alphas)
        mc = monte_carlo(data, fit, settings, batches, specs)
    nz = data.nonzero
    e = data.deviations
    w = data.sample_weight
    return Analysis(
        n=data.n,
        n_nonzero=int(nz.sum()),
        lengths=(float(data.lengths.min()), float(data.lengths.max())),
        fit=fit,
        choice=choice,
        monte_carlo=mc,
        agreement=agreement(fit, choice),
        mean_norm_sq=data.mean_norm_sq,
        mean_deviation=float((w * e)[nz].sum() / w[nz].sum()),
    )
