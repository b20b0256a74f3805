"""The paper's raw-text prompts, byte for byte.

Both prompts are fed to the base model with no chat template: the task configs set an identity
``custom_chat_template`` so the rendered prompt equals the message content exactly.

- CountDown: ``{nums}`` is the Python ``repr`` of the list of numbers (e.g. ``[44, 19, 35]``), ``{target}``
  the integer target. The prompt ends with ``"<think>"`` (no trailing newline).
- Math: one trailing space after ``"respectively, ... </answer>."``, then an empty line; the prompt ends with
  ``"Assistant: <think>"`` (no trailing newline).
"""

from __future__ import annotations

from collections.abc import Sequence

COUNTDOWN_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the answer.\n"
    "User: Using the numbers {nums}, create an equation that equals {target}. "
    "You can use basic arithmetic operations (+, -, *, /) and each number can only be used once. "
    "Show your work in <think> </think> tags. And return the final answer in <answer> </answer> tags, "
    "for example <answer> (1 + 2) / 3 </answer>.\n"
    "Assistant: Let me solve this step by step.\n"
    "<think>"
)

MATH_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>. \n"
    "\n"
    "User: You must put your answer inside <answer> </answer> tags, i.e.,\n"
    "<answer> answer here </answer>. And your final answer will be extracted automatically by the \\boxed{{}} tag.\n"
    "{question}\n"
    "Assistant: <think>"
)


def countdown_prompt(nums: Sequence[int], target: int) -> str:
    """The CountDown prompt for ``nums`` (shown as a Python list) and ``target``."""
    return COUNTDOWN_TEMPLATE.format(nums=repr([int(n) for n in nums]), target=int(target))


def math_prompt(question: str) -> str:
    """The math prompt around ``question`` (inserted verbatim)."""
    if not isinstance(question, str):
        raise TypeError(f"math question must be a string, got {type(question).__name__}")
    return MATH_TEMPLATE.format(question=question)
