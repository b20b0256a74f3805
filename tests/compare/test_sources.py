"""Source discovery, naming, labels and the merge of resumed runs."""

from __future__ import annotations

import json
import os

import pytest

from vlnorm_verl.compare.records import CompareError
from vlnorm_verl.compare.sources import Selection, load_runs

ACC = "val-core/countdown/acc/mean@8"


def by_name(runs):
    return {run.name: run for run in runs}


def test_wandb_dir_finds_every_run_once_and_merges_the_resumed_one(logs):
    assert (logs.wandb_dir / "latest-run").exists()  # wandb's link; must not be read twice
    notes: list[str] = []
    runs = by_name(load_runs(Selection(sources=[str(logs.wandb_dir)]), notes))
    assert set(runs) == {"dapo", "never", "resumed"}
    assert len(runs["dapo"].origins) == 1
    resumed = runs["resumed"]
    assert resumed.origins == [str(d) for d in logs.resumed_dirs]  # ordered by start time
    assert any("run 'resumed' merges 2 logs" in note for note in notes)
    steps, values = resumed.series(ACC)
    # later record wins for steps 40..60 (0.46, 0.50, 0.61 replace 0.45, 0.90, 0.95)
    assert dict(zip(steps.tolist(), values.tolist(), strict=True)) == {
        0: 0.10,
        10: 0.20,
        20: 0.30,
        30: 0.40,
        40: 0.46,
        50: 0.50,
        60: 0.61,
        70: 0.65,
        80: 0.66,
    }
    length = dict(zip(*(a.tolist() for a in resumed.series("response_length/mean")), strict=True))
    assert length[40] == 140.0  # the resumed log only added validation at step 40
    assert length[41] == 1041.0 and length[60] == 1060.0 and length[39] == 139.0


def test_parent_directory_and_single_run_paths(logs):
    parent = by_name(load_runs(Selection(sources=[str(logs.root)])))  # holds wandb/
    assert set(parent) == {"dapo", "never", "resumed"}
    single = load_runs(Selection(sources=[str(logs.dapo_dir), str(next(logs.never_dir.glob("*.wandb")))]))
    assert [r.name for r in single] == ["dapo", "never"]
    jsonl_dir = load_runs(Selection(sources=[str(logs.vlnorm_jsonl.parent)]))
    assert [r.name for r in jsonl_dir] == ["vlnorm"]


def test_labels_rename_and_merge(logs, tmp_path):
    runs = load_runs(
        Selection(
            sources=[str(logs.dapo_dir)],
            labels=["DAPO=dapo", f"VL Norm={logs.vlnorm_jsonl}"],
        )
    )
    assert [r.name for r in runs] == ["DAPO", "VL Norm"]  # label-only sources are read too

    # A run reached through its wandb/ directory and through a labelled run directory is read once.
    runs = load_runs(Selection(sources=[str(logs.wandb_dir)], labels=[f"baseline={logs.dapo_dir}"]))
    assert [r.name for r in runs] == ["baseline", "never", "resumed"]

    # Two JSONL files of one resumed run, labelled alike: merged in command-line order.
    first, second = tmp_path / "part1.jsonl", tmp_path / "part2.jsonl"
    first.write_text("".join(json.dumps({"step": s, "data": {ACC: s / 100}}) + "\n" for s in (0, 10, 20)))
    second.write_text("".join(json.dumps({"step": s, "data": {ACC: s / 50}}) + "\n" for s in (10, 30)))
    (run,) = load_runs(Selection(labels=[f"vl={first}", f"vl={second}"]))
    assert run.series(ACC)[1].tolist() == [0.0, 0.2, 0.2, 0.6]


def test_label_and_source_errors(logs, tmp_path):
    with pytest.raises(CompareError, match="holds 3 runs"):
        load_runs(Selection(labels=[f"x={logs.wandb_dir}"]))
    with pytest.raises(CompareError, match="neither a run source nor the name of a run"):
        load_runs(Selection(sources=[str(logs.dapo_dir)], labels=["x=no-such-run"]))
    with pytest.raises(CompareError, match="expected NAME=SRC"):
        load_runs(Selection(sources=[str(logs.dapo_dir)], labels=["justaname"]))
    with pytest.raises(CompareError, match="does not exist"):
        load_runs(Selection(sources=[str(tmp_path / "missing.jsonl")]))
    with pytest.raises(CompareError, match="no runs found"):
        load_runs(Selection(sources=[str(tmp_path)]))
    with pytest.raises(CompareError, match="expected wandb:ENTITY/PROJECT/RUN_ID"):
        load_runs(Selection(sources=["wandb:just-a-name"]))
    with pytest.raises(CompareError, match="no runs to compare"):
        load_runs(Selection())
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(CompareError, match="unknown file type"):
        load_runs(Selection(sources=[os.fspath(other)]))


def test_the_launchers_log_layout_is_found_at_every_level(tmp_path):
    """``vlnorm-verl train`` logs to <runs>/logs/<experiment>/<attempt>/<project>/<experiment>.jsonl."""
    from vlnorm_verl.launch.run_env import attempt_dir

    def write(experiment: str, attempt: str, steps: list[int], scale: float) -> None:
        path = attempt_dir(tmp_path, experiment, attempt) / "vlnorm-verl" / f"{experiment}.jsonl"
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps({"step": s, "data": {ACC: s * scale}}) + "\n" for s in steps))

    write("exp_a", "20261206T100000Z", [1, 2, 3], 0.1)
    write("exp_a", "20261206T110000Z", [3, 4], 0.2)  # resumed: a second attempt of the same experiment
    write("exp_b", "20261206T100000Z", [1, 2], 0.3)
    logs = tmp_path / "logs"
    runs = by_name(load_runs(Selection(sources=[str(logs / "exp_a"), str(logs / "exp_b")])))
    assert set(runs) == {"exp_a", "exp_b"}
    steps, values = runs["exp_a"].series(ACC)
    assert steps.tolist() == [1, 2, 3, 4] and values.tolist() == pytest.approx([0.1, 0.2, 0.6, 0.8])
    assert set(by_name(load_runs(Selection(sources=[str(logs)])))) == {"exp_a", "exp_b"}
    assert set(by_name(load_runs(Selection(sources=[str(tmp_path)])))) == {"exp_a", "exp_b"}  # <runs>
    one_attempt = load_runs(Selection(sources=[str(logs / "exp_b" / "20261206T100000Z")]))
    assert [r.name for r in one_attempt] == ["exp_b"]
