"""``vlnorm-verl prepare-data countdown|math``: write the tasks' parquet files for verl.

CountDown (offline by default)::

    vlnorm-verl prepare-data countdown [--out DIR] [--source generate|hub|PATH] [--seed N]
                                       [--train-size 32768] [--test-size 1024] [--workers N]

writes ``DIR/train.parquet`` and ``DIR/test.parquet``.

Math::

    vlnorm-verl prepare-data math [--out DIR] [--source PATH|URL|orz] [--train-size N]
                                  [--eval-dir DIR | --eval-source hub] [--eval-sets math500,aime24,...]
    vlnorm-verl prepare-data math --smoke --eval-dir DIR [--out DIR] [--train-size 64]

writes ``DIR/<set>.parquet`` for each evaluation set and, when ``--source`` is given, ``DIR/train.parquet`` from
the Open-Reasoner-Zero 57k JSON (``orz`` = its upstream URL; the file is not available offline, so without
``--source`` only the evaluation sets are written and the command says so). ``--eval-dir`` defaults to
``$VLNORM_MATH_EVAL_DIR``; there is no other default.

``--smoke`` writes an offline smoke set instead, from the local eval copies: ``train.parquet`` (64 rows by
default, ``math_train``) and 8 rows of each eval set as ``<set>.parquet``, no row in both, every row marked
``extra_info.smoke``. It is for checking the pipeline (e.g. a math recipe on ``cluster=cpu``), not for results.

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
    SMOKE_TRAIN_SIZE,
    SMOKE_VAL_SIZE,
    eval_rows,
    eval_set_file,
    load_eval_hub,
    load_eval_local,
    load_orz,
    smoke_splits,
    train_rows,
)
from vlnorm_verl.tasks.parquet_io import COUNTDOWN_SCHEMA, MATH_SCHEMA, DataFileError, write_rows


def default_out(task: str) -> Path:
    """``${VLNORM_DATA_DIR:-data}/<task>``."""
    return Path(os.environ.get("VLNORM_DATA_DIR") or "data") / task


EVAL_DIR_ENV = "VLNORM_MATH_EVAL_DIR"


def eval_dir_from(args: argparse.Namespace) -> Path | None:
    """``--eval-dir``, else ``$VLNORM_MATH_EVAL_DIR``, else None."""
    if args.eval_dir is not None:
        return args.eval_dir
    env = os.environ.get(EVAL_DIR_ENV)
    return Path(env).expanduser() if env else None


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
        help=f"countdown: training rows (default {DEFAULT_TRAIN_SIZE}); math: keep the first N training items "
        f"(--smoke: default {SMOKE_TRAIN_SIZE})",
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
        help=f"math: directory with <set>.jsonl files (default ${EVAL_DIR_ENV})",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="math: write a small offline smoke set (train + validation) from the --eval-dir copies, "
        "for checking the pipeline, not for results",
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
    if args.eval_source == "hub" or (eval_dir is not None and eval_set_file(optional, eval_dir) is not None):
        names.append(optional)
    return names


def _prepare_math_smoke(args: argparse.Namespace, out: Path) -> list[tuple[Path, int]]:
    eval_dir = eval_dir_from(args)
    if args.source or args.eval_source != "local":
        raise ValueError("--smoke builds its training set from the local eval copies: drop --source/--eval-source")
    if eval_dir is None:
        raise DataFileError(
            f"--smoke needs the local eval copies: pass --eval-dir DIR (or set {EVAL_DIR_ENV}) with <set>.jsonl "
            "files holding 'problem' and 'answer'"
        )
    names = _eval_set_names(args, eval_dir) if args.eval_sets else list(MATH_EVAL_SOURCES)
    present = [n for n in names if eval_set_file(n, eval_dir) is not None]
    if not present:
        raise DataFileError(
            f"--eval-dir {eval_dir} holds none of {', '.join(f'{n}.jsonl' for n in names)}: point --eval-dir "
            "at the eval copies"
        )
    try:
        loaded = {name: load_eval_local(name, eval_dir) for name in present}
        splits = smoke_splits(loaded, SMOKE_TRAIN_SIZE if args.train_size is None else args.train_size)
    except DataFileError as exc:
        raise DataFileError(f"--eval-dir {eval_dir} holds no usable smoke rows: {exc}") from exc
    missing = [n for n in PAPER_EVAL_SETS if n not in present]
    print(
        f"smoke data: {len(splits['train'])} training rows and {SMOKE_VAL_SIZE} validation rows per set from the "
        f"eval copies in {eval_dir} (marked extra_info.smoke) - for checking the pipeline, not for results"
    )
    if missing:
        print(f"note: no {', '.join(missing)} in {eval_dir}; drop them from data.val_files")
    return [_write(rows, out / f"{name}.parquet", MATH_SCHEMA) for name, rows in splits.items()]


def _prepare_math(args: argparse.Namespace, out: Path) -> list[tuple[Path, int]]:
    if args.smoke:
        return _prepare_math_smoke(args, out)
    written: list[tuple[Path, int]] = []
    eval_dir = eval_dir_from(args)
    names = _eval_set_names(args, eval_dir)
    if args.eval_source == "local" and eval_dir is None:
        raise DataFileError(
            f"no eval-set directory: pass --eval-dir DIR (or set {EVAL_DIR_ENV}; files <set>.jsonl with 'problem' "
            "and 'answer') or --eval-source hub"
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
    if args.smoke and args.task != "math":
        print("error: --smoke is for the math task (CountDown data is generated offline)", file=sys.stderr)
        return 2
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
