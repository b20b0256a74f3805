"""``vlnorm-verl prepare-data``: files, row counts, defaults and error messages."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from vlnorm_verl.launch.cli import main
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


def _jsonl_problems(eval_dir, name: str) -> list[str]:
    lines = (eval_dir / f"{name}.jsonl").read_text().splitlines()
    return [json.loads(line)["problem"] for line in lines if line.strip()]


def test_math_smoke_set_from_the_eval_copies(tmp_path, shared_eval_dir, capsys):
    out = tmp_path / "smoke"
    rc = main(["prepare-data", "math", "--smoke", "--eval-dir", str(shared_eval_dir), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "smoke data: 64 training rows" in printed and "not for results" in printed
    names = ["math500", "aime24", "amc23", "minerva", "olympiadbench"]
    assert sorted(p.name for p in out.iterdir()) == sorted([f"{n}.parquet" for n in names] + ["train.parquet"])
    train = pq.read_table(out / "train.parquet").to_pylist()
    assert len(train) == 64 and {r["data_source"] for r in train} == {"math_train"}
    assert all(r["extra_info"]["smoke"] is True for r in train)
    held_out = set()
    for name in names:
        problems = _jsonl_problems(shared_eval_dir, name)
        val = pq.read_table(out / f"{name}.parquet").to_pylist()
        # validation: the first 8 problems of each set, as that set, marked smoke
        assert [r["extra_info"]["question"] for r in val] == problems[:8]
        assert {r["data_source"] for r in val} == {name} and all(r["extra_info"]["smoke"] for r in val)
        held_out |= set(problems[:8])
    train_questions = [r["extra_info"]["question"] for r in train]
    assert not held_out & set(train_questions)  # no problem both trained on and validated
    # taken from the sets in turn: the first five training rows are the 9th problem of each set
    assert train_questions[:5] == [_jsonl_problems(shared_eval_dir, n)[8] for n in names]
    # the math reward scores each row's own answer 1 (the rows are usable by the project's reward)
    for row in train[:5]:
        gt = row["reward_model"]["ground_truth"]
        assert compute_score("math_train", f"\\boxed{{{gt}}}", gt)["score"] == 1.0


def test_math_eval_dir_from_the_environment(tmp_path, monkeypatch, capsys):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    rows = [{"problem": f"What is {i}+1?", "answer": str(i + 1)} for i in range(12)]
    (eval_dir / "aime24.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("VLNORM_MATH_EVAL_DIR", str(eval_dir))
    out = tmp_path / "smoke"
    assert main(["prepare-data", "math", "--smoke", "--out", str(out), "--train-size", "3"]) == 0
    printed = capsys.readouterr().out
    assert "note: no math500, amc23, minerva" in printed  # the config's other validation files are missing
    train = pq.read_table(out / "train.parquet").to_pylist()
    assert [r["reward_model"]["ground_truth"] for r in train] == ["9", "10", "11"]
    assert len(pq.read_table(out / "aime24.parquet")) == 8


@pytest.mark.parametrize(
    "setup,args,message",
    [
        ("none", [], "--smoke needs the local eval copies: pass --eval-dir"),
        ("empty", ["--eval-dir"], "holds none of math500.jsonl"),
        ("few", ["--eval-dir"], "holds no usable smoke rows"),
        ("bad", ["--eval-dir"], "holds no usable smoke rows"),
        ("few", ["--eval-dir", "--source", "orz"], "drop --source"),
    ],
)
def test_math_smoke_bad_input_names_the_option(tmp_path, monkeypatch, capsys, setup, args, message):
    monkeypatch.delenv("VLNORM_MATH_EVAL_DIR", raising=False)
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    if setup == "few":  # only the 8 validation rows: nothing left to train on
        (eval_dir / "amc23.jsonl").write_text(
            "".join(json.dumps({"problem": "p", "answer": "1"}) + "\n" for _ in range(8))
        )
    if setup == "bad":
        (eval_dir / "amc23.jsonl").write_text(json.dumps({"question": "p"}) + "\n")
    argv = ["prepare-data", "math", "--smoke", "--out", str(tmp_path / "out")]
    argv += [x for a in args for x in ((a, str(eval_dir)) if a == "--eval-dir" else (a,))]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_math_without_an_eval_dir_names_the_option(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("VLNORM_MATH_EVAL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no development layout is searched any more
    assert main(["prepare-data", "math", "--out", str(tmp_path / "out")]) == 2
    assert "pass --eval-dir DIR (or set VLNORM_MATH_EVAL_DIR" in capsys.readouterr().err
