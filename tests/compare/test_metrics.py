"""Figures on hand-made curves, checked against values computed by hand (in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlnorm_verl.compare.metrics import (
    Threshold,
    auc_over,
    compare_metric,
    detect_metric,
    first_reaching,
    normalised_auc,
    parse_threshold,
    smooth,
)
from vlnorm_verl.compare.records import CompareError, RunLog, group_logs, merge_logs

M = "val-core/countdown/acc/mean@8"


def run_from(name: str, curve: dict[int, float], extra: dict[str, dict[int, float]] | None = None):
    rows = [(s, {M: v}) for s, v in curve.items()]
    for key, series in (extra or {}).items():
        rows += [(s, {key: v}) for s, v in series.items()]
    return merge_logs(name, [RunLog(name=name, origin=f"{name}.jsonl", rows=rows)])


def test_smooth_is_a_trailing_mean():
    # W=3 over [1, 2, 6, 3]: [1, (1+2)/2, (1+2+6)/3, (2+6+3)/3]
    assert smooth(np.array([1.0, 2.0, 6.0, 3.0]), 3) == pytest.approx([1.0, 1.5, 3.0, 11 / 3])
    assert smooth(np.array([1.0, 2.0]), 1) == pytest.approx([1.0, 2.0])
    with pytest.raises(CompareError, match="at least 1"):
        smooth(np.array([1.0]), 0)


def test_normalised_auc_and_common_range():
    steps, values = np.array([0, 10, 30]), np.array([0.0, 1.0, 1.0])
    # trapezoids: 10*(0+1)/2 = 5, 20*(1+1)/2 = 20 -> 25 / span 30
    assert normalised_auc(steps, values) == pytest.approx(25 / 30)
    assert normalised_auc(np.array([5]), np.array([0.4])) == pytest.approx(0.4)
    # over [5, 20]: v(5) = 0.5 (interpolated), v(10) = 1, v(20) = 1 -> 5*0.75 + 10*1 = 13.75 / 15
    assert auc_over(steps, values, 5, 20) == pytest.approx(13.75 / 15)
    assert auc_over(steps, values, 20, 20) is None


def test_first_reaching():
    steps, values = np.array([0, 10, 20]), np.array([0.2, 0.6, 0.9])
    assert first_reaching(steps, values, 0.6) == 10
    assert first_reaching(steps, values, 0.6 + 1e-12) == 10  # rounding slack
    assert first_reaching(steps, values, 0.61) == 20
    assert first_reaching(steps, values, 0.95) is None


def test_parse_threshold():
    assert parse_threshold("peak") == Threshold("peak")
    assert parse_threshold("frac:0.9") == Threshold("frac", 0.9)
    assert parse_threshold("0.75") == Threshold("value", 0.75)
    for bad in ("frac:-1", "frac:x", "high", "nan"):
        with pytest.raises(CompareError, match="--threshold"):
            parse_threshold(bad)


BASE = {0: 0.2, 10: 0.4, 20: 0.8, 30: 0.6}
FAST = {0: 0.2, 5: 0.5, 10: 0.85, 15: 0.9}
SLOW = {0: 0.1, 40: 0.3}


def test_compare_metric_by_hand():
    runs = [run_from("base", BASE), run_from("fast", FAST), run_from("slow", SLOW)]
    comp = compare_metric(runs, "base", M, Threshold("peak"), final_k=2)
    base, fast, slow = comp.runs
    assert comp.threshold == pytest.approx(0.8)
    # base: peak 0.8 @20; final (0.8+0.6)/2; AUC (10*0.3 + 10*0.6 + 10*0.7)/30 = 16/30
    assert (base.peak, base.peak_step, base.steps_to_threshold) == (0.8, 20, 20)
    assert base.final == pytest.approx(0.7) and base.auc == pytest.approx(16 / 30)
    assert base.speedup_vs_baseline == pytest.approx(1.0)
    # fast: reaches 0.8 at step 10 -> speedup 20/10; AUC (5*0.35 + 5*0.675 + 5*0.875)/15
    assert fast.steps_to_threshold == 10 and fast.speedup_vs_baseline == pytest.approx(2.0)
    assert fast.auc == pytest.approx((1.75 + 3.375 + 4.375) / 15)
    # slow never reaches 0.8
    assert slow.steps_to_threshold is None and slow.speedup_vs_baseline is None
    assert slow.speedup_note == "not reached"
    # common range [max first, min last] = [0, 15]:
    # base: v(15)=0.6 -> (10*0.3 + 5*(0.4+0.6)/2)/15 = 5.5/15; slow: v(15)=0.1+0.2*15/40=0.175
    assert comp.common_range == (0, 15)
    assert base.auc_common == pytest.approx(5.5 / 15)
    assert slow.auc_common == pytest.approx((0.1 + 0.175) / 2)
    assert fast.auc_common == pytest.approx(fast.auc)


def test_compare_metric_thresholds_and_smoothing():
    runs = [run_from("base", BASE), run_from("fast", FAST)]
    # frac:0.5 of peak 0.8 = 0.4: base at 10, fast at 5 (0.5) -> 2x
    comp = compare_metric(runs, "base", M, parse_threshold("frac:0.5"))
    assert comp.threshold == pytest.approx(0.4)
    assert [r.steps_to_threshold for r in comp.runs] == [10, 5]
    # fixed 0.85: base never -> speedup not reached for everybody, fast still reports its step
    comp = compare_metric(runs, "base", M, parse_threshold("0.85"))
    assert [r.steps_to_threshold for r in comp.runs] == [None, 10]
    assert [r.speedup_note for r in comp.runs] == ["not reached", "not reached"]
    # smoothing W=2: base -> [0.2, 0.3, 0.6, 0.7] peak 0.7 @30; fast -> [0.2, 0.35, 0.675, 0.875] -> 15
    comp = compare_metric(runs, "base", M, Threshold("peak"), smooth_window=2)
    assert comp.threshold == pytest.approx(0.7)
    assert [r.steps_to_threshold for r in comp.runs] == [30, 15]
    assert comp.runs[1].speedup_vs_baseline == pytest.approx(2.0)
    assert comp.runs[0].peak == 0.8  # peak stays raw
    # reached at step 0: speedup undefined
    comp = compare_metric(runs, "base", M, parse_threshold("0.1"))
    assert [r.speedup_note for r in comp.runs] == ["n/a (reached at step 0)"] * 2


def test_nan_missing_and_repeated_steps():
    logs = [
        RunLog("r", "a.jsonl", [(0, {M: 0.1}), (10, {M: 0.9, "x": 1.0}), (20, {M: 0.3}), (30, {"x": 2.0})]),
        # resumed from step 10: the later records win, NaN included
        RunLog("r", "b.jsonl", [(10, {M: 0.2}), (20, {M: math.nan}), (40, {M: 0.5})]),
    ]
    (run,) = group_logs(logs)
    steps, values = run.series(M)
    assert steps.tolist() == [0, 10, 40] and values.tolist() == [0.1, 0.2, 0.5]
    assert run.series("x")[0].tolist() == [10, 30]  # merge is per metric: x at step 10 survives
    assert run.overwritten == 2
    comp = compare_metric([run], "r", M, Threshold("peak"), final_k=5)
    fig = comp.runs[0]
    assert (fig.peak, fig.peak_step, fig.n_evals, fig.final_k) == (0.5, 40, 3, 3)
    assert fig.final == pytest.approx(0.8 / 3)


def test_start_times_order_the_merge():
    late = RunLog("r", "late", [(5, {M: 0.9})], start_time=200.0)
    early = RunLog("r", "early", [(5, {M: 0.1})], start_time=100.0)
    (run,) = group_logs([late, early])
    assert run.origins == ["early", "late"] and run.series(M)[1].tolist() == [0.9]


def test_missing_metric_errors_name_run_and_metric():
    runs = [run_from("base", BASE), run_from("other", {}, extra={"val-core/countdown/acc/mean@4": {0: 0.1}})]
    with pytest.raises(
        CompareError, match=r"run 'other' .* never logged metric 'val-core/countdown/acc/mean@8'.*mean@4"
    ):
        compare_metric(runs, "base", M, Threshold("peak"))
    nan_run = run_from("nan", {0: math.nan, 10: math.nan})
    with pytest.raises(CompareError, match=r"run 'nan' .* only as NaN"):
        compare_metric([run_from("base", BASE), nan_run], "base", M, Threshold("peak"))
    with pytest.raises(CompareError, match=r"--baseline 'nope' is not one of the runs: base"):
        compare_metric([run_from("base", BASE)], "nope", M, Threshold("peak"))


def test_detect_metric():
    a = run_from("a", BASE, extra={"val-core/countdown/reward/mean@8": {0: 1.0}, "val-aux/x/acc/mean@1": {0: 1}})
    assert detect_metric([a]) == (M, None)
    math_run = merge_logs(
        "m",
        [RunLog("m", "m", [(0, {"val-core/math500/acc/mean@8": 0.3, "val-core/aime24/acc/mean@8": 0.1})])],
    )
    with pytest.raises(CompareError, match=r"2 validation metrics: .*aime24.*math500.*Pass --metric"):
        detect_metric([math_run])
    with pytest.raises(
        CompareError, match=r"acc/mean@4 \(in b\); val-core/countdown/acc/mean@8 \(in a\)"
    ):  # different N across runs
        detect_metric([a, merge_logs("b", [RunLog("b", "b", [(0, {"val-core/countdown/acc/mean@4": 0.3})])])])
    reward_only = merge_logs("r", [RunLog("r", "r", [(0, {"val-core/gsm8k/reward/mean@1": 0.5})])])
    metric, note = detect_metric([reward_only])
    assert metric == "val-core/gsm8k/reward/mean@1" and "reward" in note
    none = merge_logs("n", [RunLog("n", "n", [(1, {"critic/score/mean": 0.5})])])
    with pytest.raises(CompareError, match=r"no validation accuracy metric .* in any run \(n\).*--metric"):
        detect_metric([none])
