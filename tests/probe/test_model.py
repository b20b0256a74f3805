"""The probe on real models: the random tiny Qwen2 (sanity beta ~ 1 with A_i = 1, wall time), GRPO advantages from
sampled rewards, a verl rollout dump written by verl's own writer, and a verl FSDP checkpoint written by verl's own
checkpoint manager and merged by verl's model merger."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from probe_testlib import tiny_model_dir, write_countdown_parquet

from vlnorm_verl.probe import api, sampling
from vlnorm_verl.probe.errors import ProbeError

HERE = Path(__file__).resolve().parent


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine, two spinning OpenMP threads run generate ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe-small")
    return tiny_model_dir(root / "model", hidden=32), write_countdown_parquet(root / "train.parquet", rows=16)


def test_random_tiny_model_beta_is_one(tmp_path, one_thread):
    """The model=tiny policy (random init), A_i = 1, 256 responses at one temperature and cap: beta ~ 1."""
    from vlnorm_verl.cpu.tiny_model import TinyModelSpec, create_model_dir
    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    model_dir = create_model_dir(TinyModelSpec(), build_tokenizer(), tmp_path / "cache")
    parquet = write_countdown_parquet(tmp_path / "train.parquet", rows=32)
    started = time.perf_counter()
    result = api.probe_model(
        str(model_dir),
        data=parquet,
        sampling=sampling.SamplingSettings(n=8, num_prompts=32, temperature=1.0, max_response_length=256),
        advantage="one",
        device="cpu",
    )
    wall = time.perf_counter() - started
    a = result.analysis
    print(f"tiny model: beta {a.fit.beta:.3f} {a.fit.beta_ci}, alpha {a.choice.alpha} {a.choice.ci}, {wall:.1f} s")
    assert a.n == 256 and a.n_nonzero == 256
    assert abs(a.fit.beta - 1.0) <= 0.1
    assert wall <= 120
    assert result.info["gradient_mode"] == "exact" and result.info["parameters"] > 500_000
    assert {b["block"] for b in result.blocks} >= {"embed", "attn", "mlp", "lm_head"}
    assert result.without_embedding is not None and 0 < result.without_embedding["share"] < 1
    shares = sum(b["share"] for b in result.blocks)
    assert shares == pytest.approx(1.0, rel=1e-6)  # blocks are orthogonal pieces of the gradient
    assert result.info["truncated"] > 0 and a.lengths[1] == 256  # truncated responses have L = cap (no EOS)


def test_grpo_advantages_from_sampled_rewards(small, monkeypatch, one_thread):
    """Rewards vary (a stand-in reward keyed on the response length), so GRPO advantages are real."""
    import vlnorm_verl.rewards as rewards

    def fake_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
        return {"score": float(len(solution_str) % 3 == 0), "acc": 0.0}

    monkeypatch.setattr(rewards, "compute_score", fake_score)
    model_dir, parquet = small
    result = api.probe_model(
        str(model_dir),
        data=parquet,
        sampling=sampling.SamplingSettings(n=8, num_prompts=16, max_response_length=128, seed=1),
        device="cpu",
        settings=api.stats.Settings(n_batches=100, n_boot_alpha=30),
    )
    a = result.analysis
    assert a.n == 128 and 10 <= a.n_nonzero < 128
    assert result.info["advantage"] == "grpo"
    doc = result.to_dict()
    assert {"beta", "beta_ci", "recommended_alpha", "aggregators"} <= set(doc)


def test_grpo_advantages_are_verls():
    scores = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5]
    groups = ["a"] * 4 + ["b"] * 4
    adv = sampling.grpo_advantages(scores, groups)
    ref = (np.array(scores[:4]) - 0.5) / (np.std(scores[:4], ddof=1) + 1e-6)
    np.testing.assert_allclose(adv[:4], ref, rtol=1e-6)
    assert np.all(adv[4:] == 0.0)  # equal scores: exactly zero


def test_random_model_with_grpo_has_no_signal(small, one_thread):
    """The random model never solves CountDown: every advantage is 0, a clear error rather than a NaN."""
    model_dir, parquet = small
    with pytest.raises(ProbeError, match="too few responses for the fit: 0 with a non-zero gradient"):
        api.probe_model(
            str(model_dir),
            data=parquet,
            sampling=sampling.SamplingSettings(n=2, num_prompts=4, max_response_length=8),
            device="cpu",
        )


def test_rollout_dump_written_by_verl(small, tmp_path, one_thread):
    from transformers import AutoTokenizer
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    model_dir, _ = small
    tok = AutoTokenizer.from_pretrained(model_dir)
    rng = np.random.default_rng(0)
    inputs, outputs, scores, uids = [], [], [], []
    cap = 40
    for p in range(12):
        for j in range(4):
            inputs.append(f"User: Using the numbers [{p}, 7, 3], create an equation. Assistant: <think>")
            body = " ".join(str(int(x)) for x in rng.integers(0, 99, int(rng.integers(1, 25))))
            outputs.append(body)
            scores.append(float(rng.integers(0, 2)))
            uids.append(f"prompt{p}_{j}_0")
    dump = tmp_path / "rollouts"
    PPOTrainer._write_generations(inputs, outputs, [None] * 48, scores, {"uid": uids}, str(dump), 5)
    assert (dump / "5.jsonl").is_file()
    rollouts, summary = sampling.load_rollout_dump(dump, tok, cap)
    assert summary.step == 5 and summary.groups == 12 and summary.rows == 48
    for r, text in zip(rollouts, outputs, strict=True):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if len(ids) < cap:
            assert list(r.response_ids) == ids + [tok.eos_token_id] and not r.truncated  # EOS restored
        else:
            assert list(r.response_ids) == ids[:cap] and r.truncated
    result = api.probe_model(
        str(model_dir),
        rollouts=dump,
        sampling=sampling.SamplingSettings(max_response_length=cap),
        device="cpu",
        settings=api.stats.Settings(n_batches=100, n_boot_alpha=30, min_per_bin=4),
    )
    assert result.info["groups"] == 12 and result.info["step"] == 5
    expected = sampling.grpo_advantages(scores, [u.rsplit("_", 2)[0] for u in uids])
    assert result.analysis.n_nonzero == int((expected != 0).sum())
    with pytest.raises(ProbeError, match="no step 9"):
        sampling.load_rollout_dump(dump, tok, cap, step=9)


def test_verl_checkpoint_is_merged_with_verls_merger(small, tmp_path, one_thread):
    from transformers import AutoModelForCausalLM

    from vlnorm_verl.probe.model_io import open_model, resolve_model

    model_dir, parquet = small
    ckpt = tmp_path / "ckpt" / "global_step_1" / "actor"
    proc = subprocess.run(
        [sys.executable, str(HERE / "make_verl_checkpoint.py"), str(model_dir), str(ckpt)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (ckpt / "fsdp_config.json").is_file() and (ckpt / "model_world_size_1_rank_0.pt").is_file()
    assert resolve_model(str(ckpt.parent)).kind == "verl_fsdp"  # global_step_N works too
    original = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    with open_model(str(ckpt.parent), device="cpu") as (model, tok, source, notes):
        assert source.kind == "verl_fsdp" and "merged" in notes[0]
        assert tok.eos_token_id == 0 and len(tok) == original.config.vocab_size
        merged = dict(model.named_parameters())
        for name, p in original.named_parameters():
            # verl's merger writes bfloat16
            torch.testing.assert_close(merged[name].detach(), p.detach().to(torch.bfloat16).float())
    result = api.probe_model(
        str(ckpt),
        data=parquet,
        sampling=sampling.SamplingSettings(n=4, num_prompts=8, max_response_length=128),
        advantage="one",
        device="cpu",
        settings=api.stats.Settings(n_batches=100, n_boot_alpha=30, min_per_bin=3),
    )
    assert result.info["model_kind"] == "verl_fsdp" and result.analysis.n == 32


def test_an_asked_alpha_is_measured(small, one_thread):
    model_dir, parquet = small
    result = api.probe_model(
        str(model_dir),
        data=parquet,
        sampling=sampling.SamplingSettings(n=8, num_prompts=8, max_response_length=128),
        advantage="one",
        device="cpu",
        alphas=(0.6,),
    )
    a = result.analysis
    assert np.isfinite(a.fit.beta) and a.agreement.statement
    asked = result.vl_norm_vs_dapo(0.6)
    assert 0 < asked
    assert result.vl_norm_vs_dapo(a.choice.alpha) <= asked * 1.05  # the recommended alpha: the least measured
    assert a.result("vl_norm", 0.6).label.endswith("(asked)")


def test_missing_model_and_data(small, tmp_path):
    model_dir, parquet = small
    with pytest.raises(ProbeError, match="does not exist"):
        api.probe_model(str(tmp_path / "nope"), data=parquet)
    with pytest.raises(ProbeError, match="prompt file .* does not exist"):
        api.probe_model(str(model_dir), data=tmp_path / "none.parquet")
    with pytest.raises(ProbeError, match="rollout dump .* does not exist"):
        api.probe_model(str(model_dir), rollouts=tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProbeError, match="neither a Hugging Face model directory"):
        api.probe_model(str(tmp_path / "empty"), data=parquet)
