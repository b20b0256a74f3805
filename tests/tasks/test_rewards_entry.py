"""The verl entry point: dispatch, and use through verl's own reward managers and DAPO group filter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlnorm_verl import rewards
from vlnorm_verl.tasks import ALL_SOURCES

CD_GT = {"target": 98, "numbers": np.array([44, 19, 35])}
CD_RIGHT = "<think>44 + 19 = 63, 63 + 35 = 98</think>\n<answer> 44 + 19 + 35 </answer>"
CD_WRONG = "<think>hmm</think>\n<answer> 44 + 19 - 35 </answer>"


def test_dispatch_and_same_keys_for_every_source(math_pool, monkeypatch):
    from vlnorm_verl.tasks.math import pool as mp

    monkeypatch.setattr(mp, "_DEFAULT", math_pool)
    assert rewards.compute_score("countdown", CD_RIGHT, CD_GT) == {"score": 1.0, "acc": 1.0}
    assert rewards.compute_score("countdown", CD_WRONG, CD_GT) == {"score": 0.0, "acc": 0.0}
    for source in ALL_SOURCES[1:]:
        assert rewards.compute_score(source, "so \\boxed{\\frac{1}{2}}", "0.5") == {"score": 1.0, "acc": 1.0}
        assert rewards.compute_score(np.str_(source), "\\boxed{3}", "0.5", extra_info={}) == {"score": 0.0, "acc": 0.0}
    batch = rewards.compute_scores(
        ["countdown", "math500", "aime24", "countdown"],
        [CD_RIGHT, "\\boxed{0.5}", "\\boxed{7}", CD_WRONG],
        [CD_GT, "\\frac12", "8", CD_GT],
        math_timeout_s=5,
    )
    assert [r["acc"] for r in batch] == [1.0, 1.0, 0.0, 0.0]


def test_unknown_source_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot score data_source 'gsm8k'.*countdown"):
        rewards.compute_score("gsm8k", "x", "1")


def _reward_config(tmp_path, compose_config, manager: str, extra: list[str] | None = None):
    return compose_config(tmp_path, "countdown", [f"reward.reward_manager.name={manager}", *(extra or [])])


def _data_proto(tokenizer, responses: list[str], gts: list, sources: list[str], width: int = 64):
    from verl import DataProto

    n, prompt_len = len(responses), 4
    resp = torch.full((n, width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((n, prompt_len + width), dtype=torch.long)
    mask[:, :prompt_len] = 1
    for i, text in enumerate(responses):
        ids = tokenizer.encode(text, add_special_tokens=False)[:width]
        resp[i, : len(ids)] = torch.tensor(ids)
        mask[i, prompt_len : prompt_len + len(ids)] = 1
    return DataProto.from_dict(
        tensors={"prompts": torch.zeros((n, prompt_len), dtype=torch.long), "responses": resp, "attention_mask": mask},
        non_tensors={
            "data_source": np.array(sources, dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": g} for g in gts], dtype=object),
            "extra_info": np.array([{"split": "train", "index": i} for i in range(n)], dtype=object),
        },
    )


def _run_manager(cfg, tokenizer, data):
    from verl.trainer.ppo.reward import get_custom_reward_fn, resolve_reward_manager_cls

    manager = resolve_reward_manager_cls(cfg)(cfg, tokenizer, get_custom_reward_fn(cfg))
    return [manager.loop.run_until_complete(manager.run_single(data[i : i + 1])) for i in range(len(data))]


@pytest.mark.parametrize("manager", ["naive", "dapo"])
def test_verl_reward_managers_use_compute_score(tmp_path, compose_config, manager):
    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    tok = build_tokenizer()
    cfg = _reward_config(tmp_path, compose_config, manager)
    data = _data_proto(tok, [CD_RIGHT, CD_WRONG, ""], [CD_GT] * 3, ["countdown"] * 3, width=96)
    outs = _run_manager(cfg, tok, data)
    assert [float(o["reward_score"]) for o in outs] == [1.0, 0.0, 0.0]
    assert [o["reward_extra_info"]["acc"] for o in outs] == [1.0, 0.0, 0.0]
    assert all(set(o["reward_extra_info"]) >= {"score", "acc"} for o in outs)


def test_dapo_overlong_penalty_adds_to_our_score(tmp_path, compose_config):
    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    tok = build_tokenizer()
    n_tokens = len(tok.encode(CD_RIGHT, add_special_tokens=False))
    extra = [
        "+reward.reward_kwargs.overlong_buffer_cfg.enable=true",
        "+reward.reward_kwargs.overlong_buffer_cfg.len=8",
        "+reward.reward_kwargs.overlong_buffer_cfg.penalty_factor=1.0",
        "+reward.reward_kwargs.overlong_buffer_cfg.log=true",
        f"+reward.reward_kwargs.max_resp_len={n_tokens + 4}",  # 4 tokens into the 8-token buffer
    ]
    cfg = _reward_config(tmp_path, compose_config, "dapo", extra)
    (out,) = _run_manager(cfg, tok, _data_proto(tok, [CD_RIGHT], [CD_GT], ["countdown"], width=96))
    assert out["reward_extra_info"]["acc"] == 1.0
    assert float(out["reward_score"]) == pytest.approx(1.0 - 4 / 8)


def test_dapo_dynamic_sampling_filters_on_acc(tmp_path, compose_config, monkeypatch):
    """verl's replay buffer reads ``acc`` from our reward_extra_info and drops groups with identical acc."""
    import verl.trainer.ppo.v1.replay_buffer as rb
    from omegaconf import OmegaConf

    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    tok = build_tokenizer()
    cfg = _reward_config(tmp_path, compose_config, "naive")
    groups = {"uidA": [CD_RIGHT, CD_RIGHT], "uidB": [CD_RIGHT, CD_WRONG], "uidC": [CD_WRONG, CD_WRONG]}
    texts = [t for g in groups.values() for t in g]
    outs = _run_manager(cfg, tok, _data_proto(tok, texts, [CD_GT] * len(texts), ["countdown"] * len(texts), 96))
    store = {}
    k = 0
    for uid, members in groups.items():
        for j in range(len(members)):
            store[f"{uid}_{j}"] = {"reward_extra_info": outs[k]["reward_extra_info"]}
            k += 1

    def kv_batch_get(keys, partition_id, select_fields):
        assert select_fields == ["extra_fields"]
        return {"extra_fields": [store[key] for key in keys]}

    monkeypatch.setattr(rb.tq, "kv_batch_get", kv_batch_get)
    buffer = rb.ReplayBuffer(
        trainer_mode="sync",
        trainer_config=OmegaConf.create({}),
        max_off_policy_threshold=None,
        max_off_policy_strategy="drop",
        sampler_kwargs=OmegaConf.create({}),
        refill_fn=lambda *a, **k: None,
        filter_groups_metric="acc",
    )
    buffer.finished_keys["train"] = set(groups)
    buffer.partitions["train"] = {key: {} for key in store}
    filtered, counts = buffer._dapo_filtered_keys("train")
    assert filtered == {"uidA", "uidC"}  # all-correct and all-wrong groups carry no signal
    assert counts == {1.0: 1, 0.0: 1}
