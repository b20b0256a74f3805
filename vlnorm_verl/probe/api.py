"""The probe's Python API: gradients in, statistics out (``vlnorm-verl probe`` calls these; the quickstart runs it).

- :func:`probe_arrays` / :func:`probe_npz`: statistics of given vectors (``lengths`` (N,), ``grads`` (N, D)
  including the advantages, optional ``advantages`` and ``sample_weight``).
- :func:`probe_model`: responses sampled from a model for a parquet's prompts (or read from a verl rollout dump),
  their gradients (exact or projected, per parameter block), then the same statistics for the whole model, per
  block and without the input embedding.

All statistics are those of :mod:`vlnorm_verl.probe.stats`; bad input raises
:class:`~vlnorm_verl.probe.errors.ProbeError`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlnorm_verl.probe import stats
from vlnorm_verl.probe.errors import ProbeError
from vlnorm_verl.probe.gradients import EMBED_BLOCK, GradientSet, ResponseItem, compute_gradients
from vlnorm_verl.probe.sampling import SamplingSettings


@dataclass
class ProbeResult:
    """Everything the report prints: the main analysis, per-block summaries, the rows (for the plot)."""

    analysis: stats.Analysis
    lengths: np.ndarray
    deviations: np.ndarray
    nonzero: np.ndarray
    blocks: list[dict[str, Any]] = field(default_factory=list)
    without_embedding: dict[str, Any] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def vl_norm_vs_dapo(self, alpha: float) -> float:
        """VL Norm's measured variance at ``alpha`` relative to DAPO Norm's, at matched step size."""
        return self.analysis.result("vl_norm", alpha).measured_rel_dapo

    def to_dict(self) -> dict[str, Any]:
        doc = self.analysis.to_dict()
        if self.blocks:
            doc["blocks"] = self.blocks
        if self.without_embedding is not None:
            doc["without_embedding"] = self.without_embedding
        doc["info"] = self.info
        return doc


def _result(data: stats.ProbeData, settings: stats.Settings, alphas: Sequence[float], info: dict) -> ProbeResult:
    analysis = stats.analyze(data, settings, extra_alphas=alphas)
    return ProbeResult(analysis, data.lengths, data.deviations, data.nonzero, info=info)


def probe_arrays(
    lengths: Any,
    grads: Any,
    advantages: Any | None = None,
    sample_weight: Any | None = None,
    settings: stats.Settings | None = None,
    alphas: Sequence[float] = (),
) -> ProbeResult:
    """Statistics of given gradient vectors (rows with an all-zero gradient or A_i = 0 are zero-advantage)."""
    settings = settings or stats.Settings()
    data = stats.from_vectors(lengths, grads, advantages, sample_weight, settings)
    return _result(data, settings, alphas, {"source": "arrays", "dim": int(np.shape(grads)[1])})


def probe_npz(path: str | Path, settings: stats.Settings | None = None, alphas: Sequence[float] = ()) -> ProbeResult:
    """Statistics of ``lengths`` (N,) and ``grads`` (N, D) [+ ``advantages``, ``sample_weight``] in an .npz file."""
    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"gradient file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ProbeError(f"{path} is not a readable .npz file: {exc}") from exc
    missing = [k for k in ("lengths", "grads") if k not in arrays]
    if missing:
        raise ProbeError(
            f"{path} lacks the arrays {missing} (it has {sorted(arrays)}); need lengths (N,), grads (N, D)"
        )
    result = probe_arrays(
        arrays["lengths"], arrays["grads"], arrays.get("advantages"), arrays.get("sample_weight"), settings, alphas
    )
    result.info = {"source": "gradients", "path": str(path), "dim": int(arrays["grads"].shape[1])}
    return result


def _block_summaries(
    gs: GradientSet, weights: np.ndarray, settings: stats.Settings, total_dev: float
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    # per block: the same statistics with fewer resamples (the whole model's analysis carries the full ones)
    quick = dataclasses.replace(
        settings,
        n_boot_beta=min(settings.n_boot_beta, 400),
        n_batches=min(settings.n_batches, 100),
        n_boot_alpha=min(settings.n_boot_alpha, 50),
    )
    out = []
    for name in sorted(gs.grams, key=lambda b: -float(np.trace(gs.grams[b]))):
        row: dict[str, Any] = {"block": name, "parameters": gs.block_params[name]}
        try:
            data = stats.from_gram(gs.lengths, gs.grams[name], gs.nonzero, weights, quick)
            analysis = stats.analyze(data, quick, table=False)
            row.update(analysis.summary())
            row["share"] = analysis.mean_deviation / total_dev
        except ProbeError as exc:
            row["error"] = str(exc)
            row["share"] = 0.0
        out.append(row)
    without = None
    if EMBED_BLOCK in gs.grams and len(gs.grams) > 1:
        try:
            data = stats.from_gram(gs.lengths, gs.gram(exclude=(EMBED_BLOCK,)), gs.nonzero, weights, settings)
            analysis = stats.analyze(data, settings, table=False)  # full resamples: a headline figure
            without = analysis.summary()
            without["share"] = analysis.mean_deviation / total_dev
        except ProbeError as exc:
            without = {"error": str(exc)}
    return out, without


def analyze_gradient_set(
    gs: GradientSet,
    sample_weight: np.ndarray | None = None,
    settings: stats.Settings | None = None,
    alphas: Sequence[float] = (),
    info: dict[str, Any] | None = None,
) -> ProbeResult:
    """The statistics for the whole model, per block and without the input embedding."""
    settings = settings or stats.Settings()
    data = stats.from_gram(gs.lengths, gs.gram(), gs.nonzero, sample_weight, settings)
    result = _result(data, settings, alphas, dict(info or {}))
    blocks, without = _block_summaries(gs, data.sample_weight, settings, result.analysis.mean_deviation)
    result.blocks = blocks
    result.without_embedding = without
    result.info.update(
        {
            "gradient_mode": gs.mode,
            "sketch_dim": gs.sketch_dim,
            "device": gs.device,
            "parameters": int(sum(gs.block_params.values())),
            "seconds_per_response": gs.seconds_per_response,
            "tied_embeddings": gs.tied_embeddings,
        }
    )
    result.info.setdefault("notes", []).extend(gs.notes)
    return result


def probe_model(
    model: str,
    data: str | Path | None = None,
    rollouts: str | Path | None = None,
    *,
    sampling: SamplingSettings | None = None,
    step: int | None = None,
    tokenizer: str | None = None,
    advantage: str = "grpo",
    max_gradients: int | None = None,
    strata: int = 8,
    projection: str = "auto",
    sketch_dim: int = 2048,
    device: str = "auto",
    dtype: str = "float32",
    settings: stats.Settings | None = None,
    alphas: Sequence[float] = (),
    log: Callable[[str], None] | None = None,
) -> ProbeResult:
    """Sample (or read) responses, compute their gradients, analyse (module docstring)."""
    from vlnorm_verl.probe import sampling as smp
    from vlnorm_verl.probe.model_io import open_model

    if (data is None) == (rollouts is None):
        raise ProbeError("give the prompts (--data FILE.parquet) or a rollout dump (--rollouts DIR), not both")
    sampling = sampling or SamplingSettings()
    settings = settings or stats.Settings()
    settings.check()
    say = log or (lambda _msg: None)
    started = time.perf_counter()
    info: dict[str, Any] = {"source": "model", "model": str(model), "notes": []}
    if data is not None and not Path(data).is_file():
        raise ProbeError(f"prompt file {data} does not exist (prepare it with `vlnorm-verl prepare-data`)")
    if rollouts is not None and not Path(rollouts).exists():
        raise ProbeError(f"rollout dump {rollouts} does not exist")
    with open_model(str(model), tokenizer, dtype, device) as (lm, tok, source, notes):
        info["model_kind"] = source.kind
        info["notes"].extend(notes)
        t0 = time.perf_counter()
        if data is not None:
            sampling.check()
            prompts = smp.load_prompts(data, tok, sampling.num_prompts, sampling.chat_template)
            say(
                f"sampling {len(prompts)} prompts x {sampling.n} at temperature {sampling.temperature}, "
                f"cap {sampling.max_response_length} tokens"
            )
            if len(prompts) < sampling.num_prompts:
                info["notes"].append(f"{data} has {len(prompts)} rows, fewer than the {sampling.num_prompts} asked for")
            pool = smp.sample_rollouts(lm, tok, prompts, sampling)
            info.update(
                {
                    "data": str(data),
                    "prompts": len(prompts),
                    "n": sampling.n,
                    "temperature": sampling.temperature,
                    "max_response_length": sampling.max_response_length,
                }
            )
        else:
            pool, summary = smp.load_rollout_dump(rollouts, tok, sampling.max_response_length, step, lm)
            info.update(
                {
                    "rollouts": summary.files,
                    "step": summary.step,
                    "groups": summary.groups,
                    "temperature": sampling.temperature,
                    "max_response_length": sampling.max_response_length,
                }
            )
            info["notes"].extend(summary.notes)
            say(f"read {summary.rows} responses of step {summary.step} ({summary.groups} prompts) from the dump")
        info["sampling_s"] = time.perf_counter() - t0
        smp.set_advantages(pool, advantage)
        info["advantage"] = advantage
        lengths = np.array([r.length for r in pool], dtype=np.float64)
        needs = np.array([r.advantage != 0 for r in pool])
        info["pool"] = len(pool)
        info["truncated"] = int(sum(r.truncated for r in pool))
        info["mean_score"] = float(np.mean([r.score for r in pool]))
        selection = smp.stratified_selection(lengths, needs, max_gradients, strata, sampling.seed)
        if selection.note:
            info["notes"].append(selection.note)
        chosen = [pool[i] for i in selection.indices]
        items = [ResponseItem(r.prompt_ids, r.response_ids, r.advantage) for r in chosen]
        say(f"gradients of {int(sum(r.advantage != 0 for r in chosen))} responses (of {len(chosen)})")
        t1 = time.perf_counter()
        gs = compute_gradients(lm, items, sampling.temperature, projection, sketch_dim, sampling.seed)
        info["gradient_s"] = time.perf_counter() - t1
    settings = dataclasses.replace(settings, max_length=settings.max_length or float(sampling.max_response_length))
    result = analyze_gradient_set(gs, selection.weights, settings, alphas, info)
    result.info["wall_s"] = time.perf_counter() - started
    return result
