"""Loading the model to probe: a Hugging Face directory or hub id, or a checkpoint of a verl run.

- Hugging Face directory (``config.json`` + weights): loaded with ``AutoModelForCausalLM.from_pretrained``.
- verl FSDP checkpoint: ``<trainer.default_local_dir>/global_step_N/actor`` (or ``global_step_N`` itself) holding
  ``fsdp_config.json``, ``model_world_size_W_rank_R.pt`` and a ``huggingface/`` folder with the config and the
  tokenizer. It is merged into a Hugging Face directory with verl's own model merger
  (``verl.model_merger.fsdp_model_merger.FSDPModelMerger``, what ``python -m verl.model_merger merge --backend
  fsdp`` runs), into a temporary directory removed after loading. verl's merger writes bfloat16 weights, so the
  probed model is the checkpoint rounded to bfloat16.
- anything else that is not an existing path: a hub id for ``from_pretrained`` (needs network or the HF cache).

The tokenizer is the one the model was trained with: ``--tokenizer`` if given, else the model directory's (the
merged directory gets the checkpoint's ``huggingface/`` tokenizer).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vlnorm_verl.probe.errors import ProbeError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ModelSource:
    kind: str  # hf_dir | verl_fsdp | hub
    path: str  # what to load (the checkpoint's actor dir for verl_fsdp)


def is_verl_checkpoint(path: Path) -> bool:
    return (path / "fsdp_config.json").is_file() or any(path.glob("model_world_size_*_rank_0.pt"))


def resolve_model(spec: str) -> ModelSource:
    """Classify ``spec`` (module docstring); a missing local path is an error, not a hub lookup."""
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ProbeError(f"model {spec} is a file; give a model directory or a verl checkpoint directory")
        if is_verl_checkpoint(path):
            return ModelSource("verl_fsdp", str(path))
        if (path / "actor").is_dir() and is_verl_checkpoint(path / "actor"):
            return ModelSource("verl_fsdp", str(path / "actor"))
        if (path / "config.json").is_file():
            return ModelSource("hf_dir", str(path))
        raise ProbeError(
            f"{spec} is neither a Hugging Face model directory (config.json) nor a verl checkpoint "
            "(global_step_N/actor with fsdp_config.json and model_world_size_*_rank_*.pt)"
        )
    looks_local = spec.startswith((".", "/", "~")) or spec.count("/") > 1 or spec.endswith("/")
    if looks_local:
        raise ProbeError(f"model {spec} does not exist")
    return ModelSource("hub", spec)


def merge_verl_checkpoint(actor_dir: str | Path, target_dir: str | Path) -> Path:
    """Merge a verl FSDP actor checkpoint into a Hugging Face directory with verl's model merger."""
    from verl.model_merger.base_model_merger import ModelMergerConfig
    from verl.model_merger.fsdp_model_merger import FSDPModelMerger

    actor_dir = Path(actor_dir)
    hf_config = actor_dir / "huggingface"
    if not (hf_config / "config.json").is_file():
        raise ProbeError(f"verl checkpoint {actor_dir} has no huggingface/config.json (the merger needs it)")
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    config = ModelMergerConfig(
        operation="merge",
        backend="fsdp",
        local_dir=str(actor_dir),
        target_dir=str(target),
        hf_model_config_path=str(hf_config),
    )
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log):
            merger = FSDPModelMerger(config)
            merger.merge_and_save()
            merger.cleanup()
    except (FileNotFoundError, ValueError, KeyError, RuntimeError, AssertionError) as exc:
        raise ProbeError(f"verl's model merger failed on {actor_dir}: {exc}") from exc
    return target


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ProbeError(f"cannot load the tokenizer from {path}: {exc}") from exc


def _load_model(path: str, dtype: torch.dtype, device: torch.device) -> Any:
    from transformers import AutoModelForCausalLM

    attn = "sdpa" if device.type == "cuda" else "eager"
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation=attn)
    except (OSError, ValueError) as exc:
        raise ProbeError(f"cannot load the model from {path}: {exc}") from exc
    model.to(device)
    model.eval()
    return model


@contextlib.contextmanager
def open_model(
    spec: str, tokenizer: str | None = None, dtype: str = "float32", device: str = "auto"
) -> Iterator[tuple[Any, Any, ModelSource, list[str]]]:
    """(model, tokenizer, source, notes) for ``spec``; a merged checkpoint's directory is removed afterwards."""
    from vlnorm_verl.probe.gradients import _pick_device

    if dtype not in DTYPES:
        raise ProbeError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    dev = _pick_device(device)
    source = resolve_model(spec)
    notes: list[str] = []
    tmp: str | None = None
    try:
        load_from = source.path
        if source.kind == "verl_fsdp":
            tmp = tempfile.mkdtemp(prefix="vlnorm-probe-merged-")
            load_from = str(merge_verl_checkpoint(source.path, tmp))
            notes.append(f"verl checkpoint {source.path} merged with verl's model merger (bfloat16 weights)")
        tok = load_tokenizer(tokenizer or load_from)
        model = _load_model(load_from, DTYPES[dtype], dev)
        yield model, tok, source, notes
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
