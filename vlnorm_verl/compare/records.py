"""The run-record interface shared by every reader, and the merge rule for resumed runs.

Every reader (verl ``file``-logger JSONL, wandb offline transaction logs, the wandb online API)
turns one log into a :class:`RunLog`: a name, a human-readable origin, an optional start time and
the logged rows ``(step, {metric: value})`` in the order they were logged. Values are floats;
NaN/±inf are kept as logged (they are "missing" only when a series is extracted).

Several logs with the same final name form one :class:`Run` (a resumed run: verl starts a new
wandb run with the same name, or the user labels two JSONL files alike). :func:`merge_logs`
applies the logs in order (by start time when every log has one, else in the order given) and,
within a log, row by row. For a repeated ``(step, metric)`` pair the **later record wins**, even
when the later value is NaN: the earlier value belongs to a trajectory that was abandoned when
training resumed from a checkpoint. The merge is per metric, not per row, so a row that only adds
validation metrics to a step (verl's ``val_before_train`` after a resume) keeps that step's
training metrics.

:meth:`Run.series` returns the evaluation points of one metric: steps in ascending order with a
finite value; missing and non-finite values are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

Row = tuple[int, dict[str, float]]

# verl's trainer never logs these; wandb adds them to every history row.
WANDB_INTERNAL_PREFIX = "_"


class CompareError(Exception):
    """A user-facing error: bad input, a missing metric, an ambiguous choice. The message says the fix."""


@dataclass
class RunLog:
    """One log of one run, as read from one source."""

    name: str
    origin: str
    rows: list[Row]
    start_time: float | None = None  # seconds since the epoch, when the log knows it
    run_id: str | None = None  # wandb run id, when there is one
    project: str | None = None  # wandb "entity/project" of an online run


@dataclass
class Run:
    """A named run: one or more merged logs."""

    name: str
    origins: list[str]
    values: dict[str, dict[int, float]] = field(default_factory=dict)
    overwritten: int = 0  # (step, metric) pairs logged more than once; the later record won
    run_ids: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)

    def keys(self) -> set[str]:
        return set(self.values)

    def has_metric(self, metric: str) -> bool:
        return metric in self.values

    def series(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of ``metric``: ascending steps, finite values only."""
        by_step = self.values.get(metric, {})
        pairs = sorted((s, v) for s, v in by_step.items() if math.isfinite(v))
        steps = np.array([s for s, _ in pairs], dtype=np.int64)
        values = np.array([v for _, v in pairs], dtype=np.float64)
        return steps, values


def to_float(value: object) -> float | None:
    """A logged scalar as float; None for anything that is not a number (text, lists, bools, dicts).

    JSON ``null`` counts as NaN: verl's file logger (orjson) writes NaN and ±inf as ``null``.
    """
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
        return float(value.strip().lower().replace("infinity", "inf"))
    return None


def as_step(value: object, where: str) -> int:
    """A logged step as int; integral floats are accepted, anything else is an error naming ``where``."""
    if isinstance(value, bool) or value is None:
        raise CompareError(f"{where}: step {value!r} is not an integer")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise CompareError(f"{where}: step {value!r} is not an integer")


def _ordered(logs: Sequence[RunLog]) -> list[RunLog]:
    if all(log.start_time is not None for log in logs):
        return sorted(logs, key=lambda log: log.start_time)  # stable: ties keep the given order
    return list(logs)


def merge_logs(name: str, logs: Sequence[RunLog]) -> Run:
    """Merge the logs of one run; a later record for the same (step, metric) replaces the earlier one."""
    if not logs:
        raise ValueError("merge_logs needs at least one log")
    ordered = _ordered(logs)
    run = Run(name=name, origins=[log.origin for log in ordered])
    for log in ordered:
        if log.run_id and log.run_id not in run.run_ids:
            run.run_ids.append(log.run_id)
        if log.project and log.project not in run.projects:
            run.projects.append(log.project)
        for step, row in log.rows:
            for metric, value in row.items():
                per_step = run.values.setdefault(metric, {})
                if step in per_step:
                    run.overwritten += 1
                per_step[step] = value
    return run


def group_logs(logs: Iterable[RunLog]) -> list[Run]:
    """Group logs by name (first appearance order) and merge each group."""
    groups: dict[str, list[RunLog]] = {}
    for log in logs:
        groups.setdefault(log.name, []).append(log)
    return [merge_logs(name, group) for name, group in groups.items()]
