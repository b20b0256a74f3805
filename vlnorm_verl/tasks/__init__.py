"""The paper's tasks and their registry: CountDown and math (data preparation, parquet schema, rewards).

Each task is a subpackage defining one :class:`~vlnorm_verl.tasks.base.Task` (the interface, in
:mod:`~vlnorm_verl.tasks.base`) plus a Hydra config ``vlnorm_verl/configs/task/<name>.yaml``. This module lists
them in :data:`TASKS`; the reward entry point (:mod:`vlnorm_verl.rewards`), ``vlnorm-verl prepare-data``
(:mod:`~vlnorm_verl.tasks.prepare`) and the parquet schema (:mod:`~vlnorm_verl.tasks.parquet_io`) all go through it.
Adding a task = a new subpackage, its entry in :data:`TASKS`, and its config file.

Shared modules: :mod:`~vlnorm_verl.tasks.prompts` (the paper's exact prompts),
:mod:`~vlnorm_verl.tasks.parquet_io` (verl RLHF parquet schema, atomic writes, validation) and
:mod:`~vlnorm_verl.tasks.prepare` (the ``vlnorm-verl prepare-data`` sub-command).

Importing this package is cheap: no heavy dependency is imported until a task's scorer or data hook is used.
"""

from __future__ import annotations

from vlnorm_verl.tasks import countdown, math
from vlnorm_verl.tasks.base import Task

TASKS: tuple[Task, ...] = (countdown.TASK, math.TASK)
"""Every registered task, in the order ``prepare-data`` and error messages list them."""

TASKS_BY_NAME: dict[str, Task] = {task.name: task for task in TASKS}
TASKS_BY_SOURCE: dict[str, Task] = {source: task for task in TASKS for source in task.data_sources}
if len(TASKS_BY_SOURCE) != sum(len(task.data_sources) for task in TASKS):
    raise RuntimeError("a data_source is claimed by two tasks")

COUNTDOWN_SOURCE = countdown.COUNTDOWN_SOURCE
MATH_TRAIN_SOURCE = math.MATH_TRAIN_SOURCE
MATH_EVAL_SOURCES = math.MATH_EVAL_SOURCES
MATH_SOURCES = math.TASK.data_sources
ALL_SOURCES: tuple[str, ...] = tuple(TASKS_BY_SOURCE)


def task_named(name: str) -> Task:
    """The task called ``name``; ``KeyError`` naming the registered tasks otherwise."""
    try:
        return TASKS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"no task {name!r}; registered: {', '.join(TASKS_BY_NAME)}") from None


def task_for_source(data_source: str) -> Task:
    """The task whose rows carry ``data_source``; ``KeyError`` naming the handled sources otherwise."""
    try:
        return TASKS_BY_SOURCE[data_source]
    except KeyError:
        raise KeyError(f"no task handles data_source {data_source!r}; handled: {', '.join(ALL_SOURCES)}") from None


__all__ = [
    "ALL_SOURCES",
    "COUNTDOWN_SOURCE",
    "MATH_EVAL_SOURCES",
    "MATH_SOURCES",
    "MATH_TRAIN_SOURCE",
    "TASKS",
    "TASKS_BY_NAME",
    "TASKS_BY_SOURCE",
    "Task",
    "task_for_source",
    "task_named",
]
