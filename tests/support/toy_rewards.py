"""Test-only rewards for training a random model through verl's trainer (``reward.custom_reward_function``).

A randomly initialised model earns no CountDown reward, so groups would never carry a learning signal. These
rewards depend on the sampled text only, so a random model earns them some of the time:

- ``digit_parity``: 1 when the response holds an odd number of digit characters, else 0 (about half the
  responses; a group of 4 has signal with probability ~7/8);
- ``always_zero``: 0 for every response (no group ever has signal: DAPO's filter keeps nothing).
"""

from __future__ import annotations

from typing import Any


def digit_parity(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any):
    acc = float(sum(ch.isdigit() for ch in solution_str) % 2)
    return {"score": acc, "acc": acc}


def always_zero(data_source: str, solution_str: str, ground_truth: Any, extra_info: Any = None, **_: Any):
    return {"score": 0.0, "acc": 0.0}
