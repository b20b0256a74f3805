"""``vlnorm-verl probe`` end to end on a gradient file: the table, --json, --plot, and exit status 2 on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from probe_testlib import synthetic

from vlnorm_verl.launch.cli import main

FAST = ["--batches", "150", "--bootstrap", "300"]


@pytest.fixture
def npz(tmp_path):
    lengths, grads = synthetic(0.8, n=600, seed=5)
    grads[:40] = 0.0  # zero-advantage rows
    path = tmp_path / "g.npz"
    np.savez(path, lengths=lengths, grads=grads)
    return path


def test_gradients_file_table_json_plot(npz, tmp_path, capsys):
    out_json, out_png = tmp_path / "out" / "probe.json", tmp_path / "out" / "probe.png"
    rc = main(
        ["probe", "--gradients", str(npz), "--json", str(out_json), "--plot", str(out_png), "--alpha", "0.3"] + FAST
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    text = captured.out
    assert "β̂ =" in text and "Recommended α =" in text
    for name in ("GRPO Norm", "DAPO Norm", "Dr. GRPO Norm", "VL Norm"):
        assert f"| {name} |" in text
    assert "0.30 (asked)" in text and "Fit check" in text
    doc = json.loads(out_json.read_text())
    assert {"beta", "beta_ci", "recommended_alpha", "aggregators"} <= set(doc)
    assert len(doc["beta_ci"]) == 2 and doc["beta_ci"][0] <= doc["beta"] <= doc["beta_ci"][1]
    assert abs(doc["beta"] - 0.8) <= 0.15 and abs(doc["recommended_alpha"] - 0.8) <= 0.15
    assert doc["n_responses"] == 600 and doc["n_nonzero_advantage"] == 560
    names = [a["name"] for a in doc["aggregators"]]
    assert names[:3] == ["grpo_norm", "dapo_norm", "drgrpo_norm"] and set(names[3:]) == {"vl_norm"}
    alphas = {a["alpha"] for a in doc["aggregators"] if a["name"] == "vl_norm"}
    assert {0.0, 0.5, 0.75, 1.0, 0.3} <= alphas
    for a in doc["aggregators"]:
        assert {"name", "alpha", "measured_rel_dapo", "closed_form_rel_dapo", "biased"} <= set(a)
        assert a["biased"] == (a["name"] in ("grpo_norm", "dapo_norm"))
        assert (a["alpha"] is None) == (a["name"] != "vl_norm")
    dapo = next(a for a in doc["aggregators"] if a["name"] == "dapo_norm")
    assert dapo["measured_rel_dapo"] == 1.0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _fails(capsys, argv, message):
    rc = main(["probe", *argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert message in err, err
    return err


def test_bad_inputs_exit_2(tmp_path, capsys):
    _fails(capsys, ["--gradients", str(tmp_path / "none.npz")], "does not exist")
    np.savez(tmp_path / "nolen.npz", grads=np.ones((5, 2)))
    _fails(capsys, ["--gradients", str(tmp_path / "nolen.npz")], "lacks the arrays ['lengths']")
    lengths, grads = synthetic(1.0, n=100)
    np.savez(tmp_path / "shape.npz", lengths=lengths, grads=grads[:90])
    _fails(capsys, ["--gradients", str(tmp_path / "shape.npz")], "grads has 90 rows but lengths has 100")
    bad = grads.copy()
    bad[3, 0] = np.inf
    np.savez(tmp_path / "inf.npz", lengths=lengths, grads=bad)
    _fails(capsys, ["--gradients", str(tmp_path / "inf.npz")], "non-finite")
    np.savez(tmp_path / "one.npz", lengths=np.full(100, 7.0), grads=grads)
    _fails(capsys, ["--gradients", str(tmp_path / "one.npz")], "fewer than 2 distinct lengths")
    np.savez(tmp_path / "few.npz", lengths=lengths[:8], grads=grads[:8])
    _fails(capsys, ["--gradients", str(tmp_path / "few.npz")], "too few responses for the fit")
    (tmp_path / "junk.npz").write_text("not an archive")
    _fails(capsys, ["--gradients", str(tmp_path / "junk.npz")], "not a readable .npz")
    _fails(capsys, [], "give --gradients FILE.npz, or --model M")
    _fails(capsys, ["--model", str(tmp_path / "no-model"), "--data", "x.parquet"], "does not exist")
    _fails(capsys, ["--model", "m", "--data", "a", "--rollouts", "b"], "exactly one of --data")
    _fails(capsys, ["--gradients", str(tmp_path / "one.npz"), "--model", "m"], "takes no model")
    _fails(capsys, ["--gradients", str(tmp_path / "shape.npz"), "--alpha", "-1"], "alpha must be >= 0")


def test_help_lists_probe(capsys):
    assert main(["--help"]) == 0
    assert "probe" in capsys.readouterr().out
