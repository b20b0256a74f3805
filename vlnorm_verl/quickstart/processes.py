"""Child processes of the quickstart: each started in its own session, and every process it spawned killed at the end.

verl's trainer starts a Ray cluster of its own (GCS, raylet, workers, rollout servers) and the warm-start runs
verl's SFT trainer: :class:`Child` (the one place either is started) remembers the whole process tree while the
child runs, and :meth:`Child.stop` kills it (SIGTERM, then SIGKILL). :func:`interrupt_on_signals` turns SIGINT,
SIGTERM and SIGHUP into :class:`Interrupted` in the main thread (Python's default for SIGTERM and SIGHUP is to die
without running ``finally``), so an error, a timeout, Ctrl-C, a ``kill`` or a closed terminal all reach the code
that stops the children, and none is left behind. :func:`stale_ray_processes` finds the Ray daemons an earlier,
killed run may have left, which the quickstart refuses to run beside.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import psutil

RAY_DAEMONS = ("gcs_server", "raylet")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; :attr:`exit_status` is the shell's convention, 128 + the signal's number."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def exit_status(exc: KeyboardInterrupt) -> int:
    """128 + the signal that interrupted (SIGINT for a plain KeyboardInterrupt)."""
    return exc.exit_status if isinstance(exc, Interrupted) else 128 + int(signal.SIGINT)


@contextlib.contextmanager
def interrupt_on_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Within the block, the first of ``signals`` raises :class:`Interrupted`; later ones are ignored so that the
    clean-up it triggers is not interrupted in turn (a shell that forwards Ctrl-C sends a second one)."""
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def stale_ray_processes() -> list[psutil.Process]:
    """Ray daemons (GCS servers, raylets) of this user that are running now."""
    me = os.getuid()
    found = []
    for proc in psutil.process_iter(["name", "uids", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            name = proc.info["name"] or ""
            cmd = " ".join(proc.info["cmdline"] or [])
            uids = proc.info["uids"]
            if uids is not None and uids.real != me:
                continue
            if any(name.startswith(d) or f"/{d} " in f"{cmd} " for d in RAY_DAEMONS):
                found.append(proc)
    return found


@dataclass
class Child:
    """One command running in its own session, its output appended to ``log_path``."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None
    _log: IO[bytes] | None = None
    _tree: dict[int, psutil.Process] = field(default_factory=dict)

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def remember_tree(self) -> None:
        """Note every descendant now alive (Ray daemons may leave the session; their pids stay known here)."""
        if self.proc is None:
            return
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.proc.pid)
            for p in [root, *root.children(recursive=True)]:
                self._tree.setdefault(p.pid, p)

    def poll(self) -> int | None:
        self.remember_tree()
        return None if self.proc is None else self.proc.poll()

    def stop(self, grace_s: float = 5.0) -> None:
        """Terminate the child and everything it started (idempotent)."""
        self.remember_tree()
        if self.proc is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, sig)
                procs = [p for p in self._tree.values() if _alive(p)]
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        p.send_signal(sig)
                _, alive = psutil.wait_procs(procs, timeout=grace_s if sig == signal.SIGTERM else 10)
                if not alive:
                    break
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
