"""PNG plots of the compared runs (matplotlib, Agg canvas; no display or pyplot state needed).

One figure per metric: the compared metrics (the validation accuracy by default, with the threshold as
a grey dotted line) and the training curves verl logs every step, ``response_length/mean``,
``actor/grad_norm`` and ``actor/entropy``. One colour per run (matplotlib's tab10 cycle, in run order),
the baseline dashed. Each curve is drawn through the run's finite values (missing steps and NaN/inf are
skipped, so a curve may have gaps bridged by a straight segment). A run that never logged a training
metric is left out of that figure and listed in its title; a figure no run has data for is not written.
File names are the metric with every character outside ``[A-Za-z0-9@._-]`` replaced by ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vlnorm_verl.compare.records import Run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TRAINING_METRICS = ("response_length/mean", "actor/grad_norm", "actor/entropy")


def plot_filename(metric: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "_", metric).strip("_") + ".png"


def build_figure(
    runs: Sequence[Run],
    baseline: str,
    metric: str,
    threshold: float | None = None,
    markers: bool = False,
) -> tuple[Figure | None, list[str]]:
    """One figure (not saved); returns (figure or None when no run has data, names of runs without data)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4.8), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    missing = []
    for index, run in enumerate(runs):
        steps, values = run.series(metric)
        if steps.size == 0:
            missing.append(run.name)
            continue
        is_base = run.name == baseline
        ax.plot(
            steps,
            values,
            color=f"C{index % 10}",  # by run position, so a run keeps its colour across figures
            linestyle="--" if is_base else "-",
            linewidth=1.8 if is_base else 1.4,
            zorder=3 if is_base else 2,
            marker="o" if markers else None,
            markersize=3.5,
            label=f"{run.name} (baseline)" if is_base else run.name,
        )
    if len(missing) == len(runs):
        return None, missing
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1.0, label=f"threshold {threshold:.4g}")
    title = metric if not missing else f"{metric}  (no data: {', '.join(missing)})"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, missing


def plot_metric(
    runs: Sequence[Run],
    baseline: str,
    metric: str,
    out_dir: str | Path,
    threshold: float | None = None,
    markers: bool = False,
) -> tuple[Path | None, list[str]]:
    """Write one figure as ``out_dir/<plot_filename(metric)>``; returns (path or None, runs without data)."""
    fig, missing = build_figure(runs, baseline, metric, threshold=threshold, markers=markers)
    if fig is None:
        return None, missing
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / plot_filename(metric)
    fig.savefig(path, format="png")
    return path, missing


def write_plots(
    runs: Sequence[Run],
    baseline: str,
    metrics: Sequence[str],
    thresholds: dict[str, float],
    out_dir: str | Path,
    extra_metrics: Sequence[str] = TRAINING_METRICS,
) -> tuple[list[Path], list[str]]:
    """All figures; returns (written paths, notes about skipped figures or runs)."""
    written: list[Path] = []
    notes: list[str] = []
    for metric in list(metrics) + [m for m in extra_metrics if m not in metrics]:
        is_eval = metric in metrics
        path, missing = plot_metric(runs, baseline, metric, out_dir, threshold=thresholds.get(metric), markers=is_eval)
        if path is None:
            notes.append(f"plot of {metric!r} not written: no run logged it")
            continue
        written.append(path)
        if missing:
            notes.append(f"plot of {metric!r}: no data for {', '.join(missing)}")
    return written, notes
