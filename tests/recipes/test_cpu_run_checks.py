"""``cluster=cpu``: every recipe composes with ``model=tiny``, and what the CPU platform cannot run fails at
start-up (launcher, and ``python -m verl.trainer.main_ppo`` through the group's Hydra callback) with the setting
and the fix — before Ray starts."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from vlnorm_verl.cpu.precision import compute_dtype
from vlnorm_verl.cpu.run import CPURunError, check_cpu_config
from vlnorm_verl.launch.compose import compose_config
from vlnorm_verl.launch.launcher import RECIPES_DIR, list_recipes

CPU = ["cluster=cpu", "model=tiny"]


@pytest.fixture
def tiny_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VLNORM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _cfg(recipe: str, *overrides: str):
    cfg = compose_config(recipe, [*CPU, *overrides], config_dir=RECIPES_DIR)
    OmegaConf.resolve(cfg)
    return cfg


@pytest.mark.parametrize("recipe", list_recipes())
def test_every_recipe_composes_for_the_cpu(recipe, tiny_cache):
    cfg = _cfg(recipe)
    check_cpu_config(cfg)
    arr = cfg.actor_rollout_ref
    assert (arr.rollout.name, arr.rollout.tensor_model_parallel_size, arr.actor.strategy) == ("hf", 1, "fsdp2")
    assert not arr.actor.fsdp_config.param_offload and not arr.actor.fsdp_config.optimizer_offload
    assert cfg.data.max_response_length == 32 and cfg.data.train_batch_size == 4 and arr.rollout.n == 4
    assert str(arr.model.path).startswith(str(tiny_cache))
    # verl's FSDP engine computes in its mixed-precision param_dtype (bf16 unless set): fp32 for actor and ref,
    # read through verl's FSDPEngineConfig and PrecisionType as the engine reads it
    assert compute_dtype(arr.actor.fsdp_config) == compute_dtype(arr.ref.fsdp_config) == torch.float32
    # read as transfer_queue's SimpleStorage bootstrap reads it from the config verl's main_ppo hands tq.init:
    # one storage actor instead of verl's 8 (~20 s of a ~60 s start-up on 2 cores)
    assert dict(cfg.transfer_queue.backend.SimpleStorage)["num_data_storage_units"] == 1
    gpu = compose_config(recipe, [], config_dir=RECIPES_DIR)
    assert gpu.transfer_queue.backend.SimpleStorage.num_data_storage_units == 8  # verl's default, untouched
    assert compute_dtype(gpu.actor_rollout_ref.actor.fsdp_config) == torch.bfloat16  # GPU runs keep verl's bf16
    assert cfg.ray_kwargs.ray_init.runtime_env.env_vars.VERL_PLATFORM == "cpu"
    buffer = OmegaConf.select(cfg, "reward.reward_kwargs.overlong_buffer_cfg", default=None)
    if buffer is not None:
        assert buffer.len <= cfg.data.max_response_length  # soft punishment scaled with the response length


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("actor_rollout_ref.actor.strategy=fsdp", "actor_rollout_ref.actor.strategy"),
        ("actor_rollout_ref.actor.fsdp_config.param_offload=true", "actor_rollout_ref.actor.fsdp_config.param_offload"),
        (
            "actor_rollout_ref.actor.fsdp_config.optimizer_offload=true",
            "actor_rollout_ref.actor.fsdp_config.optimizer_offload",
        ),
        ("actor_rollout_ref.rollout.name=vllm", "actor_rollout_ref.rollout.name"),
        ("actor_rollout_ref.rollout.tensor_model_parallel_size=2", "tensor_model_parallel_size"),
        ("actor_rollout_ref.rollout.dtype=bfloat16", "actor_rollout_ref.rollout.dtype"),
        (
            "actor_rollout_ref.actor.fsdp_config.mixed_precision.param_dtype=bf16",
            "actor_rollout_ref.actor.fsdp_config.mixed_precision",
        ),
        ("~actor_rollout_ref.ref.fsdp_config.mixed_precision", "actor_rollout_ref.ref.fsdp_config.mixed_precision"),
        ("critic.enable=true", "critic"),
        ("actor_rollout_ref.model.path=/no/such/model", "/no/such/model"),
    ],
)
def test_unsupported_settings_fail_with_the_setting(override, named, tiny_cache):
    cfg = _cfg("countdown_vlnorm", override)
    with pytest.raises(CPURunError, match=named.replace(".", r"\.")):
        check_cpu_config(cfg)


def test_a_user_model_directory_works(tmp_path, tiny_cache):
    from vlnorm_verl.cpu.tiny_model import TinyModelSpec, create_model_dir
    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    own = create_model_dir(
        TinyModelSpec(hidden_size=64, num_attention_heads=2, num_key_value_heads=2),
        build_tokenizer(),
        tmp_path / "mine",
    )
    cfg = _cfg("countdown_vlnorm", f"actor_rollout_ref.model.path={own}")
    check_cpu_config(cfg)
    assert cfg.actor_rollout_ref.model.path == str(own)


def test_gpu_runs_are_not_checked(tiny_cache):
    cfg = compose_config("countdown_vlnorm", ["actor_rollout_ref.actor.strategy=fsdp"], config_dir=RECIPES_DIR)
    check_cpu_config(cfg)  # trainer.device is cuda: nothing to refuse


@pytest.mark.parametrize("entry", ["launcher", "main_ppo"])
def test_bad_cpu_run_stops_before_ray(entry, tmp_path, script_env):
    bad = "actor_rollout_ref.model.path=/no/such/model"
    if entry == "launcher":
        cmd = [sys.executable, "-m", "vlnorm_verl.launch.cli", "train", "countdown_vlnorm", *CPU, bad]
    else:
        cmd = [
            sys.executable,
            "-m",
            "verl.trainer.main_ppo",
            f"--config-path={RECIPES_DIR}",
            "--config-name=countdown_vlnorm",
            *CPU,
            bad,
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ]
    script_env["VLNORM_CACHE_DIR"] = str(tmp_path / "cache")
    out = subprocess.run(cmd, env=script_env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "/no/such/model" in text and "does not exist" in text, text[-3000:]
    assert "Started a local Ray instance" not in text and "ray init kwargs" not in text


@pytest.mark.parametrize("recipe", ["countdown_vlnorm", "countdown_dapo_vlnorm"])
def test_cpu_runs_poll_the_rollout_often(recipe, tiny_cache):
    """verl's replay buffer polls every 2 s - most of a CPU step; cluster=cpu selects the project's buffer (verl's
    own, plus the DAPO bound) with a 50 ms poll, for every recipe."""
    from vlnorm_verl.extension.bounded_sampler import (
        BoundedSamplerSettings,
        FilterGroupsBoundError,
        check_filter_groups_bound,
    )

    cfg = _cfg(recipe)
    sampler = cfg.trainer.v1.sampler
    assert sampler.custom_sampler.name == "BoundedReplayBuffer"
    kwargs = OmegaConf.to_container(sampler.sampler_kwargs)
    assert BoundedSamplerSettings.from_sampler_kwargs(kwargs).poll_interval == 0.05
    check_filter_groups_bound(cfg)
    for bad in (0, -1, "fast", 120, None):
        with pytest.raises(FilterGroupsBoundError, match="poll_interval"):
            BoundedSamplerSettings.from_sampler_kwargs({**kwargs, "poll_interval": bad})
    gpu = compose_config(recipe, [], config_dir=RECIPES_DIR).trainer.v1.sampler.sampler_kwargs
    assert "poll_interval" not in gpu  # GPU runs keep verl's poll
