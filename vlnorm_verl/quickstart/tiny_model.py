"""The quickstart's policy: a tiny randomly initialised Qwen2 and the project's locally built tokenizer.

The model directory (``config.json``, ``model.safetensors``, tokenizer files) is what verl's worker loads with
``from_pretrained``; it is fully determined by the settings under ``quickstart.model`` and the tokenizer, and
is created once under ``<cache_dir>/tiny-qwen2-<hash>``. The HF sampler loads the same directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnorm_verl.tiny_model import TinyModelSpec as _Spec  # noqa: E402
from vlnorm_verl.tiny_model import (  # noqa: E402,F401 - the builder lives with the model=tiny group
    content_hash,
    create_model_dir,
    random_qwen2,
    tokenizer_fingerprint,
)
from vlnorm_verl.tiny_model import write_atomically as _write_atomically  # noqa: E402


@dataclass(frozen=True)
class TinyModelSpec(_Spec):
    @classmethod
    def from_config(cls, node: Any, max_positions: int) -> TinyModelSpec:
        names = [f for f in cls.__dataclass_fields__ if f != "max_position_embeddings"]
        fields = {k: int(node[k]) for k in names if k in node}
        spec = cls(**fields, max_position_embeddings=int(max_positions))
        if spec.hidden_size % spec.num_attention_heads:
            raise ValueError(
                f"quickstart.model.hidden_size={spec.hidden_size} must be a multiple of "
                f"num_attention_heads={spec.num_attention_heads}"
            )
        return spec


def build_tokenizer():
    from vlnorm_verl.tiny_tokenizer import build_tokenizer as _build

    return _build()


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
