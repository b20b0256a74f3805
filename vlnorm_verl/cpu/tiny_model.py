"""A tiny randomly initialised Qwen2 with the project's local tokenizer: the ``model=tiny`` config group.

``create_model_dir(spec, tokenizer, cache_dir)`` writes a Hugging Face model directory (``config.json``,
``model.safetensors``, the tokenizer files) fully determined by :class:`TinyModelSpec` and the tokenizer, under
``<cache_dir>/tiny-qwen2-<hash of both>``, atomically (a temporary sibling renamed into place), and reuses it
when it exists. verl's workers load it with ``from_pretrained``; ``AutoTokenizer`` on it returns exactly the
project tokenizer (:mod:`vlnorm_verl.cpu.tiny_tokenizer`).

The config group refers to the directory through the OmegaConf resolver ``${vlnorm_tiny_model:}``
(:func:`register_resolver`, called by the plugin in every verl process): it reads the settings under
``vlnorm.tiny_model`` of the same config and returns the directory, building it on first use. The cache is
``$VLNORM_CACHE_DIR`` (default ``~/.cache/vlnorm-verl``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

RESOLVER = "vlnorm_tiny_model"
CACHE_ENV = "VLNORM_CACHE_DIR"


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
    def from_mapping(cls, node: Any) -> TinyModelSpec:
        """A spec from a mapping of its fields (unknown keys and non-positive sizes raise ValueError)."""
        node = dict(node or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(node) - known)
        if unknown:
            raise ValueError(f"vlnorm.tiny_model has unknown keys {unknown}; known: {sorted(known)}")
        spec = cls(**{k: int(v) for k, v in node.items()})
        for f in fields(cls):
            if f.name != "init_seed" and getattr(spec, f.name) < 1:
                raise ValueError(f"vlnorm.tiny_model.{f.name} must be >= 1 (found {getattr(spec, f.name)})")
        if spec.hidden_size % spec.num_attention_heads:
            raise ValueError(
                f"vlnorm.tiny_model.hidden_size={spec.hidden_size} must be a multiple of "
                f"num_attention_heads={spec.num_attention_heads}"
            )
        if spec.num_attention_heads % spec.num_key_value_heads:
            raise ValueError("vlnorm.tiny_model.num_attention_heads must be a multiple of num_key_value_heads")
        return spec


def content_hash(payload: Any) -> str:
    """sha256 (first 16 hex digits) of ``payload`` as canonical JSON."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    return content_hash([type(tokenizer).__name__, sorted(tokenizer.get_vocab().items())])


def write_atomically(target: Path, fill) -> Path:
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

    fields_ = {"tie_word_embeddings": False, "attention_dropout": 0.0, **config}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Qwen2ForCausalLM(Qwen2Config(**fields_)).to(torch.float32)


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

    return write_atomically(target, fill)


def cache_dir(environ: Any = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(CACHE_ENV) or "~/.cache/vlnorm-verl").expanduser()


_TOKENIZER = None


def _project_tokenizer():
    global _TOKENIZER
    if _TOKENIZER is None:
        from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

        _TOKENIZER = build_tokenizer()
    return _TOKENIZER


def model_dir_for(settings: Any) -> str:
    """The tiny model directory for ``vlnorm.tiny_model`` settings (built on first use)."""
    spec = TinyModelSpec.from_mapping(settings)
    return str(create_model_dir(spec, _project_tokenizer(), cache_dir()))


def _resolve(*, _root_: Any) -> str:
    from omegaconf import OmegaConf

    settings = OmegaConf.select(_root_, "vlnorm.tiny_model", default=None)
    if settings is None:
        raise ValueError("${vlnorm_tiny_model:} needs the settings under vlnorm.tiny_model (the model=tiny group)")
    return model_dir_for(OmegaConf.to_container(settings, resolve=True))


def register_resolver() -> None:
    """Register ``${vlnorm_tiny_model:}`` with OmegaConf (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, _resolve)
