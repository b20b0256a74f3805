"""verl's real trainer (``python -m verl.trainer.main_ppo`` through ``vlnorm-verl train``) on CPU, 2 ranks.

Every test launches a recipe with ``cluster=cpu model=tiny``: TaskRunner, agent-loop rollout through the
``hf`` backend, reward loop, the VL Norm estimator and loss in the Ray workers, checkpointing and the file
logger, in a private network namespace. A random tiny model earns no CountDown reward, so the runs that need
groups with signal use the test-only reward ``toy_rewards.digit_parity`` (1 for an odd count of digits in
the response), which a random model earns about half the time.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from trainer_run import SUPPORT

pytestmark = pytest.mark.slow

TOY_REWARD = [
    f"reward.custom_reward_function.path={SUPPORT / 'toy_rewards.py'}",
    "reward.custom_reward_function.name=digit_parity",
]
NO_REWARD = [
    f"reward.custom_reward_function.path={SUPPORT / 'toy_rewards.py'}",
    "reward.custom_reward_function.name=always_zero",
]
VL_NORM_KEYS = [f"actor/vl_norm/{k}" for k in ("ess_fraction", "weight_min", "weight_max", "length_mean", "length_cv")]
SYNCED = 1e-5  # max |rollout log-prob - actor log-prob| when the rollout samples with the weights just trained


def _check_ok(run) -> None:
    assert run.returncode == 0, run.tail()


#: the runs that need nothing from each other, by name: (recipe, overrides, timeout in seconds)
INDEPENDENT_RUNS = {
    # one run checks two things: the minibatch scope's statistics cover the global mini-batch, and - the negative
    # control of the synced-rollout check below - with later weight pushes dropped the rollout drifts from the actor
    "minibatch_without_weight_push": (
        "countdown_vlnorm",
        [
            *TOY_REWARD,
            "trainer.total_training_steps=3",
            "actor_rollout_ref.actor.optim.lr=1e-3",
            "algorithm.vl_norm.scope=minibatch",
            "actor_rollout_ref.actor.ppo_mini_batch_size=2",  # 2 optimizer steps of 2 prompts x 4 responses
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
            "actor_rollout_ref.model.external_lib=[vlnorm_verl.plugin,frozen_rollout]",
        ],
        420,
    ),
    "dapo_without_signal": (
        "countdown_dapo_vlnorm",
        [*NO_REWARD, "trainer.total_training_steps=2", "algorithm.filter_groups.max_num_gen_batches=3"],
        300,
    ),
}


@pytest.fixture(scope="module")
def independent_runs(cpu_trainer, tmp_path_factory) -> dict:
    """:data:`INDEPENDENT_RUNS`, launched side by side (``CPUTrainer.train_side_by_side``)."""
    root = tmp_path_factory.mktemp("independent_runs")
    launches = {name: (recipe, overrides, root / name, timeout)
                for name, (recipe, overrides, timeout) in INDEPENDENT_RUNS.items()}  # fmt: skip
    return cpu_trainer.train_side_by_side(launches)


def test_minibatch_scope_and_without_the_weight_push_the_rollout_drifts(independent_runs):
    run = independent_runs["minibatch_without_weight_push"]
    _check_ok(run)
    assert run.steps() == [1, 2, 3]
    # each mini-batch holds 8 responses, 4 per rank in micro-batches of 2: the weights' statistics (and the loss's
    # normaliser D) are over all 8 - only the engine hook inside the workers can provide that
    assert run.metric("actor/vl_norm/responses") == [8.0] * 3
    assert all(g > 0 for g in run.metric("actor/grad_norm"))
    diffs = run.metric("training/rollout_probs_diff_max")
    assert diffs[0] <= SYNCED  # the first push (before any update) still happens
    assert max(diffs[1:]) > 100 * SYNCED, diffs


def test_dapo_without_signal_stops_within_the_bound(independent_runs):
    run = independent_runs["dapo_without_signal"]
    assert run.returncode not in (0, -9), run.tail()  # failed by itself, not killed by the timeout
    assert "max_num_gen_batches" in run.output, run.tail()
    assert run.steps() == []
    assert run.wall_s < INDEPENDENT_RUNS["dapo_without_signal"][2]


def _check_trained_with_synced_rollout(records: list[dict]) -> None:
    """Each step logged verl's metrics and VL Norm's, learned from non-zero advantages, and sampled its rollouts
    from the weights the actor had just trained (verl's rollout-vs-actor log-prob difference)."""
    for rec in records:
        data = rec["data"]
        for key in ("critic/score/mean", "response_length/mean", "actor/pg_loss", "actor/grad_norm", *VL_NORM_KEYS):
            assert key in data, (rec["step"], key)
        assert 0.0 < data["critic/score/mean"] < 1.0, rec  # rewards vary, so advantages are non-zero
        assert data["actor/grad_norm"] > 0 and math.isfinite(data["actor/grad_norm"]), rec
        assert data["training/rollout_probs_diff_max"] <= SYNCED, rec
        # 4 prompts x n=4 = 16 responses, one mini-batch per step, 8 per rank in one micro-batch: the batch scope
        # installs no engine hook, so its statistics describe each micro-batch (the minibatch scope's cover the
        # mini-batch, above)
        assert data["actor/vl_norm/responses"] == 8.0, rec


def test_killed_run_resumes_from_its_checkpoint_with_synced_rollout(cpu_trainer, work):
    """One recipe run on two ranks, killed after its step-2 checkpoint and launched again: it trains with VL Norm and a
    rollout synced to the actor before and after the resume, and the global step continues from the checkpoint."""
    overrides = [
        *TOY_REWARD,
        "trainer.total_training_steps=4",
        "trainer.save_freq=2",
        "actor_rollout_ref.actor.optim.lr=1e-3",
    ]
    t0 = time.monotonic()
    proc = cpu_trainer.start("countdown_vlnorm", overrides, work)
    marker = work / "runs/checkpoints/vlnorm-verl/countdown_vlnorm-tiny/latest_checkpointed_iteration.txt"
    while time.monotonic() - t0 < 300 and proc.poll() is None:
        if marker.is_file() and marker.read_text().strip() == "2":
            break
        time.sleep(0.5)
    assert marker.is_file() and marker.read_text().strip() == "2", "no checkpoint at step 2"
    first = cpu_trainer.finish(proc, "countdown_vlnorm", overrides, work, timeout=0, t0=t0)  # SIGKILL now
    assert first.returncode != 0  # killed, not finished
    killed_steps = first.steps()
    assert 2 <= len(killed_steps) < 4, killed_steps

    second = cpu_trainer.train("countdown_vlnorm", overrides, work)
    _check_ok(second)
    by_attempt: dict[str, list[int]] = {}
    for rec in second.records:
        by_attempt.setdefault(rec["_attempt"], []).append(rec["step"])
    assert len(by_attempt) == 2, by_attempt
    resumed = by_attempt[sorted(by_attempt)[1]]
    assert resumed == [3, 4], by_attempt  # the global step continues after the checkpoint
    _check_trained_with_synced_rollout(second.records)

    logs = sorted((work / "runs/logs/countdown_vlnorm-tiny").glob("*/*/*.jsonl"))
    out = work / "compare.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "vlnorm_verl.launch.cli",
            "compare",
            *map(str, logs),
            "--metric",
            "critic/score/mean",
            "--baseline",
            "countdown_vlnorm-tiny",  # the attempts share the experiment name: one (resumed) run
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    result = json.loads(Path(out).read_text())
    (entry,) = result["runs"]
    assert (entry["n_evals"], entry["first_step"], entry["last_step"]) == (4, 1, 4)
