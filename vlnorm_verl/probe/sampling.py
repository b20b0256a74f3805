"""Responses for the probe: sampled from a model for the prompts of a parquet file, or read from a run's rollout dump.

Sampling (what verl's rollout does, on one machine with Hugging Face ``generate``):

- prompts: the first ``num_prompts`` rows of a parquet file in verl's RLHF schema (:mod:`vlnorm_verl.tasks`); the
  prompt text is the row's messages joined as raw text (the identity chat template of this project's task
  configs), or the tokenizer's chat template with a generation prompt (``chat_template=True``);
- ``n`` responses per prompt at ONE temperature tau and ONE length cap, from the full distribution (top-k off,
  top-p 1, no repetition penalty: the model's own generation defaults are replaced). Mixing temperatures or caps
  bends the length law: the score scales like 1/tau, and the cap makes lengths;
- a response is the generated tokens up to and including the first EOS (any of the tokenizer's and the model's
  EOS ids), or the first ``cap`` tokens when none came (truncated). L_i = its token count, EOS included: the
  response token list is kept explicitly, never rebuilt from a ``!= pad`` mask (the tiny tokenizer's EOS is its
  pad token);
- rewards: :func:`vlnorm_verl.rewards.compute_score` with the row's data_source, ground truth and extra_info, on the
  response decoded without special tokens (as verl's reward managers do);
- advantages: verl's own GRPO estimator (``compute_grpo_outcome_advantage``: (r - mean) / (std + 1e-6) per group of
  one prompt's responses); groups whose scores are all equal get exactly 0, as in exact arithmetic.

Rollout dumps: verl 0.9.1 writes ``<trainer.rollout_data_dir>/<step>.jsonl`` (``PPOTrainer._write_generations``),
one line per response with ``input`` and ``output`` (decoded with ``skip_special_tokens=True``), ``score`` (the
summed token-level reward), ``step``, ``gts`` and, in the v1 trainer, ``uid`` = ``<prompt uid>_<session>_<index>``.
Responses are grouped by the prompt uid (or the input text when there is no uid) for GRPO advantages and
re-tokenized with the model's tokenizer; since the dump lost the EOS token, it is appended to every response
shorter than the cap, and a response of ``cap`` tokens or more counts as truncated (cut to ``cap``).

Stratification: when more responses carry a non-zero advantage than the gradient budget allows,
:func:`stratified_selection` keeps a length-stratified subset (geometric length strata, equal allocation) with
inverse inclusion probabilities as sample weights, so thin length bins get rows while the statistics still
resample the natural length distribution.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlnorm_verl.probe.errors import ProbeError

UID_PATTERN = re.compile(r"^(?P<prompt>.+)_(?P<session>\d+)_(?P<index>\d+)$")


@dataclass(frozen=True)
class PromptRow:
    uid: str
    prompt_ids: tuple[int, ...]
    data_source: str
    ground_truth: Any
    extra_info: dict[str, Any] | None


@dataclass
class Rollout:
    group: str
    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    truncated: bool
    score: float
    advantage: float = 0.0
    text: str = ""

    @property
    def length(self) -> int:
        return len(self.response_ids)


@dataclass(frozen=True)
class SamplingSettings:
    n: int = 8  # responses per prompt
    num_prompts: int = 32
    temperature: float = 1.0
    max_response_length: int = 256  # the cap
    seed: int = 0
    batch_size: int = 256  # sequences per generate call
    chat_template: bool = False

    def check(self) -> None:
        if self.n < 2:
            raise ProbeError(f"n={self.n}: GRPO advantages need at least 2 responses per prompt")
        if self.num_prompts < 1:
            raise ProbeError(f"num_prompts={self.num_prompts} must be at least 1")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ProbeError(f"temperature={self.temperature}: sample at one temperature > 0 (the run's)")
        if self.max_response_length < 1:
            raise ProbeError(f"max_response_length={self.max_response_length} must be at least 1")
        if self.batch_size < 1:
            raise ProbeError(f"batch_size={self.batch_size} must be at least 1")


def eos_ids(tokenizer: Any, model: Any | None = None) -> list[int]:
    """The tokenizer's EOS id and the model generation config's (verl's rollout stops at either)."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    gen = getattr(model, "generation_config", None)
    extra = getattr(gen, "eos_token_id", None)
    for value in extra if isinstance(extra, (list, tuple)) else [extra]:
        if value is not None and int(value) not in ids:
            ids.append(int(value))
    if not ids:
        raise ProbeError("the tokenizer has no EOS token: responses could not end and L would not count it")
    return ids


def _prompt_text(row: dict[str, Any], tokenizer: Any, chat_template: bool) -> str:
    messages = row["prompt"]
    if isinstance(messages, str):
        return messages
    if chat_template:
        return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    return "".join(m["content"] for m in messages)


def load_prompts(path: str | Path, tokenizer: Any, limit: int, chat_template: bool = False) -> list[PromptRow]:
    """The first ``limit`` rows of a verl RLHF parquet file, tokenized (without special tokens added)."""
    import pyarrow.parquet as pq

    from vlnorm_verl.tasks.parquet_io import DataFileError, validate_rl_parquet

    try:
        validate_rl_parquet(path)
    except DataFileError as exc:
        raise ProbeError(str(exc)) from exc
    rows = pq.read_table(path).slice(0, limit).to_pylist()
    out = []
    for i, row in enumerate(rows):
        text = _prompt_text(row, tokenizer, chat_template)
        ids = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
        if not ids:
            raise ProbeError(f"{path} row {i}: the prompt is empty")
        extra = row.get("extra_info") or {}
        out.append(
            PromptRow(
                uid=f"{extra.get('index', i)}",
                prompt_ids=ids,
                data_source=str(row["data_source"]),
                ground_truth=(row.get("reward_model") or {}).get("ground_truth"),
                extra_info=extra,
            )
        )
    return out


def _cut(row: list[int], eos: set[int], cap: int) -> tuple[list[int], bool]:
    for t, tok in enumerate(row[:cap]):
        if tok in eos:
            return row[: t + 1], False
    return row[:cap], True


@torch.no_grad()
def sample_rollouts(
    model: Any, tokenizer: Any, prompts: Sequence[PromptRow], settings: SamplingSettings
) -> list[Rollout]:
    """``n`` responses per prompt (module docstring), scored; advantages are set by :func:`grpo_advantages`."""
    from transformers import GenerationConfig

    settings.check()
    eos = eos_ids(tokenizer, model)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0])
    config = GenerationConfig(
        do_sample=True,
        temperature=float(settings.temperature),
        top_k=0,
        top_p=1.0,
        repetition_penalty=1.0,
        max_new_tokens=int(settings.max_response_length),
        eos_token_id=eos,
        pad_token_id=pad,
    )
    device = next(model.parameters()).device
    jobs = [(p, j) for p in prompts for j in range(settings.n)]
    out: list[Rollout] = []
    model.eval()
    for b, start in enumerate(range(0, len(jobs), settings.batch_size)):
        chunk = jobs[start : start + settings.batch_size]
        width = max(len(p.prompt_ids) for p, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, (p, _) in enumerate(chunk):
            ids[r, width - len(p.prompt_ids) :] = torch.tensor(p.prompt_ids)
            mask[r, width - len(p.prompt_ids) :] = 1
        cuda = (
            [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
        )
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(settings.seed * 1_000_003 + b)
            gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config)
        for r, (p, _) in enumerate(chunk):
            response, truncated = _cut(gen[r, width:].tolist(), set(eos), settings.max_response_length)
            out.append(Rollout(p.uid, p.prompt_ids, tuple(response), truncated, 0.0))
    by_uid = {p.uid: p for p in prompts}
    score_rollouts(out, by_uid, tokenizer)
    return out


def score_rollouts(rollouts: Sequence[Rollout], prompts: dict[str, PromptRow], tokenizer: Any) -> None:
    """Set each rollout's text and score with the project's reward (``vlnorm_verl.rewards.compute_score``)."""
    from vlnorm_verl.rewards import compute_score

    for r in rollouts:
        p = prompts[r.group]
        r.text = tokenizer.decode(list(r.response_ids), skip_special_tokens=True)
        try:
            result = compute_score(
                data_source=p.data_source, solution_str=r.text, ground_truth=p.ground_truth, extra_info=p.extra_info
            )
        except ValueError as exc:
            raise ProbeError(f"cannot score prompt {p.uid}: {exc}") from exc
        r.score = float(result["score"] if isinstance(result, dict) else result)


def grpo_advantages(scores: Sequence[float], groups: Sequence[str]) -> np.ndarray:
    """verl's GRPO outcome advantages (std-normalised) per group; exactly 0 in groups of equal scores."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    n = len(scores)
    if n == 0:
        raise ProbeError("no responses to compute advantages for")
    rewards = torch.tensor(list(scores), dtype=torch.float32)[:, None]
    adv, _ = compute_grpo_outcome_advantage(rewards, torch.ones((n, 1)), np.asarray(list(groups), dtype=object))
    out = adv[:, 0].double().numpy().copy()
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    for idx in by_group.values():
        if len({float(scores[i]) for i in idx}) == 1:
            out[idx] = 0.0
    return out


def set_advantages(rollouts: Sequence[Rollout], mode: str) -> None:
    """``grpo``: verl's GRPO advantages from the scores; ``one``: A_i = 1 (the on-policy sanity check)."""
    if mode == "one":
        for r in rollouts:
            r.advantage = 1.0
        return
    if mode != "grpo":
        raise ProbeError(f"advantage mode must be grpo or one, got {mode!r}")
    adv = grpo_advantages([r.score for r in rollouts], [r.group for r in rollouts])
    for r, a in zip(rollouts, adv, strict=True):
        r.advantage = float(a)


@dataclass(frozen=True)
class Selection:
    indices: np.ndarray  # into the pool, sorted
    weights: np.ndarray  # inverse inclusion probabilities
    strata: int
    note: str = ""


def stratified_selection(
    lengths: np.ndarray, needs_gradient: np.ndarray, budget: int | None, n_strata: int, seed: int
) -> Selection:
    """Keep every zero-advantage row (free) and at most ``budget`` of the others, stratified by length.

    Strata: geometric length intervals between the shortest and the longest row; with the budget below the count,
    each stratum gets an equal share (a stratum smaller than its share keeps all its rows and passes the rest on),
    rows within a stratum are drawn uniformly without replacement, and each kept row's weight is
    (stratum size) / (rows kept from it).
    """
    n = lengths.shape[0]
    need = np.flatnonzero(needs_gradient)
    if budget is None or need.size <= budget:
        return Selection(np.arange(n), np.ones(n), 1)
    if budget < 2:
        raise ProbeError(f"the gradient budget {budget} is too small")
    rng = np.random.default_rng(seed)
    lens = lengths[need]
    lo, hi = float(lens.min()), float(lens.max())
    edges = np.exp(np.linspace(math.log(lo), math.log(hi), n_strata + 1)) if hi > lo else np.array([lo, hi])
    edges[-1] = np.inf
    stratum = np.clip(np.searchsorted(edges, lens, side="right") - 1, 0, len(edges) - 2)
    members = [need[stratum == s] for s in range(len(edges) - 1)]
    members = [m for m in members if m.size]
    quota = np.zeros(len(members), dtype=int)
    left = budget
    open_ = list(range(len(members)))
    while left > 0 and open_:
        share = max(left // len(open_), 1)
        for s in list(open_):
            take = min(share, members[s].size - quota[s], left)
            quota[s] += take
            left -= take
            if quota[s] == members[s].size:
                open_.remove(s)
            if left == 0:
                break
    weights = np.ones(n)
    keep = np.ones(n, dtype=bool)
    keep[need] = False
    for s, m in enumerate(members):
        chosen = rng.choice(m, size=quota[s], replace=False)
        keep[chosen] = True
        weights[chosen] = m.size / quota[s]
    idx = np.flatnonzero(keep)
    note = (
        f"length-stratified: {budget} of {need.size} responses with a non-zero advantage kept over "
        f"{len(members)} length strata; statistics reweighted to the natural length distribution"
    )
    return Selection(idx, weights[idx], len(members), note)


# ------------------------------------------------------------------------------------------- rollout dumps


@dataclass
class DumpSummary:
    files: list[str]
    step: int
    rows: int
    groups: int
    truncated: int
    notes: list[str] = field(default_factory=list)


def _dump_files(path: Path) -> dict[int, Path]:
    if path.is_file():
        return {-1: path}
    if not path.is_dir():
        raise ProbeError(f"rollout dump {path} does not exist (verl writes <trainer.rollout_data_dir>/<step>.jsonl)")
    files = {}
    for f in path.glob("*.jsonl"):
        if f.stem.isdigit():
            files[int(f.stem)] = f
    if not files:
        raise ProbeError(f"{path} holds no <step>.jsonl files of verl's rollout dump")
    return files


def load_rollout_dump(
    path: str | Path, tokenizer: Any, max_response_length: int, step: int | None = None, model: Any | None = None
) -> tuple[list[Rollout], DumpSummary]:
    """Rollouts of one step of a verl rollout dump (module docstring), re-tokenized, scores from the dump."""
    if max_response_length < 1:
        raise ProbeError("--max-response-length (the run's data.max_response_length) is needed to read a dump")
    files = _dump_files(Path(path))
    if step is None:
        chosen = files[max(files)]
    elif step in files:
        chosen = files[step]
    elif -1 in files:
        chosen = files[-1]
    else:
        raise ProbeError(f"the dump has no step {step}: steps {sorted(files)[:10]}")
    entries = []
    with open(chosen, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ProbeError(f"{chosen}:{lineno} is not JSON: {exc}") from exc
            missing = [k for k in ("input", "output", "score") if k not in entry]
            if missing:
                raise ProbeError(f"{chosen}:{lineno} lacks {missing} (not a verl rollout dump line)")
            entries.append(entry)
    if not entries:
        raise ProbeError(f"{chosen} is empty")
    steps = sorted({int(e.get("step", -1)) for e in entries})
    if step is not None and chosen == files.get(-1) and step not in steps:
        raise ProbeError(f"{chosen} has no rows of step {step} (it has {steps[:10]})")
    if step is not None:
        entries = [e for e in entries if int(e.get("step", -1)) == step]
    elif len(steps) > 1:
        entries = [e for e in entries if int(e.get("step", -1)) == steps[-1]]
    eos = eos_ids(tokenizer, model)[0]
    rollouts = []
    truncated = 0
    for e in entries:
        uid = e.get("uid")
        match = UID_PATTERN.match(str(uid)) if uid is not None else None
        group = f"{e.get('step', '')}/{match.group('prompt') if match else e['input']}"
        score = float(e["score"])
        if not math.isfinite(score):
            raise ProbeError(f"{chosen}: a score is not finite ({e['score']!r})")
        prompt_ids = tuple(tokenizer(str(e["input"]), add_special_tokens=False)["input_ids"])
        resp = list(tokenizer(str(e["output"]), add_special_tokens=False)["input_ids"])
        if len(resp) >= max_response_length:
            resp, cut = resp[:max_response_length], True
            truncated += 1
        else:
            resp, cut = resp + [eos], False
        if not prompt_ids:
            raise ProbeError(f"{chosen}: a row has an empty input (prompt)")
        rollouts.append(Rollout(group, prompt_ids, tuple(resp), cut, score, text=str(e["output"])))
    summary = DumpSummary(
        files=[str(chosen)],
        step=int(entries[0].get("step", -1)),
        rows=len(rollouts),
        groups=len({r.group for r in rollouts}),
        truncated=truncated,
        notes=[
            "rollout dump: re-tokenized from decoded text (special tokens were dropped by verl's dump); EOS "
            f"appended to responses under the cap of {max_response_length} tokens"
        ],
    )
    return rollouts, summary
