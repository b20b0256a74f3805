"""verl reward entry point for the paper's tasks: ``compute_score`` dispatching on ``data_source``.

Wiring (set by ``configs/task/*.yaml``)::

    reward.custom_reward_function.path=pkg://vlnorm_verl.rewards
    reward.custom_reward_function.name=compute_score

verl's reward managers (``naive``, ``dapo``, …) call ``compute_score(data_source=..., solution_str=...,
ground_truth=..., extra_info=...)`` with the decoded response (prompt excluded). The result is a dict with the
same keys for every data source — ``score`` (the reward, float) and ``acc`` (1.0/0.0) — because verl
stacks each key across the batch (``reward_extra_info``), logs ``val-core/<data_source>/acc/mean@N`` and lets
DAPO dynamic sampling filter on ``algorithm.filter_groups.metric=acc``.

Data sources: those of the registered tasks (:data:`vlnorm_verl.tasks.TASKS`) — ``countdown``
(:mod:`~vlnorm_verl.tasks.countdown`) and the math sources ``math_train``, ``math500``, ``aime24``, ``amc23``,
``minerva``, ``olympiadbench`` (:mod:`~vlnorm_verl.tasks.math`). Each response goes to the scorer of the task owning
its data source. An unknown data source raises ``ValueError``.

Optional keyword arguments (e.g. from ``reward.custom_reward_function.reward_kwargs``):
``math_timeout_s`` (wall-clock limit per symbolic check, default 3 s or ``VLNORM_MATH_TIMEOUT_S``) and
``math_max_answer_chars`` (default 1000). Other keyword arguments verl passes are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vlnorm_verl.tasks import ALL_SOURCES, TASKS_BY_SOURCE
from vlnorm_verl.tasks.base import Task

__all__ = ["compute_score", "compute_scores"]


def _task(data_source: Any) -> Task:
    if isinstance(data_source, bytes):
        data_source = data_source.decode("utf-8", errors="replace")
    source = str(data_source)
    task = TASKS_BY_SOURCE.get(source)
    if task is None:
        raise ValueError(
            f"vlnorm_verl.rewards cannot score data_source {source!r}; it handles {', '.join(ALL_SOURCES)}. "
            "Prepare data with `vlnorm-verl prepare-data` or point reward.custom_reward_function elsewhere."
        )
    return task


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """``{"score": float, "acc": 1.0|0.0}`` for one response of ``data_source``."""
    return _task(data_source).score(solution_str, ground_truth, **kwargs)


def compute_scores(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[dict | None] | None = None,
    **kwargs: Any,
) -> list[dict[str, float]]:
    """:func:`compute_score` for a batch, grouped by task; each task's batch scorer runs once (math in parallel)."""
    n = len(solution_strs)
    if len(data_sources) != n or len(ground_truths) != n:
        raise ValueError(
            f"batch lengths differ: {len(data_sources)} sources, {n} responses, {len(ground_truths)} truths"
        )
    groups: dict[str, list[int]] = {}
    tasks: dict[str, Task] = {}
    for i, source in enumerate(data_sources):
        task = _task(source)
        tasks[task.name] = task
        groups.setdefault(task.name, []).append(i)
    results: list[dict[str, float] | None] = [None] * n
    for name, idx in groups.items():
        scored = tasks[name].score_many([solution_strs[i] for i in idx], [ground_truths[i] for i in idx], **kwargs)
        for i, result in zip(idx, scored, strict=True):
            results[i] = result
    return [r for r in results if r is not None]
