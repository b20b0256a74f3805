"""A small pool of math-verify worker processes with a caller-enforced wall-clock limit.

Contract
--------
``MathVerifyPool.verify(gold, pred, timeout_s)`` returns ``True``/``False`` and never raises for anything the
answers contain: a check that exceeds ``timeout_s`` seconds of wall-clock time, or whose worker crashes, runs
out of memory or exits, counts as ``False``; the worker is killed (``SIGKILL``) and replaced lazily.
The limit covers the check itself, not the start-up of a worker. Infrastructure failures that no answer can
cause (math-verify not installed, a worker that cannot start) raise :class:`MathWorkerError` with the fix.

Design
------
- Workers are plain subprocesses (``python -m vlnorm_verl.tasks.math.worker``) talking JSON lines over pipes:
  no ``fork`` of a multi-threaded parent, no ``multiprocessing`` main-module re-import, so the pool is safe in
  Ray actors and under any start method.
- Each worker serves one request at a time; a thread checks a worker out of the idle queue, so concurrent
  callers (verl runs reward functions in a thread pool) proceed in parallel up to the pool size.
- The pool is per process: a forked child that inherits a pool object builds its own (pid check).
- :meth:`verify_many` spreads a batch over all workers.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

DEFAULT_TIMEOUT_S = 3.0
STARTUP_TIMEOUT_S = 120.0


class MathWorkerError(RuntimeError):
    """The math-verify workers cannot run at all (an installation or environment problem)."""


def default_pool_size() -> int:
    """``VLNORM_MATH_WORKERS`` if set, else ``min(4, cpu_count)``."""
    env = os.environ.get("VLNORM_MATH_WORKERS")
    if env:
        try:
            size = int(env)
        except ValueError as exc:
            raise MathWorkerError(f"VLNORM_MATH_WORKERS must be a positive integer, got {env!r}") from exc
        if size < 1:
            raise MathWorkerError(f"VLNORM_MATH_WORKERS must be a positive integer, got {env!r}")
        return size
    return max(1, min(4, os.cpu_count() or 1))


def default_timeout() -> float:
    """``VLNORM_MATH_TIMEOUT_S`` if set, else :data:`DEFAULT_TIMEOUT_S`."""
    env = os.environ.get("VLNORM_MATH_TIMEOUT_S")
    if not env:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(env)
    except ValueError as exc:
        raise MathWorkerError(f"VLNORM_MATH_TIMEOUT_S must be a positive number, got {env!r}") from exc
    if value <= 0:
        raise MathWorkerError(f"VLNORM_MATH_TIMEOUT_S must be a positive number, got {env!r}")
    return value


class _Worker:
    """One worker subprocess and its line-buffered reader."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[3])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONIOENCODING"] = "utf-8"
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-u", "-m", "vlnorm_verl.tasks.math.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        except OSError as exc:
            raise MathWorkerError(f"cannot start a math-verify worker with {sys.executable}: {exc}") from exc
        self._buf = b""
        self._next_id = 0
        self._selector = selectors.DefaultSelector()  # epoll/poll: no FD_SETSIZE limit, unlike select()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.failure: str | None = None  # "timeout" or "crash" after a failed check
        line = self._read_line(time.monotonic() + STARTUP_TIMEOUT_S)
        try:
            hello = json.loads(line) if line is not None else {}
        except ValueError:
            hello = {}
        if not hello.get("ready"):
            self.kill()
            detail = hello.get("error", "no reply" if line is None else line[:200])
            raise MathWorkerError(
                f"math-verify worker failed to start ({detail}); install the math extra: "
                "pip install 'vlnorm-verl[math]' (math-verify)"
            )

    def _read_line(self, deadline: float) -> str | None:
        """The next line from the worker, or ``None`` on timeout or end of file."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.failure = "timeout"
                return None
            if not self._selector.select(remaining):
                self.failure = "timeout"
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                self.failure = "crash"
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", errors="replace")

    def check(self, gold: str, pred: str, timeout_s: float) -> bool | None:
        """``True``/``False`` from math-verify, or ``None`` if the worker timed out or died (then it is dead)."""
        self._next_id += 1
        job_id = self._next_id
        try:
            self.proc.stdin.write((json.dumps({"id": job_id, "gold": gold, "pred": pred}) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.failure = "crash"
            self.kill()
            return None
        deadline = time.monotonic() + timeout_s
        while True:
            line = self._read_line(deadline)
            if line is None:
                self.kill()
                return None
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            if reply.get("id") == job_id:
                return bool(reply.get("ok"))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except OSError:  # pragma: no cover - already gone
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable process
            pass
        self._selector.close()
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:  # pragma: no cover
                pass


class MathVerifyPool:
    """Lazily started math-verify workers; thread-safe; see the module docstring."""

    def __init__(self, size: int | None = None, timeout_s: float | None = None) -> None:
        self.size = size if size is not None else default_pool_size()
        if self.size < 1:
            raise ValueError(f"pool size must be >= 1, got {self.size}")
        self.timeout_s = timeout_s if timeout_s is not None else default_timeout()
        self._pid = os.getpid()
        self._idle: list[_Worker] = []
        self._cond = threading.Condition()
        self._started = 0  # live workers, idle or busy, plus those being started
        self._closed = False
        self.stats = {"timeouts": 0, "crashes": 0, "started": 0}

    def _acquire(self) -> _Worker:
        """An idle live worker, or a new one if fewer than ``size`` exist; waits otherwise."""
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        raise MathWorkerError("the math-verify pool is closed")
                    if self._idle:
                        worker = self._idle.pop()
                        break
                    if self._started < self.size:
                        self._started += 1
                        worker = None
                        break
                    self._cond.wait()
            if worker is None:
                try:
                    worker = _Worker()
                except BaseException:
                    self._discard(None)
                    raise
                with self._cond:
                    self.stats["started"] += 1
                return worker
            if worker.alive():
                return worker
            self._discard(worker)

    def _discard(self, worker: _Worker | None) -> None:
        if worker is not None:
            worker.kill()
        with self._cond:
            self._started -= 1
            self._cond.notify()

    def _release(self, worker: _Worker) -> None:
        with self._cond:
            if not self._closed:
                self._idle.append(worker)
                self._cond.notify()
                return
        self._discard(worker)

    def verify(self, gold: str, pred: str, timeout_s: float | None = None) -> bool:
        """Is ``pred`` equivalent to ``gold`` per math-verify, within ``timeout_s`` seconds? (never raises on data)"""
        if not _math_verify_installed():
            raise MathWorkerError(
                "math-verify is not installed; install the math extra: pip install 'vlnorm-verl[math]'"
            )
        limit = self.timeout_s if timeout_s is None else timeout_s
        worker = self._acquire()
        try:
            result = worker.check(gold, pred, limit)
        except BaseException:
            self._discard(worker)
            raise
        if result is None:
            with self._cond:
                self.stats["timeouts" if worker.failure == "timeout" else "crashes"] += 1
            self._discard(worker)
            return False
        self._release(worker)
        return result

    def warm(self) -> None:
        """Start all ``size`` workers now (in parallel), so the first checks do not wait for start-up."""
        with ThreadPoolExecutor(max_workers=self.size) as ex:
            workers = list(ex.map(lambda _: self._acquire(), range(self.size)))
        for worker in workers:
            self._release(worker)

    def verify_many(self, pairs: Sequence[tuple[str, str]], timeout_s: float | None = None) -> list[bool]:
        """:meth:`verify` for each ``(gold, pred)``, spread over all workers; results in input order."""
        if not pairs:
            return []
        with ThreadPoolExecutor(max_workers=min(self.size, len(pairs))) as ex:
            return list(ex.map(lambda gp: self.verify(gp[0], gp[1], timeout_s), pairs))

    def close(self) -> None:
        """Stop all idle workers (busy ones are stopped when released)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            self._discard(worker)


@functools.lru_cache(maxsize=1)
def _math_verify_installed() -> bool:
    return importlib.util.find_spec("math_verify") is not None


_DEFAULT: MathVerifyPool | None = None
_DEFAULT_LOCK = threading.Lock()


def get_pool() -> MathVerifyPool:
    """The process-wide pool (created on first use; rebuilt in a forked child)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT._pid != os.getpid() or _DEFAULT._closed:
            _DEFAULT = MathVerifyPool()
        return _DEFAULT


def _close_default() -> None:
    pool = _DEFAULT
    if pool is not None and pool._pid == os.getpid():
        pool.close()


atexit.register(_close_default)
