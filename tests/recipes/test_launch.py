"""The launcher: the command it runs composes the same config in verl's own entry point, it works as a console
script and from a built wheel, each launch logs to its own file (a resumed run keeps its earlier log), and the
tracking environment follows the rules of vlnorm_verl.launch.run_env."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from recipe_testlib import PYTHON, REPO, make_script_env

from vlnorm_verl.launch import cli, run_env
from vlnorm_verl.launch import launcher as launch


def cli_run(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "vlnorm_verl.launch.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---------------------------------------------------------------------------------------------------------
# run_env rules


def test_wandb_mode_is_offline_without_a_key_online_with_one_and_explicit_wins() -> None:
    assert run_env.wandb_mode({}) == "offline"
    assert run_env.wandb_mode({"WANDB_API_KEY": "k"}) == "online"
    assert run_env.wandb_mode({"WANDB_API_KEY": "k", "WANDB_MODE": "disabled"}) == "disabled"


def test_tracking_env_joins_tags_and_makes_paths_absolute(tmp_path: Path) -> None:
    environ = {"VLNORM_DATA_DIR": "rel/data", "VLNORM_RUNS_DIR": str(tmp_path / "runs")}
    env = run_env.tracking_env({"group": "g", "tags": ["a", "alpha=1.0"]}, environ, tmp_path / "log")
    assert env["WANDB_RUN_GROUP"] == "g"
    assert env["WANDB_TAGS"] == "a,alpha=1.0"
    assert env["VLNORM_DATA_DIR"] == str(Path.cwd() / "rel" / "data")
    assert env["WANDB_DIR"] == env["VLNORM_RUNS_DIR"] == str(tmp_path / "runs")
    assert env["VERL_FILE_LOGGER_ROOT"] == str(tmp_path / "log")
    with pytest.raises(ValueError, match="cannot contain a comma"):
        run_env.tracking_env({"group": "g", "tags": ["a,b"]}, environ, None)


def test_inside_a_ray_job_only_new_or_changed_variables_go_to_ray_init() -> None:
    env = {"WANDB_RUN_GROUP": "g", "WANDB_TAGS": "a,b", "VERL_FILE_LOGGER_ROOT": "/x"}
    job = {"runtime_env": {"env_vars": {"WANDB_RUN_GROUP": "g", "WANDB_TAGS": "other"}}}
    keep, override = run_env.split_for_ray_job(env, {run_env.RAY_JOB_CONFIG_ENV: json.dumps(job)})
    assert keep == {"WANDB_TAGS": "a,b", "VERL_FILE_LOGGER_ROOT": "/x"}
    assert override  # WANDB_TAGS differs from the job's: ray.init must be allowed to override it
    keep, override = run_env.split_for_ray_job(env, {})
    assert (keep, override) == (env, False)


def test_submit_runtime_env_passes_secrets_through_but_not_the_attempt() -> None:
    env = {"WANDB_RUN_GROUP": "g", "VERL_FILE_LOGGER_ROOT": "/attempt"}
    got = run_env.submit_runtime_env(env, {"WANDB_API_KEY": "secret", "VLNORM_RAY_PIP": "a.whl, b==1"})
    assert got == {
        "env_vars": {"WANDB_RUN_GROUP": "g", "WANDB_API_KEY": "secret"},
        "pip": {"packages": ["a.whl", "b==1"], "pip_check": False},
    }
    assert run_env.redact(got["env_vars"])["WANDB_API_KEY"] == "<set>"


def test_hydra_quote_keeps_commas_and_quotes_as_one_string() -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for value in ["a,b,c", "it's", "/p a/t=h", "x\\y", "a\\'b", "end\\", "two\\\\'"]:
        (override,) = parser.parse_overrides([f"k={run_env.hydra_quote(value)}"])
        assert override.value() == value


# ---------------------------------------------------------------------------------------------------------
# each launch logs to its own file


def test_each_launch_gets_its_own_attempt_directory_and_earlier_logs_survive(
    run_dirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two launches of one experiment in the same second: verl's FileLogger (mode 'wb') writes two files."""
    from verl.utils.tracking import FileLogger

    monkeypatch.setattr(run_env, "attempt_id", lambda now=None: "20260101T000000Z")
    first = launch.prepare("countdown_vlnorm", [], os.environ, reserve=True)
    second = launch.prepare("countdown_vlnorm", [], os.environ, reserve=True)
    assert first.log_root.name == "20260101T000000Z" and second.log_root.name == "20260101T000000Z-2"
    files = []
    for attempt, step in ((first, 1), (second, 2)):
        monkeypatch.setenv("VERL_FILE_LOGGER_ROOT", attempt.env["VERL_FILE_LOGGER_ROOT"])
        logger = FileLogger(attempt.cfg.trainer.project_name, attempt.cfg.trainer.experiment_name)
        logger.log({"critic/score/mean": float(step)}, step=step)
        logger.finish()
        files.append(Path(logger.filepath))
    assert [json.loads(f.read_text())["step"] for f in files] == [1, 2]
    assert files[0].stem == files[1].stem == "countdown_vlnorm-qwen2.5-3b"  # one run name for both attempts


