r"""The paper's math judgment: boxed-answer extraction, exact match, then symbolic equivalence.

Rule, step by step:

1. ``pred`` = the content of the response's last ``\boxed{…}``/``\fbox{…}`` (brace-matched), else the whole
   response; ``gold`` = the same applied to the ground truth (lists give their first element).
2. ``pred.strip() == gold.strip()`` → 1 (the authors' exact match; surrounding whitespace ignored).
3. Equal presentation-only normal forms (:func:`~vlnorm_verl.tasks.math.answer.canonical_latex`: ``$``,
   ``\dfrac``, ``\left``/``\right``, thin spaces, insignificant whitespace) → 1.
4. Empty ``pred``, or ``pred`` longer than ``max_answer_chars`` (default 1000; e.g. an unboxed response) → 0
   without a symbolic check (the authors skipped the check above 30 characters).
5. Otherwise math-verify's ``verify(parse(gold), parse(pred))`` in a worker process with a wall-clock limit
   (default 3 s; ``VLNORM_MATH_TIMEOUT_S``) → 1/0; a timeout or crash counts as 0.

The result is ``{"score": 1.0|0.0, "acc": 1.0|0.0}``. Nothing a response contains can make this raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vlnorm_verl.tasks.math.answer import canonical_latex, extract_final_answer, ground_truth_text
from vlnorm_verl.tasks.math.pool import MathVerifyPool, get_pool

DEFAULT_MAX_ANSWER_CHARS = 1000


def _prefilter(solution_str: str, ground_truth: Any, max_answer_chars: int) -> tuple[float | None, str, str]:
    """``(decided score or None, gold, pred)`` from the cheap steps 1–4."""
    gold = extract_final_answer(ground_truth_text(ground_truth)).strip()
    if not isinstance(solution_str, str):
        return 0.0, gold, ""
    pred = extract_final_answer(solution_str).strip()
    if pred == gold:
        return 1.0, gold, pred
    if not pred or len(pred) > max_answer_chars:
        return 0.0, gold, pred
    if canonical_latex(pred) == canonical_latex(gold):
        return 1.0, gold, pred
    return None, gold, pred


def _result(ok: bool) -> dict[str, float]:
    value = 1.0 if ok else 0.0
    return {"score": value, "acc": value}


def score_math(
    solution_str: str,
    ground_truth: Any,
    *,
    timeout_s: float | None = None,
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS,
    pool: MathVerifyPool | None = None,
) -> dict[str, float]:
    """``{"score", "acc"}`` for one response (see the module docstring)."""
    decided, gold, pred = _prefilter(solution_str, ground_truth, max_answer_chars)
    if decided is not None:
        return _result(decided == 1.0)
    return _result((pool or get_pool()).verify(gold, pred, timeout_s))


def score_math_batch(
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    *,
    timeout_s: float | None = None,
    max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS,
    pool: MathVerifyPool | None = None,
) -> list[dict[str, float]]:
    """:func:`score_math` for many responses; the symbolic checks run in parallel over the pool's workers."""
    if len(solution_strs) != len(ground_truths):
        raise ValueError(f"{len(solution_strs)} responses but {len(ground_truths)} ground truths")
    results: list[dict[str, float] | None] = []
    pending: list[tuple[int, str, str]] = []
    for i, (sol, gt) in enumerate(zip(solution_strs, ground_truths, strict=True)):
        decided, gold, pred = _prefilter(sol, gt, max_answer_chars)
        if decided is None:
            pending.append((i, gold, pred))
            results.append(None)
        else:
            results.append(_result(decided == 1.0))
    if pending:
        verdicts = (pool or get_pool()).verify_many([(g, p) for _, g, p in pending], timeout_s)
        for (i, _, _), ok in zip(pending, verdicts, strict=True):
            results[i] = _result(ok)
    return [r for r in results if r is not None]


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """``timeout_s`` and ``max_answer_chars`` from the reward keyword arguments (others are ignored)."""
    timeout = options.get("math_timeout_s")
    return {
        "timeout_s": None if timeout is None else float(timeout),
        "max_answer_chars": int(options.get("math_max_answer_chars", DEFAULT_MAX_ANSWER_CHARS)),
    }


def score(solution_str: str, ground_truth: Any, **options: Any) -> dict[str, float]:
    """The task's scorer: :func:`score_math` with ``math_timeout_s`` / ``math_max_answer_chars`` from ``options``."""
    return score_math(solution_str, ground_truth, **_options(options))


def score_batch(solution_strs: Sequence[str], ground_truths: Sequence[Any], **options: Any) -> list[dict[str, float]]:
    """The task's batch scorer: :func:`score_math_batch` (parallel symbolic checks) with the same options."""
    return score_math_batch(solution_strs, ground_truths, **_options(options))
