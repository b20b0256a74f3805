"""End to end: README command 1 on the CPU (``scripts/quickstart.sh``) as a user runs it, two RL steps per recipe.

One module-scoped run of the script (``SKIP_INSTALL=1``, the test's own interpreter), in a private network
namespace: ``prepare-data``, the warm-start through verl's SFT trainer, ``countdown_dapo_vlnorm`` and
``countdown_dapo_plain`` side by side through ``vlnorm-verl train ... cluster=cpu model=tiny``,
``vlnorm-verl compare`` on the launcher's log directories, ``vlnorm-verl probe`` on the VL Norm run's final
checkpoint. The run uses a test reward a barely warm-started model earns about half the time
(``toy_rewards.digit_parity``, through verl's ``reward.custom_reward_function``), so DAPO's dynamic sampling
finds groups with signal after six SFT steps; the probe, which scores with the CountDown reward, runs with
``--advantage one`` for the same reason.

The checks use independent statements of what must hold: per-step metrics under verl's names in each run's own
file-logger JSONL, one compact line per step on the console and verl's metric dump only in the run's log;
VL Norm statistics in the VL Norm run only; both runs launched with the same settings from the one warm-started
checkpoint; compare and probe wrote what they print. Bad input: missing data and a Ray daemon already running
stop the quickstart with the cause (no training); Ctrl-C during a run leaves no process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from trainer_run import SUPPORT, in_netns, netns_reason

REPO = Path(__file__).resolve().parents[2]
STEPS = 2
WARMSTART_STEPS = 6
ARMS = ("countdown_dapo_vlnorm", "countdown_dapo_plain")
CORE_METRICS = ("critic/score/mean", "response_length/mean", "actor/pg_loss", "actor/grad_norm", "timing_s/step")
SMALL = (
    f"reward.custom_reward_function.path={SUPPORT / 'toy_rewards.py'} reward.custom_reward_function.name=digit_parity "
    "data.train_batch_size=4 actor_rollout_ref.actor.ppo_mini_batch_size=4 actor_rollout_ref.rollout.n=4 "
    "data.max_response_length=64"
)


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_", "VERL_", "VLNORM_", "QS_"))}
    env.update(
        SKIP_INSTALL="1",
        VENV=sys.prefix,
        QS_DEVICE="cpu",
        QS_OUT=str(root / "out"),
        QS_CACHE=str(root / "cache"),
        VLNORM_DATA_DIR=str(root / "data"),
        QS_TRAIN_SIZE="16",
        QS_TEST_SIZE="4",
        QS_STEPS=str(STEPS),
        QS_WARMSTART_STEPS=str(WARMSTART_STEPS),
        QS_PROBE_PROMPTS="16",
        QS_PROBE_N="4",
        QS_OVERRIDES=SMALL,
        QS_PROBE_ARGS="--advantage one --bootstrap 200",  # six SFT steps earn no CountDown reward: A_i = 1
        WANDB_MODE="offline",
        RAY_USAGE_STATS_ENABLED="0",
    )
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    reason = netns_reason()
    if reason:
        pytest.skip(f"verl trainer runs: {reason}")
    if not Path(sys.prefix, "bin", "python").exists():
        pytest.skip(f"the script needs a virtual environment's bin/python ({sys.prefix})")
    root = tmp_path_factory.mktemp("quickstart")
    start = time.perf_counter()
    proc = subprocess.run(
        in_netns(["bash", "scripts/quickstart.sh"]), cwd=REPO, env=_env(root), capture_output=True, text=True,
        timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, f"quickstart failed ({proc.returncode}):\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}"
    print(f"quickstart e2e wall time: {time.perf_counter() - start:.0f} s")
    return {"root": root, "out": root / "out", "stdout": proc.stdout}


def _records(out: Path, recipe: str) -> dict[int, dict]:
    paths = list((out / "runs" / "logs" / recipe).glob(f"*/*/{recipe}.jsonl"))
    assert len(paths) == 1, paths
    return {int(r["step"]): r["data"] for r in map(json.loads, paths[0].read_text().splitlines())}


def _launch(out: Path, recipe: str) -> dict:
    (path,) = (out / "runs" / "logs" / recipe).glob("*/launch.json")
    return json.loads(path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ARMS)
def test_each_recipe_trained_through_verl_and_printed_one_line_per_step(quickstart_run: dict, recipe: str) -> None:
    steps = _records(quickstart_run["out"], recipe)
    assert sorted(steps) == list(range(1, STEPS + 1))
    for step, data in steps.items():
        missing = [k for k in CORE_METRICS if k not in data]
        assert not missing, f"{recipe} step {step} lacks {missing}"
        line = f"[{recipe}] step {step:3d}/{STEPS}  reward {data['critic/score/mean']:.3f}"
        assert line in quickstart_run["stdout"]
    vl_keys = [k for k in steps[1] if k.startswith("actor/vl_norm/")]
    assert bool(vl_keys) == (recipe == "countdown_dapo_vlnorm"), vl_keys
    assert "actor/pg_loss" not in quickstart_run["stdout"]  # verl's metric dump went to the run's log
    assert "actor/pg_loss" in (quickstart_run["out"] / "logs" / f"{recipe}.log").read_text()


@pytest.mark.slow
def test_both_runs_start_from_the_one_warm_start_with_the_same_settings(quickstart_run: dict) -> None:
    launches = [_launch(quickstart_run["out"], r)["overrides"] for r in ARMS]
    models = [[o for o in ov if o.startswith("actor_rollout_ref.model.path=")] for ov in launches]
    assert models[0] == models[1] and len(models[0]) == 1
    model_dir = Path(models[0][0].split("=", 1)[1])
    assert model_dir.parent == quickstart_run["root"] / "cache" and model_dir.name.startswith("warmstart-")
    assert json.loads((model_dir / "warmstart.json").read_text())["steps"] == WARMSTART_STEPS

    def settings(overrides: list[str]) -> list[str]:  # leave out the names, paths and tags each run has its own
        own = ("trainer.experiment_name", "trainer.rollout_data_dir")
        return [o for o in overrides if o.split("=")[0] not in own and not o.startswith(("++ray_kwargs", "hydra."))]

    assert settings(launches[0]) == settings(launches[1])  # same seeds and data: the recipe is the only difference
    assert "data.seed=1" in launches[0]
    assert len(list((quickstart_run["out"] / "runs" / "wandb").glob("offline-run-*"))) == 2


@pytest.mark.slow
def test_compare_and_probe_report_on_the_runs(quickstart_run: dict) -> None:
    out, stdout = quickstart_run["out"], quickstart_run["stdout"]
    data = json.loads((out / "compare" / "compare.json").read_text())
    assert data["baseline"] == "countdown_dapo_plain"
    assert {run["name"] for run in data["runs"]} == set(ARMS)
    assert list((out / "compare" / "plots").glob("*.png")), "no plot written"
    assert (out / "compare" / "table.md").read_text().strip() in stdout
    summary = json.loads((out / "summary.json").read_text())
    for recipe in ARMS:
        rewards = [d["critic/score/mean"] for _, d in sorted(_records(out, recipe).items())]
        assert summary[recipe]["reward_last"] == pytest.approx(rewards[-1])
        assert summary[recipe]["reward_first"] == pytest.approx(rewards[0])
    ckpt = Path(summary["countdown_dapo_vlnorm"]["checkpoint"])
    assert ckpt.is_dir() and ckpt.parent.name == f"global_step_{STEPS}"
    probe = json.loads((out / "probe" / "probe.json").read_text())
    assert probe["n_responses"] == 16 * 4
    # the probe sampled the VL Norm run's final checkpoint with the cap that run trained with (QS_OVERRIDES: 64)
    assert probe["info"]["model"] == str(ckpt) and probe["info"]["max_response_length"] == 64
    assert f"[probe] beta-hat {probe['beta']:.2f} [90% interval {probe['beta_ci'][0]:.2f}" in stdout
    (vl1,) = [a for a in probe["aggregators"] if a["name"] == "vl_norm" and a["alpha"] == 1.0]
    assert f"DAPO Norm's at matched step size: {vl1['measured_rel_dapo']:.2f}" in stdout
    assert (out / "probe" / "probe.png").is_file() and "gradient variance" in (out / "probe" / "report.md").read_text()
    for recipe in ARMS:  # verl's rollout dump of every response the run trained on: 2 steps x 4 prompts x n = 4
        lengths = summary[recipe]["lengths"]
        assert lengths["n"] == STEPS * 4 * 4 and 1 <= lengths["p10"] <= lengths["p90"] <= 64
        assert f"[{recipe}] response lengths (tokens, {lengths['n']} responses)" in stdout


def _quickstart(root: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vlnorm_verl.launch.cli", "quickstart", "--out", str(root / "out"), *extra]
    return subprocess.run(cmd, cwd=REPO, env=_env(root), capture_output=True, text=True, timeout=120)


def test_missing_data_is_named(tmp_path: Path) -> None:
    proc = _quickstart(tmp_path, "--data-dir", str(tmp_path / "no"))
    assert proc.returncode == 2
    assert "no CountDown training data at" in proc.stderr and "vlnorm-verl prepare-data countdown" in proc.stderr


def test_a_running_ray_daemon_is_named(tmp_path: Path) -> None:
    """A process named like Ray's raylet (a stand-in for one left by an interrupted run) stops the quickstart."""
    (tmp_path / "data" / "countdown").mkdir(parents=True)
    (tmp_path / "data" / "countdown" / "train.parquet").write_bytes(b"")
    fake = tmp_path / "raylet"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    daemon = subprocess.Popen([str(fake), "60"])
    try:
        proc = _quickstart(tmp_path, "--data-dir", str(tmp_path / "data"))
    finally:
        daemon.kill()
        daemon.wait()
    assert proc.returncode == 2
    assert f"{daemon.pid} (raylet)" in proc.stderr and "ray stop --force" in proc.stderr


