"""Benchmark: how long a CPU run takes to start - ``vlnorm-verl train countdown_vlnorm cluster=cpu model=tiny``,
one step, from the launch to the end of step 1, phase by phase.

Each line the run prints is stamped with the time since launch; a phase ends at the first line that marks it
(:data:`PHASES`, lines of the launcher, verl's driver, its TaskRunner and Ray; lines from Ray actors reach the
driver through Ray's log monitor, a fraction of a second late). "step 1 logged" is when verl's file logger
wrote the step's record. ``--baseline REF`` runs the same command from a git worktree of REF first (the project
imported from there through ``PYTHONPATH``, in the driver and in every Ray worker) and prints each figure of
this checkout as a ratio to it. Every run executes in a private network namespace (root and unshare), as the
tests do; nothing else should run meanwhile.

It also reads the CPU time of every process the launch started (sampled every 0.25 s until step 1 is logged;
the last fraction of a second of a process that exits before then is missed) and prints it by process, with
its sum divided by the machine's cores: the wall time to step 1 cannot be below that floor on this machine
however the processes were scheduled.

Usage: python bench/bench_startup.py [--baseline 701443b] [--ranks 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "support"))

from trainer_run import FAST, SUPPORT, in_netns, netns_reason, prepare_countdown, trainer_env  # noqa: E402

#: (phase, the text of the line that ends it), in order
PHASES = (
    ("launcher: imports, composition, checks", "[vlnorm-verl] running"),
    ("verl's main_ppo until ray.init", "ray init kwargs"),
    ("ray.init", "Started a local Ray instance"),
    ("TaskRunner actor start", "(TaskRunnerV1 pid="),
    ("TransferQueue, datasets", "create worker group"),
    ("worker actors + init_model", "actor and ref model engine initialized"),
    ("reward loop, rollout servers", "all initialize finished"),
)
RECIPE = "countdown_vlnorm"


def one_run(pythonpath: str, data: Path, cache: Path, work: Path, ranks: int) -> dict[str, float]:
    overrides = [
        *FAST,
        f"reward.custom_reward_function.path={SUPPORT / 'toy_rewards.py'}",
        "reward.custom_reward_function.name=digit_parity",
        "trainer.total_training_steps=1",
    ]
    cmd = [sys.executable, "-m", "vlnorm_verl.launch.cli", "train", RECIPE, "cluster=cpu", "model=tiny", *overrides]
    env = trainer_env(work, data, cache, VLNORM_CPU_RANKS=str(ranks))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH", "")) if p)
    marks: dict[str, float] = {}
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    proc = subprocess.Popen(in_netns(cmd), env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True)  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            for name, marker in PHASES:
                if name not in marks and marker in line:
                    marks[name] = time.monotonic() - t0

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    logs = work / "runs" / "logs" / f"{RECIPE}-tiny"
    cpu: dict[int, tuple[str, float]] = {}  # pid -> (process, CPU-seconds so far)
    sampled = 0.0
    while proc.poll() is None and time.monotonic() - t0 < 600:
        if "step 1 logged" not in marks:
            if time.monotonic() - sampled >= 0.25:
                sampled = time.monotonic()
                _sample_cpu(proc.pid, cpu)
            if any(p.stat().st_size > 0 for p in logs.glob("*/*/*.jsonl")):
                _sample_cpu(proc.pid, cpu)
                marks["step 1 logged"] = time.monotonic() - t0
        time.sleep(0.05)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    marks["process exit"] = time.monotonic() - t0
    by_process: dict[str, float] = defaultdict(float)
    for name, seconds in cpu.values():
        by_process[name] += seconds
    marks.update({f"cpu {name}": seconds for name, seconds in by_process.items()})
    if proc.returncode != 0 or "step 1 logged" not in marks:
        raise SystemExit(f"run failed (exit {proc.returncode}):\n{''.join(lines[-60:])}")
    return marks


def _process_name(p: psutil.Process) -> str:
    """A Ray actor's class (``ray::TaskRunnerV1``), a Ray daemon's binary, or the launcher."""
    cmdline = p.cmdline()
    if not cmdline:
        return p.name()
    if cmdline[0].startswith("ray::"):
        return cmdline[0].split(".")[0].split()[0]
    if "vlnorm_verl.launch.cli" in cmdline:
        return "launcher (verl's driver)"
    script = next((Path(a).name for a in cmdline[1:] if a.endswith(".py")), None)
    return f"ray {script}" if script else Path(cmdline[0]).name


def _sample_cpu(root: int, cpu: dict[int, tuple[str, float]]) -> None:
    try:
        launcher = psutil.Process(root)
        procs = [launcher, *launcher.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            with p.oneshot():
                times = p.cpu_times()
                cpu[p.pid] = (_process_name(p), times.user + times.system)
        except psutil.Error:
            pass


def measure(label: str, pythonpath: str, data: Path, cache: Path, root: Path, args) -> dict[str, float]:
    runs = []
    for i in range(args.repeat):
        runs.append(one_run(pythonpath, data, cache, root / f"{label}-{i}", args.ranks))
        print(f"[{label}] run {i + 1}: step 1 logged at {runs[-1]['step 1 logged']:.1f} s", flush=True)
    keys = [name for name, _ in PHASES] + ["step 1 logged", "process exit"]
    keys += sorted({k for r in runs for k in r if k.startswith("cpu ")})
    return {k: statistics.median(r.get(k, 0.0 if k.startswith("cpu ") else float("nan")) for r in runs) for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="git ref to compare with (e.g. the commit before a change)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    reason = netns_reason()
    if reason:
        raise SystemExit(f"cannot isolate the runs: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = prepare_countdown(root / "data", train_size=64)
        cache = root / "cache"
        results = {}
        if args.baseline:
            tree = root / "baseline"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), args.baseline],
                           check=True, capture_output=True)  # fmt: skip
            try:
                results[f"baseline {args.baseline}"] = measure("baseline", str(tree), data, cache, root, args)
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                               capture_output=True)  # fmt: skip
        results["this checkout"] = measure("now", str(REPO), data, cache, root, args)
    labels = list(results)
    print(f"\none-step `vlnorm-verl train {RECIPE} cluster=cpu model=tiny`, {args.ranks} ranks; seconds since "
          f"launch when each phase ended (median of {args.repeat})")  # fmt: skip
    print("| phase ends | " + " | ".join(labels) + (" | ratio |" if len(labels) == 2 else " |"))
    print("|---" * (len(labels) + 1 + (len(labels) == 2)) + "|")
    previous = dict.fromkeys(labels, 0.0)
    for key in [k for k in results[labels[-1]] if not k.startswith("cpu ")]:
        cells = []
        for label in labels:
            at = results[label][key]
            cells.append(f"{at:.1f} (+{at - previous[label]:.1f})")
            previous[label] = at if at == at else previous[label]
        ratio = f" | {results[labels[1]][key] / results[labels[0]][key]:.2f}" if len(labels) == 2 else ""
        print(f"| {key} | " + " | ".join(cells) + ratio + " |")
    _print_cpu(results, labels)


def _print_cpu(results: dict[str, dict[str, float]], labels: list[str]) -> None:
    cores = os.cpu_count() or 1
    names = sorted({k for label in labels for k in results[label] if k.startswith("cpu ")},
                   key=lambda k: -results[labels[-1]].get(k, 0.0))  # fmt: skip
    print(f"\nCPU-seconds used until step 1 was logged, by process (Ray actors by class; {cores} cores)")
    print("| process | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    for key in names:
        print(f"| {key[4:]} | " + " | ".join(f"{results[label].get(key, 0.0):.1f}" for label in labels) + " |")
    totals = [sum(v for k, v in results[label].items() if k.startswith("cpu ")) for label in labels]
    print("| all | " + " | ".join(f"{t:.1f}" for t in totals) + " |")
    print("| all / cores: the floor of the wall to step 1 | " + " | ".join(f"{t / cores:.1f}" for t in totals) + " |")
    print("| step 1 logged (wall) | " + " | ".join(f"{results[label]['step 1 logged']:.1f}" for label in labels) + " |")


if __name__ == "__main__":
    main()