@pytest.fixture
def own_environ():
    """A real launch exports the run's environment into this process: put the test process's back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_a_real_launch_records_itself_and_runs_verls_main_ppo_in_process_with_the_tracking_env(
    run_dirs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, own_environ
) -> None:
    """verl's own Hydra entry point (``main_ppo.main``) composes the recorded command line in this process; what it
    hands ``run_ppo`` and the environment at that moment are what ``python -m verl.trainer.main_ppo`` would get."""
    from verl.trainer import main_ppo

    data, runs = run_dirs
    for name in ("train.parquet", "test.parquet"):
        (data / "countdown").mkdir(parents=True, exist_ok=True)
        (data / "countdown" / name).write_bytes(b"")
    calls = []

    def fake_run_ppo(config, task_runner_class):
        calls.append((config, dict(os.environ), list(sys.argv), os.getpid()))

    monkeypatch.setattr(main_ppo, "run_ppo", fake_run_ppo)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    assert cli.main(["train", "countdown_dapo_vlnorm", "trainer.total_epochs=1"]) == 0
    ((config, env, argv, pid),) = calls
    assert pid == os.getpid()  # no second interpreter
    assert argv[0] == main_ppo.__file__
    assert f"--config-path={launch.RECIPES_DIR}" in argv and "--config-name=countdown_dapo_vlnorm" in argv
    assert "trainer.total_epochs=1" in argv
    assert config.trainer.total_epochs == 1 and config.vlnorm.recipe == "countdown_dapo_vlnorm"
    (attempt,) = (runs / "logs" / "countdown_dapo_vlnorm-qwen2.5-3b").iterdir()
    assert env["VERL_FILE_LOGGER_ROOT"] == str(attempt)
    assert f"hydra.run.dir='{attempt}'" in argv
    assert (attempt / ".hydra" / "config.yaml").is_file()  # Hydra saved the run's config where the launch said
    assert env["WANDB_RUN_GROUP"] == "dapo-countdown-qwen2.5-3b" and env["WANDB_MODE"] == "offline"
    record = json.loads((attempt / "launch.json").read_text())
    assert record["command"][3:] == argv[1:] and record["env"]["WANDB_TAGS"] == env["WANDB_TAGS"]
    assert record["command"][1:3] == ["-m", "verl.trainer.main_ppo"]


def test_verls_failure_is_the_launchs_exit_status(run_dirs, monkeypatch: pytest.MonkeyPatch, own_environ) -> None:
    """verl raising inside main_ppo ends the launch with Hydra's status 1, as the separate process did."""
    from verl.trainer import main_ppo

    data, _ = run_dirs
    for name in ("train.parquet", "test.parquet"):
        (data / "countdown").mkdir(parents=True, exist_ok=True)
        (data / "countdown" / name).write_bytes(b"")

    def failing_run_ppo(config, task_runner_class):
        raise RuntimeError("verl failed")

    monkeypatch.setattr(main_ppo, "run_ppo", failing_run_ppo)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "countdown_dapo_vlnorm"])
    assert exit_info.value.code == 1


