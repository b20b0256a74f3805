"""The quickstart's closing figures against hand-computed ones (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer
from vlnorm_verl.quickstart.report import length_percentiles, main, probe_lines


def test_length_percentiles_count_the_tokens_of_each_dumped_response_plus_eos(tmp_path) -> None:
    tok = build_tokenizer()
    texts = [" 1 + 2 = 3 </think>", " no." * 5, "", " 44 - 19 = 25 no. 44 + 19 - 35 = 28 no." * 3]
    (tmp_path / "1.jsonl").write_text("".join(json.dumps({"output": t, "step": 1}) + "\n" for t in texts[:2]))
    (tmp_path / "2.jsonl").write_text("".join(json.dumps({"output": t, "step": 2}) + "\n" for t in texts[2:]))
    expected = [len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts]
    cap = sorted(expected)[-2]  # the longest response sits at the cap: no EOS was cut off, count it as the cap
    want = [min(n, cap) for n in expected]
    got = length_percentiles(tmp_path, tok, cap)
    p10, p50, p90 = np.percentile(want, [10, 50, 90])
    assert got == pytest.approx({"n": 4, "p10": p10, "p50": p50, "p90": p90, "ratio": p90 / p10})
    assert length_percentiles(tmp_path / "none", tok, cap) == {"n": 0}


def test_probe_lines_name_beta_alpha_and_the_variance_ratio() -> None:
    probe = {
        "beta": 1.234, "beta_ci": [0.9, 1.6], "recommended_alpha": 1.25, "n_responses": 128,
        "length_range": [37.0, 192.0],
        "aggregators": [{"name": "dapo_norm", "alpha": None, "measured_rel_dapo": 1.0},
                        {"name": "vl_norm", "alpha": 0.5, "measured_rel_dapo": 0.8},
                        {"name": "vl_norm", "alpha": 1.0, "measured_rel_dapo": 0.614}],
    }  # fmt: skip
    lines = probe_lines(probe)
    assert (
        lines[0].startswith("beta-hat 1.23 [90% interval 0.90, 1.60]") and "128 responses of lengths 37-192" in lines[0]
    )
    assert lines[1].startswith("recommended alpha 1.25")
    assert lines[2].endswith("at matched step size: 0.61")


def test_probe_inputs_are_the_vl_norm_runs_checkpoint_and_cap(tmp_path, capsys) -> None:
    summary = {
        "countdown_dapo_vlnorm": {"checkpoint": "/r/checkpoints/p/countdown_dapo_vlnorm/global_step_3/actor",
                                  "max_response_length": 64},
        "countdown_dapo_plain": {"checkpoint": "/elsewhere", "max_response_length": 192},
    }  # fmt: skip
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    assert main(["probe-inputs", str(path)]) == 0
    assert capsys.readouterr().out.split() == ["/r/checkpoints/p/countdown_dapo_vlnorm/global_step_3/actor", "64"]
    assert main(["nonsense", str(path)]) == 2
