"""The task interface: what data preparation, the reward entry point and the parquet writer need from a task.

A task is one :class:`Task` value, defined in the ``__init__`` of its subpackage (``vlnorm_verl/tasks/<name>/``)
and listed in :data:`vlnorm_verl.tasks.TASKS`; its Hydra config is ``vlnorm_verl/configs/task/<name>.yaml``.

Contract
--------
- ``name``: the task's name — the ``vlnorm-verl prepare-data <name>`` sub-command and the config file name.
- ``data_sources``: the ``data_source`` values of its rows; each source belongs to exactly one task.
- ``score(solution_str, ground_truth, **options) -> {"score": float, "acc": 1.0|0.0}``: one response.
  ``options`` are the reward keyword arguments from verl (``reward.custom_reward_function.reward_kwargs``); a
  scorer takes the ones it knows and ignores the rest.
- ``score_batch(solution_strs, ground_truths, **options) -> list[...]``: optional; a batch scorer (e.g. parallel).
  :meth:`Task.score_many` falls back to calling ``score`` in a loop.
- ``row_types() -> RowTypes``: the Arrow type of ``reward_model.ground_truth`` and the task's own ``extra_info``
  fields; :func:`vlnorm_verl.tasks.parquet_io.rl_schema` builds the task's parquet schema from them.
- ``add_prepare_arguments(parser) -> {option: help}``: adds the task's own ``prepare-data`` options and returns its
  help text for the options shared by all tasks (``--source``, ``--train-size``).
- ``prepare(args, out, write) -> [(path, rows), ...]``: writes the task's files under ``out`` with
  ``write(rows, path)`` (bound to the task's schema) and returns what it wrote; raises ``ValueError`` (or
  :class:`~vlnorm_verl.tasks.parquet_io.DataFileError`) with a message naming the fix on bad input.

Heavy dependencies (pyarrow, datasets, math-verify) stay out of the import of a task package: the callables above
are usually :func:`lazy` references that import their module on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    import pyarrow as pa

Score = dict[str, float]
"""``{"score": reward, "acc": 1.0|0.0}`` — the same keys for every task (verl stacks them across the batch)."""

Scorer = Callable[..., Score]
BatchScorer = Callable[..., list[Score]]
Written = list[tuple["Path", int]]
RowWriter = Callable[[Sequence[dict[str, Any]], "Path"], tuple["Path", int]]


class RowTypes(NamedTuple):
    """The task-specific parts of a parquet row's Arrow schema."""

    ground_truth: pa.DataType
    extra_info: Sequence[tuple[str, pa.DataType]]  # after the common ``split`` and ``index``


@dataclass(frozen=True)
class Task:
    """One task of the paper (see the module docstring for the contract of each field)."""

    name: str
    summary: str
    data_sources: tuple[str, ...]
    score: Scorer
    row_types: Callable[[], RowTypes]
    add_prepare_arguments: Callable[[argparse.ArgumentParser], Mapping[str, str]]
    prepare: Callable[[argparse.Namespace, Path, RowWriter], Written]
    score_batch: BatchScorer | None = None

    def score_many(self, solution_strs: Sequence[str], ground_truths: Sequence[Any], **options: Any) -> list[Score]:
        """Scores of many responses: ``score_batch`` if the task has one, else ``score`` in a loop."""
        if self.score_batch is not None:
            return self.score_batch(solution_strs, ground_truths, **options)
        return [self.score(s, g, **options) for s, g in zip(solution_strs, ground_truths, strict=True)]

    def parquet_schema(self) -> pa.Schema:
        """The Arrow schema of this task's parquet files (imports pyarrow)."""
        from vlnorm_verl.tasks.parquet_io import rl_schema

        types = self.row_types()
        return rl_schema(types.ground_truth, types.extra_info)


def lazy(target: str) -> Callable[..., Any]:
    """A function forwarding to ``"package.module:function"``, importing the module on its first call."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"lazy target must be 'module:function', got {target!r}")
    resolved: Callable[..., Any] | None = None

    def call(*args: Any, **kwargs: Any) -> Any:
        nonlocal resolved
        if resolved is None:
            resolved = getattr(importlib.import_module(module_name), attr)
        return resolved(*args, **kwargs)

    call.__name__ = attr
    call.__qualname__ = target
    call.__doc__ = f"Calls :func:`{module_name}.{attr}` (imported on first use)."
    return call
