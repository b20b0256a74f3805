"""verl reward entry point for the paper's tasks: ``compute_score`` dispatching on ``data_source``.

Wiring (set by ``configs/task/*.yaml``)::

    reward.custom_reward_function.path=pkg://vlnorm_verl.rewards
    reward.custom_reward_function.name=compute_score

verl's reward managers (``naive``, ``dapo``, …) call ``compute_score(data_source=..., solution_str=...,
ground_truth=..., extra_info=...)`` with the decoded response (prompt excluded). The result is a dict with the
same keys for every data source — ``score`` (the reward, float) and ``acc`` (1.0/0.0) — because verl
stacks each key across the batch (``reward_extra_info``), logs ``val-core/<data_source>/acc/mean@N`` and lets
DAPO dynamic sampling filter on ``algorithm.filter_groups.metric=acc``.

Data sources: ``countdown`` (:mod:`~vlnorm_verl.tasks.countdown_reward`) and the math sources ``math_train``,
``math500``, ``aime24``, ``amc23``, ``minerva``, ``olympiadbench`` (:mod:`~vlnorm_verl.tasks.math_reward`).
An unknown data source raises ``ValueError``.

Optional keyword arguments (e.g. from ``reward.custom_reward_function.reward_kwargs``):
``math_timeout_s`` (wall-clock limit per symbolic check, default 3 s or ``VLNORM_MATH_TIMEOUT_S``) and
``math_max_answer_chars`` (default 1000). Other keyword arguments verl passes are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vlnorm_verl.tasks import ALL_SOURCES, COUNTDOWN_SOURCE, MATH_SOURCES
from vlnorm_verl.tasks.countdown_reward import score_countdown
from vlnorm_verl.tasks.math_reward import DEFAULT_MAX_ANSWER_CHARS, score_math, score_math_batch

__all__ = ["compute_score", "compute_scores"]


def _source(data_source: Any) -> str:
    if isinstance(data_source, bytes):
        data_source = data_source.decode("utf-8", errors="replace")
    source = str(data_source)
    if source not in ALL_SOURCES:
        raise ValueError(
            f"vlnorm_verl.rewards cannot score data_source {source!r}; it handles {', '.join(ALL_SOURCES)}. "
            "Prepare data with `vlnorm-verl prepare-data` or point reward.custom_reward_function elsewhere."
        )
    return source


def _math_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    timeout = kwargs.get("math_timeout_s")
    return {
        "timeout_s": None if timeout is None else float(timeout),
        "max_answer_chars": int(kwargs.get("math_max_answer_chars", DEFAULT_MAX_ANSWER_CHARS)),
    }


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """``{"score": float, "acc": 1.0|0.0}`` for one response of ``data_source``."""
    source = _source(data_source)
    if source == COUNTDOWN_SOURCE:
        return score_countdown(solution_str, ground_truth)
    return score_math(solution_str, ground_truth, **_math_options(kwargs))


def compute_scores(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[dict | None] | None = None,
    **kwargs: Any,
) -> list[dict[str, float]]:
    """:func:`compute_score` for a batch; the math symbolic checks run in parallel over the worker pool."""
    n = len(solution_strs)
    if len(data_sources) != n or len(ground_truths) != n:
        raise ValueError(
            f"batch lengths differ: {len(data_sources)} sources, {n} responses, {len(ground_truths)} truths"
        )
    sources = [_source(s) for s in data_sources]
    results: list[dict[str, float] | None] = [None] * n
    math_idx = [i for i, s in enumerate(sources) if s in MATH_SOURCES]
    for i, s in enumerate(sources):
        if s == COUNTDOWN_SOURCE:
            results[i] = score_countdown(solution_strs[i], ground_truths[i])
    if math_idx:
        scored = score_math_batch(
            [solution_strs[i] for i in math_idx], [ground_truths[i] for i in math_idx], **_math_options(kwargs)
        )
        for i, r in zip(math_idx, scored, strict=True):
            results[i] = r
    return [r for r in results if r is not None]
