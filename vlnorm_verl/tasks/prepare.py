"""``vlnorm-verl prepare-data countdown|math``: write the tasks' parquet files for verl.

CountDown (offline by default)::

    vlnorm-verl prepare-data countdown [--out DIR] [--source generate|hub|PATH] [--seed N]
                                       [--train-size 32768] [--test-size 1024] [--workers N]

writes ``DIR/train.parquet`` and ``DIR/test.parquet``.

Math::

    vlnorm-verl prepare-data math [--out DIR] [--source PATH|URL|orz] [--train-size N]
                                  [--eval-dir DIR | --eval-source hub] [--eval-sets math500,aime24,...]

writes ``DIR/<set>.parquet`` for each evaluation set and, when ``--source`` is given, ``DIR/train.parquet`` from
the Open-Reasoner-Zero 57k JSON (``orz`` = its upstream URL; the file is not available offline, so without
``--source`` only the evaluation sets are written and the command says so).

``DIR`` defaults to ``${VLNORM_DATA_DIR:-data}/<task>``, which is where ``configs/task/<task>.yaml`` looks.
Exit status 0 on success, 2 on a data or argument error (the message names the problem and the fix).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vlnorm_verl.tasks import MATH_EVAL_SOURCES
from vlnorm_verl.tasks.countdown_data import (
    DEFAULT_TEST_SIZE,
    DEFAULT_TRAIN_SIZE,
    HUB_DATASET,
    generated_rows,
    load_hub_records,
    load_local_copy,
    records_rows,
)
from vlnorm_verl.tasks.countdown_generator import GeneratorSpec
from vlnorm_verl.tasks.math_data import (
    HUB_EVAL_DATASET,
    ORZ_URL,
    PAPER_EVAL_SETS,
    eval_rows,
    load_eval_hub,
    load_eval_local,
    load_orz,
    train_rows,
)
from vlnorm_verl.tasks.parquet_io import COUNTDOWN_SCHEMA, MATH_SCHEMA, DataFileError, write_rows


def default_out(task: str) -> Path:
    """``${VLNORM_DATA_DIR:-data}/<task>``."""
    return Path(os.environ.get("VLNORM_DATA_DIR") or "data") / task


def default_eval_dir() -> Path | None:
    """The shared offline eval copies, ``<repo>/../shared/data/math_eval`` or ``./../shared/...``, if present."""
    candidates = [
        Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "math_eval",
        Path.cwd() / ".." / "shared" / "data" / "math_eval",
    ]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=["countdown", "math"], help="which task's data to prepare")
    parser.add_argument(
        "--out", type=Path, default=None, help="output directory (default ${VLNORM_DATA_DIR:-data}/TASK)"
    )
    parser.add_argument(
        "--source",
        default=None,
        help="countdown: generate (default, offline) | hub | PATH to a local copy of "
        f"{HUB_DATASET}; math: PATH or URL of orz_math_57k_collected.json, or 'orz' for its upstream URL",
    )
    parser.add_argument("--seed", type=int, default=0, help="countdown generator seed (default 0)")
    parser.add_argument(
        "--train-size",
        type=int,
        default=None,
        help=f"countdown: training rows (default {DEFAULT_TRAIN_SIZE}); math: keep the first N training items",
    )
    parser.add_argument(
        "--test-size", type=int, default=None, help=f"countdown test rows (default {DEFAULT_TEST_SIZE})"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="countdown generator processes (default: CPUs, max 8)"
    )
    parser.add_argument(
        "--four-fraction",
        type=float,
        default=0.5,
        help="countdown generator: share of 4-number instances (default 0.5)",
    )
    parser.add_argument(
        "--eval-dir",
        type=Path,
        default=None,
        help="math: directory with <set>.jsonl files (default ../shared/data/math_eval)",
    )
    parser.add_argument(
        "--eval-source", choices=["local", "hub"], default="local", help="math: eval sets from --eval-dir or the hub"
    )
    parser.add_argument(
        "--eval-sets",
        default=None,
        help="math: comma-separated eval sets (default: math500,aime24,amc23,minerva, plus olympiadbench if present)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _progress(total: int, desc: str, disable: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="row", disable=disable, file=sys.stderr, mininterval=0.5)


def _write(rows: list[dict], path: Path, schema) -> tuple[Path, int]:
    return path, write_rows(rows, path, schema)


def _prepare_countdown(args: argparse.Namespace, out: Path) -> list[tuple[Path, int]]:
    train_size = DEFAULT_TRAIN_SIZE if args.train_size is None else args.train_size
    test_size = DEFAULT_TEST_SIZE if args.test_size is None else args.test_size
    source = args.source or "generate"
    if source == "generate":
        spec = GeneratorSpec(four_fraction=args.four_fraction)
        with _progress(train_size + test_size, "generating CountDown", args.no_progress) as bar:
            splits = generated_rows(
                train_size, test_size, seed=args.seed, spec=spec, workers=args.workers, progress=bar.update
            )
        origin = f"generator (seed {args.seed})"
    else:
        if source == "hub":
            records, origin = load_hub_records(), HUB_DATASET
        else:
            records, origin = load_local_copy(source), str(source)
        splits = records_rows(records, train_size, test_size, origin)
    print(f"CountDown source: {origin}")
    return [_write(splits[name], out / f"{name}.parquet", COUNTDOWN_SCHEMA) for name in ("train", "test")]


def _eval_set_names(args: argparse.Namespace, eval_dir: Path | None) -> list[str]:
    if args.eval_sets:
        names = [n.strip() for n in args.eval_sets.split(",") if n.strip()]
        unknown = [n for n in names if n not in MATH_EVAL_SOURCES]
        if unknown:
            raise ValueError(f"unknown eval sets {unknown}; choose from {', '.join(MATH_EVAL_SOURCES)}")
        return names
    names = list(PAPER_EVAL_SETS)
    optional = "olympiadbench"
    if args.eval_source == "hub" or (
        eval_dir is not None and any((eval_dir / f"{optional}{s}").is_file() for s in (".jsonl", ".json"))
    ):
        names.append(optional)
    return names


def _prepare_math(args: argparse.Namespace, out: Path) -> list[tuple[Path, int]]:
    written: list[tuple[Path, int]] = []
    eval_dir = args.eval_dir if args.eval_dir is not None else default_eval_dir()
    names = _eval_set_names(args, eval_dir)
    if args.eval_source == "local" and eval_dir is None:
        raise DataFileError(
            "no eval-set directory: pass --eval-dir DIR (files <set>.jsonl with 'problem' and 'answer') "
            "or --eval-source hub"
        )
    loaded = {}
    for name in names:
        loaded[name] = load_eval_hub(name) if args.eval_source == "hub" else load_eval_local(name, eval_dir)
    train_pairs = None
    if args.source:
        train_pairs = load_orz(ORZ_URL if args.source == "orz" else args.source)
        if args.train_size is not None:
            if args.train_size < 1:
                raise ValueError(f"--train-size must be >= 1, got {args.train_size}")
            train_pairs = train_pairs[: args.train_size]
    total = sum(len(p) for p in loaded.values()) + (len(train_pairs) if train_pairs else 0)
    with _progress(total, "writing math", args.no_progress) as bar:
        if train_pairs is not None:
            written.append(_write(train_rows(train_pairs), out / "train.parquet", MATH_SCHEMA))
            bar.update(len(train_pairs))
        for name, pairs in loaded.items():
            written.append(_write(eval_rows(name, pairs), out / f"{name}.parquet", MATH_SCHEMA))
            bar.update(len(pairs))
    src = f"hub {HUB_EVAL_DATASET}" if args.eval_source == "hub" else str(eval_dir)
    print(f"math eval sets from: {src}")
    if train_pairs is None:
        print(
            "note: no training set written — the Open-Reasoner-Zero 57k JSON is not available offline. "
            "Pass --source /path/to/orz_math_57k_collected.json (or --source orz to download it) "
            f"to write {out / 'train.parquet'}."
        )
    return written


def run(args: argparse.Namespace) -> int:
    out = args.out if args.out is not None else default_out(args.task)
    try:
        written = _prepare_countdown(args, out) if args.task == "countdown" else _prepare_math(args, out)
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
