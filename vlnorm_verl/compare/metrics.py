"""Comparison figures for one metric across runs, and the choice of the default metric.

Definitions (also printed with every table; ``s_1 < … < s_n`` are a run's evaluation steps, i.e. the
steps with a finite value of the metric after merging, and ``v_i`` the values there):

* **peak**: ``max_i v_i``; **peak step**: the first ``s_i`` attaining it.
* **final**: the mean of the last ``k`` values (``--final-k``; all of them when the run has fewer).
* **AUC**: the trapezoidal area under the piecewise-linear curve through ``(s_i, v_i)``, divided by the
  step span ``s_n - s_1``: the step-weighted mean value over the run's own evaluated range (the single
  value when ``n = 1``). Runs of different lengths cover different ranges, so **AUC (common)** is the
  same quantity over the steps every compared run covers, ``[max_r s_1^r, min_r s_n^r]``, with each
  curve linearly interpolated at the ends of that range; it is empty when that range is a single step or
  less.
* **smoothing** (``--smooth W``): a trailing moving average over the last ``W`` evaluations,
  ``u_i = mean(v_{max(1, i-W+1)} … v_i)``. ``W = 1`` is no smoothing. Smoothing affects only the
  threshold and the steps to reach it; peak, final and AUC use the raw values.
* **threshold** (``--threshold``): ``peak`` (default) is the baseline's peak of its (smoothed) curve;
  ``frac:F`` is ``F`` times that; a number is used as is.
* **steps to threshold**: the first evaluation step ``s_i`` whose (smoothed) value is ``>= threshold``
  (allowing 1e-9 relative rounding); "not reached" when there is none. It is the logged step number
  (verl's ``global_steps``; its pre-training validation is step 0), not interpolated between evaluations.
* **speedup** = baseline's steps to threshold / the run's steps to threshold; "not reached" when
  either never reaches the threshold; undefined ("n/a") when the run reaches it at step 0.

All figures assume that higher values are better (accuracy, reward).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from vlnorm_verl.compare.records import CompareError, Run

VAL_ACC = re.compile(r"^val-core/(?P<source>.+)/acc/mean@(?P<n>\d+)$")
VAL_REWARD = re.compile(r"^val-core/(?P<source>.+)/reward/mean@(?P<n>\d+)$")
REL_TOL = 1e-9


@dataclass(frozen=True)
class Threshold:
    kind: str  # "peak" | "frac" | "value"
    value: float = math.nan  # F for "frac", the level for "value"

    def describe(self, baseline: str, smooth: int) -> str:
        curve = f"{'smoothed ' if smooth > 1 else ''}peak of baseline {baseline!r}"
        if self.kind == "peak":
            return curve
        if self.kind == "frac":
            return f"{self.value:g} x {curve}"
        return "fixed value"


def parse_threshold(text: str) -> Threshold:
    text = text.strip()
    if text == "peak":
        return Threshold("peak")
    if text.startswith("frac:"):
        try:
            fraction = float(text[len("frac:") :])
        except ValueError:
            fraction = math.nan
        if not math.isfinite(fraction) or fraction <= 0:
            raise CompareError(f"--threshold {text!r}: frac:F needs a positive number F, e.g. frac:0.95")
        return Threshold("frac", fraction)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise CompareError(f"--threshold {text!r}: expected 'peak', a number such as 0.8, or frac:F such as frac:0.95")
    return Threshold("value", value)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over the last ``window`` values (fewer at the start)."""
    if window < 1:
        raise CompareError(f"--smooth {window}: the window must be at least 1 evaluation")
    values = np.asarray(values, dtype=np.float64)
    if window == 1 or values.size == 0:
        return values.copy()
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(values.size)
    lo = np.maximum(0, idx - window + 1)
    return (cumsum[idx + 1] - cumsum[lo]) / (idx + 1 - lo)


def normalised_auc(steps: np.ndarray, values: np.ndarray) -> float:
    """Trapezoidal area under (steps, values) divided by the step span; the value itself for one point."""
    if steps.size == 1:
        return float(values[0])
    span = float(steps[-1] - steps[0])
    area = float(np.sum(np.diff(steps) * (values[1:] + values[:-1]) / 2.0))
    return area / span


def auc_over(steps: np.ndarray, values: np.ndarray, lo: float, hi: float) -> float | None:
    """Normalised AUC over [lo, hi], interpolating linearly at the ends; None when hi <= lo."""
    if not hi > lo:
        return None
    inside = (steps > lo) & (steps < hi)
    xs = np.concatenate([[lo], steps[inside].astype(np.float64), [hi]])
    ys = np.concatenate([[np.interp(lo, steps, values)], values[inside], [np.interp(hi, steps, values)]])
    return normalised_auc(xs, ys)


def first_reaching(steps: np.ndarray, values: np.ndarray, threshold: float) -> int | None:
    tolerance = REL_TOL * max(1.0, abs(threshold))
    hits = np.nonzero(values >= threshold - tolerance)[0]
    return int(steps[hits[0]]) if hits.size else None


