"""``vlnorm-verl quickstart`` (``python -m vlnorm_verl.quickstart``): the CPU demo on the product's own path.

1. **Warm-start** the ``model=tiny`` policy on the CountDown rows' reference solutions, each after a search
   trace of 0-6 rejected tries so that response lengths vary (verl's SFT trainer on the CPU,
   :mod:`vlnorm_verl.warmstart`; cached by content, so reruns skip it).
2. **Train both arms** as a user launches a recipe: ``vlnorm-verl train countdown_dapo_vlnorm`` and its DAPO
   baseline ``countdown_dapo_plain`` side by side (two launches, each with its own Ray cluster and ``--ranks``
   CPU ranks, default 1: on 2 cores this takes 247 s where one after the other with 2 ranks each took 308 s,
   mostly because the two start-ups overlap), each ``cluster=cpu model=tiny`` from the warm-started
   checkpoint with the same seed and data order (:data:`RUN_SETTINGS`; extra arguments are Hydra overrides for
   both). Each run's full console output goes to ``<out>/logs/<recipe>.log``; one line per step is printed
   from verl's file logger.

Outputs under ``--out`` (``$QS_OUT``, default ``outputs/quickstart``): ``runs/`` (the launcher's logs, wandb
offline runs and checkpoints), ``logs/``, ``cache/``, ``summary.json``. ``scripts/quickstart.sh`` then compares
the runs and probes the VL Norm arm's checkpoint with the ``compare`` and ``probe`` sub-commands.
Exit status: 0 done, 1 a run failed or timed out, 2 bad input (missing data, a Ray cluster already running),
128 + the signal's number when SIGINT (130), SIGTERM (143) or SIGHUP (129) stopped it; in every case no process
it started (the warm-start's SFT trainer, the runs and their Ray clusters) is left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vlnorm_verl.compare.jsonl_reader import read_jsonl
from vlnorm_verl.extension.settings import EXIT_INVALID
from vlnorm_verl.quickstart.processes import Child, exit_status, interrupt_on_signals, stale_ray_processes
from vlnorm_verl.quickstart.report import length_percentiles

ACCEPTS_EXTRA_ARGS = True
EXIT_FAILED = 1
ARMS = ("countdown_dapo_vlnorm", "countdown_dapo_plain")
REWARD = "critic/score/mean"
LENGTH = "response_length/mean"
WINDOW = 10
#: both arms' settings beyond the recipe and ``cluster=cpu model=tiny``: sizes for 2 cores, responses long
#: enough for the warm-start's traces (up to ~170 tokens), one seed, no resume (a rerun starts from the
#: warm-start), a checkpoint at the last step (the probe reads it)
RUN_SETTINGS = (
    "data.train_batch_size=4",
    "actor_rollout_ref.rollout.n=8",
    "actor_rollout_ref.actor.ppo_mini_batch_size=4",
    "data.max_response_length=192",
    "data.seed=1",
    "trainer.val_before_train=false",
    "trainer.test_freq=-1",
    "trainer.resume_mode=disable",
    "trainer.logger=[console,file,wandb]",
    "actor_rollout_ref.rollout.engine_kwargs.hf.threads=1",
)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=os.environ.get("QS_OUT") or "outputs/quickstart", help="$QS_OUT")
    parser.add_argument("--data-dir", default=None, help="prepared data ($VLNORM_DATA_DIR, default <out>/data)")
    parser.add_argument(
        "--runs-dir", default=None, help="the runs' logs and checkpoints ($VLNORM_RUNS_DIR, default <out>/runs)"
    )
    parser.add_argument("--cache", default=None, help="tiny model + warm-start cache ($QS_CACHE, default <out>/cache)")
    parser.add_argument("--steps", type=int, default=_env_int("QS_STEPS", 20), help="RL steps per arm ($QS_STEPS)")
    parser.add_argument(
        "--warmstart-steps", type=int, default=_env_int("QS_WARMSTART_STEPS", 160), help="$QS_WARMSTART_STEPS"
    )
    parser.add_argument("--ranks", type=int, default=_env_int("VLNORM_CPU_RANKS", 1), help="CPU ranks per run")
    parser.add_argument("--startup-timeout", type=float, default=600, help="seconds a run may take to its first step")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take in all")


def _say(msg: str) -> None:
    print(msg, flush=True)


@dataclass
class Arm:
    recipe: str
    runs_dir: Path
    steps: int
    rows: list[tuple[int, dict[str, float]]] = field(default_factory=list)

    def jsonl(self) -> Path | None:
        found = sorted((self.runs_dir / "logs" / self.recipe).glob(f"*/*/{self.recipe}.jsonl"))
        return found[-1] if found else None

    def read(self) -> list[tuple[int, dict[str, float]]]:
        """(step, metrics) logged since the last call (verl's file logger, read while the run writes it)."""
        path = self.jsonl()
        if path is None:
            return []
        rows = read_jsonl(path, live=True).rows
        new = rows[len(self.rows) :]
        self.rows = rows
        return new

    def series(self, key: str) -> list[float]:
        return [row[key] for _, row in self.rows if key in row]

    def config(self) -> DictConfig:
        """The run's composed config, as Hydra saved it in the launch's attempt directory."""
        logs = self.runs_dir / "logs" / self.recipe
        found = sorted(logs.glob("*/.hydra/config.yaml"))
        if not found:
            raise FileNotFoundError(f"{self.recipe}: no .hydra/config.yaml under {logs}")
        return OmegaConf.load(found[-1])

    def checkpoint(self, cfg: DictConfig) -> Path:
        """The actor checkpoint verl saved at the last step (under ``trainer.default_local_dir``)."""
        return Path(cfg.trainer.default_local_dir) / f"global_step_{self.steps}" / "actor"


def arm_command(recipe: str, model: Path, steps: int, runs_dir: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "vlnorm_verl.launch.cli", "train", recipe, "cluster=cpu", "model=tiny",
        f"actor_rollout_ref.model.path={model}", *RUN_SETTINGS, f"trainer.total_training_steps={steps}",
        f"trainer.save_freq={steps}", f"trainer.experiment_name={recipe}",
        f"trainer.rollout_data_dir={rollout_dir(runs_dir, recipe)}", *extra,
    ]  # fmt: skip


def rollout_dir(runs_dir: Path, recipe: str) -> Path:
    return runs_dir / "rollouts" / recipe


def progress_line(arm: Arm, step: int, d: dict[str, float]) -> str:
    nan = float("nan")
    return (
        f"[{arm.recipe}] step {step:3d}/{arm.steps}  reward {d.get(REWARD, nan):.3f}  "
        f"mean response length {d.get(LENGTH, nan):5.1f}  step {d.get('timing_s/step', nan):5.1f} s"
    )


def _train(runs: list[tuple[Arm, Child]], startup_timeout: float, timeout: float) -> str | None:
    """Follow the runs to their end; the reason to stop early, or None when every run finished."""
    t0 = time.monotonic()
    while True:
        codes = []
        for arm, child in runs:
            code = child.poll()
            for step, metrics in arm.read():
                _say(progress_line(arm, step, metrics))
            if code not in (None, 0):
                return f"{arm.recipe} failed (exit {code}); the end of {child.log_path}:\n{child.tail()}"
            if not arm.rows and time.monotonic() - t0 > startup_timeout:
                return (
                    f"{arm.recipe} logged no step within {startup_timeout:.0f} s; "
                    f"the end of {child.log_path}:\n{child.tail()}"
                )
            codes.append(code)
        if all(code == 0 for code in codes):
            return None
        if time.monotonic() - t0 > timeout:
            return f"the runs did not finish within {timeout:.0f} s; see their logs in {runs[0][1].log_path.parent}"
        time.sleep(1.0)


def check_inputs(train: Path) -> str | None:
    """What stops the quickstart before it starts anything: missing data, a Ray cluster already running."""
    if not train.is_file():
        return (
            f"no CountDown training data at {train}: prepare it with `vlnorm-verl prepare-data countdown --out "
            f"{train.parent}` or point --data-dir / VLNORM_DATA_DIR at it"
        )
    stale = stale_ray_processes()
    if stale:
        pids = ", ".join(f"{p.pid} ({p.name()})" for p in stale[:6])
        return (
            f"a Ray cluster is already running on this machine (pids {pids}), e.g. left by an interrupted run: "
            "stop it with `ray stop --force` (or kill those processes) and rerun"
        )
    return None


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def run(args: argparse.Namespace) -> int:
    """The quickstart; SIGINT, SIGTERM and SIGHUP stop it and everything it started (module docstring)."""
    with interrupt_on_signals():
        try:
            return _run(args)
        except KeyboardInterrupt as exc:  # between the steps that stop their own children
            print(f"interrupted ({exc}); nothing is left running", file=sys.stderr)
            return exit_status(exc)


def _run(args: argparse.Namespace) -> int:
    from vlnorm_verl.warmstart import WarmStartError, WarmStartSettings, warm_start

    out = Path(args.out).expanduser().resolve()
    data_dir = Path(args.data_dir or os.environ.get("VLNORM_DATA_DIR") or out / "data").expanduser().resolve()
    cache = Path(args.cache or os.environ.get("QS_CACHE") or out / "cache").expanduser().resolve()
    train = data_dir / "countdown" / "train.parquet"
    if args.steps < 1 or args.warmstart_steps < 1:
        print("error: --steps and --warmstart-steps must be >= 1", file=sys.stderr)
        return EXIT_INVALID
    problem = check_inputs(train)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_INVALID
    t0 = time.perf_counter()
    try:
        ws = warm_start(train, cache, WarmStartSettings(steps=args.warmstart_steps), log=_say)
    except WarmStartError as exc:
        print(f"error: warm-start: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        print(f"interrupted ({exc}) during the warm-start; nothing is left running", file=sys.stderr)
        return exit_status(exc)
    runs_dir = Path(args.runs_dir or out / "runs").expanduser().resolve()
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "VERL_FILE_LOGGER_PATH")}
    env.update(
        VLNORM_DATA_DIR=str(data_dir),
        VLNORM_RUNS_DIR=str(runs_dir),
        VLNORM_CACHE_DIR=str(cache),
        VLNORM_CPU_RANKS=str(args.ranks),
        WANDB_MODE=os.environ.get("WANDB_MODE", "offline"),
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
    )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ws.path))
    summary: dict[str, Any] = {"warmstart": {"path": str(ws.path), "cached": ws.cached, "wall_s": ws.wall_s}}
    runs = []
    for recipe in ARMS:
        cmd = arm_command(recipe, ws.path, args.steps, runs_dir, list(args.extra or []))
        runs.append((Arm(recipe, runs_dir, args.steps), Child(recipe, cmd, env, out / "logs" / f"{recipe}.log")))
    _say(
        f"\n== vlnorm-verl train {' and '.join(ARMS)} side by side, cluster=cpu model=tiny, {args.ranks} rank(s) "
        f"each, {args.steps} steps (verl's output: {out / 'logs'}/<recipe>.log)"
    )
    start = time.perf_counter()
    interrupted: KeyboardInterrupt | None = None
    try:
        for _, child in runs:
            child.start()
        problem = _train(runs, args.startup_timeout, args.timeout)
    except KeyboardInterrupt as exc:
        interrupted = exc
    finally:
        for _, child in runs:
            child.stop()
    if interrupted is not None:
        print(f"interrupted ({interrupted}): stopped both runs and every process they started", file=sys.stderr)
        return exit_status(interrupted)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_FAILED
    summary["runs_wall_s"] = time.perf_counter() - start
    for arm, _ in runs:
        recipe = arm.recipe
        reward, k = arm.series(REWARD), min(WINDOW, max(1, args.steps // 2))
        cfg = arm.config()
        max_len = int(cfg.data.max_response_length)
        summary[recipe] = {
            "jsonl": str(arm.jsonl()),
            "checkpoint": str(arm.checkpoint(cfg)),
            "max_response_length": max_len,
            "reward_first": _mean(reward[:k]),
            "reward_last": _mean(reward[-k:]),
            "length_mean": _mean(arm.series(LENGTH)),
        }
        s = summary[recipe]
        s["lengths"] = lengths = length_percentiles(rollout_dir(runs_dir, recipe), tokenizer, max_len)
        _say(
            f"[{recipe}] mean reward over the first {k} steps {s['reward_first']:.3f}, "
            f"over the last {k} {s['reward_last']:.3f}; checkpoint {s['checkpoint']}"
        )
        if lengths["n"]:
            _say(
                f"[{recipe}] response lengths (tokens, {lengths['n']} responses): p10 {lengths['p10']:.0f}, "
                f"median {lengths['p50']:.0f}, p90 {lengths['p90']:.0f} (p90/p10 {lengths['ratio']:.1f}x)"
            )
    summary["wall_s"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    _say(
        f"[quickstart] done in {summary['wall_s']:.0f} s (warm-start {ws.wall_s:.0f} s, runs "
        f"{summary['runs_wall_s']:.0f} s); summary: {out / 'summary.json'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlnorm_verl.quickstart", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args, extra = parser.parse_known_args(argv)
    args.extra = extra
    return run(args)
