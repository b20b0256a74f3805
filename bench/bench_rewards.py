"""Reward throughput: CountDown (ours vs the authors' ``eval`` approach) and math (math-verify in workers).

Usage::

    python bench/bench_rewards.py [--countdown N] [--math N] [--math-workers K] [--seed S]

CountDown: N responses (≈1 kB of reasoning each, then an answer line) built from generated instances —
a third correct, a third wrong, a third malformed — scored by ``vlnorm_verl.rewards.compute_score`` and by a
baseline that follows the authors' ``eval``-based rule (implemented below for this comparison only, on these
honest inputs); prints responses/s for both and their agreement.

Math: N boxed answers drawn from the offline eval sets (``../shared/data/math_eval``) — a third identical to
the ground truth, a third in an equivalent but different form, a third wrong — timed one by one (latency p50/p99)
and as one batch through ``compute_scores`` (throughput). Prints figures only; not a test.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "support"))

from authors_countdown import authors_score as authors_eval_score  # noqa: E402

from vlnorm_verl.rewards import compute_score, compute_scores  # noqa: E402
from vlnorm_verl.tasks.countdown.generator import generate_instances  # noqa: E402


def countdown_corpus(n: int, seed: int) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    instances = generate_instances(max(1, n // 3), seed=seed)
    filler = "Let me try combining the numbers in a different order and check the result. " * 12
    corpus = []
    for i in range(n):
        inst = instances[i % len(instances)]
        gt = {"target": inst.target, "numbers": list(inst.numbers)}
        kind = i % 3
        if kind == 0:
            answer = f"<answer> {inst.solution} </answer>"
        elif kind == 1:
            wrong = re.sub(r"[+\-*/]", lambda m: rng.choice("+-*/"), inst.solution, count=1)
            answer = f"<answer> {wrong} </answer>"
        else:
            answer = rng.choice(["<answer> I am not sure </answer>", "no answer", f"<answer> {inst.solution}"])
        corpus.append((f" {filler}</think>\n{answer}", gt))
    return corpus


def bench_countdown(n: int, seed: int) -> None:
    corpus = countdown_corpus(n, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        t0 = time.perf_counter()
        base = [authors_eval_score(s, gt) for s, gt in corpus]
        t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = [compute_score("countdown", s, gt)["score"] for s, gt in corpus]
    t_ours = time.perf_counter() - t0
    agree = sum(a == b for a, b in zip(ours, base, strict=True)) / n
    print(f"CountDown reward, {n} responses (~{len(corpus[0][0])} chars each), one process:")
    print(f"  vlnorm_verl (safe parser):   {n / t_ours:10.0f} responses/s  ({t_ours * 1e6 / n:.1f} us each)")
    print(f"  authors' eval baseline:      {n / t_base:10.0f} responses/s  ({t_base * 1e6 / n:.1f} us each)")
    print(f"  agreement on this corpus:    {agree:.2%}   (correct: {sum(ours):.0f})")


def math_corpus(n: int, seed: int, eval_dir: Path) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    answers = []
    for name in ("math500", "aime24", "amc23", "minerva", "olympiadbench"):
        for line in (eval_dir / f"{name}.jsonl").read_text().splitlines():
            if line.strip():
                a = json.loads(line)["answer"]
                a = a[0] if isinstance(a, list) else a
                a = str(int(a)) if isinstance(a, float) and a.is_integer() else str(a)
                answers.append((name, a.strip()))
    corpus = []
    for i in range(n):
        source, gt = rng.choice(answers)
        kind = i % 3
        if kind == 0:
            pred = gt
        elif kind == 1:
            pred = gt.replace("\\frac", "\\dfrac") if "\\frac" in gt else f"{gt}.0" if gt.isdigit() else f" {gt} "
            if pred.strip() == gt:
                pred = f"\\left({gt}\\right)" if not gt.startswith("(") else gt.replace("(", "\\left(")
        else:
            pred = rng.choice(answers)[1]
        corpus.append((source, f"Some reasoning.\nThe final answer is $\\boxed{{{pred}}}$.", gt))
    return corpus


def bench_math(n: int, seed: int, workers: int | None) -> None:
    eval_dir = REPO / ".." / "shared" / "data" / "math_eval"
    if not eval_dir.is_dir():
        print(f"math benchmark skipped: {eval_dir} not found")
        return
    from vlnorm_verl.tasks.math import pool as math_pool

    pool = math_pool.MathVerifyPool(size=workers)
    math_pool._DEFAULT = pool  # the entry point uses the process-wide pool
    t0 = time.perf_counter()
    pool.warm()
    startup = time.perf_counter() - t0
    print(f"Math reward, {n} boxed answers, {pool.size} math-verify workers (start-up {startup:.1f}s):")
    corpus = math_corpus(n, seed, eval_dir)
    lat = []
    t0 = time.perf_counter()
    scores = []
    for source, resp, gt in corpus:
        t = time.perf_counter()
        scores.append(compute_score(source, resp, gt)["score"])
        lat.append(time.perf_counter() - t)
    t_seq = time.perf_counter() - t0
    lat.sort()
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    print(
        f"  one by one:  {n / t_seq:8.1f} responses/s   latency p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.1f} ms, "
        f"max {lat[-1] * 1e3:.0f} ms, mean {statistics.mean(lat) * 1e3:.1f} ms"
    )
    pool.stats.update(timeouts=0, crashes=0)
    t0 = time.perf_counter()
    batch = compute_scores([c[0] for c in corpus], [c[1] for c in corpus], [c[2] for c in corpus])
    t_batch = time.perf_counter() - t0
    print(
        f"  batched:     {n / t_batch:8.1f} responses/s   ({t_batch:.2f} s for the batch; "
        f"timeouts {pool.stats['timeouts']}, crashes {pool.stats['crashes']})"
    )
    same = sum(a == b["score"] for a, b in zip(scores, batch, strict=True))
    print(f"  correct: {sum(scores):.0f}/{n}; batch and one-by-one agree on {same}/{n}")
    pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--countdown", type=int, default=30_000, help="CountDown responses (default 30000)")
    parser.add_argument("--math", type=int, default=1_000, help="math responses (default 1000)")
    parser.add_argument("--math-workers", type=int, default=None, help="math-verify workers (default: pool default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.countdown:
        bench_countdown(args.countdown, args.seed)
    if args.math:
        bench_math(args.math, args.seed, args.math_workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