def _alive(pids: set[int]) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _signal_when(cmd: list[str], env: dict[str, str], ready, whom: str, sig: int) -> tuple[int, str, set[int]]:
    """Start ``cmd`` (own session), wait until ``ready(descendants)``, then send ``sig`` to the process alone
    (``whom="process"``: a ``kill``, a CI runner) or to its process group (``"group"``: Ctrl-C in a terminal).
    Returns the exit status, the output and every process id the command had started."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(1)
            tree = psutil.Process(proc.pid).children(recursive=True)
            started |= {p.pid for p in tree}
            if ready(tree):
                break
        else:
            pytest.fail(f"ended or never ready; output:\n{proc.stdout.read() if proc.poll() is not None else ''}")
        time.sleep(3)
        started |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        if whom == "group":
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out, started


def _cmdline(p: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(p.cmdline())
    return ""


def _ray_up(tree: list[psutil.Process]) -> bool:
    return any(p.name().startswith(("raylet", "gcs_server")) for p in tree)


def _sft_running(tree: list[psutil.Process]) -> bool:
    return any("vlnorm_verl.warmstart.sft_cpu" in _cmdline(p) for p in tree)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("whom", "sig"),
    [("group", signal.SIGINT), ("process", signal.SIGTERM)],
    ids=["ctrl-c-to-the-group", "sigterm-to-the-script"],
)
def test_a_signal_during_the_runs_leaves_no_process_behind(quickstart_run: dict, whom: str, sig: int) -> None:
    """Ctrl-C (SIGINT to the script's process group) or a plain ``kill`` (SIGTERM to the script alone) once the
    first run's Ray cluster is up: both runs, their Ray clusters and every worker end, and the script exits with
    128 + the signal's number."""
    root = quickstart_run["root"]
    env = _env(root, QS_OUT=str(root / f"interrupted-{whom}"), QS_STEPS="50", QS_PROBE_PROMPTS="0")
    code, out, started = _signal_when(in_netns(["bash", "scripts/quickstart.sh"]), env, _ray_up, whom, sig)
    assert code == 128 + sig, out[-3000:]
    assert f"interrupted ({signal.Signals(sig).name if whom == 'group' else 'SIGTERM'})" in out, out[-3000:]
    assert "stopped both runs and every process they started" in out
    alive = _alive(started)
    assert alive == [], f"processes left behind: {[_cmdline(psutil.Process(p)) for p in alive]}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("entry", "sig"),
    [("script", signal.SIGTERM), ("vlnorm-verl quickstart", signal.SIGINT)],
    ids=["sigterm-to-quickstart.sh", "sigint-to-vlnorm-verl-quickstart"],
)
def test_a_signal_during_the_warm_start_stops_verls_sft_trainer(tmp_path: Path, entry: str, sig: int) -> None:
    """The warm-start's SFT trainer runs in a session of its own (a terminal's Ctrl-C does not reach it): a signal
    to the script or to ``vlnorm-verl quickstart`` alone must stop it, not leave it training without a parent."""
    env = _env(tmp_path, QS_WARMSTART_STEPS="100000", QS_PROBE_PROMPTS="0")
    if entry == "script":
        cmd = in_netns(["bash", "scripts/quickstart.sh"])
    else:
        prepared = subprocess.run(
            [sys.executable, "-m", "vlnorm_verl.launch.cli", "prepare-data", "countdown", "--out",
             str(tmp_path / "data" / "countdown"), "--train-size", "16", "--test-size", "4", "--no-progress"],
            capture_output=True, timeout=120,
        )  # fmt: skip
        assert prepared.returncode == 0, prepared.stderr
        cmd = in_netns([sys.executable, "-m", "vlnorm_verl.launch.cli", "quickstart", "--out", str(tmp_path / "out"),
                        "--data-dir", str(tmp_path / "data"), "--cache", str(tmp_path / "cache")])  # fmt: skip
    code, out, started = _signal_when(cmd, env, _sft_running, "process", sig)
    assert code == 128 + sig, out[-3000:]
    seen = "SIGTERM" if entry == "script" else signal.Signals(sig).name  # the script forwards any stop as SIGTERM
    assert f"interrupted ({seen}) during the warm-start; nothing is left running" in out
    alive = _alive(started)
    assert alive == [], f"processes left behind: {[_cmdline(psutil.Process(p)) for p in alive]}"
