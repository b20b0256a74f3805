"""A small Qwen2-style byte-level BPE tokenizer built locally (no hub access), for tests and the CPU quickstart.

Properties
----------
- Byte-level: every string maps to UTF-8 bytes, so ``decode(encode(text)) == text`` exactly for any text
  (no normaliser, no added BOS/EOS, ``clean_up_tokenization_spaces=False``). Strings equal to a special
  token are encoded as that token and decode back to it.
- Deterministic: the BPE merges are trained on a fixed corpus (the SPEC prompts and CountDown/math snippets),
  so two builds give identical vocabularies.
- Qwen2.5-like specials: ``<|endoftext|>`` (EOS and pad, as in the Qwen2.5 *base* models), ``<|im_start|>``,
  ``<|im_end|>``; a single token for ``"\\n"``; and a ChatML chat template by default, like the real model —
  the task configs replace it with an identity template so prompts reach the model unwrapped.

``build_tokenizer(save_dir)`` also saves it with ``save_pretrained`` so ``AutoTokenizer.from_pretrained`` and
verl's ``hf_tokenizer`` can load it from that directory.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from vlnorm_verl.tasks.prompts import COUNTDOWN_TEMPLATE, MATH_TEMPLATE

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
VOCAB_SIZE = 1024

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _corpus() -> list[str]:
    lines = [
        COUNTDOWN_TEMPLATE.format(nums=[44, 19, 35], target=98),
        MATH_TEMPLATE.format(question="What is $\\frac{1}{2} + \\frac{1}{3}$?"),
        "<think> Let me try 44 + 19 + 35 = 98. </think>\n<answer> 44 + 19 + 35 </answer>",
        "The answer is \\boxed{\\frac{5}{6}}. </think> <answer> \\boxed{\\frac{5}{6}} </answer>",
        " ".join(str(i) for i in range(100)),
        "( ) + - * / = \\frac \\sqrt \\left( \\right) \\pi ^ _ { } $",
    ]
    return lines * 4


def build_tokenizer(
    save_dir: str | Path | None = None, chat_template: str | None = CHATML_TEMPLATE
) -> PreTrainedTokenizerFast:
    """Build the tokenizer (and ``save_pretrained`` it to ``save_dir`` if given)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
    )
    fast.chat_template = chat_template
    if save_dir is not None:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        fast.save_pretrained(str(save_dir))
    return fast
