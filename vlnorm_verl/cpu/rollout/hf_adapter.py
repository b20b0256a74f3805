"""The worker side of the ``hf`` rollout: verl's ``BaseRollout`` in each trainer rank, talking to its server.

verl builds it in ``ActorRolloutRefWorker.init_model`` from ``_ROLLOUT_REGISTRY[("hf", "async")]`` (registered
by :func:`vlnorm_verl.cpu.rollout.register`). The sync trainer's weight sync goes trainer
``CheckpointEngineManager.update_weights`` (backend ``naive``) -> ``ActorRolloutRefWorker.update_weights`` ->
``engine.get_per_tensor_param()`` -> :meth:`HFServerAdapter.update_weights` -> the rank's
:class:`~vlnorm_verl.cpu.rollout.hf_server.HFRolloutServer`, after every step and once before the first rollout.

Contract: ``update_weights`` drains the weight generator on every rank (each item is produced by
``DTensor.full_tensor()``, a collective), copies the tensors to host memory and sends them in one call through
Ray's object store. Only ``named_tensors`` is supported, and no LoRA adapters (``peft_config``). ``resume`` /
``release`` wake and sleep the server (a device move on a GPU, nothing on the CPU).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

import ray
import torch
from verl.workers.rollout.base import BaseRollout

from vlnorm_verl.cpu.rollout.hf_replica import server_name


class HFServerAdapter(BaseRollout):
    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1, **kwargs: Any):
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", "0"))
        per_replica = self.config.tensor_model_parallel_size * self.config.data_parallel_size
        per_replica *= self.config.pipeline_model_parallel_size
        if per_replica != 1:
            raise NotImplementedError("the hf rollout needs tensor/data/pipeline parallel size 1 (one server per rank)")
        self.replica_rank = rank if replica_rank == -1 else replica_rank
        self._server: Any = None
        self.last_push: dict[str, float] = {}

    @property
    def server(self) -> Any:
        if self._server is None:  # the replica starts the server after this adapter exists
            self._server = ray.get_actor(server_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]) -> None:
        await self.server.wake_up.remote(tags=tags)

    async def release(self) -> None:
        await self.server.sleep.remote()

    @torch.no_grad()
    async def update_weights(
        self,
        weights: Iterable[tuple[str, torch.Tensor]],
        wire_format: str = "named_tensors",
        global_steps: int | None = None,
        **kwargs: Any,
    ) -> None:
        if wire_format != "named_tensors":
            raise NotImplementedError(f"the hf rollout takes wire_format='named_tensors' only, not {wire_format!r}")
        if kwargs.get("peft_config") is not None:
            raise NotImplementedError("the hf rollout does not load LoRA adapters; set model.lora.merge=true")
        start = time.perf_counter()
        named = [(name, tensor.detach().cpu().contiguous()) for name, tensor in weights]
        collected = time.perf_counter()
        loaded = await self.server.update_weights.remote(named, global_steps)
        self.last_push = {
            "tensors": float(loaded),
            "collect_s": collected - start,
            "push_s": time.perf_counter() - collected,
        }
