"""``vlnorm-verl prepare-data <task>``: write a registered task's parquet files for verl.

One positional argument per registered task (:data:`vlnorm_verl.tasks.TASKS`: ``countdown``, ``math``); the task's
own options come from its ``add_prepare_arguments`` hook, and ``--source``/``--train-size`` are shared, each task
describing what they mean for it. Usage per task: :mod:`vlnorm_verl.tasks.countdown.prepare` and
:mod:`vlnorm_verl.tasks.math.prepare`. Every file is written atomically in the task's schema
(:func:`vlnorm_verl.tasks.parquet_io.rl_schema`).

``DIR`` (``--out``) defaults to ``${VLNORM_DATA_DIR:-data}/<task>``, which is where ``configs/task/<task>.yaml``
looks. Exit status 0 on success, 2 on a data or argument error (the message names the problem and the fix).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlnorm_verl.tasks import TASKS, task_named
from vlnorm_verl.tasks.base import Task
from vlnorm_verl.tasks.parquet_io import DataFileError, write_rows

SHARED_OPTIONS = ("--source", "--train-size")
"""Options every task may use; each task's hook returns what they mean for it."""


def default_out(task: str) -> Path:
    """``${VLNORM_DATA_DIR:-data}/<task>``."""
    return Path(os.environ.get("VLNORM_DATA_DIR") or "data") / task


def progress_bar(total: int, desc: str, disable: bool) -> Any:
    """A tqdm bar on stderr counting rows (``disable`` hides it)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="row", disable=disable, file=sys.stderr, mininterval=0.5)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``task`` positional (the registered tasks), the shared options, then each task's own options."""
    names = [task.name for task in TASKS]
    parser.add_argument("task", choices=names, help="which task's data to prepare")
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default ${VLNORM_DATA_DIR:-data}/TASK)"
    )
    shared = {
        "--source": parser.add_argument("--source", default=None),
        "--train-size": parser.add_argument("--train-size", type=int, default=None),
    }
    helps: dict[str, list[str]] = {option: [] for option in SHARED_OPTIONS}
    for task in TASKS:
        for option, text in task.add_prepare_arguments(parser).items():
            helps[option].append(f"{task.name}: {text}")
    for option, action in shared.items():
        action.help = "; ".join(helps[option])
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _writer(task: Task):
    schema = task.parquet_schema()

    def write(rows: Sequence[dict[str, Any]], path: Path) -> tuple[Path, int]:
        return path, write_rows(rows, path, schema)

    return write


def run(args: argparse.Namespace) -> int:
    """Prepare ``args.task``'s files; print one line per file written. 0 on success, 2 on bad input."""
    task = task_named(args.task)
    out = args.out if args.out is not None else default_out(task.name)
    try:
        written = task.prepare(args, out, _writer(task))
    except (DataFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path, n in written:
        print(f"wrote {n:>6} rows  {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m vlnorm_verl.tasks.prepare ...``)."""
    parser = argparse.ArgumentParser(prog="vlnorm-verl prepare-data", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
