"""The locally built byte-level tokenizer: exact round trip on any text, determinism, save/load."""

from __future__ import annotations

import random

import pytest
from transformers import AutoTokenizer

from vlnorm_verl.tasks.prompts import countdown_prompt, math_prompt
from vlnorm_verl.tiny_tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def _random_text(rng: random.Random) -> str:
    pools = [
        "abc XYZ 0123456789 +-*/()<>=",
        " \t\n\r\x0b\x0c",
        "\x00\x01\x1b\x7f\x85\xa0",
        "éßøΩж漢字かな한글",
        "🙂🚀👩‍👩‍👧",
        "\u0661\u0662\uff11\u200b\u202e\ufeff",
        "<|endoftext|><|im_start|><|im_end|>",
        "\\boxed{} $ ^ _ { }",
    ]
    parts = []
    for _ in range(rng.randint(0, 40)):
        pool = rng.choice(pools)
        if pool.startswith("<|"):
            parts.append(rng.choice(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_", "|>"]))
        else:
            parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
    return "".join(parts)


def test_round_trip_is_exact_for_any_text(tok):
    rng = random.Random(0)
    texts = [_random_text(rng) for _ in range(2000)]
    texts += ["", " ", "  leading and trailing  ", "\n\n", countdown_prompt([1, 2, 3], 6), math_prompt("Q?  ")]
    code_points = [c for c in (rng.randint(0, 0x10FFFF) for _ in range(3000)) if not 0xD800 <= c <= 0xDFFF]
    texts += ["".join(chr(c) for c in range(0x250)), "".join(chr(c) for c in code_points)]
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text, repr(text)
        assert tok.encode(text) == ids  # no BOS/EOS added by default


def test_specials_and_newline(tok):
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"
    assert len(tok.encode("\n", add_special_tokens=False)) == 1
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        assert len(tok.encode(special, add_special_tokens=False)) == 1
    prompt_ids = tok.encode(countdown_prompt([44, 19, 35], 98), add_special_tokens=False)
    assert len(prompt_ids) < 256  # far below the CountDown prompt budget even with a tiny vocabulary


def test_deterministic_and_loadable(tmp_path, tok):
    saved = build_tokenizer(tmp_path)
    assert saved.get_vocab() == tok.get_vocab()
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    text = math_prompt("Find $x$ such that $x^2 = 4$.")
    assert loaded.encode(text) == tok.encode(text)
    assert loaded.decode(loaded.encode(text)) == text
    assert loaded.chat_template == tok.chat_template
    assert loaded.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == (
        "<|im_start|>user\nhi<|im_end|>\n"
    )
