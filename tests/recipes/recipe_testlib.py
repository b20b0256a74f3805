"""Helpers shared by the recipe tests (imported by conftest.py and the test modules; this folder is put
on sys.path by conftest.py because pytest runs in importlib mode and verl owns a top-level ``tests`` package).

- ``make_script_env``: an environment for running scripts/ and the CLI in a subprocess with this interpreter.
- ``NetNS``: a private network namespace holding only a loopback interface. The Ray and SLURM daemons the
  cluster tests start bind wildcard addresses for some of their ports; inside this namespace those ports
  are reachable from the namespace's loopback only, never from the machine's network. Commands run in it
  through ``nsenter``; everything started there is stopped by process id at teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
PYTHON = sys.executable


def make_script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_", "VERL_FILE_LOGGER"))}
    env.update(
        {
            "PATH": f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}",
            "VLNORM_PYTHON": PYTHON,
            "VLNORM_REMOTE_PYTHON": PYTHON,
            "VLNORM_DATA_DIR": str(tmp_path / "data"),
            "VLNORM_RUNS_DIR": str(tmp_path / "runs"),
            "OMP_NUM_THREADS": "1",
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class NetNS:
    """A network namespace kept alive by a `sleep` process; `popen`/`run` execute commands inside it."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "3600"], start_new_session=True)
        self.started: list[subprocess.Popen] = []
        time.sleep(0.3)
        if self.holder.poll() is not None:
            raise RuntimeError("unshare --net failed")
        self.run(["ip", "link", "set", "lo", "up"], check=True)
        # glibc's getaddrinfo(AI_ADDRCONFIG) needs one non-loopback IPv4 address to resolve anything (SLURM
        # uses it); this one lives on the namespace's loopback interface and reaches nothing outside.
        self.run(["ip", "addr", "add", "10.254.0.1/32", "dev", "lo"], check=True)

    def wrap(self, cmd: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n", *cmd]

    def run(self, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.wrap(cmd), **kwargs)

    def popen(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(self.wrap(cmd), start_new_session=True, **kwargs)
        self.started.append(proc)
        return proc

    def stop(self, *procs: subprocess.Popen, grace_s: float = 8.0) -> None:
        """SIGTERM the process groups of `procs` (started by `popen`) together, then SIGKILL what is left."""
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            alive = [p for p in procs if _group_alive(p.pid)]
            for proc in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
            deadline = time.time() + wait
            while alive and time.time() < deadline:
                for proc in alive:
                    proc.poll()
                alive = [p for p in alive if p.returncode is None or _group_alive(p.pid)]
                time.sleep(0.2)
            if not alive:
                return

    def close(self) -> None:
        self.stop(*self.started)
        self.holder.kill()
        self.holder.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def netns_unavailable() -> str | None:
    missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
    if missing:
        return f"needs {missing} (util-linux, iproute2) to isolate the cluster's network"
    if os.geteuid() != 0:
        return "needs root to create a private network namespace for the cluster daemons"
    probe = subprocess.run(["unshare", "--net", "--", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace ({probe.stderr.strip()}); refusing to bind non-loopback ports"
    return None


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 1.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
