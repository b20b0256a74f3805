"""Run verl's real trainer on CPU (``vlnorm-verl train RECIPE cluster=cpu model=tiny``) from a test.

- Every run executes in a private network namespace holding only a loopback interface (``unshare --net``): the
  Ray cluster verl starts binds some ports on wildcard addresses, which there reach nothing but loopback.
- The run is its own session; at the end (or on timeout, or when a test kills it) every process it started —
  driver, raylet, GCS, workers, rollout servers — is killed by process id, so no Ray process outlives a test.
- :class:`Run` reads the file logger's JSONL (one record per step) of every attempt of the experiment.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

SUPPORT = Path(__file__).resolve().parent
PYTHON = sys.executable
#: the launcher's own settings every test run shares: no wandb (offline wandb costs seconds per run), no
#: pre-training validation unless a test asks for it, a few steps.
FAST = ["trainer.logger=[console,file]", "trainer.val_before_train=false", "trainer.test_freq=-1"]


def netns_reason() -> str | None:
    """Why runs cannot be isolated here (None when they can)."""
    if os.geteuid() != 0:
        return "needs root for a private network namespace (unshare --net)"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare (util-linux) and ip (iproute2)"
    probe = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"unshare --net failed: {probe.stderr.decode(errors='replace').strip()}"
    return None


def in_netns(cmd: list[str]) -> list[str]:
    return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


@dataclass
class Run:
    returncode: int
    output: str
    runs_dir: Path
    experiment: str
    wall_s: float
    records: list[dict[str, Any]] = field(default_factory=list)

    def load(self) -> Run:
        self.records = []
        for path in sorted((self.runs_dir / "logs" / self.experiment).glob("*/*/*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    rec["_attempt"] = path.parents[1].name
                    self.records.append(rec)
        return self

    def metric(self, key: str) -> list[float]:
        """The values of ``key`` in step order (steps that did not log it are skipped)."""
        return [r["data"][key] for r in self.records if key in r["data"]]

    def steps(self) -> list[int]:
        return [r["step"] for r in self.records]

    def tail(self, n: int = 6000) -> str:
        return self.output[-n:]


def _kill_tree(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        parent = psutil.Process(proc.pid)
        procs = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.send_signal(sig)
    psutil.wait_procs(procs, timeout=10)


def trainer_env(work: Path, data: Path, cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_", "VERL_", "VLNORM_"))}
    env.update(
        VLNORM_DATA_DIR=str(data),
        VLNORM_RUNS_DIR=str(work / "runs"),
        VLNORM_CACHE_DIR=str(cache),
        WANDB_MODE="offline",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_DEDUP_LOGS="0",
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join([str(SUPPORT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.update(extra)
    return env


def prepare_countdown(data: Path, train_size: int, test_size: int = 8) -> Path:
    """A small offline CountDown set under ``data/countdown`` (``vlnorm-verl prepare-data``); returns ``data``."""
    subprocess.run(
        [
            PYTHON,
            "-m",
            "vlnorm_verl.launch.cli",
            "prepare-data",
            "countdown",
            "--out",
            str(data / "countdown"),
            "--train-size",
            str(train_size),
            "--test-size",
            str(test_size),
            "--workers",
            "1",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )
    return data


def experiment_name(recipe: str, overrides: list[str]) -> str:
    for o in overrides:
        if o.startswith("trainer.experiment_name="):
            return o.split("=", 1)[1]
    return f"{recipe}-tiny"


@dataclass
class CPUTrainer:
    """Runs recipes with ``cluster=cpu model=tiny`` on shared data (``data``) and model cache (``cache``)."""

    data: Path
    cache: Path

    def start(self, recipe: str, overrides: list[str], work: Path, **env_extra: str) -> subprocess.Popen:
        cmd = [PYTHON, "-m", "vlnorm_verl.launch.cli", "train", recipe, "cluster=cpu", "model=tiny", *FAST, *overrides]
        work.mkdir(parents=True, exist_ok=True)
        log = open(work / f"{experiment_name(recipe, overrides)}.log", "ab")  # noqa: SIM115 - closed in finish()
        proc = subprocess.Popen(
            in_netns(cmd),
            env=trainer_env(work, self.data, self.cache, **env_extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc.log_file = log  # type: ignore[attr-defined]
        return proc

    def finish(
        self, proc: subprocess.Popen, recipe: str, overrides: list[str], work: Path, timeout: float, t0: float
    ) -> Run:
        try:
            rc = proc.wait(timeout=max(1.0, timeout - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            rc = -9
        finally:
            _kill_tree(proc)
            proc.log_file.close()  # type: ignore[attr-defined]
        name = experiment_name(recipe, overrides)
        output = (work / f"{name}.log").read_text(errors="replace")
        return Run(rc, output, work / "runs", name, time.monotonic() - t0).load()

    def train(self, recipe: str, overrides: list[str], work: Path, timeout: float = 420, **env_extra: str) -> Run:
        """Train ``recipe`` + ``overrides`` to the end (or ``timeout``) and read what it logged."""
        t0 = time.monotonic()
        proc = self.start(recipe, overrides, work, **env_extra)
        return self.finish(proc, recipe, overrides, work, timeout, t0)

    def train_side_by_side(
        self, launches: dict[str, tuple[str, list[str], Path, float]], **env_extra: str
    ) -> dict[str, Run]:
        """Start every launch at once - ``{name: (recipe, overrides, work, timeout)}``, each with its own Ray cluster
        in its own network namespace - and read each run as it ends (its wall time is its own), or kill it at its
        timeout (seconds from the common start). A run's start-up is mostly serial work on one core, so on 2 cores
        two side by side end sooner than one after the other."""
        t0 = time.monotonic()
        started = {name: self.start(recipe, overrides, work, **env_extra)
                   for name, (recipe, overrides, work, _) in launches.items()}  # fmt: skip
        runs: dict[str, Run] = {}
        while started:
            for name, proc in list(started.items()):
                recipe, overrides, work, timeout = launches[name]
                if proc.poll() is not None or time.monotonic() - t0 > timeout:
                    runs[name] = self.finish(started.pop(name), recipe, overrides, work, timeout, t0)
            time.sleep(0.5)
        return runs
