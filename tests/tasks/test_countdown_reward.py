"""CountDown judgments: hand-written cases, and agreement with the authors' eval-based rule on honest answers."""

from __future__ import annotations

import random
import re
from fractions import Fraction

import numpy as np
import pytest
from authors_countdown import authors_score

from vlnorm_verl.tasks.countdown.expr import ExpressionError, parse_expression
from vlnorm_verl.tasks.countdown.reward import extract_answer, parse_ground_truth, score_countdown

GT = {"target": 98, "numbers": [44, 19, 35]}


def s(text: str, gt=GT) -> float:
    result = score_countdown(text, gt)
    assert set(result) == {"score", "acc"} and result["score"] == result["acc"]
    return result["score"]


@pytest.mark.parametrize(
    "response",
    [
        "<answer> 44 + 19 + 35 </answer>",
        "<answer>44+19+35</answer>",
        "<answer>35 + 44 + 19</answer>",
        " so 44 + 19 = 63 and 63 + 35 = 98.</think>\n<answer> (44 + 19) + 35 </answer>",
        "reasoning...\n\n<answer> 44 + 19 + 35 </answer>\n\n",  # trailing blank lines are stripped first
        "<answer> 1 + 1 </answer> then <answer> 44 + 19 + 35 </answer>",  # last answer on the line wins
        "<answer> 44 - -19 + 35 </answer>",  # unary minus, as Python allows
        "<answer> -(-44) + 19 + 35 </answer>",
        "<answer> ((44)) + (19 + (35)) </answer>",
        "<answer>\t44 +\t19 + 35\f</answer>",
        "<answer> (44 +\r19) + 35 </answer>",  # CR is whitespace inside parentheses (Python)
        "Assistant: <answer> 44 + 19 + 35 </answer>",
        "User: stuff Assistant: more\n<answer> 44 + 19 + 35 </answer>",
    ],
)
def test_correct_answers_score_one(response):
    assert s(response) == 1.0


@pytest.mark.parametrize(
    "response",
    [
        "",
        "44 + 19 + 35",  # no tags
        "<answer> 44 + 19 + 35 </answer>\nI am done.",  # the answer is not on the last line
        "<answer> 44 + 19 + 35 </answer> <answer> 44 + 19 </answer>",  # the last answer is wrong
        "<answer> 44 + 19 + 35",  # unclosed
        "<answer></answer>",
        "<answer> </answer>",
        "<answer> 44 + 19 </answer>",  # a number unused
        "<answer> 44 + 19 + 35 + 0 </answer>",  # an extra number
        "<answer> 44 + 44 + 10 </answer>",  # a number used twice, another missing
        "<answer> 44 + 19 - 35 </answer>",  # wrong value
        "<answer> 44 + 19 + 35 = 98 </answer>",  # '=' is not an operator
        "<answer> 44 + 19 + 035 </answer>",  # leading zero: Python rejects it
        "<answer> 44.0 + 19 + 35 </answer>",  # decimals are not allowed
        "<answer> 44 + 19 + 35 </answer",
        "<answer> 44 + 19 + 35 \n </answer>",  # tags split over two lines
        "<answer> (44 + 19 + 35 </answer>",  # unbalanced
        "<answer> 44 + 19 + 35) </answer>",
        "<answer> 44 19 35 </answer>",
        "<answer> 44(19) + 35 </answer>",  # implicit multiplication
        "<answer> 44 + 19 + 35 + </answer>",
        "<answer> x = 44 + 19 + 35 </answer>",
    ],
)
def test_wrong_or_malformed_answers_score_zero(response):
    assert s(response) == 0.0


def test_tolerance_boundary():
    # 10 + 1/100001 differs from 10 by 9.99990e-6 (< 1e-5): correct; 10 + 1/99999 by 1.00001e-5: wrong
    assert s("<answer> 10 + 1 / 100001 </answer>", {"target": 10, "numbers": [10, 1, 100001]}) == 1.0
    assert s("<answer> 10 + 1 / 99999 </answer>", {"target": 10, "numbers": [10, 1, 99999]}) == 0.0


def test_exact_fractions_and_division_by_zero():
    gt = {"target": 24, "numbers": [1, 3, 4, 6]}
    assert s("<answer> 6 / (1 - 3 / 4) </answer>", gt) == 1.0  # 6 / (1/4) = 24 exactly
    assert s("<answer> 6 / (1 - 4 / 4) * 3 </answer>", {"target": 24, "numbers": [1, 4, 4, 6, 3]}) == 0.0


def test_ground_truth_from_parquet_types_and_json():
    gt = {"target": np.int64(98), "numbers": np.array([44, 19, 35], dtype=np.int64)}
    assert s("<answer> 44 + 19 + 35 </answer>", gt) == 1.0
    assert s("<answer> 44 + 19 + 35 </answer>", '{"target": 98, "numbers": [44, 19, 35]}') == 1.0


@pytest.mark.parametrize(
    "bad",
    [
        None,
        98,
        {"target": 98},
        {"numbers": [1]},
        {"target": 98, "numbers": "44,19"},
        {"target": 98, "numbers": []},
        {"target": "x", "numbers": [1, 2]},
        {"target": 1, "numbers": [1.5, 2]},
        "not json",
    ],
)
def test_malformed_ground_truth_raises_clear_error(bad):
    with pytest.raises(ValueError, match="CountDown ground truth"):
        parse_ground_truth(bad)


