"""Test-only rewards for training a random model through verl's trainer (``reward.custom_reward_function``).

A randomly initialised model earns no CountDown reward, so groups would never carry a learning signal. These
rewards depend on the sampled text only, so a random model earns them some of the time:

- ``digit_parity``: 1 when the response holds an odd number of digit characters, else 0 (about half the
  responses; a group of 4 has signal with probability ~7/8);
- ``always_zero``: 0 for every response (no group ever has signal: DAPO's filter keeps nothing).
- ``parity_on_odd_prompts``: ``digit_parity`` for the prompts whose ground truth is "odd" (:func:`odd_prompt`:
  CountDown: an odd target; math: an answer of odd length), 0 for the others - about half the prompts never
  give a group signal, so DAPO's dynamic sampling must drop them, and certainly meets some;
- ``math_planted``: the project's math reward (:func:`vlnorm_verl.rewards.compute_score`, math-verify in its worker
  pool) on the response, with the reference answer appended as ``\\boxed{...}`` when the response holds an odd
  number of digits. A random model never writes a correct answer itself, so the score is the digit parity - but
  only if the math reward finds and verifies the planted answer: it runs the real math judgment inside verl's
  reward loop with a learning signal. Like ``parity_on_odd_prompts``, only on odd prompts.
"""

from __future__ import annotations

from typing import Any

from vlnorm_verl.rewards import compute_score


def digit_parity(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any):
    acc = float(sum(ch.isdigit() for ch in solution_str) % 2)
    return {"score": acc, "acc": acc}


def always_zero(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any):
    return {"score": 0.0, "acc": 0.0}


def odd_prompt(ground_truth: Any) -> bool:
    """Whether a prompt can give signal under the gated rewards: CountDown's target or the math answer's length."""
    if isinstance(ground_truth, dict):
        return int(ground_truth["target"]) % 2 == 1
    return len(str(ground_truth)) % 2 == 1


def parity_on_odd_prompts(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any):
    if not odd_prompt(ground_truth):
        return {"score": 0.0, "acc": 0.0}
    return digit_parity(data_source, solution_str, ground_truth)


def math_planted(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any):
    planted = (
        solution_str + f"\n\\boxed{{{ground_truth}}}"
        if odd_prompt(ground_truth) and digit_parity(data_source, solution_str, None)["acc"]
        else solution_str
    )
    return compute_score(data_source, planted, ground_truth, extra_info)
