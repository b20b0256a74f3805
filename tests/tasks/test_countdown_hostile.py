"""Hostile model output: the CountDown reward always returns a score, fast, and never raises."""

from __future__ import annotations

import time

import pytest

from vlnorm_verl.rewards import compute_score

GT = {"target": 98, "numbers": [44, 19, 35]}
PER_CALL_LIMIT_S = 0.5  # generous for a 2-core CI machine; typical calls take microseconds to milliseconds

HOSTILE = {
    "100kB of junk": "x" * 100_000,
    "100kB on the answer line": "<answer>" + "1+" * 50_000 + "1</answer>",
    "10k unclosed tags": "<answer>" * 12_500,
    "10k empty pairs": "<answer></answer>" * 6_000,
    "huge integer": "<answer> " + "9" * 100_000 + " </answer>",
    "huge integer product": "<answer> " + " * ".join(["99"] * 5_000) + " </answer>",
    "power tower": "<answer> 44 ** 19 ** 35 </answer>",
    "power tower 2": "<answer> 9**9**9**9**9 </answer>",
    "floor division": "<answer> 44 // 19 + 35 </answer>",
    "unicode digits": "<answer> ٤٤ + ١٩ + ٣٥ </answer>",
    "fullwidth digits": "<answer> ４４ + １９ + ３５ </answer>",
    "control characters": "<answer> 44\x00 + 19\x1b + 35\x7f </answer>",
    "vertical tab": "<answer> 44 +\x0b19 + 35 </answer>",
    "division by zero": "<answer> 44 / (19 - 19) + 35 </answer>",
    "deep nesting": "<answer> " + "(" * 50_000 + "44 + 19 + 35" + ")" * 50_000 + " </answer>",
    "nesting just over the limit": "<answer> " + "(" * 201 + "44 + 19 + 35" + ")" * 201 + " </answer>",
    "unary chain": "<answer> " + "- " * 40_000 + "44 + 19 + 35 </answer>",
    "unbalanced parens": "<answer> " + "(" * 40_000 + " </answer>",
    "python code": "<answer> __import__('os').system('echo hi') </answer>",
    "lambda": "<answer> (lambda: 98)() </answer>",
    "surrogates": "<answer> 44 + 19 + 35 \ud800 </answer>",
    "many lines": "\n".join(["<answer> 44 + 19 + 35 </answer>"] * 20_000) + "\nno answer here",
    "many answers on last line": "<answer> 1 </answer>" * 10_000,
    "scientific notation": "<answer> 4.4e1 + 19 + 35 </answer>",
    "exponent-like digits": "<answer> 1" + "0" * 400 + " </answer>",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_scores_zero_in_bounded_time(name):
    start = time.perf_counter()
    result = compute_score("countdown", HOSTILE[name], GT)
    elapsed = time.perf_counter() - start
    assert result == {"score": 0.0, "acc": 0.0}
    assert elapsed < PER_CALL_LIMIT_S, f"{name}: {elapsed:.3f}s"


def test_nesting_within_python_limit_still_scores():
    text = "<answer> " + "(" * 150 + "44 + 19 + 35" + ")" * 150 + " </answer>"
    assert compute_score("countdown", text, GT)["score"] == 1.0


def test_correct_answer_after_100kb_of_reasoning():
    text = ("thinking " * 12_000) + "\n<answer> 44 + 19 + 35 </answer>"
    start = time.perf_counter()
    assert compute_score("countdown", text, GT)["score"] == 1.0
    assert time.perf_counter() - start < PER_CALL_LIMIT_S


def test_huge_ground_truth_numbers_are_bounded():
    gt = {"target": 1, "numbers": [10**60] * 80}
    text = "<answer> " + " * ".join([str(10**60)] * 80) + " </answer>"
    start = time.perf_counter()
    assert compute_score("countdown", text, gt)["score"] == 0.0  # exceeds the size cap: scored 0, not computed
    assert time.perf_counter() - start < PER_CALL_LIMIT_S
