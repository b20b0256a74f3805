"""Fixtures for the tests that run verl's real trainer on CPU (``cluster=cpu model=tiny``).

``cpu_trainer``: a :class:`trainer_run.CPUTrainer` over a small CountDown set prepared once per session and one
tiny-model cache; skips (with the reason) where runs cannot be isolated in a private network namespace.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from trainer_run import CPUTrainer, netns_reason


@pytest.fixture(scope="session")
def cpu_trainer(tmp_path_factory: pytest.TempPathFactory) -> CPUTrainer:
    reason = netns_reason()
    if reason:
        pytest.skip(f"verl trainer runs: {reason}")
    root = tmp_path_factory.mktemp("cpu_trainer")
    data = root / "data"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vlnorm_verl.cli",
            "prepare-data",
            "countdown",
            "--out",
            str(data / "countdown"),
            "--train-size",
            "64",
            "--test-size",
            "8",
            "--workers",
            "1",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )
    return CPUTrainer(data=data, cache=root / "cache")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path
