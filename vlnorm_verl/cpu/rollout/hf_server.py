"""The ``hf`` rollout server: one Ray actor per rollout replica, generating with Hugging Face transformers.

verl's agent loop calls ``generate(prompt_ids, sampling_params, request_id, ...)`` on a replica's server handle
(``verl/workers/rollout/llm_server.py``) and expects a :class:`verl.workers.rollout.replica.TokenOutput`; the
replica broadcasts control calls (``sleep``, ``wake_up``, KV-cache and abort calls, profiling). This actor answers
all of them around one :class:`~vlnorm_verl.cpu.rollout.hf_engine.HFGenerationEngine`:

- ``generate``: token ids in, token ids out, batched with every request that is waiting (verl sends all
  prompts x n at once). The response is capped as vLLM's server caps it: ``max_tokens`` (or ``max_new_tokens``)
  when the request gives one, else ``min(response_length, prompt_length + response_length - len(prompt))``,
  never past ``max_model_len``. Temperature 0 is greedy. Log-probs (when ``logprobs`` is asked) are those of the
  distribution actually sampled: ``log_softmax(logits / temperature)``, the quantity verl's actor recomputes.
  ``extra_fields.global_steps`` is the step of the weights that generated the response.
- ``update_weights``: full HF-named tensors from the trainer (see :mod:`vlnorm_verl.cpu.rollout.hf_adapter`); never
  runs while a batch is generating.
- ``sleep`` / ``wake_up``: on a GPU the model moves to host memory and back (frees the device for training);
  on the CPU they only record the state. A request that arrives while asleep wakes the model first.
- ``abort_all_requests(reject_request)``: blocks admission; requests already batched finish normally, new ones
  wait for ``resume_generation`` (or fail at once with ``reject_request=True``). ``clear_kv_cache``,
  ``release_kv_cache``, ``resume_kv_cache``: the KV cache lives only while a batch runs, so there is nothing to
  keep or free between batches (no-ops). Profiling calls are no-ops.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import torch

from vlnorm_verl.cpu.rollout.hf_engine import HFGenerationEngine, SamplingSettings

logger = logging.getLogger(__name__)

#: ``actor_rollout_ref.rollout.engine_kwargs.hf`` keys this server reads
ENGINE_KWARGS = ("threads", "max_batch_size", "device")


def _eos_ids(model_config: Any) -> list[int]:
    ids: list[int] = []
    for source in (getattr(model_config, "generation_config", None), getattr(model_config, "hf_config", None)):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if value is not None:
            ids.extend(value if isinstance(value, list | tuple) else [value])
    tokenizer = getattr(model_config, "tokenizer", None)
    if tokenizer is not None and tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError(f"the model at {model_config.local_path} defines no EOS token; the hf rollout needs one")
    return sorted(set(int(i) for i in ids))


def max_new_tokens(config: Any, prompt_len: int, sampling_params: dict[str, Any]) -> int:
    """The response cap for one request, as verl's vLLM server computes it (see the module docstring)."""
    limit = sampling_params.get("max_tokens", sampling_params.get("max_new_tokens"))
    if limit is None:
        limit = min(config.response_length, config.prompt_length + config.response_length - prompt_len)
    max_model_len = config.max_model_len or (config.prompt_length + config.response_length)
    room = max_model_len - prompt_len
    if room < 1:
        raise ValueError(
            f"prompt of {prompt_len} tokens leaves no room to generate within max_model_len={max_model_len}"
        )
    return max(1, min(int(limit), room))


def sampling_settings(sampling_params: dict[str, Any], seed: int | None) -> SamplingSettings:
    temperature = float(sampling_params.get("temperature", 1.0))
    return SamplingSettings(
        temperature=temperature,
        top_p=float(sampling_params.get("top_p", 1.0)),
        top_k=int(sampling_params.get("top_k", -1)),
        repetition_penalty=float(sampling_params.get("repetition_penalty", 1.0)),
        seed=seed,
    )


