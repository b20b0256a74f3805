"""Warm-start targets with a search trace of varying length, so sampled response lengths vary.

For a CountDown row with numbers ``ns``, target ``t`` and reference solution ``s`` the target response is

    `` <try_1> = v_1 no. ... <try_k> = v_k no. <s> = t </think>\\n<answer> <s> </answer>``

where each ``try_j`` is a left-to-right expression over a random permutation of ``ns`` with random operators
(``+ - *``; the value ``v_j`` is exact) whose value differs from ``t``: a rejected combination, as a search trace
in ``<think>`` would show it. ``k`` is drawn uniformly from ``0 .. max_tries`` by a generator seeded with the row's
``seed``, so the traces and therefore the response lengths are reproducible and span several-fold: with 3
numbers and the project tokenizer (digits split one by one) a try costs ~19 tokens and the tail ~36, so
``k = 0`` and ``k = 6`` differ by ~4x.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

OPERATORS = ("+", "-", "*")


def rejected_try(numbers: Sequence[int], target: int, rng: random.Random) -> str | None:
    """``"<expr> = <value> no."`` for an expression over all ``numbers`` whose value is not ``target``."""
    for _ in range(20):
        order = list(numbers)
        rng.shuffle(order)
        value = order[0]
        text = str(order[0])
        for n in order[1:]:
            op = rng.choice(OPERATORS)
            value = value + n if op == "+" else value - n if op == "-" else value * n
            text = f"({text}) {op} {n}" if op == "*" and " " in text else f"{text} {op} {n}"
        if value != target:
            return f"{text} = {value} no."
    return None


def response(numbers: Sequence[int], target: int, solution: str, seed: int, max_tries: int) -> str:
    """The warm-start target for one row (without EOS): ``k ~ U{0..max_tries}`` rejected tries, then ``solution``."""
    if max_tries < 0:
        raise ValueError(f"max_tries must be >= 0, got {max_tries}")
    rng = random.Random(f"warmstart-trace/{seed}")
    tries = [t for t in (rejected_try(numbers, target, rng) for _ in range(rng.randint(0, max_tries))) if t]
    trace = "".join(f" {t}" for t in tries)
    return f"{trace} {solution} = {target} </think>\n<answer> {solution} </answer>"
