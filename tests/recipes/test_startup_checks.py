"""One start-up check on every entry point: each mis-set run of the GPU-path issue stops before Ray starts, with
exit status 2 and one line naming the setting and the fix, no traceback - through ``vlnorm-verl train`` and through
plain ``python -m verl.trainer.main_ppo`` on the packaged recipe (run in a private network namespace, so a check
that did not fire could not start a reachable Ray cluster)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vlnorm_verl.launch import cli
from vlnorm_verl.launch import launcher as launch

FORKED_MAIN_PPO = Path(__file__).resolve().parents[1] / "support" / "forked_main_ppo.py"
# (id, recipe, overrides, the one line's pattern: the setting and the fix)
CASES: list[tuple[str, str, list[str], str]] = [
    (
        "response-length-0",
        "countdown_vlnorm",
        ["data.max_response_length=0"],
        r"data\.max_response_length=0: .*set data\.max_response_length",
    ),
    (
        "mini-batch-not-a-divisor",
        "countdown_dapo_plain",
        ["actor_rollout_ref.actor.ppo_mini_batch_size=48"],
        r"ppo_mini_batch_size=48 does not divide data\.train_batch_size=128.*divisor of 128 \(e\.g\. 32\)",
    ),
    (
        "soft-buffer-as-long-as-the-cap",
        "math_dapo_soft_punish",
        ["reward.reward_kwargs.overlong_buffer_cfg.len=3072"],
        r"0 < reward\.reward_kwargs\.overlong_buffer_cfg\.len \(3072\) < reward\.reward_kwargs\.max_resp_len \(3072\)",
    ),
    (
        "soft-buffer-zero",
        "countdown_dapo_soft_punish",
        ["reward.reward_kwargs.overlong_buffer_cfg.len=0"],
        r"overlong_buffer_cfg\.len \(0\) <",
    ),
    (
        "loss-scale-null",
        "countdown_dapo_vlnorm",
        ["actor_rollout_ref.actor.loss_scale_factor=null"],
        r"loss_scale_factor=None must equal data\.max_response_length=3072.*set actor_rollout_ref\.actor\.loss_scale",
    ),
    ("alpha-nan", "math_vlnorm", ["algorithm.vl_norm.alpha=nan"], r"algorithm\.vl_norm\.alpha: .*finite .*, got nan"),
    ("alpha-bool", "math_vlnorm", ["algorithm.vl_norm.alpha=true"], r"algorithm\.vl_norm\.alpha: .*number >= 0"),
    ("alpha-negative", "countdown_vlnorm", ["algorithm.vl_norm.alpha=-0.5"], r"algorithm\.vl_norm\.alpha.*>= 0"),
    (
        "n1-grpo-under-vl-norm",
        "countdown_vlnorm",
        ["actor_rollout_ref.rollout.n=1"],
        r"rollout\.n=1 with algorithm\.vl_norm\.base_estimator=grpo: .*set actor_rollout_ref\.rollout\.n>=2",
    ),
    (
        "n1-grpo-under-the-overlong-filter",
        "math_dapo_overlong_filter",
        ["actor_rollout_ref.rollout.n=1"],
        r"rollout\.n=1 with algorithm\.overlong_filter\.base_estimator=grpo",
    ),
    (
        "vanilla-loss-under-vl-norm",
        "countdown_vlnorm",
        ["actor_rollout_ref.actor.policy_loss.loss_mode=vanilla"],
        r"adv_estimator=vl_norm needs actor_rollout_ref\.actor\.policy_loss\.loss_mode=vl_norm",
    ),
    (
        "vl-norm-multi-turn",
        "countdown_dapo_vlnorm",
        ["actor_rollout_ref.rollout.multi_turn.enable=true"],
        r"multi_turn\.enable=true with algorithm\.adv_estimator=vl_norm: .*multi_turn\.enable=false",
    ),
    (
        "vl-norm-agent-loop",
        "math_vlnorm",
        ["actor_rollout_ref.rollout.agent.default_agent_loop=tool_agent"],
        r"default_agent_loop='tool_agent' with algorithm\.adv_estimator=vl_norm",
    ),
    (
        "filter-groups-bound",
        "countdown_dapo_plain",
        ["algorithm.filter_groups.max_num_gen_batches=-1"],
        r"max_num_gen_batches must be a non-negative integer",
    ),
    (
        "overlong-filter-unused",
        "countdown_dapo_overlong_filter",
        ["algorithm.adv_estimator=grpo"],
        r"algorithm\.overlong_filter is set but no estimator uses it",
    ),
    (
        "legacy-grad-clip",
        "math_dapo_plain",
        ["actor_rollout_ref.actor.grad_clip=0.5"],
        r"actor\.grad_clip=0\.5 differs from actor_rollout_ref\.actor\.optim\.clip_grad=1",
    ),
]
IDS = [case[0] for case in CASES]


def assert_one_line(stderr: str, prefix: str, pattern: str) -> None:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if "invalid run:" in line]
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith(prefix), lines[0]
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize(("case", "recipe", "overrides", "pattern"), CASES, ids=IDS)
def test_the_launcher_refuses(run_dirs, capsys, case: str, recipe: str, overrides: list[str], pattern: str) -> None:
    assert cli.main(["train", recipe, *overrides, "--dry-run"]) == launch.EXIT_INVALID
    assert_one_line(capsys.readouterr().err, "vlnorm-verl train: invalid run: ", pattern)


@pytest.fixture(scope="module")
def main_ppo_runs(netns, tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    """Every case through plain verl main_ppo: the first as ``python -m verl.trainer.main_ppo`` in its own
    interpreter, the others through the same ``main_ppo.main()`` in processes forked after verl is imported once
    (``forked_main_ppo``: each case then costs its composition and checks, ~1 s, not ~5 CPU-s of imports)."""
    base = tmp_path_factory.mktemp("main_ppo")

    def argv(case: tuple[str, str, list[str], str]) -> list[str]:
        name, recipe, overrides, _ = case
        return [f"--config-path={launch.RECIPES_DIR}", f"--config-name={recipe}", *overrides,
                f"hydra.run.dir={base / name}"]  # fmt: skip

    def interpreter(case: tuple[str, str, list[str], str]) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "verl.trainer.main_ppo", *argv(case)]
        return netns.run(cmd, capture_output=True, text=True, timeout=300, cwd=base)

    def forked(cases: list[tuple[str, str, list[str], str]]) -> dict[str, subprocess.CompletedProcess]:
        spec, results = base / "cases.json", base / "results.json"
        spec.write_text(json.dumps([{"name": c[0], "argv": argv(c), "cwd": str(base)} for c in cases]))
        helper = netns.run([sys.executable, str(FORKED_MAIN_PPO), str(spec), str(results)], timeout=300, cwd=base)
        assert helper.returncode == 0, helper.stderr[-3000:]
        return {
            name: subprocess.CompletedProcess([name], r["returncode"], r["stdout"], r["stderr"])
            for name, r in json.loads(results.read_text()).items()
        }

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(interpreter, CASES[0])
        rest = pool.submit(forked, CASES[1:])
        return {CASES[0][0]: first.result(), **rest.result()}


@pytest.mark.parametrize(("case", "recipe", "overrides", "pattern"), CASES, ids=IDS)
def test_verls_own_entry_point_refuses_before_ray_starts(
    main_ppo_runs, case: str, recipe: str, overrides: list[str], pattern: str
) -> None:
    proc = main_ppo_runs[case]
    assert proc.returncode == launch.EXIT_INVALID, proc.stderr[-3000:]
    assert_one_line(proc.stderr, "vlnorm-verl: invalid run: ", pattern)
    text = proc.stdout + proc.stderr
    assert "Started a local Ray instance" not in text and "ray init kwargs" not in text  # ray.init never ran


@pytest.mark.parametrize("recipe", launch.list_recipes())
def test_every_valid_recipe_passes_the_callback_main_ppo_runs(run_dirs, recipe: str) -> None:
    """Negative control: the callback lets each packaged recipe through (and exports nothing for vLLM runs)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vlnorm_verl.cpu.rollout import backend
    from vlnorm_verl.extension import startup_check

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(launch.RECIPES_DIR), version_base=None):
        cfg = compose(config_name=recipe, return_hydra_config=True)
    callbacks = cfg.hydra.callbacks
    assert [c._target_ for c in callbacks.values()] == ["vlnorm_verl.extension.startup_check.StartupCheckCallback"]
    startup_check._on_job_start(cfg)  # what StartupCheckCallback.on_job_start runs; no SystemExit
    assert backend.ENABLE_ENV not in os.environ
