"""Math judgments: every offline eval-set answer in equivalent forms scores 1; another answer scores 0."""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from vlnorm_verl.tasks.math.answer import canonical_latex, extract_final_answer, ground_truth_text, last_boxed_content
from vlnorm_verl.tasks.math.reward import score_math, score_math_batch

SETS = ("math500", "aime24", "amc23", "minerva", "olympiadbench")


def load_answers(eval_dir: Path) -> dict[str, list[str]]:
    out = {}
    for name in SETS:
        rows = [json.loads(line) for line in (eval_dir / f"{name}.jsonl").read_text().splitlines() if line.strip()]
        out[name] = [ground_truth_text(r["answer"]) for r in rows]
    return out


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_FRAC = re.compile(r"^(-?)\\frac\{(\d+)\}\{(\d+)\}$")


def simple_value(answer: str) -> Fraction | None:
    """A hand-rolled value for plain numbers and \\frac{a}{b} (independent of the code under test)."""
    s = answer.replace("$", "").replace(" ", "").replace("\\dfrac", "\\frac")
    if _NUMBER.match(s):
        return Fraction(s)
    m = _FRAC.match(s)
    if m:
        v = Fraction(int(m.group(2)), int(m.group(3)))
        return -v if m.group(1) else v
    return None


def equivalent_forms(answer: str) -> list[str]:
    """Responses whose boxed answer is ``answer`` rewritten without changing its mathematics."""
    forms = [f"Let me think.\nSo the final answer is $\\boxed{{{answer}}}$ as required.", f"\\fbox{{{answer}}}"]
    if not re.search(r"\\(text|mathrm|mbox|operatorname)", answer):
        spaced = re.sub(r"(?<!\\)([,+=])", r" \1 ", answer)
        if spaced != answer:
            forms.append(f"\\boxed{{{spaced}}}")
    forms.append(f"\\boxed{{  {answer}\n}}")
    if "\\frac" in answer:
        dfrac = answer.replace("\\frac", "\\dfrac")
        forms.append(f"\\boxed{{{dfrac}}}")
    if "(" in answer and "\\left" not in answer:
        lr = re.sub(r"(?<!\\)\(", r"\\left( ", answer)
        lr = re.sub(r"(?<!\\)\)", r" \\right)", lr)
        forms.append(f"\\boxed{{{lr}}}")
    value = simple_value(answer)
    if value is not None:
        if value.denominator == 1:
            forms.append(f"\\boxed{{{int(value)}.0}}")
            forms.append(f"\\boxed{{\\frac{{{2 * int(value)}}}{{2}}}}")
        else:
            forms.append(f"\\boxed{{\\frac{{{value.numerator}}}{{{value.denominator}}}}}")
            dec = float(value)
            if Fraction(repr(dec)) == value:  # terminating decimal
                forms.append(f"\\boxed{{{dec!r}}}")
    return forms


def obviously_equal(a: str, b: str) -> bool:
    """Same text up to spacing/delimiters, same plain value, or one is ``lhs = <the other>`` (an assignment)."""

    def norm(s: str) -> str:
        return re.sub(r"\s|\$|\\left|\\right", "", s).replace("\\dfrac", "\\frac")

    def rhs(s: str) -> str:
        return norm(s).split("=")[-1]

    va, vb = simple_value(rhs(a)), simple_value(rhs(b))
    return norm(a) == norm(b) or rhs(a) == rhs(b) or (va is not None and va == vb)


def test_every_eval_answer_in_equivalent_forms_scores_one(shared_eval_dir, math_pool):
    answers = load_answers(shared_eval_dir)
    responses, truths, labels = [], [], []
    for name, values in answers.items():
        for i, ans in enumerate(values):
            for form in equivalent_forms(ans):
                responses.append(form)
                truths.append(ans)
                labels.append(f"{name}[{i}]")
    results = score_math_batch(responses, truths, pool=math_pool)
    failures = [
        (lab, resp, gt)
        for lab, resp, gt, r in zip(labels, responses, truths, results, strict=True)
        if r["score"] != 1.0
    ]
    assert not failures, f"{len(failures)} of {len(responses)} equivalent forms failed, e.g. {failures[:8]}"
    assert len(responses) > 5 * sum(len(v) for v in answers.values()) // 2


