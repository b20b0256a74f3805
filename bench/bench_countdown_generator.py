"""CountDown generator throughput: rows/s for the default 32,768 + 1,024 split (target ≤ 60 s on 2 cores).

Usage::

    python bench/bench_countdown_generator.py [--rows 33792] [--workers 1,2] [--seed 0]

For each worker count, generates ``--rows`` distinct solvable instances and prints the wall time and rows/s,
the share of 4-number instances and a check that the outputs of all worker counts are identical.
Prints figures only; not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vlnorm_verl.tasks.countdown.generator import generate_instances  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32_768 + 1_024)
    parser.add_argument("--workers", default=f"1,{os.cpu_count() or 1}", help="comma-separated worker counts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    outputs = []
    print(f"CountDown generator, {args.rows} rows, seed {args.seed}, {os.cpu_count()} CPUs:")
    for workers in sorted({int(w) for w in args.workers.split(",")}):
        t0 = time.perf_counter()
        rows = generate_instances(args.rows, seed=args.seed, workers=workers)
        dt = time.perf_counter() - t0
        four = sum(len(r.numbers) == 4 for r in rows) / len(rows)
        print(f"  workers={workers}: {dt:6.1f} s  {len(rows) / dt:8.0f} rows/s  (4-number share {four:.1%})")
        outputs.append(rows)
    print(f"  identical across worker counts: {all(o == outputs[0] for o in outputs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
