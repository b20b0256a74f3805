"""Shared helpers of the probe tests: synthetic gradients with a known length law, tiny models, prompt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def synthetic(
    beta: float,
    n: int = 2000,
    dim: int = 48,
    lo: int = 20,
    hi: int = 400,
    seed: int = 0,
    unit_variance: float = 1.0,
    mean_scale: float = 0.3,
) -> tuple[np.ndarray, np.ndarray]:
    """lengths log-uniform in [lo, hi] (whole tokens) and g_i = mu + sqrt(V L_i^beta / dim) * xi_i, xi ~ N(0, I).

    E||g_i - mu||^2 = V L_i^beta exactly: the model the probe fits.
    """
    rng = np.random.default_rng(seed)
    lengths = np.round(np.exp(rng.uniform(np.log(lo), np.log(hi), n)))
    mu = mean_scale * rng.standard_normal(dim)
    scale = np.sqrt(unit_variance * lengths**beta / dim)
    grads = mu + rng.standard_normal((n, dim)) * scale[:, None]
    return lengths, grads


def write_countdown_parquet(path: Path, rows: int = 32) -> Path:
    from vlnorm_verl.tasks.countdown import TASK
    from vlnorm_verl.tasks.countdown.data import make_row
    from vlnorm_verl.tasks.parquet_io import write_rows

    data = [make_row([i % 50 + 1, 7, 3], 10 + i % 80, "train", i, None) for i in range(rows)]
    write_rows(data, path, TASK.parquet_schema())
    return path


def tiny_model_dir(target: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random tiny Qwen2 with the project tokenizer, saved with save_pretrained (loads with AutoTokenizer)."""
    from vlnorm_verl.cpu.tiny_model import random_qwen2
    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    tok = build_tokenizer(target)
    eos = tok.eos_token_id
    model = random_qwen2(
        seed,
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=tok.pad_token_id,
    )
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(target)
    return target
