"""The quickstart's policy: a tiny randomly initialised Qwen2 and the project's locally built tokenizer.

The model directory (``config.json``, ``model.safetensors``, tokenizer files) is what verl's worker loads with
``from_pretrained``; it is fully determined by the settings under ``quickstart.model`` and the tokenizer, and
is created once under ``<cache_dir>/tiny-qwen2-<hash>``. The HF sampler loads the same directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TinyModelSpec:
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    init_seed: int = 0
    max_position_embeddings: int = 512

    @classmethod
    def from_config(cls, node: Any, max_positions: int) -> TinyModelSpec:
        fields = {k: int(node[k]) for k in cls.__dataclass_fields__ if k in node and k != "max_position_embeddings"}
        spec = cls(**fields, max_position_embeddings=int(max_positions))
        if spec.hidden_size % spec.num_attention_heads:
            raise ValueError(
                f"quickstart.model.hidden_size={spec.hidden_size} must be a multiple of "
                f"num_attention_heads={spec.num_attention_heads}"
            )
        return spec


def content_hash(payload: Any) -> str:
    """sha256 (first 16 hex digits) of ``payload`` as canonical JSON."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    return content_hash(sorted(tokenizer.get_vocab().items()))


def build_tokenizer():
    from vlnorm_verl.tiny_tokenizer import build_tokenizer as _build

    return _build()


def _write_atomically(target: Path, fill) -> Path:
    """Create directory ``target`` by filling a temporary sibling and renaming it (readers never see half)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fill(tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process made it first
            if not target.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def random_qwen2(seed: int, **config: Any):
    """A randomly initialised fp32 ``Qwen2ForCausalLM`` (``config``: Qwen2Config fields; untied embeddings and
    no attention dropout unless given), its init drawn from ``seed`` without touching the global RNG."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    fields = {"tie_word_embeddings": False, "attention_dropout": 0.0, **config}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Qwen2ForCausalLM(Qwen2Config(**fields)).to(torch.float32)


def create_model_dir(spec: TinyModelSpec, tokenizer: Any, cache_dir: str | Path) -> Path:
    """The directory holding ``spec``'s initial weights and the tokenizer (created if missing)."""
    key = content_hash({"spec": asdict(spec), "tokenizer": tokenizer_fingerprint(tokenizer)})
    target = Path(cache_dir) / f"tiny-qwen2-{key}"
    if (target / "config.json").is_file():
        return target

    def fill(tmp: Path) -> None:
        eos = tokenizer.eos_token_id
        model = random_qwen2(
            spec.init_seed,
            vocab_size=len(tokenizer),
            hidden_size=spec.hidden_size,
            intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_hidden_layers,
            num_attention_heads=spec.num_attention_heads,
            num_key_value_heads=spec.num_key_value_heads,
            max_position_embeddings=spec.max_position_embeddings,
            bos_token_id=eos,
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id,
        )
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _write_atomically(target, fill)


def load_hf_model(path: str | Path):
    """The model at ``path`` as a plain fp32 Hugging Face module (eager attention), in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


def save_hf_model(model: Any, tokenizer: Any, target: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` + ``tokenizer`` (+ ``extra`` as ``quickstart.json``) to ``target`` atomically."""

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if extra is not None:
            (tmp / "quickstart.json").write_text(json.dumps(extra, indent=2, default=str))

    return _write_atomically(target, fill)
