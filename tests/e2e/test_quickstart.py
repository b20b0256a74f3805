"""End to end: the CPU quickstart, two RL steps of each arm, then ``vlnorm-verl compare`` on the two runs.

One module-scoped run (a subprocess, as a user runs it): prepare a small offline CountDown set with
``vlnorm-verl prepare-data``, warm-start the tiny model through verl's engine, run the ``vl_norm`` and ``dapo``
arms for two steps each, compare them. The checks use independent statements of what must hold:

- metrics were logged under verl's names, per step, by verl's ``file`` logger (and a wandb offline run exists);
- some advantages are non-zero and the policy moved (gradient norm > 0, weights away from the start);
- VL Norm: the logged weights equal L_i^-alpha / mean_j L_j^-alpha of the logged lengths, the advantages the
  update used equal those weights times the plain GRPO advantage (recomputed here by hand from the scores and
  groups), and the statistics verl's loss reported inside the engine (``actor/vl_norm/*``) match the lengths;
- DAPO: the advantages are the plain GRPO ones;
- the comparison wrote its JSON and plots.

About 2-3 minutes on 2 CPU cores (most of it the warm-start).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = "vlnorm-quickstart"
STEPS = 2
CORE_METRICS = (
    "critic/score/mean",
    "critic/advantages/max",
    "response_length/mean",
    "actor/pg_loss",
    "actor/grad_norm",
    "actor/entropy",
    "quickstart/param_distance",
)


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc


@pytest.fixture(scope="module")
def quickstart_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("quickstart")
    env = {
        **os.environ,
        "VLNORM_DATA_DIR": str(root / "data"),
        "QS_OUT": str(root / "out"),
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(root / "out"),  # explicit: another test module may have pointed WANDB_DIR elsewhere
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
    env.pop("VERL_FILE_LOGGER_PATH", None)
    py = sys.executable
    start = time.perf_counter()
    _run(
        [py, "-m", "vlnorm_verl.cli", "prepare-data", "countdown", "--out", str(root / "data" / "countdown"),
         "--train-size", "64", "--test-size", "16", "--four-fraction", "0", "--workers", "1", "--no-progress"],
        env,
        300,
    )  # fmt: skip
    proc = _run(
        [py, "-m", "vlnorm_verl.quickstart", f"quickstart.rl.steps={STEPS}", "quickstart.rl.val_every=1",
         "quickstart.data.train_prompts=32", "quickstart.data.val_prompts=8"],
        env,
        900,
    )  # fmt: skip
    out = root / "out"
    logs = out / "logs" / PROJECT
    cmp = _run(
        [py, "-m", "vlnorm_verl.cli", "compare", str(logs), "--baseline", "dapo", "--metric", "critic/score/mean",
         "--json", str(out / "compare" / "compare.json"), "--plot", str(out / "compare" / "plots")],
        env,
        300,
    )  # fmt: skip
    return {"out": out, "logs": logs, "stdout": proc.stdout, "compare_stdout": cmp.stdout,
            "wall_s": time.perf_counter() - start}  # fmt: skip


def _steps(path: Path) -> dict[int, dict]:
    records: dict[int, dict] = defaultdict(dict)
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        records[int(rec["step"])].update(rec["data"])
    return dict(records)


def _rollouts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _grpo_by_hand(scores: list[float], uids: list[str], eps: float = 1e-6) -> list[float]:
    """(r_i - mean_g) / (std_g + eps) per group g, std with Bessel's correction (verl's GRPO)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for s, u in zip(scores, uids, strict=True):
        groups[u].append(s)
    out = []
    for s, u in zip(scores, uids, strict=True):
        g = groups[u]
        mean = sum(g) / len(g)
        std = math.sqrt(sum((x - mean) ** 2 for x in g) / (len(g) - 1)) if len(g) > 1 else 1.0
        out.append((s - mean) / (std + eps))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["vl_norm", "dapo"])
def test_metrics_logged_under_verl_names(quickstart_run: dict, arm: str) -> None:
    steps = _steps(quickstart_run["logs"] / f"{arm}.jsonl")
    assert sorted(steps) == list(range(STEPS + 1)), f"steps logged: {sorted(steps)}"
    for step in range(1, STEPS + 1):
        missing = [k for k in CORE_METRICS if k not in steps[step]]
        assert not missing, f"{arm} step {step} lacks {missing}"
    for step in range(STEPS + 1):
        assert "val-core/countdown/acc/mean@1" in steps[step]
    vl_keys = [k for k in steps[1] if k.startswith("actor/vl_norm/")]
    assert bool(vl_keys) == (arm == "vl_norm"), vl_keys
    wandb_runs = list((quickstart_run["out"] / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) >= 2, "each arm should leave a wandb offline run"


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["vl_norm", "dapo"])
def test_some_advantages_nonzero_and_policy_moved(quickstart_run: dict, arm: str) -> None:
    steps = _steps(quickstart_run["logs"] / f"{arm}.jsonl")
    rollouts = _rollouts(quickstart_run["out"] / "rollouts" / f"{arm}.jsonl")
    nonzero = [sum(abs(a) > 1e-6 for a in r["advantage"]) for r in rollouts]
    assert sum(nonzero) > 0, "every advantage was zero: the warm-start did not make any sampled answer right"
    moved = [s for s in range(1, STEPS + 1) if steps[s]["actor/grad_norm"] > 0]
    assert moved, "no update had a non-zero gradient"
    assert steps[STEPS]["quickstart/param_distance"] > 0
    # the reward logged by verl's metric function is the mean of the logged scores
    for r in rollouts:
        assert steps[r["step"]]["critic/score/mean"] == pytest.approx(sum(r["score"]) / len(r["score"]))
        assert steps[r["step"]]["response_length/mean"] == pytest.approx(sum(r["length"]) / len(r["length"]))


