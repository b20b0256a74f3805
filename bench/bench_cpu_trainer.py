"""Benchmark: verl's real trainer on CPU (``cluster=cpu model=tiny``), VL Norm vs DAPO token-mean.

Runs ``countdown_vlnorm`` (VL Norm, alpha = 1) and ``countdown_dapo_norm`` (verl's token-mean: DAPO Norm) with
the same CPU config — 2 ranks, 4 prompts x n = 4, responses <= 32 tokens, the test-only ``digit_parity`` reward
so that groups carry signal — for ``--steps`` steps each, and prints

* start-up: launch to the first logged step (process start -> first line of verl's file log);
* steady step time: the median of verl's ``timing_s/step`` over the steps after the first ``--warmup``, with
  its phases (``timing_s/gen``, ``timing_s/old_log_prob``, ``timing_s/update_actor``, ``timing_s/update_weights``);
* the ratio VL Norm / DAPO of the steady step time (target <= 1.02).

Each run executes in a private network namespace (needs root and unshare), as the tests do.
Usage: python bench/bench_cpu_trainer.py [--steps 10] [--warmup 3] [--ranks 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

from trainer_run import SUPPORT, CPUTrainer, netns_reason, prepare_countdown  # noqa: E402

PHASES = ("timing_s/gen", "timing_s/old_log_prob", "timing_s/update_actor", "timing_s/update_weights")


def run_one(trainer: CPUTrainer, recipe: str, steps: int, ranks: int, work: Path) -> tuple[float, dict]:
    overrides = [
        f"reward.custom_reward_function.path={SUPPORT / 'toy_rewards.py'}",
        "reward.custom_reward_function.name=digit_parity",
        f"trainer.total_training_steps={steps}",
    ]
    t0 = time.monotonic()
    proc = trainer.start(recipe, overrides, work, VLNORM_CPU_RANKS=str(ranks))
    first_step = None
    logs = work / "runs" / "logs" / f"{recipe}-tiny"
    while proc.poll() is None and time.monotonic() - t0 < 900:
        if first_step is None and any(p.stat().st_size > 0 for p in logs.glob("*/*/*.jsonl")):
            first_step = time.monotonic() - t0
        time.sleep(0.2)
    run = trainer.finish(proc, recipe, overrides, work, timeout=900, t0=t0)
    if run.returncode != 0 or len(run.records) != steps:
        raise SystemExit(f"{recipe} failed (rc={run.returncode}):\n{run.tail()}")
    return first_step or float("nan"), {r["step"]: r["data"] for r in run.records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3, help="steps left out of the steady-state median")
    parser.add_argument("--ranks", type=int, default=2)
    args = parser.parse_args()
    reason = netns_reason()
    if reason:
        raise SystemExit(f"cannot isolate the runs: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepare_countdown(root / "data", train_size=256)
        trainer = CPUTrainer(data=root / "data", cache=root / "cache")
        results = {}
        for label, recipe in (("DAPO token-mean", "countdown_dapo_norm"), ("VL Norm", "countdown_vlnorm")):
            startup, steps = run_one(trainer, recipe, args.steps, args.ranks, root / recipe)
            steady = [steps[s] for s in sorted(steps) if s > args.warmup]
            results[label] = (startup, {k: statistics.median(d[k] for d in steady) for k in ("timing_s/step", *PHASES)})
    print(
        f"verl trainer on CPU: {args.ranks} ranks, 4 prompts x n=4, responses <= 32 tokens, tiny Qwen2; "
        f"median over steps {args.warmup + 1}..{args.steps}"
    )
    print(f"| arm | start-up to step 1 (s) | step (s) | {' | '.join(p.split('/')[1] for p in PHASES)} |")
    print("|---|---|---|" + "---|" * len(PHASES))
    for label, (startup, t) in results.items():
        phases = " | ".join(f"{t[p]:.3f}" for p in PHASES)
        print(f"| {label} | {startup:.1f} | {t['timing_s/step']:.3f} | {phases} |")
    base = results["DAPO token-mean"][1]["timing_s/step"]
    print(f"VL Norm / DAPO step time: {results['VL Norm'][1]['timing_s/step'] / base:.3f}x")


if __name__ == "__main__":
    main()
