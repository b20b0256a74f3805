"""The offline CountDown generator: shape, solvability under the reward's rules, determinism, no duplicates."""

from __future__ import annotations

import itertools
import random
import re
import warnings
from fractions import Fraction

import pytest

from vlnorm_verl.rewards import compute_score
from vlnorm_verl.tasks.countdown.generator import (
    CHUNK_SIZE,
    GeneratorSpec,
    find_solution,
    generate_instances,
)


def brute_force_values(nums: tuple[int, ...]) -> set[Fraction]:
    """Every exact value of every expression tree over all of ``nums`` (independent reference)."""
    if len(nums) == 1:
        return {Fraction(nums[0])}
    out: set[Fraction] = set()
    idx = range(len(nums))
    for r in range(1, len(nums)):
        for left_idx in itertools.combinations(idx, r):
            right = tuple(nums[i] for i in idx if i not in left_idx)
            left = tuple(nums[i] for i in left_idx)
            for a in brute_force_values(left):
                for b in brute_force_values(right):
                    out.update((a + b, a - b, a * b))
                    if b != 0:
                        out.add(a / b)
    return out


@pytest.fixture(scope="module")
def instances():
    return generate_instances(600, seed=11, workers=1)


def test_shape_and_distinctness(instances):
    assert len(instances) == 600
    counts = {3: 0, 4: 0}
    for inst in instances:
        assert len(inst.numbers) in (3, 4)
        counts[len(inst.numbers)] += 1
        assert all(1 <= n <= 99 for n in inst.numbers)
        assert isinstance(inst.target, int) and 10 <= inst.target <= 100
    assert len({inst.key for inst in instances}) == len(instances)
    assert 0.4 < counts[4] / len(instances) < 0.6  # four_fraction = 0.5


def test_reference_solutions_score_one_and_use_every_number(instances):
    for inst in instances:
        literals = sorted(int(x) for x in re.findall(r"\d+", inst.solution))
        assert literals == sorted(inst.numbers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            assert abs(eval(inst.solution) - inst.target) < 1e-9  # noqa: S307 - generated arithmetic only
        gt = {"target": inst.target, "numbers": list(inst.numbers)}
        assert compute_score("countdown", f"<answer> {inst.solution} </answer>", gt)["score"] == 1.0


def test_perturbed_solutions_score_zero(instances):
    rng = random.Random(5)
    for inst in instances:
        gt = {"target": inst.target, "numbers": list(inst.numbers)}
        # change one number literal: the multiset no longer matches, whatever the value
        m = list(re.finditer(r"\d+", inst.solution))[rng.randrange(len(inst.numbers))]
        bumped = inst.solution[: m.start()] + str(int(m.group()) + 100) + inst.solution[m.end() :]
        assert compute_score("countdown", f"<answer> {bumped} </answer>", gt)["score"] == 0.0
        # shift the value: multiply by a number that is not given
        assert compute_score("countdown", f"<answer> ({inst.solution}) * 1 </answer>", gt)["score"] == 0.0
        # the right expression in the wrong place (not on the last line)
        assert compute_score("countdown", f"<answer> {inst.solution} </answer>\ndone", gt)["score"] == 0.0


def test_find_solution_agrees_with_brute_force():
    rng = random.Random(3)
    for k, trials in ((3, 150), (4, 40)):
        for _ in range(trials):
            nums = tuple(rng.randint(1, 99) for _ in range(k))
            reachable = {int(v) for v in brute_force_values(nums) if v.denominator == 1 and 10 <= v <= 100}
            for target in rng.sample(range(10, 101), 8) + sorted(reachable)[:3]:
                sol = find_solution(nums, target)
                assert (sol is not None) == (target in reachable), (nums, target, sol)


def test_deterministic_and_independent_of_workers():
    total = CHUNK_SIZE + 100  # two chunks
    a = generate_instances(total, seed=3, workers=1)
    b = generate_instances(total, seed=3, workers=2)
    assert a == b
    assert generate_instances(50, seed=3, workers=1) == a[:50]  # a prefix: train rows ignore the test size
    assert generate_instances(50, seed=4, workers=1) != a[:50]


def test_spec_validation():
    with pytest.raises(ValueError, match="four_fraction"):
        generate_instances(1, spec=GeneratorSpec(four_fraction=1.5))
    with pytest.raises(ValueError, match="min_number"):
        generate_instances(1, spec=GeneratorSpec(min_number=0))


def test_all_three_number_spec():
    insts = generate_instances(40, seed=1, spec=GeneratorSpec(four_fraction=0.0), workers=1)
    assert all(len(i.numbers) == 3 for i in insts)


def test_impossible_spec_fails_clearly(monkeypatch):
    from vlnorm_verl.tasks.countdown import generator as countdown_generator

    monkeypatch.setattr(countdown_generator, "MAX_DRAWS", 2_000)
    with pytest.raises(ValueError, match="no solvable"):
        generate_instances(1, spec=GeneratorSpec(min_number=1, max_number=1, min_target=90, max_target=100), workers=1)
