"""Shared pytest setup.

- Puts ``tests/support`` on ``sys.path`` so test modules can ``import engine_harness`` / ``cpu_platform``
  (pytest runs with ``--import-mode=importlib`` and there is no ``tests/__init__.py``: verl's wheel owns a
  top-level ``tests`` package).
- ``engine_harness``: a session-scoped factory ``world_size -> EngineHarness``; the verl CPU ranks are
  spawned once per world size and stopped at the end of the session.
- Prints the wall time each test recorded as a ``wall_s`` user property.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

SUPPORT_DIR = Path(__file__).resolve().parent / "support"
if str(SUPPORT_DIR) not in sys.path:
    sys.path.insert(0, str(SUPPORT_DIR))


@pytest.fixture(scope="session")
def engine_harness() -> Iterator[Callable[[int], Any]]:
    from engine_harness import EngineHarness

    harnesses: dict[int, EngineHarness] = {}

    def get(world_size: int = 1) -> EngineHarness:
        if world_size not in harnesses:
            harnesses[world_size] = EngineHarness(world_size=world_size)
        return harnesses[world_size]

    yield get
    for harness in harnesses.values():
        harness.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            props = dict(getattr(report, "user_properties", []) or [])
            if getattr(report, "when", None) == "call" and "wall_s" in props:
                rows.append((report.nodeid, props["wall_s"]))
    if rows:
        terminalreporter.section("verl CPU engine: wall time per configuration")
        for nodeid, wall in rows:
            terminalreporter.write_line(f"{wall:7.2f} s  {nodeid}")
