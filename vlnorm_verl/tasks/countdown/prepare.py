"""``vlnorm-verl prepare-data countdown``: the task's prepare-data hooks (offline by default).

Usage::

    vlnorm-verl prepare-data countdown [--out DIR] [--source generate|hub|PATH] [--seed N]
                                       [--train-size 32768] [--test-size 1024] [--workers N]

writes ``DIR/train.parquet`` and ``DIR/test.parquet``. ``--source`` is ``generate`` (the offline generator, the
default), ``hub`` (``Jiayi-Pan/Countdown-Tasks-3to4`` through ``datasets``) or a local copy of that dataset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vlnorm_verl.tasks.base import RowWriter, Written
from vlnorm_verl.tasks.countdown.data import (
    DEFAULT_TEST_SIZE,
    DEFAULT_TRAIN_SIZE,
    HUB_DATASET,
    generated_rows,
    load_hub_records,
    load_local_copy,
    records_rows,
)
from vlnorm_verl.tasks.countdown.generator import GeneratorSpec
from vlnorm_verl.tasks.prepare import progress_bar


def add_arguments(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Add the CountDown options; return its help for the shared ``--source`` and ``--train-size``."""
    parser.add_argument("--seed", type=int, default=0, help="countdown generator seed (default 0)")
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
    return {
        "--source": f"generate (default, offline) | hub | PATH to a local copy of {HUB_DATASET}",
        "--train-size": f"training rows (default {DEFAULT_TRAIN_SIZE})",
    }


def prepare(args: argparse.Namespace, out: Path, write: RowWriter) -> Written:
    """Write ``out/train.parquet`` and ``out/test.parquet``; ``ValueError``/``DataFileError`` on bad input."""
    if getattr(args, "smoke", False):
        raise ValueError("--smoke is for the math task (CountDown data is generated offline)")
    train_size = DEFAULT_TRAIN_SIZE if args.train_size is None else args.train_size
    test_size = DEFAULT_TEST_SIZE if args.test_size is None else args.test_size
    source = args.source or "generate"
    if source == "generate":
        spec = GeneratorSpec(four_fraction=args.four_fraction)
        with progress_bar(train_size + test_size, "generating CountDown", args.no_progress) as bar:
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
    return [write(splits[name], out / f"{name}.parquet") for name in ("train", "test")]
