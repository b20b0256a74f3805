"""The shell scripts: shellcheck-clean, and their dry-run modes (and a small real data preparation) work."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from recipe_testlib import REPO, SCRIPTS

SHELL_FILES = sorted([*SCRIPTS.glob("*.sh"), *SCRIPTS.glob("slurm/*.sbatch")])


def bash(script: str, *args: str, env: dict[str, str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPTS / script), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_the_scripts_exist_and_are_strict() -> None:
    names = {p.relative_to(SCRIPTS).as_posix() for p in SHELL_FILES}
    assert {"prepare_data.sh", "train.sh", "ray_submit.sh", "reproduce.sh", "slurm/train.sbatch"} <= names
    for path in SHELL_FILES:
        if path.name not in ("_common.sh", "_help.sh"):  # sourced, not run
            assert "set -euo pipefail" in path.read_text(), path
        assert "$HOME" not in path.read_text() and "~/" not in path.read_text(), path


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (.ci/run installs it)")
def test_shellcheck_passes() -> None:
    proc = subprocess.run(
        ["shellcheck", "-x", *map(str, SHELL_FILES)], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_train_sh_dry_run_passes_overrides_and_uses_a_private_local_ray(script_env, tmp_path: Path) -> None:
    env = {**script_env, "VLNORM_MODEL_PATH": "/models/qwen", "VLNORM_GPUS_PER_NODE": "8", "RAY_ADDRESS": "x:1"}
    proc = bash("train.sh", "math_vlnorm", "algorithm.vl_norm.alpha=0.5", "--dry-run", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["actor_rollout_ref"]["model"]["path"] == "/models/qwen"
    assert cfg["trainer"]["n_gpus_per_node"] == 8
    assert cfg["algorithm"]["vl_norm"]["alpha"] == 0.5
    assert cfg["ray_kwargs"]["ray_init"]["address"] == "local"  # never the cluster in RAY_ADDRESS
    assert cfg["data"]["train_files"] == str(tmp_path / "data" / "math" / "train.parquet")


def test_train_sh_reports_usage_and_invalid_runs(script_env, tmp_path: Path) -> None:
    assert bash("train.sh", env=script_env, cwd=tmp_path).returncode == 2
    proc = bash("train.sh", "countdown_vlnorm", "cluster=3x3", "--dry-run", env=script_env, cwd=tmp_path)
    assert proc.returncode == 2 and "Could not find 'cluster/3x3'" in proc.stderr


def test_ray_submit_checks_the_run_before_submitting(script_env, tmp_path: Path) -> None:
    env = {**script_env, "RAY_ADDRESS": "http://127.0.0.1:9"}  # nothing listens: it must not get that far
    proc = bash("ray_submit.sh", "countdown_vlnorm", "algorithm.vl_norm.alpha=-2", "--dry-run", env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert "algorithm.vl_norm.alpha" in proc.stderr and "ray job submit" not in proc.stderr


def test_prepare_data_dry_run_prints_the_commands(script_env, tmp_path: Path) -> None:
    env = {**script_env, "MATH_TRAIN_SOURCE": "/data/orz.json", "COUNTDOWN_TRAIN_SIZE": "100"}
    proc = bash("prepare_data.sh", "--dry-run", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("+ ")]
    assert len(lines) == 2
    assert (
        f"prepare-data countdown --out {tmp_path / 'data' / 'countdown'}" in lines[0] and "--train-size 100" in lines[0]
    )
    assert f"prepare-data math --out {tmp_path / 'data' / 'math'} --source /data/orz.json" in lines[1]
    assert not (tmp_path / "data").exists()
    assert bash("prepare_data.sh", "chess", env=env, cwd=tmp_path).returncode == 2


def test_prepare_data_writes_where_the_recipes_read(script_env, tmp_path: Path) -> None:
    env = {**script_env, "COUNTDOWN_TRAIN_SIZE": "24", "COUNTDOWN_TEST_SIZE": "8", "COUNTDOWN_WORKERS": "1"}
    proc = bash("prepare_data.sh", "countdown", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    train = pd.read_parquet(tmp_path / "data" / "countdown" / "train.parquet")
    test = pd.read_parquet(tmp_path / "data" / "countdown" / "test.parquet")
    assert (len(train), len(test)) == (24, 8)
    dry = bash("train.sh", "countdown_vlnorm", "--dry-run", env=env, cwd=tmp_path)
    assert dry.returncode == 0 and "does not exist" not in dry.stderr


@pytest.mark.slow
def test_reproduce_dry_run_walks_a_suite(script_env, tmp_path: Path) -> None:
    env = {**script_env, "VLNORM_TASKS": "math"}
    proc = bash("reproduce.sh", "aggregation", "model=qwen2.5-7b", "--dry-run", env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ran = [line.split()[-1] for line in proc.stderr.splitlines() if line.startswith("[reproduce] math_")]
    assert ran == ["math_grpo_norm", "math_dapo_norm", "math_drgrpo_norm", "math_drgrpo", "math_vlnorm"]
    docs = list(yaml.safe_load_all(proc.stdout))
    assert [d["vlnorm"]["recipe"] for d in docs] == ran
    assert {d["actor_rollout_ref"]["model"]["path"] for d in docs} == {"Qwen/Qwen2.5-7B"}


def test_reproduce_stops_at_the_first_failure_and_names_it(script_env, tmp_path: Path) -> None:
    env = {**script_env, "VLNORM_TASKS": "countdown"}
    proc = bash("reproduce.sh", "dapo", "no_such_key=1", "--dry-run", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert "[reproduce] failed: countdown_dapo_overlong_filter" in proc.stderr
    assert "countdown_dapo_soft_punish" not in proc.stderr
    assert bash("reproduce.sh", "everything", env=env, cwd=tmp_path).returncode == 2
