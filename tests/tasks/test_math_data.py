"""Math data loaders: the Open-Reasoner-Zero JSON (path and URL) and the eval sets (local and hub)."""

from __future__ import annotations

import json

import pytest

from vlnorm_verl.tasks.math import data as math_data
from vlnorm_verl.tasks.math.data import eval_rows, load_eval_hub, load_eval_local, load_orz, train_rows
from vlnorm_verl.tasks.parquet_io import DataFileError

ORZ_ITEMS = [
    [{"from": "human", "value": "What is $1+1$?"}, {"from": "assistant", "ground_truth": {"value": "2"}}],
    [
        {"from": "human", "value": "Simplify $\\frac{2}{4}$."},
        {"from": "assistant", "ground_truth": {"value": "\\frac{1}{2}"}},
    ],
    [{"from": "human", "value": "How many?"}, {"from": "assistant", "ground_truth": {"value": 7}}],
]


@pytest.fixture
def orz_file(tmp_path):
    path = tmp_path / "orz_math_57k_collected.json"
    path.write_text(json.dumps(ORZ_ITEMS))
    return path


def test_orz_from_path_and_file_url(orz_file, tmp_path, monkeypatch):
    expected = [("What is $1+1$?", "2"), ("Simplify $\\frac{2}{4}$.", "\\frac{1}{2}"), ("How many?", "7")]
    assert load_orz(str(orz_file)) == expected
    monkeypatch.setattr(math_data, "CACHE_DIR", tmp_path / "cache")
    assert load_orz(orz_file.as_uri()) == expected
    assert len(list((tmp_path / "cache").iterdir())) == 1  # cached download, no temp files left
    rows = train_rows(expected, limit=2)
    assert [r["data_source"] for r in rows] == ["math_train", "math_train"]
    assert rows[1]["reward_model"] == {"style": "rule", "ground_truth": "\\frac{1}{2}"}
    assert rows[1]["extra_info"] == {
        "split": "train",
        "index": 1,
        "question": "Simplify $\\frac{2}{4}$.",
        "smoke": False,
    }
    assert rows[0]["prompt"][0]["content"].endswith("\nWhat is $1+1$?\nAssistant: <think>")


@pytest.mark.parametrize(
    "content,match",
    [
        ("{}", "expected a JSON list"),
        ("[]", "no items"),
        ("not json", "not valid JSON"),
        (json.dumps([[{"value": "q"}]]), "item 0 is not in the Open-Reasoner-Zero schema"),
        (json.dumps([[{"value": "q"}, {"answer": "1"}]]), "item 0 is not in the Open-Reasoner-Zero schema"),
        (json.dumps([[{"value": ""}, {"ground_truth": {"value": "1"}}]]), "empty or non-string question"),
    ],
)
def test_orz_schema_errors(tmp_path, content, match):
    path = tmp_path / "orz.json"
    path.write_text(content)
    with pytest.raises(DataFileError, match=match):
        load_orz(str(path))


def test_orz_missing_file_and_unreachable_url(tmp_path, monkeypatch):
    with pytest.raises(DataFileError, match="not found"):
        load_orz(str(tmp_path / "nope.json"))
    monkeypatch.setattr(math_data, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(DataFileError, match="could not download"):
        load_orz((tmp_path / "nope.json").as_uri())


def test_eval_local_normalises_answers(tmp_path):
    (tmp_path / "minerva.jsonl").write_text(
        json.dumps({"problem": "P1", "answer": ["9.6\n", "9.7"]})
        + "\n\n"
        + json.dumps({"problem": "P2", "answer": ["1"]})
    )
    (tmp_path / "amc23.json").write_text(json.dumps([{"problem": "Q", "answer": 142.0}]))
    assert load_eval_local("minerva", tmp_path) == [("P1", "9.6"), ("P2", "1")]
    assert load_eval_local("amc23", tmp_path) == [("Q", "142")]
    rows = eval_rows("amc23", load_eval_local("amc23", tmp_path))
    assert rows[0]["data_source"] == "amc23" and rows[0]["extra_info"]["split"] == "test"


def test_eval_local_errors(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        load_eval_local("aime24", tmp_path)
    with pytest.raises(ValueError, match="unknown eval set"):
        load_eval_local("gsm8k", tmp_path)
    (tmp_path / "aime24.jsonl").write_text(json.dumps({"question": "Q", "answer": "1"}))
    with pytest.raises(DataFileError, match="needs 'problem' and 'answer'"):
        load_eval_local("aime24", tmp_path)
    (tmp_path / "aime24.jsonl").write_text("")
    with pytest.raises(DataFileError, match="no rows"):
        load_eval_local("aime24", tmp_path)
    (tmp_path / "aime24.jsonl").write_text(json.dumps({"problem": "Q", "answer": []}))
    with pytest.raises(DataFileError, match="empty list"):
        load_eval_local("aime24", tmp_path)


def test_shared_eval_copies_load(shared_eval_dir):
    sizes = {name: len(load_eval_local(name, shared_eval_dir)) for name in math_data.HUB_EVAL_SPLITS}
    assert sizes == {"math500": 500, "aime24": 30, "amc23": 83, "minerva": 272, "olympiadbench": 675}


def test_eval_hub_uses_the_named_split(monkeypatch):
    import datasets

    calls = []

    def fake(name, split):
        calls.append((name, split))
        return datasets.Dataset.from_list([{"problem": "P", "answer": ["3"]}])

    monkeypatch.setattr(datasets, "load_dataset", fake)
    assert load_eval_hub("olympiadbench") == [("P", "3")]
    assert calls == [("lkevinzc/math-eval", "olympiad_bench")]

    def offline(*a, **k):
        raise OSError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataFileError, match="--eval-dir"):
        load_eval_hub("math500")
