"""Runs of verl's real trainer without a GPU (``cluster=cpu``): the start-up check and the driver set-up.

A run is a CPU run when ``trainer.device == "cpu"`` (the ``cluster=cpu`` group sets it). :func:`check_cpu_config`
refuses, before Ray starts and with the setting and the fix, what cannot run on the CPU platform:

* an actor/ref strategy other than ``fsdp2`` (FSDP1's ``sync_module_states`` needs a GPU; Megatron needs CUDA);
* parameter or optimizer offload (there is no device to offload from);
* a rollout other than ``hf`` (vLLM/SGLang need GPUs), or rollout tensor/data/pipeline parallel size > 1;
* a critic (GAE and other value-based estimators; not supported by this backend);
* an actor or reference engine that computes in anything but fp32 (verl's FSDP engine defaults to bf16 mixed
  precision, emulated and several times slower on CPUs without native bf16: :mod:`vlnorm_verl.cpu.precision`);
* a non-fp32 rollout dtype (the actor trains in fp32 on the CPU; the rollout must sample from the same numbers);
* a model path that does not exist (a local directory, or a hub id that is not in the local cache).

:class:`CPURunCallback` (installed by ``cluster=cpu``) runs the check in ``python -m verl.trainer.main_ppo`` and
exports the CPU platform's environment in the driver, so a Ray cluster the trainer starts inherits it; the group
also puts it in ``ray_kwargs.ray_init.runtime_env.env_vars`` for a cluster started beforehand.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from vlnorm_verl.cpu import platform as cpu_platform
from vlnorm_verl.cpu.precision import PrecisionError, require_fp32
from vlnorm_verl.cpu.rollout.backend import NAME as HF_ROLLOUT
from vlnorm_verl.extension.settings import stop


class CPURunError(ValueError):
    """A ``cluster=cpu`` run asks for something the CPU platform cannot run; the message names the fix."""


def is_cpu_run(cfg: Any) -> bool:
    return str(OmegaConf.select(cfg, "trainer.device", default="") or "").lower() == "cpu"


def _model_exists(path: str) -> bool:
    if Path(path).expanduser().is_dir():
        return True
    if path.startswith(("/", ".", "~")) or path.count("/") != 1:
        return False
    try:  # a hub id: only usable here if it is already in the local Hugging Face cache
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(path, "config.json"), str)
    except Exception:  # noqa: BLE001 - any failure means "not available locally"
        return False


def check_cpu_config(cfg: Any) -> None:
    """Raise :class:`CPURunError` for the settings listed in the module docstring (no-op for GPU runs)."""
    if not is_cpu_run(cfg):
        return
    arr = cfg.actor_rollout_ref
    for role in ("actor", "ref"):
        strategy = OmegaConf.select(arr, f"{role}.strategy", default=None)
        if strategy is not None and strategy != "fsdp2":
            raise CPURunError(
                f"actor_rollout_ref.{role}.strategy={strategy!r} cannot run on the CPU (FSDP1 needs a GPU to sync "
                f"module states); set actor_rollout_ref.{role}.strategy=fsdp2"
            )
        for key in ("param_offload", "optimizer_offload"):
            if OmegaConf.select(arr, f"{role}.fsdp_config.{key}", default=False):
                raise CPURunError(
                    f"actor_rollout_ref.{role}.fsdp_config.{key}=true: there is no device to offload from on the "
                    f"CPU; set actor_rollout_ref.{role}.fsdp_config.{key}=false"
                )
        fsdp_config = OmegaConf.select(arr, f"{role}.fsdp_config", default=None)
        if fsdp_config is not None:
            try:
                require_fp32(fsdp_config, f"actor_rollout_ref.{role}.fsdp_config")
            except PrecisionError as exc:
                raise CPURunError(str(exc)) from None
    rollout = arr.rollout
    if rollout.name != HF_ROLLOUT:
        raise CPURunError(
            f"actor_rollout_ref.rollout.name={rollout.name!r} needs a GPU; on the CPU use "
            f"actor_rollout_ref.rollout.name={HF_ROLLOUT} (Hugging Face generate, vlnorm_verl.cpu.rollout)"
        )
    for key in ("tensor_model_parallel_size", "data_parallel_size", "pipeline_model_parallel_size"):
        size = int(rollout.get(key, 1) or 1)
        if size != 1:
            raise CPURunError(
                f"actor_rollout_ref.rollout.{key}={size}: the hf rollout runs one server per rank without model "
                f"parallelism; set actor_rollout_ref.rollout.{key}=1"
            )
    if str(rollout.get("dtype", "float32")) not in ("float32", "fp32"):
        raise CPURunError(
            f"actor_rollout_ref.rollout.dtype={rollout.dtype!r}: on the CPU the actor trains in fp32 and the rollout "
            "must sample from the same weights; set actor_rollout_ref.rollout.dtype=float32"
        )
    from verl.trainer.ppo.utils import need_critic

    if need_critic(cfg):
        raise CPURunError(
            f"a critic is enabled (critic.enable or algorithm.adv_estimator={cfg.algorithm.adv_estimator!r} needs "
            "one); the CPU backend runs outcome-reward estimators only: set critic.enable=false and a GRPO-family "
            "estimator"
        )
    path = OmegaConf.select(arr, "model.path", default=None)
    if not path or not _model_exists(str(path)):
        raise CPURunError(
            f"actor_rollout_ref.model.path={path!r} does not exist (no such directory, and not a hub id in the local "
            "cache); give a local model directory, or use model=tiny"
        )


def prepare_driver() -> None:
    """Export the CPU platform's environment in this process and make it verl's platform here too, also when verl
    already resolved another one (main_ppo's ``auto_set_device`` runs after this and would switch to that device)."""
    cpu_platform.activate()


def _on_job_start(config: Any) -> None:
    if not is_cpu_run(config):
        return
    try:
        check_cpu_config(config)
    except Exception as exc:  # noqa: BLE001 - Hydra turns a callback's exception into a warning: stop explicitly
        stop(exc)
    prepare_driver()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


try:  # Hydra callback, installed by the cluster=cpu config group (hydra.callbacks)
    from hydra.experimental.callback import Callback

    class CPURunCallback(Callback):
        """Runs :func:`check_cpu_config` and :func:`prepare_driver` before verl's main() starts."""

        def on_job_start(self, config: Any, **kwargs: Any) -> None:
            _on_job_start(config)

except ImportError:  # pragma: no cover - hydra is a dependency
    CPURunCallback = None  # type: ignore[assignment,misc]
