"""``vlnorm-verl compare`` end to end on real wandb offline runs and a verl JSONL log (see conftest.py).

Expected figures, by hand, for val-core/countdown/acc/mean@8, baseline ``dapo``, threshold = dapo's
peak 0.60, final over the last 3 evaluations:

* dapo: peak 0.60 @50; final (0.55+0.60+0.58)/3; AUC: trapezoids over 10-step gaps
  1.5+2.5+3.5+4.5+5.5+5.75+5.75+5.9 = 34.9, / 80 = 0.43625; reaches 0.60 at step 50 -> 1.00x.
* vlnorm (NaN at step 30 dropped): peak 0.75 @90; final (0.73+0.75+0.74)/3 = 0.74;
  AUC 2.25+4.85+13.2+7.1+7.15+7.25+7.35+7.4+7.45 = 64.0, / 100 = 0.64; reaches at 20 -> 50/20 = 2.5x.
* never: peak 0.50 @50; final 0.45; AUC (1.5+2.5+3.5+4.25+4.75)/50 = 0.33; not reached.
* resumed (later records win): 0.10 .20 .30 .40 .46 .50 .61 .65 .66 at 0..80: peak 0.66 @80;
  final (0.61+0.65+0.66)/3 = 0.64; AUC (1.5+2.5+3.5+4.3+4.8+5.55+6.3+6.55)/80 = 35/80;
  reaches at 60 -> 50/60.
* common range [0, 50] (never ends at 50): dapo 17.5/50, vlnorm 27.4/50, never 0.33, resumed 16.6/50.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vlnorm_verl.launch.cli import main

ACC = "val-core/countdown/acc/mean@8"
EXPECTED = {
    # name: (peak, peak_step, final, auc, auc_common, steps_to_threshold, speedup)
    "dapo": (0.60, 50, 1.73 / 3, 34.9 / 80, 17.5 / 50, 50, 1.0),
    "vlnorm": (0.75, 90, 0.74, 0.64, 27.4 / 50, 20, 2.5),
    "never": (0.50, 50, 0.45, 0.33, 0.33, None, None),
    "resumed": (0.66, 80, 0.64, 35.0 / 80, 16.6 / 50, 60, 50 / 60),
}


def run_cli(args, capsys):
    code = main(["compare", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def png_ok(path: Path) -> None:
    from matplotlib.image import imread

    assert path.is_file() and path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_end_to_end_table_json_and_plots(logs, tmp_path, capsys):
    out_json, plot_dir = tmp_path / "out" / "cmp.json", tmp_path / "plots"
    code, out, err = run_cli(
        [logs.wandb_dir, logs.vlnorm_jsonl, "--baseline", "dapo", "--json", out_json, "--plot", plot_dir], capsys
    )
    assert code == 0, err

    doc = json.loads(out_json.read_text())
    assert doc["baseline"] == "dapo" and doc["metrics"] == [ACC]
    assert doc["thresholds"][ACC]["value"] == pytest.approx(0.60)
    assert doc["thresholds"][ACC]["common_step_range"] == [0, 50]
    figures = {r["name"]: r for r in doc["runs"]}
    assert set(figures) == set(EXPECTED)
    for name, (peak, peak_step, final, auc, auc_common, reach, speedup) in EXPECTED.items():
        fig = figures[name]
        assert fig["metric"] == ACC
        assert fig["peak"] == pytest.approx(peak) and fig["peak_step"] == peak_step, name
        assert fig["final"] == pytest.approx(final) and fig["auc"] == pytest.approx(auc), name
        assert fig["auc_common"] == pytest.approx(auc_common), name
        assert fig["steps_to_threshold"] == reach, name
        assert fig["speedup_vs_baseline"] == (None if speedup is None else pytest.approx(speedup)), name
    assert figures["never"]["speedup_note"] == "not reached"
    assert doc["runs"][0]["name"] == "dapo" and doc["runs"][0]["is_baseline"]
    assert len(doc["sources"]["resumed"]) == 2

    # Markdown on stdout: one row per run, with the definitions.
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert "| 20 | 2.50× |" in rows["vlnorm"]
    assert "| not reached | not reached |" in rows["never"]
    assert "| 0.7500 | 90 | 0.7400 | 0.6400 | 0.5480 |" in rows["vlnorm"]
    assert "| 60 | 0.83× |" in rows["resumed"]
    assert "Threshold **0.6000** (peak of baseline 'dapo')" in out
    assert "Definitions:" in out and "trapezoidal" in out and "later record wins" in out
    assert "run 'resumed' merges 2 logs" in out

    # Plots: accuracy + the three training curves; `never` has no entropy.
    names = sorted(p.name for p in plot_dir.iterdir())
    assert names == sorted(
        ["val-core_countdown_acc_mean@8.png", "response_length_mean.png", "actor_grad_norm.png", "actor_entropy.png"]
    )
    for path in plot_dir.iterdir():
        png_ok(path)
    assert "plot of 'actor/entropy': no data for never" in out


def test_figure_styles(logs):
    from vlnorm_verl.compare.plots import build_figure
    from vlnorm_verl.compare.sources import Selection, load_runs

    runs = load_runs(Selection(sources=[str(logs.wandb_dir), str(logs.vlnorm_jsonl)]))
    fig, missing = build_figure(runs, "dapo", "actor/entropy")
    assert missing == ["never"]
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert set(lines) == {"dapo (baseline)", "resumed", "vlnorm"}
    assert lines["dapo (baseline)"].get_linestyle() == "--"
    assert {lines[n].get_linestyle() for n in ("resumed", "vlnorm")} == {"-"}
    assert len({line.get_color() for line in lines.values()}) == 3
    xs, ys = lines["vlnorm"].get_data()
    assert list(xs) == list(range(1, 101)) and ys[-1] == pytest.approx(1.0)  # entropy 2 - s/100
    # grad norm: the NaN at step 7 is left out
    fig, _ = build_figure(runs, "dapo", "actor/grad_norm")
    xs, _ = {line.get_label(): line for line in fig.axes[0].get_lines()}["vlnorm"].get_data()
    assert 7 not in list(xs) and len(xs) == 99


def test_labels_threshold_and_smoothing(logs, tmp_path, capsys):
    out_json = tmp_path / "c.json"
    code, out, err = run_cli(
        [
            logs.dapo_dir,
            *logs.resumed_dirs,
            "--label",
            f"VL Norm={logs.vlnorm_jsonl}",
            "--label",
            "DAPO=dapo",
            "--baseline",
            "DAPO",
            "--smooth",
            "2",
            "--json",
            out_json,
        ],
        capsys,
    )
    assert code == 0, err
    figures = {r["name"]: r for r in json.loads(out_json.read_text())["runs"]}
    # Smoothed (W=2) dapo: .1 .15 .25 .35 .45 .55 .575 .575 .59 -> threshold 0.59, reached at 80;
    # vlnorm: .1 .225 .485 .66 -> 40 (2x); resumed: ... .555 (60) .63 (70) -> 80/70.
    assert json.loads(out_json.read_text())["thresholds"][ACC]["value"] == pytest.approx(0.59)
    assert figures["DAPO"]["steps_to_threshold"] == 80 and figures["DAPO"]["peak"] == pytest.approx(0.60)
    assert figures["VL Norm"]["steps_to_threshold"] == 40
    assert figures["VL Norm"]["speedup_vs_baseline"] == pytest.approx(2.0)
    assert figures["resumed"]["speedup_vs_baseline"] == pytest.approx(80 / 70)

    code, out, err = run_cli(
        [logs.wandb_dir, logs.vlnorm_jsonl, "--baseline", "dapo", "--threshold", "frac:0.75", "--final-k", "1"],
        capsys,
    )
    assert code == 0, err
    # 0.75 * 0.60 = 0.45: dapo at 40 (0.50), vlnorm at 20 (0.62) -> 2x, never at 40 (0.45), resumed at 40 (0.46)
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert rows["vlnorm"].endswith("| 20 | 2.00× |")
    assert rows["never"].endswith("| 40 | 1.00× |") and rows["resumed"].endswith("| 40 | 1.00× |")
    assert "| 0.7400 |" in rows["vlnorm"]  # final over the last evaluation only


def test_several_metrics_and_errors(logs, tmp_path, capsys):
    code, out, err = run_cli(
        [logs.dapo_dir, logs.vlnorm_jsonl, "--baseline", "dapo", "--metric", ACC, "--metric", "critic/score/mean"],
        capsys,
    )
    assert code == 0, err
    assert f"## `{ACC}`" in out and "## `critic/score/mean`" in out

    code, out, err = run_cli([logs.wandb_dir, "--baseline", "dapo", "--metric", "actor/entropy"], capsys)
    assert code == 2 and out == ""
    assert "error: run 'never'" in err and "never logged metric 'actor/entropy'" in err

    code, _, err = run_cli([logs.wandb_dir, "--baseline", "vlnorm"], capsys)
    assert code == 2 and "--baseline 'vlnorm' is not one of the runs read: dapo, never, resumed" in err

    ambiguous = tmp_path / "math.jsonl"
    ambiguous.write_text(
        json.dumps({"step": 0, "data": {"val-core/math500/acc/mean@8": 0.3, "val-core/aime24/acc/mean@8": 0.1}}) + "\n"
    )
    code, _, err = run_cli([ambiguous, "--baseline", "math"], capsys)
    assert code == 2
    assert "val-core/aime24/acc/mean@8 (in math); val-core/math500/acc/mean@8 (in math)" in err
    assert "Pass --metric" in err

    for bad, message in (
        (["--smooth", "0"], "--smooth 0"),
        (["--final-k", "0"], "--final-k 0"),
        (["--threshold", "best"], "--threshold 'best'"),
        (["--publish-report"], "--publish-report saves the report in a wandb project"),
        (["--wandb-group", "g"], "add --wandb-project"),
    ):
        code, _, err = run_cli([logs.dapo_dir, "--baseline", "dapo", *bad], capsys)
        assert code == 2 and message in err, (bad, err)


def test_console_script_subprocess(logs, tmp_path):
    """The real `vlnorm-verl compare` process, as a user runs it."""
    env = dict(os.environ, WANDB_MODE="offline", MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "vlnorm_verl.launch.cli", "compare", str(logs.dapo_dir), str(logs.vlnorm_jsonl)]
        + ["--baseline", "dapo", "--json", str(tmp_path / "c.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| vlnorm |" in proc.stdout and "2.50×" in proc.stdout
    assert json.loads((tmp_path / "c.json").read_text())["runs"][1]["speedup_vs_baseline"] == pytest.approx(2.5)