@dataclass
class RunFigures:
    name: str
    metric: str
    is_baseline: bool
    n_evals: int
    first_step: int
    last_step: int
    peak: float
    peak_step: int
    final: float
    final_k: int
    auc: float
    auc_common: float | None
    steps_to_threshold: int | None
    speedup_vs_baseline: float | None
    speedup_note: str  # "" when speedup is a number, else "not reached" / "n/a (reached at step 0)"

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class MetricComparison:
    metric: str
    baseline: str
    threshold: float
    threshold_rule: str
    common_range: tuple[int, int] | None
    runs: list[RunFigures]


def require_series(run: Run, metric: str) -> tuple[np.ndarray, np.ndarray]:
    steps, values = run.series(metric)
    if steps.size:
        return steps, values
    origins = ", ".join(run.origins)
    if run.has_metric(metric):
        raise CompareError(f"run {run.name!r} ({origins}) logged metric {metric!r} only as NaN/inf or null")
    import difflib

    close = difflib.get_close_matches(metric, sorted(run.keys()), n=5, cutoff=0.5)
    hint = f"; similar keys it logs: {', '.join(close)}" if close else ""
    raise CompareError(f"run {run.name!r} ({origins}) never logged metric {metric!r}{hint}; check --metric")


def compare_metric(
    runs: Sequence[Run],
    baseline: str,
    metric: str,
    threshold: Threshold,
    final_k: int = 3,
    smooth_window: int = 1,
) -> MetricComparison:
    """All figures for ``metric``; ``runs`` must contain the baseline. Raises CompareError on bad input."""
    if final_k < 1:
        raise CompareError(f"--final-k {final_k}: k must be at least 1 evaluation")
    names = [run.name for run in runs]
    if baseline not in names:
        raise CompareError(f"--baseline {baseline!r} is not one of the runs: {', '.join(names)}")
    curves = {run.name: require_series(run, metric) for run in runs}
    smoothed = {name: smooth(values, smooth_window) for name, (_, values) in curves.items()}

    base_steps, _ = curves[baseline]
    base_peak = float(np.max(smoothed[baseline]))
    if threshold.kind == "peak":
        level = base_peak
    elif threshold.kind == "frac":
        level = threshold.value * base_peak
    else:
        level = threshold.value

    lo = max(int(steps[0]) for steps, _ in curves.values())
    hi = min(int(steps[-1]) for steps, _ in curves.values())
    common = (lo, hi) if hi > lo else None
    base_reach = first_reaching(base_steps, smoothed[baseline], level)

    figures = []
    for run in runs:
        steps, values = curves[run.name]
        peak_index = int(np.argmax(values))
        k = min(final_k, values.size)
        reach = first_reaching(steps, smoothed[run.name], level)
        if reach is None or base_reach is None:
            speedup, note = None, "not reached"
        elif reach == 0:
            speedup, note = None, "n/a (reached at step 0)"
        else:
            speedup, note = base_reach / reach, ""
        figures.append(
            RunFigures(
                name=run.name,
                metric=metric,
                is_baseline=run.name == baseline,
                n_evals=int(values.size),
                first_step=int(steps[0]),
                last_step=int(steps[-1]),
                peak=float(values[peak_index]),
                peak_step=int(steps[peak_index]),
                final=float(np.mean(values[-k:])),
                final_k=k,
                auc=normalised_auc(steps, values),
                auc_common=auc_over(steps, values, lo, hi) if common else None,
                steps_to_threshold=reach,
                speedup_vs_baseline=speedup,
                speedup_note=note,
            )
        )
    return MetricComparison(
        metric=metric,
        baseline=baseline,
        threshold=level,
        threshold_rule=threshold.describe(baseline, smooth_window),
        common_range=common,
        runs=figures,
    )


def detect_metric(runs: Sequence[Run]) -> tuple[str, str | None]:
    """The default metric: the single ``val-core/<data_source>/acc/mean@N`` key logged by the runs.

    Falls back to ``val-core/<data_source>/reward/mean@N`` (verl's core metric when the reward function
    returns no ``acc``) and says so in the returned note. Raises CompareError listing the candidates when
    there are none or several.
    """
    for pattern, note in (
        (VAL_ACC, None),
        (VAL_REWARD, "no val-core/<data_source>/acc/mean@N key was logged; using verl's core reward metric"),
    ):
        found: dict[str, list[str]] = {}
        for run in runs:
            for key in sorted(run.keys()):
                if pattern.match(key):
                    found.setdefault(key, []).append(run.name)
        if len(found) == 1:
            return next(iter(found)), note
        if len(found) > 1:
            listing = "; ".join(f"{key} (in {', '.join(names)})" for key, names in sorted(found.items()))
            raise CompareError(
                f"cannot pick the default metric: the runs log {len(found)} validation metrics: {listing}. "
                "Pass --metric with the one to compare (repeat --metric to compare several)"
            )
    val_keys = sorted({key for run in runs for key in run.keys() if key.startswith("val-")})
    shown = ", ".join(val_keys[:20]) + (" ..." if len(val_keys) > 20 else "") if val_keys else "none"
    raise CompareError(
        "no validation accuracy metric (val-core/<data_source>/acc/mean@N) in any run "
        f"({', '.join(run.name for run in runs)}); validation keys seen: {shown}. "
        "Was trainer.test_freq > 0? Pass --metric to compare another metric, e.g. --metric critic/score/mean"
    )
