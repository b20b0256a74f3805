"""A small Qwen2.5-style byte-level BPE tokenizer built locally (no hub access), for tests and CPU runs.

It *is* a ``transformers.Qwen2Tokenizer`` (Qwen2's NFC normaliser, its pre-tokeniser regex that splits digits
one by one, byte-level BPE), with BPE merges trained here on a fixed corpus. That matters because verl loads the
tokenizer of a model directory with ``AutoTokenizer.from_pretrained``, which returns a ``Qwen2Tokenizer`` for
every ``model_type: qwen2`` directory whatever ``tokenizer_config.json`` says: a tokenizer of another class saved
there would come back splitting text differently, and a model would be sampled and scored with a tokenizer it
was not trained with. Saved with ``save_pretrained``, this one loads back token for token.

Properties
----------
- Byte-level: ``decode(encode(text)) == text`` for any NFC-normalised text (other text decodes to its NFC form,
  as with the real Qwen2.5 tokenizer); no BOS/EOS added, ``clean_up_tokenization_spaces=False``. Strings equal
  to a special token are encoded as that token and decode back to it.
- Deterministic: the merges are trained on a fixed corpus (the paper's prompts from ``vlnorm_verl.tasks.prompts``
  and CountDown/math snippets), so two builds give identical vocabularies.
- Qwen2.5-like specials: ``<|endoftext|>`` (EOS and pad, as in the Qwen2.5 *base* models), ``<|im_start|>``,
  ``<|im_end|>``; a single token for ``"\\n"``; and a ChatML chat template by default, like the real model —
  the task configs replace it with an identity template so prompts reach the model unwrapped.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer

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


def build_tokenizer(save_dir: str | Path | None = None, chat_template: str | None = CHATML_TEMPLATE) -> Qwen2Tokenizer:
    """Build the tokenizer (and ``save_pretrained`` it to ``save_dir`` if given)."""
    qwen2 = Qwen2Tokenizer()._tokenizer  # Qwen2's own normaliser and pre-tokeniser, so training splits as it will
    tok = Tokenizer(models.BPE())
    tok.normalizer = qwen2.normalizer
    tok.pre_tokenizer = qwen2.pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    bpe = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in bpe["merges"]]
    fast = Qwen2Tokenizer(
        vocab=bpe["vocab"],
        merges=merges,
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
