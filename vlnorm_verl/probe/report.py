"""The probe's outputs: a Markdown report (stdout), a JSON document (``--json``) and a log-log plot (``--plot``).

JSON keys (at least): ``beta``, ``beta_ci`` [lo, hi], ``recommended_alpha``, ``recommended_alpha_ci`` and
``aggregators`` (one entry per table row: ``name``, ``label``, ``alpha`` (null for GRPO/DAPO/Dr. GRPO Norm),
``measured_rel_dapo``, ``closed_form_rel_dapo``, ``biased``, the absolute matched-step values and the Monte Carlo
error); plus ``fit`` (per-bin check), ``agreement``, ``alpha_curve``, and for a model ``blocks`` and
``without_embedding``; ``info`` records the inputs and timings. Non-finite numbers are refused, never written.

The plot (matplotlib, Agg backend): left, ||g_i - gbar||^2 against L_i on log-log axes (responses as dots, bin
means with their bootstrap error, the fitted V L^beta); right, VL Norm's variance relative to DAPO Norm at
matched step size against alpha (measured), with alpha-hat, its interval and beta-hat marked.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from vlnorm_verl.probe.api import ProbeResult
from vlnorm_verl.probe.errors import ProbeError


def _f(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _ci(ci: Any) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _source_line(info: dict[str, Any]) -> str:
    src = info.get("source")
    if src == "gradients":
        return f"gradients from `{info.get('path')}` (D = {info.get('dim')})"
    if src == "model":
        where = f"prompts `{info['data']}`" if "data" in info else f"rollout dump step {info.get('step')}"
        mode = info.get("gradient_mode")
        proj = f"CountSketch k = {info.get('sketch_dim')} per block" if mode == "sketch" else "exact"
        return (
            f"model `{info.get('model')}` ({info.get('parameters', 0):,} parameters, {proj}, {info.get('device')}), "
            f"{where}, temperature {info.get('temperature')}, cap {info.get('max_response_length')} tokens, "
            f"advantages: {info.get('advantage')}"
        )
    return "given gradient vectors"


def markdown(result: ProbeResult) -> str:
    a = result.analysis
    fit, choice = a.fit, a.choice
    lines = ["# vlnorm-verl probe: gradient variance against response length", ""]
    lines.append(f"Input: {_source_line(result.info)}.")
    mc = a.monte_carlo
    batches = f"; {mc.n_batches} resampled batches of {mc.batch_size} responses" if mc else ""
    lines.append(
        f"{a.n} responses ({a.n_nonzero} with a non-zero advantage), lengths {a.lengths[0]:g}–{a.lengths[1]:g} tokens"
        f" (EOS counted){batches}."
    )
    lines += [
        "",
        f"- **β̂ = {fit.beta:.2f}** {_ci(fit.beta_ci)} (90% bootstrap): Var(g_i) ∝ L^β fitted over "
        f"{len(fit.bins)} length bins.",
        f"- **Recommended α = {choice.alpha:.2f}** {_ci(choice.ci)} (90% bootstrap): the α in 0–2 whose VL Norm "
        "estimator has the least measured variance at matched step size.",
        f"- {a.agreement.statement}",
        "",
    ]
    if mc is not None:
        lines += [
            "| aggregator | α | Σ x_i | measured variance / DAPO | closed form / DAPO | MC rel. error |",
            "|---|---|---|---|---|---|",
        ]
        for r in mc.results:
            name = r.label.split(" α=")[0]
            alpha = (
                "–"
                if r.alpha is None
                else (f"{r.alpha:.2f}" + (f" ({r.label.split('(')[-1]}" if "(" in r.label else ""))
            )
            bias = "depends on lengths (biased)" if r.biased else "constant 1/M (unbiased)"
            lines.append(
                f"| {name} | {alpha} | {bias} | {r.measured_rel_dapo:.3f} | {r.closed_form_rel_dapo:.3f} "
                f"| {100 * r.mc_rel_se:.1f}% |"
            )
        lines += [
            "",
            "Variance at matched step size: tr Cov[Σ_{i∈S} x_i z_i (g_i − ḡ)] / (E Σ_{i∈S} x_i z_i)² over resampled "
            "batches S (z_i = 1 for a non-zero advantage), so a smaller Σ x_i or weight moved onto zero-advantage "
            "responses does not count as lower variance. Closed form: V̂ Σ z_i x_i² L_i^β̂ on the same batches. "
            "Below 1 = less variance than DAPO Norm for the same expected step.",
            "",
        ]
    lines += [
        "## Fit check: variance per length bin",
        "",
        "| L (tokens) | responses | E‖g − ḡ‖² | ÷ V̂ L^β̂ |",
        "|---|---|---|---|",
    ]
    for b in fit.bins:
        span = f"{b.length_lo:g}" if b.length_lo == b.length_hi else f"{b.length_lo:g}–{b.length_hi:g}"
        lines.append(f"| {span} | {b.count} | {b.variance:.4g} | {b.ratio_to_fit:.2f} |")
    check = (
        "untestable (two bins)"
        if fit.p_value is None
        else f"χ² = {fit.chi2:.1f} on {fit.dof} d.o.f., p = {fit.p_value:.3g}: {'flat' if fit.flat else 'not flat'}"
    )
    lines += ["", f"Flat ratios mean the power law fits; {check}.", ""]
    if result.blocks:
        lines += [
            "## Per parameter block",
            "",
            "| block | parameters | share of E‖g − ḡ‖² | β̂ [90%] | α̂ [90%] |",
            "|---|---|---|---|---|",
            f"| all | {result.info.get('parameters', 0):,} | 1.00 | {fit.beta:.2f} {_ci(fit.beta_ci)} "
            f"| {choice.alpha:.2f} {_ci(choice.ci)} |",
        ]
        w = result.without_embedding
        if w and "beta" in w:
            params = sum(b["parameters"] for b in result.blocks if b["block"] != "embed")
            lines.append(
                f"| all without input embedding | {params:,} | {w['share']:.2f} | {w['beta']:.2f} {_ci(w['beta_ci'])} "
                f"| {w['recommended_alpha']:.2f} {_ci(w['recommended_alpha_ci'])} |"
            )
        for b in result.blocks:
            if "beta" in b:
                lines.append(
                    f"| {b['block']} | {b['parameters']:,} | {b['share']:.2f} | {b['beta']:.2f} {_ci(b['beta_ci'])} "
                    f"| {b['recommended_alpha']:.2f} {_ci(b['recommended_alpha_ci'])} |"
                )
            else:
                lines.append(f"| {b['block']} | {b['parameters']:,} | {b['share']:.2f} | – | – ({b['error']}) |")
        lines.append("")
    notes = list(result.info.get("notes", []))
    if "wall_s" in result.info:
        notes.append(
            f"wall time {result.info['wall_s']:.1f} s (sampling {result.info.get('sampling_s', 0):.1f} s, gradients "
            f"{result.info.get('gradient_s', 0):.1f} s, {result.info.get('seconds_per_response', 0) * 1000:.0f} ms per "
            "response)"
        )
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def _check_finite(obj: Any, where: str = "$") -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ProbeError(f"internal error: non-finite value at {where} in the JSON document")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}[{i}]")


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def document(result: ProbeResult) -> dict[str, Any]:
    doc = _plain(result.to_dict())
    for r in doc.get("aggregators", []):
        for key in ("closed_form", "closed_form_rel_dapo"):
            if isinstance(r.get(key), float) and not math.isfinite(r[key]):
                r[key] = None
    _check_finite(doc)
    return doc


def write_json(result: ProbeResult, path: str | Path) -> Path:
    """Write :func:`document` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document(result), indent=2, ensure_ascii=False, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)
    return path