@pytest.mark.slow
def test_vl_norm_weights_match_lengths(quickstart_run: dict) -> None:
    steps = _steps(quickstart_run["logs"] / "vl_norm.jsonl")
    for r in _rollouts(quickstart_run["out"] / "rollouts" / "vl_norm.jsonl"):
        alpha, lengths = r["alpha"], r["length"]
        u = [n**-alpha for n in lengths]
        expected_w = [x / (sum(u) / len(u)) for x in u]
        assert r["vl_norm_weight"] == pytest.approx(expected_w, rel=1e-9)
        base = _grpo_by_hand(r["score"], r["uid"])
        assert r["base_advantage"] == pytest.approx(base, abs=1e-5)
        assert r["advantage"] == pytest.approx([b * w for b, w in zip(base, expected_w, strict=True)], abs=1e-5)
        # what verl's loss computed inside the engine, from the rows it received
        m = steps[r["step"]]
        assert m["actor/vl_norm/length_mean"] == pytest.approx(sum(lengths) / len(lengths))
        assert m["actor/vl_norm/weight_max"] == pytest.approx(max(expected_w), rel=1e-6)
        assert m["actor/vl_norm/weight_min"] == pytest.approx(min(expected_w), rel=1e-6)
        ess = sum(expected_w) ** 2 / (len(expected_w) * sum(w * w for w in expected_w))
        assert m["actor/vl_norm/ess_fraction"] == pytest.approx(ess, rel=1e-6)


@pytest.mark.slow
def test_dapo_arm_uses_plain_grpo_advantages(quickstart_run: dict) -> None:
    for r in _rollouts(quickstart_run["out"] / "rollouts" / "dapo.jsonl"):
        assert "vl_norm_weight" not in r
        assert r["advantage"] == pytest.approx(_grpo_by_hand(r["score"], r["uid"]), abs=1e-5)


@pytest.mark.slow
def test_comparison_files_exist(quickstart_run: dict) -> None:
    out = quickstart_run["out"] / "compare"
    data = json.loads((out / "compare.json").read_text())
    assert data["baseline"] == "dapo"
    assert {run["name"] for run in data["runs"]} == {"vl_norm", "dapo"}
    assert list((out / "plots").glob("*.png")), "no plot written"
    assert "vl_norm" in quickstart_run["compare_stdout"]
    summary = json.loads((quickstart_run["out"] / "summary.json").read_text())
    assert set(summary["arms"]) == {"vl_norm", "dapo"}
    print(f"quickstart e2e wall time: {quickstart_run['wall_s']:.0f} s")


def test_arms_compose_the_registered_estimators() -> None:
    from vlnorm_verl.quickstart.config import compose_arm

    vl = compose_arm("vl_norm")
    assert vl.algorithm.adv_estimator == "vl_norm"
    assert vl.algorithm.vl_norm.base_estimator == "grpo"
    assert vl.actor_rollout_ref.actor.policy_loss.loss_mode == "vl_norm"
    assert vl.actor_rollout_ref.actor.loss_scale_factor == vl.data.max_response_length  # M
    dapo = compose_arm("dapo")
    assert dapo.algorithm.adv_estimator == "grpo"
    assert dapo.actor_rollout_ref.actor.policy_loss.loss_mode == "vanilla"
    assert dapo.actor_rollout_ref.actor.loss_agg_mode == "token-mean"
    assert vl.trainer.experiment_name == "vl_norm" and dapo.trainer.experiment_name == "dapo"


def test_bad_settings_are_named() -> None:
    from vlnorm_verl.quickstart.config import check, compose_arm

    with pytest.raises(ValueError, match="ppo_micro_batch_size_per_gpu=7 must divide the 64 responses"):
        check(compose_arm("vl_norm", ["actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=7"]))
    with pytest.raises(ValueError, match="rollout.n must be >= 2"):
        check(compose_arm("dapo", ["actor_rollout_ref.rollout.n=1"]))
    with pytest.raises(ValueError, match="unknown quickstart arm"):
        compose_arm("grpo")
