"""Run ``verl.trainer.main_ppo.main`` (Hydra's entry point, what ``python -m verl.trainer.main_ppo`` calls) once per
argument list, each in its own process forked after verl is imported once.

For tests that only need verl's entry point to stop at start-up: each case pays Hydra's composition and the
recipe's callbacks, not the ~5 CPU-s of importing verl again. A child gets its own working directory, stdout and
stderr files and exit status; the parent runs ``--jobs`` children at a time and SIGKILLs one that outlives
``--timeout``. Run it inside a private network namespace, as the tests do: a check that did not fire would go on
to ``ray.init``.

Usage: python forked_main_ppo.py CASES.json RESULTS.json [--jobs 2] [--timeout 120]
CASES.json: ``[{"name", "argv", "cwd"}, ...]``; RESULTS.json: ``{name: {"returncode", "stdout", "stderr"}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from verl.trainer import main_ppo


def _child(case: dict, out: Path, err: Path) -> None:
    """In the forked child: run main_ppo on the case's arguments and leave with its exit status."""
    code = 1
    try:
        os.chdir(case["cwd"])
        for fd, path in ((1, out), (2, err)):
            file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(file, fd)
            os.close(file)
        sys.argv = ["verl.trainer.main_ppo", *case["argv"]]
        try:
            main_ppo.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - reported through stderr and the exit status, as Python would
            traceback.print_exc()
            code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_cases(cases: list[dict], work: Path, jobs: int, timeout: float) -> dict[str, dict]:
    pending, running, results = list(cases), {}, {}
    while pending or running:
        while pending and len(running) < jobs:
            case = pending.pop(0)
            out, err = work / f"{case['name']}.out", work / f"{case['name']}.err"
            pid = os.fork()
            if pid == 0:
                _child(case, out, err)
            running[pid] = (case, out, err, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            for child, (_, _, _, started) in running.items():
                if time.monotonic() - started > timeout:
                    os.kill(child, signal.SIGKILL)
            time.sleep(0.05)
            continue
        case, out, err, _ = running.pop(pid)
        results[case["name"]] = {
            "returncode": os.waitstatus_to_exitcode(status),
            "stdout": out.read_text(errors="replace"),
            "stderr": err.read_text(errors="replace"),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", type=Path)
    parser.add_argument("results", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    cases = json.loads(args.cases.read_text())
    results = run_cases(cases, args.results.parent, args.jobs, args.timeout)
    args.results.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
