r"""Final-answer extraction for the math reward, and a presentation-only LaTeX normal form.

Extraction (the paper's rule, as the authors' ``last_boxed_only_string`` does it): find the last ``\boxed`` or ``\fbox``
command in the text; if an opening ``{`` follows it (spaces allowed) and its brace-matched closing ``}``
exists, the answer is the text between them; otherwise (no box, or the last box is never closed, e.g. a
truncated response) the answer is the whole text. Braces are counted as in the authors' code (escaped
``\{``/``\}`` included, which pair up inside a well-formed box). Linear time in the text length.

Normal form (:func:`canonical_latex`) — used only to detect answers that differ in presentation, never in
mathematics, before falling back to symbolic checking:

- surrounding whitespace is dropped, and unescaped ``$`` math-mode delimiters are removed;
- ``\dfrac`` and ``\tfrac`` become ``\frac``; ``\displaystyle`` is dropped; ``\left``/``\right`` before a
  delimiter are dropped (``\leftarrow`` is untouched), and the null delimiters ``\left.``/``\right.`` vanish;
- the thin/negative spaces ``\!``, ``\,``, ``\:``, ``\;``, ``\ `` and ``~`` are removed;
- whitespace is removed (LaTeX ignores it in math mode) except a single space that separates a control word
  from a following letter (``\pi r`` stays ``\pi r``) and runs inside ``\text{}``-like arguments, which are
  collapsed to one space.
"""

from __future__ import annotations

import re

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_TEXT_COMMANDS = ("\\text", "\\textbf", "\\textit", "\\textrm", "\\mathrm", "\\mbox", "\\operatorname")
_SPACING = re.compile(r"\\[!,:;]|\\ |~")
_NULL_DELIM = re.compile(r"\\(?:left|right)\s*\.")
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![A-Za-z])")
_WS_RUN = re.compile(r"\s+")
_FRAC = re.compile(r"\\[dt]frac(?![A-Za-z])")
_DISPLAYSTYLE = re.compile(r"\\displaystyle(?![A-Za-z])")
_DOLLAR = re.compile(r"(?<!\\)\$")


def last_boxed_content(text: str) -> str | None:
    r"""The content of the last ``\boxed{…}``/``\fbox{…}`` if that box is closed, else ``None``."""
    idx = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if idx < 0:
        return None
    cmd_len = len("\\boxed") if text.startswith("\\boxed", idx) else len("\\fbox")
    i = idx + cmd_len
    n = len(text)
    while i < n and text[i] in " \t\r\n":
        i += 1
    if i >= n or text[i] != "{":
        return None
    depth = 0
    start = i + 1
    for j in range(i, n):
        ch = text[j]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:j]
    return None


def extract_final_answer(text: str) -> str:
    r"""The last boxed answer of ``text`` (see the module docstring), else the whole text."""
    boxed = last_boxed_content(text)
    return text if boxed is None else boxed


def ground_truth_text(ground_truth: object) -> str:
    """The ground truth as a string: lists give their first element, integral floats print as integers."""
    gt = ground_truth
    if hasattr(gt, "tolist") and not isinstance(gt, str):
        gt = gt.tolist()
    if isinstance(gt, list | tuple):
        if not gt:
            raise ValueError("math ground truth is an empty list")
        gt = gt[0]
    if isinstance(gt, bool):
        raise ValueError(f"math ground truth must be a string or number, got {gt!r}")
    if isinstance(gt, float) and gt.is_integer():
        gt = int(gt)
    if isinstance(gt, int | float):
        return str(gt)
    if not isinstance(gt, str):
        raise ValueError(f"math ground truth must be a string or number, got {type(ground_truth).__name__}")
    return gt.strip()


def _skip_group(text: str, i: int) -> int:
    """Index just past the brace group starting at ``text[i] == '{'`` (or len(text) if unclosed)."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def _squeeze_whitespace(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            j = i + 1
            while j < n and text[j].isalpha() and text[j].isascii():
                j += 1
            word = text[i:j]
            if j == i + 1 and j < n:  # control symbol such as \{ or \%
                j += 1
                word = text[i:j]
            out.append(word)
            i = j
            if word in _TEXT_COMMANDS:
                k = i
                while k < n and text[k].isspace():
                    k += 1
                if k < n and text[k] == "{":
                    end = _skip_group(text, k)
                    out.append(_WS_RUN.sub(" ", text[k:end]))
                    i = end
                continue
            if len(word) > 1 and word[1:].isalpha():
                k = i
                while k < n and text[k].isspace():
                    k += 1
                if k > i and k < n and text[k].isalpha():
                    out.append(" ")
                i = k
            continue
        if ch.isspace():
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def canonical_latex(text: str) -> str:
    """A presentation-only normal form of a LaTeX answer (see the module docstring)."""
    s = text.strip()
    s = _DOLLAR.sub("", s)
    s = _FRAC.sub(r"\\frac", s)
    s = _DISPLAYSTYLE.sub("", s)
    s = _NULL_DELIM.sub("", s)
    s = _LEFT_RIGHT.sub("", s)
    s = _SPACING.sub(" ", s)
    return _squeeze_whitespace(s)