def test_non_string_response_scores_zero():
    assert s(None) == 0.0  # type: ignore[arg-type]
    assert s(b"<answer> 44 + 19 + 35 </answer>") == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text,value",
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("8 / 4 / 2", 1),
        ("8 - 4 - 2", 2),
        ("-2 * 3", -6),
        ("2 * -3", -6),
        ("- - 3", 3),
        ("+3", 3),
        ("6 / 4", Fraction(3, 2)),
        ("1 - 2 * (3 - 4 / (5 + 6))", Fraction(-47, 11)),
        ("00 + 7", 7),
    ],
)
def test_evaluator_precedence_and_values(text, value):
    got = parse_expression(text).value
    assert got == Fraction(value)
    assert abs(float(got) - eval(text)) < 1e-12  # noqa: S307 - fixed literals


@pytest.mark.parametrize("text", ["", "()", "1 +", "* 2", "1 ** 2", "7 // 2", "1 / 0", "(1", "1)", "1 .5", "2 3"])
def test_evaluator_rejects(text):
    with pytest.raises(ExpressionError):
        parse_expression(text)


# --- agreement with the authors' rule (Python eval) on honest answers ---------------------------------------


def _random_expression(rng: random.Random, nums: list[int]) -> str:
    items = [str(n) for n in nums]
    rng.shuffle(items)
    while len(items) > 1:
        i = rng.randrange(len(items) - 1)
        op = rng.choice("+-*/")
        joined = f"{items[i]} {op} {items[i + 1]}"
        items[i : i + 2] = [f"({joined})" if rng.random() < 0.7 else joined]
    return items[0]


def _mutate(rng: random.Random, expr: str) -> str:
    choice = rng.randrange(9)
    if choice == 0:  # drop a character
        i = rng.randrange(len(expr))
        return expr[:i] + expr[i + 1 :]
    if choice == 1:  # duplicate a character
        i = rng.randrange(len(expr))
        return expr[:i] + expr[i] + expr[i:]
    if choice == 2:
        return "-" + expr
    if choice == 3:
        return expr.replace(" ", "")
    if choice == 4:  # swap an operator
        ops = [i for i, c in enumerate(expr) if c in "+-*/"]
        if ops:
            i = rng.choice(ops)
            return expr[:i] + rng.choice("+-*/".replace(expr[i], "")) + expr[i + 1 :]
    if choice == 5:
        return f"({expr})"
    if choice == 6:  # change a digit
        digits = [i for i, c in enumerate(expr) if c.isdigit()]
        i = rng.choice(digits)
        return expr[:i] + str((int(expr[i]) + 1) % 10) + expr[i + 1 :]
    # insert whitespace, a unicode digit or space, a control character or a stray symbol
    i = rng.randrange(len(expr) + 1)
    return expr[:i] + rng.choice([" ", "\t", "\r", "\x0b", "\xa0", "\u0661", "(", ")", "x", "\f", "\x00"]) + expr[i:]


def test_agrees_with_authors_eval_rule_on_honest_answers():
    """Randomised differential test against the eval-based rule, on inputs where eval is safe.

    Excluded by construction (the documented, deliberate differences): ``**``, ``//`` and decimal points.
    """
    rng = random.Random(1234)
    disagreements = []
    n_correct = 0
    for _ in range(3000):
        nums = [rng.randint(1, 99) for _ in range(rng.choice((3, 4)))]
        expr = _random_expression(rng, nums)
        try:
            value = Fraction(parse_expression(expr).value)
        except ExpressionError:
            continue  # division by zero
        target = int(value) if value.denominator == 1 and rng.random() < 0.7 else rng.randint(10, 100)
        gt = {"target": target, "numbers": nums}
        if rng.random() < 0.5:
            expr = _mutate(rng, expr)
        wrapper = rng.choice(
            [
                "<answer>{}</answer>",
                "<answer> {} </answer>",
                "think\n<answer> {} </answer>",
                "<answer>{}</answer>\n",
                "Assistant: x\n<answer>{}</answer>",
                "<answer> 1 </answer> <answer>{}</answer>",
                "<answer>{}",
            ]
        )
        response = wrapper.format(expr)
        if "**" in response or "//" in response:
            continue
        ours, theirs = s(response, gt), authors_score(response, gt)
        n_correct += ours == 1.0
        if ours != theirs:
            disagreements.append((response, gt, ours, theirs))
    assert not disagreements, disagreements[:5]
    assert n_correct > 500  # the corpus exercises both outcomes


def test_extract_answer_matches_regex_semantics():
    rng = random.Random(7)
    pieces = ["<answer>", "</answer>", "a", " ", "1+2", "<answer", "answer>", "\n", "Assistant:"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        body = text
        if "Assistant:" in body:
            body = body.split("Assistant:", 1)[1]
        line = body.strip().split("\n")[-1]
        matches = list(re.finditer(r"<answer>(.*?)</answer>", line))
        expected = matches[-1].group(1).strip() if matches else None
        assert extract_answer(text) == expected, text
