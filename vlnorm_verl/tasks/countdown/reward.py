"""The paper's CountDown judgment, with the authors' extraction rule and a safe evaluator.

Rule, step by step (the authors' ``extract_solution`` / ``validate_equation`` / ``evaluate_equation``):

1. If the response contains ``"Assistant:"``, keep the text after its first occurrence (else after the first
   ``"<|im_start|>assistant"``). verl 0.9 passes the response only, so this rarely matters.
2. ``str.strip()`` the text and keep its last line (the text after the last ``"\\n"``).
3. On that line, find the ``<answer>…</answer>`` pairs the way ``re.finditer(r"<answer>(.*?)</answer>")`` does
   (leftmost, non-overlapping, shortest) and take the last one's content, ``str.strip()``-ed. None → score 0.
4. The expression's integer literals must equal the given numbers as a multiset (each used exactly once).
5. Its exact value (a :class:`~fractions.Fraction`) must satisfy ``|value - target| < 1e-5``.

Score 1.0 if all hold, else 0.0 (the paper's format score is 0); ``acc`` equals the score.

Deliberate differences from the authors' Python ``eval``: ``**``, ``//`` and decimal literals (``1.5``) are
rejected (the prompt allows ``+ - * /`` on the given integers only), and the bounds of
:mod:`~vlnorm_verl.tasks.countdown.expr` apply. Everything ``eval`` would reject scores 0 here too.
All steps are linear in the input length, so any text is judged in bounded time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from vlnorm_verl.tasks.countdown.expr import ExpressionError, evaluate_tokens, tokenize

TOLERANCE = Fraction(1e-5)  # the authors compare floats with ``< 1e-5``; this is that float, exactly
_OPEN, _CLOSE = "<answer>", "</answer>"


def extract_answer(solution_str: str) -> str | None:
    """The stripped content of the last ``<answer>…</answer>`` on the response's last line, or ``None``."""
    if not isinstance(solution_str, str):
        return None
    text = solution_str
    if "Assistant:" in text:
        text = text.split("Assistant:", 1)[1]
    elif "<|im_start|>assistant" in text:
        text = text.split("<|im_start|>assistant", 1)[1]
    text = text.strip()
    line = text[text.rfind("\n") + 1 :]
    last: tuple[int, int] | None = None
    pos = 0
    while True:
        start = line.find(_OPEN, pos)
        if start < 0:
            break
        end = line.find(_CLOSE, start + len(_OPEN))
        if end < 0:
            break
        last = (start + len(_OPEN), end)
        pos = end + len(_CLOSE)
    if last is None:
        return None
    return line[last[0] : last[1]].strip()


def parse_ground_truth(ground_truth: Any) -> tuple[Fraction, tuple[int, ...]]:
    """``(target, numbers)`` from ``{"target": int, "numbers": [int, ...]}`` (a dict, JSON string or row).

    Raises ``ValueError`` naming the problem: a malformed ground truth is a data bug, not a model error.
    """
    gt = ground_truth
    if isinstance(gt, str | bytes):
        try:
            gt = json.loads(gt)
        except ValueError as exc:
            raise ValueError(f"CountDown ground truth is a string but not JSON: {ground_truth!r:.200}") from exc
    if not isinstance(gt, Mapping) or "target" not in gt or "numbers" not in gt:
        raise ValueError(
            "CountDown ground truth must be a mapping with keys 'target' and 'numbers' "
            f"(e.g. {{'target': 24, 'numbers': [2, 3, 4]}}), got {ground_truth!r:.200}; "
            "re-run `vlnorm-verl prepare-data`"
        )
    numbers = gt["numbers"]
    if isinstance(numbers, str | bytes) or (not isinstance(numbers, Sequence) and not hasattr(numbers, "tolist")):
        raise ValueError(f"CountDown ground truth 'numbers' must be a list of integers, got {numbers!r:.200}")
    try:
        nums = tuple(_as_int(n) for n in (numbers.tolist() if hasattr(numbers, "tolist") else numbers))
        target = _as_fraction(gt["target"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"CountDown ground truth has a non-integer number or target: {ground_truth!r:.200}") from exc
    if not nums:
        raise ValueError("CountDown ground truth 'numbers' is empty")
    return target, nums


def _as_int(x: Any) -> int:
    if isinstance(x, bool):
        raise TypeError("bool is not a CountDown number")
    value = int(x)
    if value != x:
        raise ValueError(f"{x!r} is not an integer")
    return value


def _as_fraction(x: Any) -> Fraction:
    if isinstance(x, bool):
        raise TypeError("bool is not a CountDown target")
    if isinstance(x, int):
        return Fraction(x)
    if hasattr(x, "item"):  # numpy scalar
        x = x.item()
    return Fraction(x)


def judge_expression(expression: str, target: Fraction, numbers: Sequence[int]) -> bool:
    """True iff ``expression`` uses exactly ``numbers`` (multiset) and equals ``target`` within 1e-5."""
    try:
        tokens = tokenize(expression)
        literals = [t for t in tokens if isinstance(t, int)]
        if len(literals) != len(numbers) or Counter(literals) != Counter(numbers):
            return False
        value = evaluate_tokens(tokens)
    except ExpressionError:
        return False
    return abs(value - target) < TOLERANCE


def score_countdown(solution_str: str, ground_truth: Any) -> dict[str, float]:
    """``{"score": 1.0|0.0, "acc": 1.0|0.0}`` for one response (see the module docstring for the rule)."""
    target, numbers = parse_ground_truth(ground_truth)
    answer = extract_answer(solution_str)
    ok = answer is not None and judge_expression(answer, target, numbers)
    value = 1.0 if ok else 0.0
    return {"score": value, "acc": value}


def score(solution_str: str, ground_truth: Any, **options: Any) -> dict[str, float]:
    """The task's scorer (:attr:`vlnorm_verl.tasks.base.Task.score`): :func:`score_countdown`; no options apply."""
    return score_countdown(solution_str, ground_truth)
