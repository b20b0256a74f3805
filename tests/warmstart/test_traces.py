"""The warm-start targets: rejected tries that are what they claim, the reward's answer, and lengths that vary."""

from __future__ import annotations

import random
import re
from fractions import Fraction

import numpy as np
import pytest

from vlnorm_verl.tasks.countdown.expr import parse_expression
from vlnorm_verl.tasks.countdown.generator import GeneratorSpec, generate_instances
from vlnorm_verl.tasks.countdown.reward import score_countdown
from vlnorm_verl.warmstart.traces import rejected_try, response

TRY = re.compile(r"([^=]+) = (-?\d+) no\.")


@pytest.fixture(scope="module")
def instances():
    return generate_instances(200, seed=3, spec=GeneratorSpec(four_fraction=0.0), workers=1)


def test_each_try_uses_every_number_once_and_states_its_exact_value(instances) -> None:
    rng = random.Random(0)
    for x in instances[:100]:
        text = rejected_try(x.numbers, x.target, rng)
        assert text is not None
        expr, value = TRY.fullmatch(text).groups()
        parsed = parse_expression(expr)
        assert sorted(parsed.literals) == sorted(x.numbers)
        assert parsed.value == Fraction(int(value))
        assert parsed.value != x.target  # rejected


def test_response_scores_one_and_its_trace_length_is_drawn_per_row(instances) -> None:
    counts = set()
    for i, x in enumerate(instances):
        text = response(x.numbers, x.target, x.solution, seed=i, max_tries=6)
        truth = {"target": x.target, "numbers": list(x.numbers)}
        assert score_countdown(text, truth)["score"] == 1.0
        assert text == response(x.numbers, x.target, x.solution, seed=i, max_tries=6)  # reproducible
        counts.add(len(TRY.findall(text.split("</think>")[0])))
    assert counts == set(range(7))
    assert response(x.numbers, x.target, x.solution, seed=0, max_tries=0).startswith(f" {x.solution} = {x.target}")
    with pytest.raises(ValueError, match="max_tries"):
        response(x.numbers, x.target, x.solution, seed=0, max_tries=-1)


def test_target_lengths_span_three_fold_between_p10_and_p90(instances) -> None:
    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    tok = build_tokenizer()
    lengths = [
        len(tok(response(x.numbers, x.target, x.solution, seed=i, max_tries=6))["input_ids"]) + 1
        for i, x in enumerate(instances)
    ]
    p10, p90 = np.percentile(lengths, [10, 90])
    assert p90 >= 3 * p10, (p10, p90)
