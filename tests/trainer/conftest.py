"""Fixtures for the tests that run verl's real trainer on CPU (``cluster=cpu model=tiny``).

``cpu_trainer``: a :class:`trainer_run.CPUTrainer` over a small CountDown set prepared once per session and one
tiny-model cache; skips (with the reason) where runs cannot be isolated in a private network namespace.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from trainer_run import CPUTrainer, netns_reason, prepare_countdown


@pytest.fixture(scope="session")
def cpu_trainer(tmp_path_factory: pytest.TempPathFactory) -> CPUTrainer:
    reason = netns_reason()
    if reason:
        pytest.skip(f"verl trainer runs: {reason}")
    root = tmp_path_factory.mktemp("cpu_trainer")
    data = prepare_countdown(root / "data", train_size=64)
    return CPUTrainer(data=data, cache=root / "cache")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path
