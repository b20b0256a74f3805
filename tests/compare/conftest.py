"""Fixtures for the compare tests: real wandb offline runs and verl file-logger JSONL logs.

Everything is created once per session under a temporary directory, with wandb fully offline
(WANDB_MODE=offline, WANDB_DIR/WANDB_CONFIG_DIR/WANDB_CACHE_DIR/WANDB_DATA_DIR in the temp dir).

Hand-made curves (validation metric ``val-core/countdown/acc/mean@8``, logged at the listed steps):

* ``dapo`` (wandb offline, baseline): steps 0..80 every 10 → 0.10 0.20 0.30 0.40 0.50 0.60 0.55 0.60 0.58
* ``vlnorm`` (JSONL via verl's Tracking, ``file`` backend): steps 0..100 every 10 →
  0.10 0.35 0.62 NaN 0.70 0.72 0.71 0.74 0.73 0.75 0.74
* ``never`` (wandb offline, shorter, never logs ``actor/entropy``): steps 0..50 → 0.10 0.20 0.30 0.40 0.45 0.50
* ``resumed`` (two wandb offline runs with the same name, as verl produces on resume): the first logs
  steps 0..60 with 0.10 0.20 0.30 0.40 0.45 0.90 0.95 and dies; the second resumes from the step-40
  checkpoint, logs validation only at step 40 (0.46), then trains 41..80 with 0.50 0.61 0.65 0.66 at
  50..80.

Training metrics are logged at every training step s ≥ 1: ``response_length/mean = 100 + s``,
``actor/grad_norm = 1/s`` (NaN at s = 7), ``actor/entropy = 2 - s/100``, ``critic/score/mean = s/100``;
the second ``resumed`` log uses ``response_length/mean = 1000 + s`` so the merge is visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest

ACC = "val-core/countdown/acc/mean@8"
NAN = math.nan

DAPO = {0: 0.10, 10: 0.20, 20: 0.30, 30: 0.40, 40: 0.50, 50: 0.60, 60: 0.55, 70: 0.60, 80: 0.58}
VLNORM = {0: 0.10, 10: 0.35, 20: 0.62, 30: NAN, 40: 0.70, 50: 0.72, 60: 0.71, 70: 0.74, 80: 0.73, 90: 0.75, 100: 0.74}
NEVER = {0: 0.10, 10: 0.20, 20: 0.30, 30: 0.40, 40: 0.45, 50: 0.50}
RESUMED_1 = {0: 0.10, 10: 0.20, 20: 0.30, 30: 0.40, 40: 0.45, 50: 0.90, 60: 0.95}
RESUMED_2 = {40: 0.46, 50: 0.50, 60: 0.61, 70: 0.65, 80: 0.66}


def training_metrics(step: int, entropy: bool = True, length_offset: float = 100.0) -> dict[str, float]:
    row = {
        "response_length/mean": length_offset + step,
        "actor/grad_norm": NAN if step == 7 else 1.0 / step,
        "critic/score/mean": step / 100.0,
    }
    if entropy:
        row["actor/entropy"] = 2.0 - step / 100.0
    return row


def rows(val: dict[int, float], last_step: int, first_train_step: int = 1, **kwargs) -> list[tuple[int, dict]]:
    """verl's logging pattern: step 0 (or the resume step) holds validation only; later steps train."""
    out = []
    for step in range(first_train_step - 1, last_step + 1):
        row = {} if step == first_train_step - 1 else training_metrics(step, **kwargs)
        if step in val:
            row[ACC] = val[step]
        out.append((step, row))
    return out


@dataclass
class LogFixtures:
    root: Path
    wandb_dir: Path  # the `wandb/` directory holding every offline run
    dapo_dir: Path
    never_dir: Path
    resumed_dirs: list[Path]
    vlnorm_jsonl: Path  # where verl's Tracking("countdown", "vlnorm", "file") wrote


@pytest.fixture(scope="session")
def wandb_env(tmp_path_factory):
    """Offline wandb settings pointing into a temp dir, for the whole session."""
    root = tmp_path_factory.mktemp("wandb_home")
    env = {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(root),
        "WANDB_CONFIG_DIR": str(root / "config"),
        "WANDB_CACHE_DIR": str(root / "cache"),
        "WANDB_DATA_DIR": str(root / "data"),
        "WANDB_SILENT": "true",
        "WANDB_CONSOLE": "off",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
        "WANDB_X_DISABLE_STATS": "true",
        "WANDB_X_DISABLE_META": "true",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("WANDB_API_KEY", raising=False)
        yield root
        import wandb

        wandb.teardown()  # stop the wandb-core service this session started


def write_wandb_run(root: Path, name: str, logged: list[tuple[int, dict]]) -> Path:
    """Log ``logged`` through a real offline wandb run; returns its run directory."""
    import wandb

    run = wandb.init(mode="offline", dir=str(root), project="vlnorm-compare-test", name=name, config={"alpha": 1.0})
    for step, row in logged:
        run.log(row, step=step)
    run_dir = Path(run.dir).parent  # run.dir is <run dir>/files
    run.finish()
    # finish() can return before wandb-core has flushed the transaction log; stopping the service
    # flushes and closes it (the next wandb.init starts a new one).
    wandb.teardown()
    return run_dir


@pytest.fixture(scope="session")
def wandb_writer(wandb_env):
    """``write(dir, name, rows) -> run directory``: a real offline wandb run, flushed to disk."""
    return write_wandb_run


@pytest.fixture(scope="session")
def logs(wandb_env, tmp_path_factory) -> LogFixtures:
    root = wandb_env
    dapo_dir = write_wandb_run(root, "dapo", rows(DAPO, 80))
    never_dir = write_wandb_run(root, "never", rows(NEVER, 50, entropy=False))
    resumed_a = write_wandb_run(root, "resumed", rows(RESUMED_1, 60))
    resumed_b = write_wandb_run(root, "resumed", rows(RESUMED_2, 80, first_train_step=41, length_offset=1000.0))

    # The JSONL through verl's own file logger: $VERL_FILE_LOGGER_ROOT/<project>/<experiment>.jsonl.
    jsonl_root = tmp_path_factory.mktemp("verl_file_logger")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("VERL_FILE_LOGGER_PATH", raising=False)
        mp.setenv("VERL_FILE_LOGGER_ROOT", str(jsonl_root))
        from verl.utils.tracking import Tracking

        tracker = Tracking(project_name="countdown", experiment_name="vlnorm", default_backend="file")
        for step, row in rows(VLNORM, 100):
            tracker.log(data=row, step=step)
        tracker.finish()
    expected = jsonl_root / "countdown" / "vlnorm.jsonl"
    return LogFixtures(
        root=root,
        wandb_dir=root / "wandb",
        dapo_dir=dapo_dir,
        never_dir=never_dir,
        resumed_dirs=[resumed_a, resumed_b],
        vlnorm_jsonl=expected,
    )
