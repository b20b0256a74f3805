"""Shared fixtures for the task tests (CountDown, math, parquet round trip, reward entry point)."""

from __future__ import annotations

import pathlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_EVAL_DIR = REPO_ROOT / ".." / "shared" / "data" / "math_eval"
CONFIG_DIR = REPO_ROOT / "vlnorm_verl" / "configs"


@pytest.fixture(scope="session")
def shared_eval_dir() -> Path:
    """``<repo>/../shared/data/math_eval`` (skips when the offline eval copies are absent)."""
    if not SHARED_EVAL_DIR.is_dir():
        pytest.skip(f"offline math eval sets not found at {SHARED_EVAL_DIR}")
    return SHARED_EVAL_DIR.resolve()


@pytest.fixture(scope="session")
def math_pool():
    """A warmed two-worker math-verify pool shared by the math tests."""
    pytest.importorskip("math_verify")
    from vlnorm_verl.tasks.math.pool import MathVerifyPool

    pool = MathVerifyPool(size=2, timeout_s=10.0)
    pool.warm()
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """The locally built tokenizer saved next to a tiny Qwen2 config (loadable by verl's HFModelConfig)."""
    from transformers import Qwen2Config

    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    d = tmp_path_factory.mktemp("tiny_qwen2")
    tok = build_tokenizer(d)
    Qwen2Config(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        architectures=["Qwen2ForCausalLM"],
    ).save_pretrained(d)
    return d


def compose_ppo_config(tmp_path: pathlib.Path, task: str, overrides: list[str] | None = None):
    """verl's ``ppo_trainer`` config composed with ``task/<task>.yaml`` from this repository."""
    from hydra import compose, initialize_config_dir

    main = tmp_path / f"compose_{task}"
    main.mkdir(exist_ok=True)
    (main / "main.yaml").write_text(
        "hydra:\n"
        "  searchpath:\n"
        "    - pkg://verl.trainer.config\n"
        f"    - file://{CONFIG_DIR}\n"
        "defaults:\n"
        "  - ppo_trainer\n"
        f"  - task: {task}\n"
        "  - _self_\n"
    )
    with initialize_config_dir(config_dir=str(main), version_base=None):
        return compose("main", overrides=overrides or [])


@pytest.fixture
def compose_config():
    return compose_ppo_config