def write_plot(result: ProbeResult, path: str | Path) -> Path:
    """The two-panel plot of the module docstring, as PNG (or any format matplotlib infers from the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = result.analysis
    fit = a.fit
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    nz = result.nonzero
    left.scatter(result.lengths[nz], result.deviations[nz], s=6, alpha=0.25, color="0.5", label="responses")
    lb = np.array([b.length_mean for b in fit.bins])
    vb = np.array([b.variance for b in fit.bins])
    se = np.array([b.se_log for b in fit.bins])
    left.errorbar(lb, vb, yerr=[vb - vb * np.exp(-se), vb * np.exp(se) - vb], fmt="o", color="C0", label="bin mean")
    xs = np.geomspace(max(result.lengths[nz].min(), 1.0), result.lengths[nz].max(), 50)
    left.plot(xs, fit.unit_variance * xs**fit.beta, color="C1", label=f"fit: L^{fit.beta:.2f}")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("response length L (tokens, EOS counted)")
    left.set_ylabel("‖g_i − ḡ‖²")
    left.set_title(f"β̂ = {fit.beta:.2f} [{fit.beta_ci[0]:.2f}, {fit.beta_ci[1]:.2f}]")
    left.legend(fontsize=8)
    grid = a.choice.grid
    right.plot(grid, a.choice.curve_rel_dapo, color="C0", label="VL Norm, measured")
    right.axvline(a.choice.alpha, color="C3", label=f"α̂ = {a.choice.alpha:.2f}")
    right.axvspan(*a.choice.ci, color="C3", alpha=0.1)
    right.axvline(min(max(fit.beta, 0.0), 2.0), color="C1", ls=":", label=f"β̂ = {fit.beta:.2f}")
    right.set_xlabel("VL Norm α")
    right.set_ylabel("variance / DAPO Norm (matched step size)")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
