"""Fixtures for the tests that run verl's real trainer on CPU (``cluster=cpu model=tiny``).

``cpu_trainer``: a :class:`trainer_run.CPUTrainer` over a small CountDown set prepared once per session and one
tiny-model cache; skips (with the reason) where runs cannot be isolated in a private network namespace.
``recipe_trainer``: ``cpu_trainer`` with the math smoke set added to its data, for the 18 recipe runs.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
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


SHARED_EVAL_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "math_eval"


@dataclass
class RecipeTrainer:
    """A :class:`CPUTrainer` over CountDown data and, when the offline eval copies are present, the math smoke set."""

    trainer: CPUTrainer
    math_reason: str | None

    def need_math(self) -> None:
        if self.math_reason:
            pytest.skip(self.math_reason)

    def math_answers(self) -> set[str]:
        table = pq.read_table(self.trainer.data / "math" / "train.parquet").to_pylist()
        return {row["reward_model"]["ground_truth"] for row in table}


@pytest.fixture(scope="session")
def recipe_trainer(cpu_trainer: CPUTrainer) -> RecipeTrainer:
    """``cpu_trainer``'s CountDown data and model cache, plus ``prepare-data math --smoke`` from ``../shared``."""
    math_reason = None
    if SHARED_EVAL_DIR.is_dir():
        cmd = [sys.executable, "-m", "vlnorm_verl.launch.cli", "prepare-data", "math", "--smoke"]
        cmd += ["--eval-dir", str(SHARED_EVAL_DIR), "--out", str(cpu_trainer.data / "math"), "--no-progress"]
        subprocess.run(cmd, check=True, capture_output=True)
    else:
        math_reason = (
            f"math recipes train on the smoke set from the offline eval copies, not found at {SHARED_EVAL_DIR}"
        )
    return RecipeTrainer(cpu_trainer, math_reason)
