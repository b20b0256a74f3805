"""``vlnorm-verl prepare-data``: files, row counts, defaults and error messages."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from vlnorm_verl.cli import main
from vlnorm_verl.rewards import compute_score


def test_countdown_generate(tmp_path, capsys):
    out = tmp_path / "cd"
    rc = main(
        [
            "prepare-data",
            "countdown",
            "--out",
            str(out),
            "--train-size",
            "40",
            "--test-size",
            "10",
            "--seed",
            "5",
            "--workers",
            "1",
            "--no-progress",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"wrote     40 rows  {out / 'train.parquet'}" in printed
    assert f"wrote     10 rows  {out / 'test.parquet'}" in printed
    train = pq.read_table(out / "train.parquet").to_pylist()
    test = pq.read_table(out / "test.parquet").to_pylist()
    assert len(train) == 40 and len(test) == 10
    for row in train + test:
        gt = row["reward_model"]["ground_truth"]
        sol = row["extra_info"]["solution"]
        assert compute_score("countdown", f"<answer>{sol}</answer>", gt)["score"] == 1.0
    again = tmp_path / "cd2"
    assert (
        main(
            [
                "prepare-data",
                "countdown",
                "--out",
                str(again),
                "--train-size",
                "40",
                "--test-size",
                "10",
                "--seed",
                "5",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert pq.read_table(again / "train.parquet").equals(pq.read_table(out / "train.parquet"))


def test_countdown_local_copy_and_default_out(tmp_path, monkeypatch, capsys):
    src = tmp_path / "hub.jsonl"
    src.write_text("\n".join(json.dumps({"target": 10 + i, "nums": [i + 1, 2, 3]}) for i in range(12)))
    monkeypatch.setenv("VLNORM_DATA_DIR", str(tmp_path / "datadir"))
    assert main(["prepare-data", "countdown", "--source", str(src), "--train-size", "8", "--test-size", "4"]) == 0
    test = pq.read_table(tmp_path / "datadir" / "countdown" / "test.parquet").to_pylist()
    assert [r["reward_model"]["ground_truth"]["target"] for r in test] == [18, 19, 20, 21]
    assert f"CountDown source: {src}" in capsys.readouterr().out


def test_countdown_errors_exit_2(tmp_path, capsys):
    assert main(["prepare-data", "countdown", "--out", str(tmp_path), "--source", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["prepare-data", "countdown", "--out", str(tmp_path), "--train-size", "0"]) == 2
    assert "sizes must be >= 1" in capsys.readouterr().err


def test_math_eval_and_orz(tmp_path, capsys):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    for name in ("math500", "aime24", "amc23", "minerva"):
        (eval_dir / f"{name}.jsonl").write_text(json.dumps({"problem": f"{name}?", "answer": ["1"]}) + "\n")
    orz = tmp_path / "orz.json"
    orz.write_text(json.dumps([[{"value": f"q{i}"}, {"ground_truth": {"value": str(i)}}] for i in range(5)]))
    out = tmp_path / "math"
    rc = main(
        [
            "prepare-data",
            "math",
            "--out",
            str(out),
            "--eval-dir",
            str(eval_dir),
            "--source",
            str(orz),
            "--train-size",
            "3",
            "--no-progress",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert f"wrote      3 rows  {out / 'train.parquet'}" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "aime24.parquet",
        "amc23.parquet",
        "math500.parquet",
        "minerva.parquet",
        "train.parquet",
    ]
    assert pq.read_table(out / "minerva.parquet").to_pylist()[0]["data_source"] == "minerva"


def test_math_without_train_source_says_so(tmp_path, shared_eval_dir, capsys):
    out = tmp_path / "math"
    assert main(["prepare-data", "math", "--out", str(out), "--eval-dir", str(shared_eval_dir), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "no training set written" in printed and "--source" in printed
    assert f"wrote    675 rows  {out / 'olympiadbench.parquet'}" in printed  # optional set, present here
    assert not (out / "train.parquet").exists()


def test_math_errors_exit_2(tmp_path, capsys):
    assert main(["prepare-data", "math", "--out", str(tmp_path), "--eval-dir", str(tmp_path)]) == 2
    assert "eval set 'math500' not found" in capsys.readouterr().err
    assert main(["prepare-data", "math", "--out", str(tmp_path), "--eval-sets", "gsm8k"]) == 2
    assert "unknown eval sets" in capsys.readouterr().err


def test_help_lists_sources(capsys):
    with pytest.raises(SystemExit):
        main(["prepare-data", "--help"])
    assert "generate" in capsys.readouterr().out
