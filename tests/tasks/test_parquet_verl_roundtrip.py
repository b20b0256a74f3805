"""Parquet → verl's RLHFDataset → verl's prompt tokenization: the model sees exactly the paper's prompt.

The token ids are produced by the code verl 0.9.1 runs at rollout time (``HFModelConfig`` applies
``custom_chat_template`` to the tokenizer; ``AgentLoopWorker`` tokenizes ``raw_prompt`` with the Continuous
Token builder), using the task config composed from ``configs/task/<task>.yaml`` and a locally built tokenizer
whose own chat template is ChatML (like Qwen2.5).
"""

from __future__ import annotations

import json
import os

import pytest

from vlnorm_verl.tasks import TASKS_BY_NAME
from vlnorm_verl.tasks.countdown import data as countdown_data
from vlnorm_verl.tasks.math import data as math_data
from vlnorm_verl.tasks.parquet_io import DataFileError, validate_rl_parquet, write_rows

COUNTDOWN_SCHEMA = TASKS_BY_NAME["countdown"].parquet_schema()
MATH_SCHEMA = TASKS_BY_NAME["math"].parquet_schema()

# the paper's prompts, typed out independently of vlnorm_verl.tasks.prompts
PAPER_COUNTDOWN = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer.\n"
    "User: Using the numbers {nums}, create an equation that equals {target}. You can use basic arithmetic "
    "operations (+, -, *, /) and each number can only be used once. Show your work in <think> </think> tags. And "
    "return the final answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>.\n"
    "Assistant: Let me solve this step by step.\n<think>"
)
PAPER_MATH_HEAD = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning "
    "process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "
    "<think> reasoning process here </think> <answer> answer here </answer>. \n\n"
    "User: You must put your answer inside <answer> </answer> tags, i.e.,\n<answer> answer here </answer>. And your "
    "final answer will be extracted automatically by the \\boxed{} tag.\n"
)
PAPER_MATH_TAIL = "\nAssistant: <think>"


def _verl_prompt_ids(cfg, parquet_path, tiny_dir, custom_template=True):
    from omegaconf import open_dict
    from verl.utils.config import omega_conf_to_dataclass
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    model_cfg = cfg.actor_rollout_ref.model
    with open_dict(model_cfg):
        model_cfg.path = str(tiny_dir)
        if not custom_template:
            model_cfg.custom_chat_template = None
    model = omega_conf_to_dataclass(model_cfg)
    with open_dict(cfg.data):
        cfg.data.cache_dir = str(tiny_dir / "verl_cache")
    ds = RLHFDataset(
        data_files=[str(parquet_path)], tokenizer=model.tokenizer, config=cfg.data, processor=model.processor
    )
    builder = create_continuous_token_builder(
        model.tokenizer,
        hf_model_type=model.hf_config.model_type,
        chat_template_kwargs=dict(cfg.data.apply_chat_template_kwargs),
    )
    items = [ds[i] for i in range(len(ds))]
    return model.tokenizer, [(item, builder.build_initial_tokens(list(item["raw_prompt"]))) for item in items]


def test_countdown_prompt_reaches_model_unchanged(tmp_path, tiny_tokenizer_dir, compose_config):
    splits = countdown_data.generated_rows(train_size=6, test_size=2, seed=1, workers=1)
    path = tmp_path / "countdown" / "train.parquet"
    write_rows(splits["train"], path, COUNTDOWN_SCHEMA)
    cfg = compose_config(tmp_path, "countdown", [f"data.train_files={path}", f"data.val_files={path}"])
    tok, pairs = _verl_prompt_ids(cfg, path, tiny_tokenizer_dir)
    assert len(pairs) == 6
    for (item, ids), row in zip(pairs, splits["train"], strict=True):
        gt = row["reward_model"]["ground_truth"]
        expected = PAPER_COUNTDOWN.format(nums=str(gt["numbers"]), target=gt["target"])
        assert tok.decode(ids) == expected
        assert ids == tok.encode(expected, add_special_tokens=False)
        assert item["data_source"] == "countdown"
        assert item["reward_model"]["ground_truth"]["target"] == gt["target"]
    # the same data without the task's template gets wrapped in ChatML: the config is what makes it raw
    _, wrapped = _verl_prompt_ids(
        compose_config(tmp_path, "countdown", [f"data.train_files={path}"]), path, tiny_tokenizer_dir, False
    )
    assert tok.decode(wrapped[0][1]).startswith("<|im_start|>user\n")