class HFRolloutServer:
    """Ray actor (created by :class:`~vlnorm_verl.cpu.rollout.hf_replica.HFReplica`); see the module docstring."""

    def __init__(self, config: Any, model_config: Any, replica_rank: int) -> None:
        from transformers import AutoModelForCausalLM
        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig, RolloutConfig

        if not isinstance(config, RolloutConfig):
            config = omega_conf_to_dataclass(config)
        if not isinstance(model_config, HFModelConfig):  # verl hands replicas the model config as a DictConfig
            model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.config = config
        self.model_config = model_config
        self.replica_rank = replica_rank
        kwargs = dict((config.engine_kwargs or {}).get("hf") or {})
        unknown = sorted(set(kwargs) - set(ENGINE_KWARGS))
        if unknown:
            raise ValueError(
                f"actor_rollout_ref.rollout.engine_kwargs.hf has unknown keys {unknown}; known: {list(ENGINE_KWARGS)}"
            )
        threads = int(kwargs.get("threads") or max(1, (os.cpu_count() or 1) // max(1, config.n_gpus_per_node)))
        torch.set_num_threads(threads)
        device = kwargs.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = getattr(torch, str(config.dtype))
        attn = (model_config.override_config or {}).get("attn_implementation") or "eager"
        model = AutoModelForCausalLM.from_pretrained(
            model_config.local_path,
            dtype=dtype,
            attn_implementation=attn,
            trust_remote_code=model_config.trust_remote_code,
        )
        pad = getattr(model_config.tokenizer, "pad_token_id", None)
        eos = _eos_ids(model_config)
        self.engine = HFGenerationEngine(
            model,
            eos_token_ids=eos,
            pad_token_id=eos[0] if pad is None else int(pad),
            device=device,
            max_batch_size=int(kwargs.get("max_batch_size") or 64),
        )
        self.device = torch.device(device)
        self.global_steps: int | None = None
        self.asleep = False
        self._admission = asyncio.Event()
        self._admission.set()
        self._reject = False
        self.weight_updates = 0
        logger.info(
            "hf rollout server %d: %s on %s, %d threads", replica_rank, model_config.local_path, device, threads
        )

    # -- generation --------------------------------------------------------------------------------------------
    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Any = None,
        video_data: Any = None,
        **kwargs: Any,
    ):
        from verl.workers.rollout.replica import TokenOutput

        if image_data is not None or video_data is not None or kwargs.get("audio_data") is not None:
            raise NotImplementedError("the hf rollout generates from text token ids only (no image/video/audio)")
        if not self._admission.is_set():
            if self._reject:
                raise RuntimeError("hf rollout: generation is aborted (abort_all_requests(reject_request=True))")
            await self._admission.wait()
        if self.asleep:
            await self.wake_up()
        prompt_ids = [int(t) for t in prompt_ids]
        params = dict(sampling_params)
        limit = max_new_tokens(self.config, len(prompt_ids), params)
        seed = params.get("seed")
        if seed is None and self.config.full_determinism:
            seed = self.config.seed + self.replica_rank
        result = await self.engine.generate(prompt_ids, limit, sampling_settings(params, seed))
        return TokenOutput(
            token_ids=result.token_ids,
            log_probs=result.log_probs if params.get("logprobs") else None,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    # -- weights -----------------------------------------------------------------------------------------------
    async def update_weights(self, named_tensors: list[tuple[str, torch.Tensor]], global_steps: int | None = None):
        """Load full HF-named tensors (in the order the trainer sent them); returns how many were loaded."""
        loaded = await asyncio.to_thread(self.engine.load_weights, named_tensors)
        self.global_steps = global_steps
        self.weight_updates += 1
        return loaded

    # -- control calls (RolloutReplica broadcasts these) ------------------------------------------------------
    async def wake_up(self, tags: list[str] | None = None) -> None:
        if self.asleep and self.device.type != "cpu":
            await asyncio.to_thread(self.engine.to, self.device)
        self.asleep = False

    async def sleep(self) -> None:
        if not self.asleep and self.device.type != "cpu":
            await asyncio.to_thread(self.engine.to, torch.device("cpu"))
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        self.asleep = True

    async def abort_all_requests(self, reject_request: bool = False) -> dict[str, Any]:
        self._reject = bool(reject_request)
        self._admission.clear()
        return {"aborted": 0}

    async def resume_generation(self) -> None:
        self._reject = False
        self._admission.set()

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None

    # -- introspection (tests, benchmarks) ---------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        return {
            "replica_rank": self.replica_rank,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "global_steps": self.global_steps,
            "weight_updates": self.weight_updates,
            "asleep": self.asleep,
            "engine": dict(self.engine.stats),
            "pid": os.getpid(),
        }