def test_another_sets_answer_scores_zero(shared_eval_dir, math_pool):
    """Up to 100 evenly spaced answers per set (all of AIME/AMC), each against the next set's answers."""
    answers = load_answers(shared_eval_dir)
    responses, truths = [], []
    for k, name in enumerate(SETS):
        other = answers[SETS[(k + 1) % len(SETS)]]
        stride = max(1, len(answers[name]) // 100)
        for i, ans in list(enumerate(answers[name]))[::stride]:
            for j in range(i, i + len(other)):  # the first answer of the other set that is not obviously equal
                cand = other[j % len(other)]
                if not obviously_equal(ans, cand):
                    break
            responses.append(f"The answer is $\\boxed{{{cand}}}$.")
            truths.append(ans)
    results = score_math_batch(responses, truths, pool=math_pool)
    wrong = [(r, t) for r, t, s in zip(responses, truths, results, strict=True) if s["score"] != 0.0]
    assert not wrong, f"{len(wrong)} of {len(responses)} different answers scored 1, e.g. {wrong[:8]}"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("no box here", None),
        ("\\boxed{1} and \\boxed{2}", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{3} then \\fbox{7}", "7"),
        ("\\fbox{7} then \\boxed{3}", "3"),
        ("\\boxed {x^{2}}", "x^{2}"),
        ("\\boxed{1} then truncated \\boxed{2", None),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),
        ("\\boxed", None),
    ],
)
def test_last_boxed_content(text, expected):
    assert last_boxed_content(text) == expected


def test_extraction_falls_back_to_whole_text():
    assert extract_final_answer("42") == "42"
    assert extract_final_answer("x \\boxed{1} y \\boxed{2") == "x \\boxed{1} y \\boxed{2"


def test_ground_truth_text():
    assert ground_truth_text(142.0) == "142"
    assert ground_truth_text(["9.6\n", "9.7"]) == "9.6"
    assert ground_truth_text(" \\frac{1}{2} ") == "\\frac{1}{2}"
    assert ground_truth_text(0.5) == "0.5"
    for bad in ([], None, True, {"a": 1}):
        with pytest.raises(ValueError):
            ground_truth_text(bad)


@pytest.mark.parametrize(
    "a,b",
    [
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
        ("$2n$", "2 n"),
        ("\\dfrac{1}{2}", "\\frac {1} {2}"),
        ("\\pi r", "\\pi  r"),
        ("a\\,b", "ab"),
        ("\\text{New York}", "\\text{New  York}"),
    ],
)
def test_canonical_latex_equal(a, b):
    assert canonical_latex(a) == canonical_latex(b)


@pytest.mark.parametrize(
    "a,b",
    [
        ("\\pi r", "\\pir"),
        ("12", "1.2"),
        ("\\text{New York}", "\\text{NewYork}"),
        ("\\$5", "5"),
        ("x^2", "x^3"),
        ("\\leftarrow", "arrow"),
    ],
)
def test_canonical_latex_keeps_meaning(a, b):
    assert canonical_latex(a) != canonical_latex(b)


def test_hand_written_judgments(math_pool):
    cases = [
        ("The answer is \\boxed{\\frac{1}{2}}.", "0.5", 1.0),
        ("\\boxed{0.5}", "\\frac{1}{2}", 1.0),
        ("\\boxed{\\sqrt{2}/2}", "\\frac{\\sqrt{2}}{2}", 1.0),
        ("\\boxed{x+1}", "1+x", 1.0),
        ("\\boxed{3}", "\\boxed{3}", 1.0),  # ground truth boxed too
        ("\\boxed{4}", "3", 0.0),
        ("\\boxed{}", "3", 0.0),
        ("I think 3", "3", 0.0),  # unboxed text is compared as a whole
        ("3", "3", 1.0),
        ("\\boxed{3} wait no \\boxed{4", "3", 0.0),  # truncated after a new box: whole text, wrong
    ]
    for resp, gt, expected in cases:
        assert score_math(resp, gt, pool=math_pool)["score"] == expected, (resp, gt)