def test_math_prompt_reaches_model_unchanged(tmp_path, tiny_tokenizer_dir, compose_config):
    questions = ["What is $1+1$?", "Let $f(x) = x^2$.  Find $f(3)$.\n\nExpress {your} answer.", "  spaced  "]
    rows = math_data.eval_rows("math500", [(q, str(i)) for i, q in enumerate(questions)])
    paths = []
    for name in ("math500", "aime24"):
        p = tmp_path / "math" / f"{name}.parquet"
        write_rows([dict(r, data_source=name) for r in rows], p, MATH_SCHEMA)
        paths.append(p)
    cfg = compose_config(tmp_path, "math", [f"data.train_files={paths[0]}"])
    assert cfg.data.max_prompt_length == 1024
    tok, pairs = _verl_prompt_ids(cfg, paths[0], tiny_tokenizer_dir)
    for (_item, ids), q in zip(pairs, questions, strict=True):
        expected = PAPER_MATH_HEAD + q + PAPER_MATH_TAIL
        assert tok.decode(ids) == expected
        assert "</answer>. \n\nUser:" in tok.decode(ids)  # trailing space and blank line
    # verl concatenates several validation files: all math files share one schema
    from verl.utils.dataset.rl_dataset import RLHFDataset

    ds = RLHFDataset(data_files=[str(p) for p in paths], tokenizer=tok, config=cfg.data)
    assert len(ds) == 6 and {ds[i]["data_source"] for i in range(6)} == {"math500", "aime24"}


def test_task_configs_wire_reward_and_lengths(tmp_path, compose_config, monkeypatch):
    monkeypatch.setenv("VLNORM_DATA_DIR", "/abs/data")
    cd = compose_config(tmp_path, "countdown")
    assert cd.data.train_files == "/abs/data/countdown/train.parquet"
    assert cd.data.val_files == "/abs/data/countdown/test.parquet"
    assert (cd.data.max_prompt_length, cd.data.max_response_length) == (256, 3072)
    assert cd.actor_rollout_ref.rollout.response_length == 3072
    assert cd.reward.custom_reward_function.path == "pkg://vlnorm_verl.rewards"
    assert cd.reward.custom_reward_function.name == "compute_score"
    m = compose_config(tmp_path, "math")
    assert list(m.data.val_files) == [f"/abs/data/math/{n}.parquet" for n in ("math500", "aime24", "amc23", "minerva")]
    monkeypatch.delenv("VLNORM_DATA_DIR")
    assert compose_config(tmp_path, "countdown").data.train_files == "data/countdown/train.parquet"


def test_validate_and_atomic_write(tmp_path, monkeypatch):
    rows = math_data.eval_rows("aime24", [("Q", "1")])
    path = tmp_path / "a.parquet"
    with pytest.raises(DataFileError, match="not found"):
        validate_rl_parquet(path)
    with pytest.raises(DataFileError, match="empty data set"):
        write_rows([], path, MATH_SCHEMA)
    with pytest.raises(DataFileError, match="do not match the expected schema"):
        write_rows([{"data_source": "x", "prompt": "not a list"}], path, MATH_SCHEMA)
    assert write_rows(rows, path, MATH_SCHEMA) == 1
    before = path.read_bytes()

    import pyarrow.parquet as pq

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError, match="disk full"):
        write_rows(rows * 2, path, MATH_SCHEMA)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the old file survives an interrupted write
    assert sorted(os.listdir(tmp_path)) == ["a.parquet"]  # and no temporary file is left
    assert validate_rl_parquet(path) == 1

    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist([{"question": "q", "answer": "a"}]), tmp_path / "raw.parquet")
    with pytest.raises(DataFileError, match="lacks the columns"):
        validate_rl_parquet(tmp_path / "raw.parquet")
    pq.write_table(pa.Table.from_pylist([], schema=MATH_SCHEMA), tmp_path / "empty.parquet")
    with pytest.raises(DataFileError, match="no rows"):
        validate_rl_parquet(tmp_path / "empty.parquet")
    (tmp_path / "junk.parquet").write_text(json.dumps({"a": 1}))
    with pytest.raises(DataFileError, match="not a readable parquet"):
        validate_rl_parquet(tmp_path / "junk.parquet")
