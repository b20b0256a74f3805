r"""Worker process for symbolic answer checking with math-verify (run as ``python -m vlnorm_verl.tasks.math.worker``).

Protocol (one JSON object per line, UTF-8):

- the worker prints ``{"ready": true}`` once math-verify is imported, or ``{"ready": false, "error": ...}``;
- each request ``{"id": int, "gold": str, "pred": str}`` is answered by ``{"id": int, "ok": bool}``
  (``"error"`` is added when math-verify raised; ``ok`` is then false).

``ok`` is ``verify(parse("\boxed{gold}"), parse("\boxed{pred}"))`` with math-verify's own timeouts off
(``parsing_timeout=None``, ``timeout_seconds=None``): its timeouts use ``signal.alarm``, which fails off the
main thread. The *caller* enforces the wall-clock limit by killing this process (see
:mod:`vlnorm_verl.tasks.math.pool`).

Safety: the address space is capped (``VLNORM_MATH_WORKER_MEM_MB``, default 4096 MB) so runaway integer
powers fail with ``MemoryError`` instead of exhausting the host, and a watchdog thread exits the process
when its parent goes away. The worker exits on end of input.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import threading
import time


def _limit_memory() -> None:
    try:
        import resource

        limit_mb = int(os.environ.get("VLNORM_MATH_WORKER_MEM_MB", "4096"))
        if limit_mb > 0:
            limit = limit_mb * 1024 * 1024
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - platform without RLIMIT_AS
        pass


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def _write(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main() -> int:
    logging.disable(logging.CRITICAL)  # math-verify warns about disabled timeouts and logs parse failures
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    _limit_memory()
    try:
        from math_verify import parse, verify
    except Exception as exc:  # noqa: BLE001 - report any import failure to the parent
        _write({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1

    @functools.lru_cache(maxsize=4096)
    def parse_gold(gold: str) -> tuple:
        return tuple(parse("\\boxed{" + gold + "}", parsing_timeout=None))

    _write({"ready": True})
    for line in sys.stdin:
        try:
            request = json.loads(line)
            job_id = request["id"]
        except (ValueError, KeyError, TypeError):
            continue
        reply: dict = {"id": job_id, "ok": False}
        try:
            gold = parse_gold(str(request["gold"]))
            pred = parse("\\boxed{" + str(request["pred"]) + "}", parsing_timeout=None)
            reply["ok"] = bool(gold) and bool(pred) and bool(verify(list(gold), pred, timeout_seconds=None))
        except BaseException as exc:  # noqa: BLE001 - includes MemoryError/RecursionError from sympy
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            reply["error"] = type(exc).__name__
        _write(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
