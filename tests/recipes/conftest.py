"""Fixtures for the recipe, launcher and script tests (helpers live in recipe_testlib.py).

- ``run_dirs``: VLNORM_DATA_DIR / VLNORM_RUNS_DIR pointed at a temporary directory, tracking variables cleared.
- ``script_env``: an environment for subprocesses (scripts/, the CLI) with this interpreter.
- ``netns``: a private loopback-only network namespace for the Ray and SLURM daemons (see recipe_testlib).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from recipe_testlib import NetNS, make_script_env, netns_unavailable  # noqa: E402


@pytest.fixture
def run_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    data, runs = tmp_path / "data", tmp_path / "runs"
    monkeypatch.setenv("VLNORM_DATA_DIR", str(data))
    monkeypatch.setenv("VLNORM_RUNS_DIR", str(runs))
    for key in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_RUN_GROUP", "WANDB_TAGS", "VERL_FILE_LOGGER_PATH"):
        monkeypatch.delenv(key, raising=False)
    return data, runs


@pytest.fixture
def script_env(tmp_path: Path) -> dict[str, str]:
    return make_script_env(tmp_path)


@pytest.fixture(scope="module")
def netns() -> Iterator[NetNS]:
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    ns = NetNS()
    try:
        yield ns
    finally:
        ns.close()
