"""The locally built Qwen2 tokenizer: exact round trip on NFC text, determinism, save/load through AutoTokenizer."""

from __future__ import annotations

import json
import random
import unicodedata

import pytest
from transformers import AutoTokenizer

from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer
from vlnorm_verl.tasks.prompts import countdown_prompt, math_prompt


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


def test_round_trip_is_exact_for_nfc_text(tok):
    rng = random.Random(0)
    texts = [_random_text(rng) for _ in range(2000)]
    texts += ["", " ", "  leading and trailing  ", "\n\n", countdown_prompt([1, 2, 3], 6), math_prompt("Q?  ")]
    code_points = [c for c in (rng.randint(0, 0x10FFFF) for _ in range(3000)) if not 0xD800 <= c <= 0xDFFF]
    texts += ["".join(chr(c) for c in range(0x250)), "".join(chr(c) for c in code_points)]
    exact = 0
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        nfc = unicodedata.normalize("NFC", text)
        # Qwen2's normaliser is NFC: NFC text comes back exactly, other text as its canonical equivalent
        # (the tokenizers library's Unicode tables may order some combining marks differently from Python's)
        assert unicodedata.normalize("NFC", tok.decode(ids)) == nfc, repr(text)
        if nfc == text:
            assert tok.decode(ids) == text, repr(text)
            exact += 1
        assert tok.encode(text) == ids  # no BOS/EOS added by default
    assert exact > 1900  # the check above ran on (nearly) every random text, not only on a few


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


def test_digits_split_like_qwen2(tok):
    # Qwen2's pre-tokeniser isolates every digit; the CountDown reward reads numbers back from the decoded text
    assert len(tok.encode("12 45", add_special_tokens=False)) == 5
    assert tok.decode(tok.encode("12 45")) == "12 45"


def test_model_directory_loads_the_same_tokenizer(tmp_path, tok):
    """verl loads a model directory's tokenizer with AutoTokenizer, which picks the class from config.json's
    model_type: a qwen2 directory must give back exactly this tokenizer (same class, same ids)."""
    from vlnorm_verl.cpu.tiny_model import random_qwen2

    random_qwen2(
        0,
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    ).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen2"
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert type(loaded) is type(tok)
    assert loaded.get_vocab() == tok.get_vocab()
    rng = random.Random(1)
    texts = [_random_text(rng) for _ in range(500)] + ["12 45", countdown_prompt([12, 45, 7], 64)]
    for text in texts:
        assert loaded.encode(text) == tok.encode(text), repr(text)
    assert (loaded.eos_token_id, loaded.pad_token_id) == (tok.eos_token_id, tok.pad_token_id)
