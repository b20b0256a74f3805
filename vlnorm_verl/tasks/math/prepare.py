"""``vlnorm-verl prepare-data math``: the task's prepare-data hooks.

Usage::

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
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vlnorm_verl.tasks.base import RowWriter, Written
from vlnorm_verl.tasks.math import MATH_EVAL_SOURCES
from vlnorm_verl.tasks.math.data import (
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
from vlnorm_verl.tasks.parquet_io import DataFileError
from vlnorm_verl.tasks.prepare import progress_bar

EVAL_DIR_ENV = "VLNORM_MATH_EVAL_DIR"


def eval_dir_from(args: argparse.Namespace) -> Path | None:
    """``--eval-dir``, else ``$VLNORM_MATH_EVAL_DIR``, else None."""
    if args.eval_dir is not None:
        return args.eval_dir
    env = os.environ.get(EVAL_DIR_ENV)
    return Path(env).expanduser() if env else None


def add_arguments(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Add the math options; return its help for the shared ``--source`` and ``--train-size``."""
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
    return {
        "--source": "PATH or URL of orz_math_57k_collected.json, or 'orz' for its upstream URL",
        "--train-size": f"keep the first N training items (--smoke: default {SMOKE_TRAIN_SIZE})",
    }


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


def _prepare_smoke(args: argparse.Namespace, out: Path, write: RowWriter) -> Written:
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
    return [write(rows, out / f"{name}.parquet") for name, rows in splits.items()]


def prepare(args: argparse.Namespace, out: Path, write: RowWriter) -> Written:
    """Write the eval sets (and ``train.parquet`` with ``--source``), or the smoke set with ``--smoke``."""
    if args.smoke:
        return _prepare_smoke(args, out, write)
    written: Written = []
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
    with progress_bar(total, "writing math", args.no_progress) as bar:
        if train_pairs is not None:
            written.append(write(train_rows(train_pairs), out / "train.parquet"))
            bar.update(len(train_pairs))
        for name, pairs in loaded.items():
            written.append(write(eval_rows(name, pairs), out / f"{name}.parquet"))
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
