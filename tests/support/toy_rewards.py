"""Test-only rewards for training a random model through verl's trainer (``reward.custom_reward_function``).

A randomly initialised model earns no CountDown reward, so groups would never carry a learning signal. These
rewards depend on the sampled text only, so a random model earns them some of the time:

- ``digit_parity``: 1 when the response holds an odd number of digit characters, else 0 (about half the
  responses; a group of 4 has signal with probability ~7/8);
- ``always_zero``: 0 for every response (no group ever has signal: DAPO's filter keeps nothing).
- ``math_planted``: the project's math reward (:func:`vlnorm_verl.rewards.compute_score`, math-verify in its worker
  pool) on the response, with the reference answer appended as ``\\boxed{...}`` when the response holds an odd
  number of digits. A random model never writes a correct answer itself, so the score is the digit parity - but
  only if the math reward finds and verifies the planted answer: it runs the real math judgment inside verl's
  reward loop with a learning signal.
"""

from __future__ import annotations

from typing import Any

from vlnorm_verl.rewards import compute_score


def digit_parity(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any):
    acc = float(sum(ch.isdigit() for ch in solution_str) % 2)
    return {"score": acc, "acc": acc}


def always_zero(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any):
    return {"score": 0.0, "acc": 0.0}


def math_planted(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any):
    planted = (
        solution_str + f"\n\\boxed{{{ground_truth}}}"
        if digit_parity(data_source, solution_str, None)["acc"]
        else solution_str
    )
    return compute_score(data_source, planted, ground_truth, extra_info)
