"""CountDown rows: the hub loader on a local copy in the hub schema, the paper's split, and input errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vlnorm_verl.tasks.countdown import TASK as COUNTDOWN
from vlnorm_verl.tasks.countdown.data import (
    generated_rows,
    load_hub_records,
    load_local_copy,
    make_row,
    records_rows,
)
from vlnorm_verl.tasks.parquet_io import DataFileError, validate_rl_parquet, write_rows

EXPECTED_PROMPT_44_19_35 = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant "
    "first thinks about the reasoning process in the mind and then provides the user with the answer.\n"
    "User: Using the numbers [44, 19, 35], create an equation that equals 98. You can use basic arithmetic operations "
    "(+, -, *, /) and each number can only be used once. Show your work in <think> </think> tags. And return the "
    "final answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 </answer>.\n"
    "Assistant: Let me solve this step by step.\n<think>"
)


def _hub_rows(n: int) -> list[dict]:
    """Rows in the hub schema; 3 numbers on odd rows, 4 on even rows."""
    return [
        {"target": 10 + i % 91, "nums": [1 + i % 99, 2 + i % 97, 3 + i % 89] + ([4 + i % 83] if i % 2 == 0 else [])}
        for i in range(n)
    ]


def test_make_row_schema_and_prompt():
    row = make_row([44, 19, 35], 98, "train", 7, "44 + 19 + 35")
    assert row["data_source"] == "countdown"
    assert row["prompt"] == [{"role": "user", "content": EXPECTED_PROMPT_44_19_35}]
    assert row["reward_model"] == {"style": "rule", "ground_truth": {"target": 98, "numbers": [44, 19, 35]}}
    assert row["extra_info"] == {"split": "train", "index": 7, "solution": "44 + 19 + 35"}


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "json", "dir"])
def test_local_copy_paper_split(tmp_path, fmt):
    rows = _hub_rows(30)
    if fmt in ("parquet", "dir"):
        sub = tmp_path / "data" if fmt == "dir" else tmp_path
        sub.mkdir(exist_ok=True)
        path = sub / "train-00000-of-00001.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        source = tmp_path if fmt == "dir" else path
    elif fmt == "jsonl":
        source = tmp_path / "cd.jsonl"
        source.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    else:
        source = tmp_path / "cd.json"
        source.write_text(json.dumps(rows))
    records = load_local_copy(source)
    splits = records_rows(records, train_size=20, test_size=8, origin=str(source))
    assert [r["reward_model"]["ground_truth"] for r in splits["train"]] == [
        {"target": r["target"], "numbers": r["nums"]} for r in rows[:20]
    ]
    assert [r["reward_model"]["ground_truth"] for r in splits["test"]] == [
        {"target": r["target"], "numbers": r["nums"]} for r in rows[20:28]
    ]
    assert [r["extra_info"]["index"] for r in splits["test"]] == list(range(8))
    assert {r["extra_info"]["split"] for r in splits["train"]} == {"train"}
    assert all(r["extra_info"]["solution"] is None for r in splits["train"] + splits["test"])


def test_local_copy_errors(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        load_local_copy(tmp_path / "missing.parquet")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"target": 5, "numbers": [1, 2]}) + "\n")
    with pytest.raises(DataFileError, match="needs 'target' and 'nums'"):
        load_local_copy(bad)
    bad.write_text(json.dumps({"target": 5.5, "nums": [1, 2]}) + "\n")
    with pytest.raises(DataFileError, match="integer"):
        load_local_copy(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataFileError, match="no rows"):
        load_local_copy(empty)
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(DataFileError, match="no .parquet"):
        load_local_copy(tmp_path / "emptydir")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet")
    with pytest.raises(DataFileError, match="not a readable parquet"):
        load_local_copy(garbage)
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(json.dumps(r) for r in _hub_rows(5)))
    with pytest.raises(DataFileError, match="has 5 rows but train_size"):
        records_rows(load_local_copy(small), 4, 2, str(small))


def test_hub_loader_failure_is_clear(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataFileError, match="--source generate"):
        load_hub_records()


def test_hub_loader_reads_train_split(monkeypatch):
    import datasets

    rows = _hub_rows(12)
    seen = {}

    def fake(name, split):
        seen["args"] = (name, split)
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    records = load_hub_records()
    assert seen["args"] == ("Jiayi-Pan/Countdown-Tasks-3to4", "train")
    assert [(n, t) for n, t, _ in records] == [(r["nums"], r["target"]) for r in rows]


def test_written_generated_rows_validate(tmp_path):
    splits = generated_rows(train_size=30, test_size=10, seed=2, workers=1)
    keys = [
        tuple(sorted(r["reward_model"]["ground_truth"]["numbers"])) + (r["reward_model"]["ground_truth"]["target"],)
        for r in splits["train"] + splits["test"]
    ]
    assert len(set(keys)) == 40  # no instance shared by train and test
    for name, rows in splits.items():
        path = tmp_path / f"{name}.parquet"
        assert write_rows(rows, path, COUNTDOWN.parquet_schema()) == len(rows)
        assert validate_rl_parquet(path) == len(rows)
        back = pq.read_table(path).to_pylist()
        assert back == rows
