"""fp32 compute on the CPU: what dtype verl's FSDP engine will compute in, read through verl's own config classes.

verl's FSDP engine (``workers/engine/fsdp/transformer_impl.py``) casts the parameters to its mixed-precision
``param_dtype`` for every forward and backward and autocasts to it, whatever ``model_dtype`` or ``engine.dtype``
say; with no ``mixed_precision`` section it uses bfloat16. A CPU without native bf16 (no ``avx512_bf16``, e.g.
an AVX2 machine) emulates bf16 matrix products: the tiny model's SFT step took ~4 s there instead of 0.6 s in
fp32. Every CPU path of the project therefore pins :data:`FP32_MIXED_PRECISION`: ``cluster=cpu`` for the actor
and the reference model, the warm-start (:mod:`vlnorm_verl.warmstart.sft_cpu`) for verl's SFT trainer.

:func:`compute_dtype` answers what the engine will compute in for an engine config (an ``FSDPEngineConfig``
node: ``actor_rollout_ref.actor.fsdp_config``, the SFT trainer's ``engine``), by converting it to verl's
dataclass and applying the engine's rule with verl's ``PrecisionType``. :func:`require_fp32` turns anything
else into an error naming the setting.
"""

from __future__ import annotations

from typing import Any

#: the mixed-precision section that makes verl's FSDP engine compute in fp32 (no cast, no autocast)
FP32_MIXED_PRECISION: dict[str, str] = {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
#: the engine's own default when ``mixed_precision`` is unset or has no ``param_dtype``
ENGINE_DEFAULT_PARAM_DTYPE = "bf16"


class PrecisionError(ValueError):
    """A CPU path would compute in a dtype other than fp32; the message names the setting and the fix."""


def hydra_value() -> str:
    """:data:`FP32_MIXED_PRECISION` as a Hydra override value (``{param_dtype:fp32,...}``)."""
    return "{" + ",".join(f"{k}:{v}" for k, v in FP32_MIXED_PRECISION.items()) + "}"


def compute_dtype(engine_config: Any) -> Any:
    """The torch dtype verl's FSDP engine computes in for ``engine_config`` (a DictConfig, dict or dataclass)."""
    from verl.utils.torch_dtypes import PrecisionType
    from verl.workers.config import FSDPEngineConfig

    if not isinstance(engine_config, FSDPEngineConfig):
        from verl.utils.config import omega_conf_to_dataclass

        # as verl builds it (its _target_ names the class; the SFT trainer's `engine` node has one too)
        engine_config = omega_conf_to_dataclass(engine_config)
        if not isinstance(engine_config, FSDPEngineConfig):
            raise PrecisionError(f"not an FSDP engine config: {type(engine_config).__name__}")
    mixed = engine_config.mixed_precision
    param_dtype = ENGINE_DEFAULT_PARAM_DTYPE if mixed is None else mixed.get("param_dtype", ENGINE_DEFAULT_PARAM_DTYPE)
    return PrecisionType.to_dtype(param_dtype)


def require_fp32(engine_config: Any, key: str) -> None:
    """Raise :class:`PrecisionError` unless the engine configured at ``key`` computes in fp32."""
    import torch

    dtype = compute_dtype(engine_config)
    if dtype != torch.float32:
        raise PrecisionError(
            f"{key}.mixed_precision.param_dtype makes verl's FSDP engine compute in {dtype} on the CPU (bf16 is "
            f"emulated, ~7x slower, on CPUs without avx512_bf16); set {key}.mixed_precision={hydra_value()}"
        )
