"""Markdown and JSON renderings of the comparison.

The Markdown (stdout) has one table per metric and ends with the definitions of every figure. The JSON
document holds the same figures, one entry per (run, metric) in ``runs`` with the keys ``name, metric,
peak, peak_step, final, auc, steps_to_threshold, speedup_vs_baseline`` (plus ``n_evals``, ``first_step``,
``last_step``, ``final_k``, ``auc_common``, ``speedup_note``, ``is_baseline``); numbers that do not exist
are ``null`` (never NaN, so the file is strict JSON).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from vlnorm_verl.compare.metrics import MetricComparison

DEFINITIONS = {
    "evaluation": "a logged step with a finite value of the metric; for a step logged twice (resumed run) the "
    "later record wins",
    "peak": "highest value; peak step = first step where it occurs",
    "final": "mean of the last k evaluations (fewer if the run has fewer)",
    "auc": "trapezoidal area under the curve divided by the run's step span (step-weighted mean value)",
    "auc_common": "the same over the step range every run covers, curves linearly interpolated at its ends",
    "smoothing": "trailing moving average over the last W evaluations; used only for the threshold and the "
    "steps to reach it",
    "steps_to_threshold": "first evaluation step whose (smoothed) value is >= the threshold",
    "speedup_vs_baseline": "baseline steps to threshold / run steps to threshold; 'not reached' if either "
    "never reaches it",
}


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(comparisons: Sequence[MetricComparison], final_k: int, smooth_window: int, notes: Sequence[str]) -> str:
    lines: list[str] = []
    for comp in comparisons:
        lines.append(f"## `{comp.metric}` vs baseline `{comp.baseline}`")
        lines.append("")
        common = f"{comp.common_range[0]}–{comp.common_range[1]}" if comp.common_range else "none"
        smoothing = f"trailing mean over {smooth_window} evaluations" if smooth_window > 1 else "none"
        lines.append(
            f"Threshold **{comp.threshold:.4f}** ({comp.threshold_rule}); smoothing: {smoothing}; "
            f"final = mean of last {final_k} evaluations; common step range: {common}."
        )
        lines.append("")
        lines.append(
            "| run | evals | steps | peak | peak step | final | AUC | AUC (common) | steps to threshold | speedup |"
        )
        lines.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for fig in comp.runs:
            name = f"**{fig.name}** (baseline)" if fig.is_baseline else fig.name
            reach = "not reached" if fig.steps_to_threshold is None else str(fig.steps_to_threshold)
            speedup = fig.speedup_note if fig.speedup_vs_baseline is None else f"{fig.speedup_vs_baseline:.2f}×"
            lines.append(
                f"| {name} | {fig.n_evals} | {fig.first_step}–{fig.last_step} | {_num(fig.peak)} | {fig.peak_step} "
                f"| {_num(fig.final)} | {_num(fig.auc)} | {_num(fig.auc_common)} | {reach} | {speedup} |"
            )
        lines.append("")
    lines.append("Definitions:")
    for key, text in DEFINITIONS.items():
        lines.append(f"- {key}: {text}.")
    if notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"- {note}" for note in notes)
    return "\n".join(lines) + "\n"


def to_document(
    comparisons: Sequence[MetricComparison],
    final_k: int,
    smooth_window: int,
    threshold_arg: str,
    notes: Sequence[str],
    origins: dict[str, list[str]],
) -> dict:
    baseline = comparisons[0].baseline if comparisons else None
    return {
        "baseline": baseline,
        "metrics": [comp.metric for comp in comparisons],
        "settings": {"final_k": final_k, "smooth": smooth_window, "threshold": threshold_arg},
        "thresholds": {
            comp.metric: {
                "value": comp.threshold,
                "rule": comp.threshold_rule,
                "common_step_range": list(comp.common_range) if comp.common_range else None,
            }
            for comp in comparisons
        },
        "definitions": DEFINITIONS,
        "runs": [fig.to_json() for comp in comparisons for fig in comp.runs],
        "sources": origins,
        "notes": list(notes),
    }


def write_json(document: dict, path: str | Path) -> Path:
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