def test_a_real_launch_refuses_missing_data_and_leaves_no_attempt_behind(run_dirs, capsys) -> None:
    _, runs = run_dirs
    assert cli.main(["train", "countdown_vlnorm"]) == launch.EXIT_INVALID
    assert "missing data files" in capsys.readouterr().err
    assert not any((runs / "logs").glob("*/*"))


# ---------------------------------------------------------------------------------------------------------
# the console script, verl's own composition, a built wheel


def test_console_script_dry_run_prints_only_yaml_on_stdout(tmp_path: Path) -> None:
    env = make_script_env(tmp_path)
    vlnorm = Path(PYTHON).parent / "vlnorm-verl"
    proc = subprocess.run(
        [str(vlnorm), "train", "math_dapo_overlong_filter", "model=qwen2.5-7b", "--dry-run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["algorithm"]["adv_estimator"] == "overlong_filter"
    assert cfg["actor_rollout_ref"]["model"]["path"] == "Qwen/Qwen2.5-7B"
    assert "dynamic sampling / metric / inflight / bound True / reward / 3 / 10" in proc.stderr


def test_console_script_lists_recipes_and_rejects_bad_input(tmp_path: Path) -> None:
    env = make_script_env(tmp_path)
    listed = cli_run(["train", "--list"], env, tmp_path)
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == launch.list_recipes()
    bad = cli_run(["train", "countdown_vlnorm", "algorithm.vl_norm.scope=global", "--dry-run"], env, tmp_path)
    assert bad.returncode == launch.EXIT_INVALID and bad.stdout == ""
    assert "algorithm.vl_norm.scope must be one of ['batch', 'minibatch'], got 'global'" in bad.stderr
    runtime = cli_run(["train", "countdown_vlnorm", "--print-runtime-env"], {**env, "WANDB_API_KEY": "k"}, tmp_path)
    assert runtime.returncode == 0, runtime.stderr
    env_vars = json.loads(runtime.stdout)["env_vars"]
    assert env_vars["WANDB_RUN_GROUP"] == "aggregation-countdown-qwen2.5-3b" and env_vars["WANDB_MODE"] == "online"
    assert env_vars["WANDB_API_KEY"] == "k" and "VERL_FILE_LOGGER_ROOT" not in env_vars


def test_verl_main_ppo_composes_the_launch_command_to_the_same_config(run_dirs, tmp_path: Path) -> None:
    """The launcher's command, with Hydra's --cfg job, printed by verl's own entry point: the config we checked."""
    launched = launch.prepare("countdown_dapo_soft_punish", ["model=qwen2.5-7b", "cluster=1x8"], os.environ)
    command = [a for a in launched.command() if not a.startswith("hydra.run.dir=")] + ["--cfg", "job", "--resolve"]
    env = {**make_script_env(tmp_path), **launched.env}
    proc = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert yaml.safe_load(proc.stdout) == OmegaConf.to_container(launched.cfg, resolve=True)


@pytest.mark.slow
def test_recipes_work_from_a_built_wheel(tmp_path: Path) -> None:
    """Build the wheel, unpack it, and dry-run a recipe with the package imported from the wheel only."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "vlnorm_verl", src / "vlnorm_verl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", src / "pyproject.toml")
    readme = REPO / "README.md"
    (src / "README.md").write_text(readme.read_text() if readme.exists() else "vlnorm-verl\n")
    build = subprocess.run(
        [
            PYTHON,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("vlnorm_verl-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    for name in launch.list_recipes():
        assert f"vlnorm_verl/configs/recipes/{name}.yaml" in names
    for group in ("base/paper", "suite/dapo", "variant/overlong_filter", "model/qwen2.5-7b", "tracking/wandb"):
        assert f"vlnorm_verl/configs/{group}.yaml" in names
    env = make_script_env(tmp_path, PYTHONPATH=str(tmp_path / "site"))
    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = cli_run(["train", "countdown_dapo_vlnorm", "--dry-run"], env, work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"--config-path={tmp_path / 'site' / 'vlnorm_verl' / 'configs' / 'recipes'}" in proc.stderr
    assert yaml.safe_load(proc.stdout)["algorithm"]["vl_norm"]["alpha"] == 1.0
