"""The ``hf`` rollout replica: what verl's ``LLMServerManager`` builds for ``actor_rollout_ref.rollout.name=hf``.

Registered with verl's public ``RolloutReplicaRegistry`` by :func:`vlnorm_verl.cpu.rollout.register`. verl's sync
trainer runs rollout in hybrid mode only (``init_hybrid``): with tensor parallel 1 there is one replica per
trainer rank. :meth:`HFReplica.launch_servers` starts one :class:`~vlnorm_verl.cpu.rollout.hf_server.HFRolloutServer`
actor for it, on the rank's node and, when the rank holds a GPU, on that GPU (``CUDA_VISIBLE_DEVICES`` of the
rank, Ray told not to override it). The server takes no Ray CPU resource: it runs while the trainer ranks wait
for the rollout. ``server_address`` is a routing key only (``hf://<actor name>``): no HTTP server is started.
Colocated and standalone modes are refused (verl's ``init_standalone`` asks Ray for GPUs).
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from verl.workers.rollout.replica import RolloutMode, RolloutReplica

from vlnorm_verl.cpu.rollout.hf_server import HFRolloutServer

SERVER_NAME_PREFIX = "hf_"


def server_name(replica_rank: int, name_suffix: str = "") -> str:
    """The Ray actor name of a replica's server (the adapter in each trainer rank looks it up by this name)."""
    return f"{SERVER_NAME_PREFIX}server_{replica_rank}{name_suffix}"


def _placement(_worker: Any) -> tuple[str, list[str]]:
    context = ray.get_runtime_context()
    return context.get_node_id(), [str(i) for i in context.get_accelerator_ids().get("GPU", [])]


class HFReplica(RolloutReplica):
    """A rollout replica served by one :class:`HFRolloutServer` (tensor parallel 1)."""

    async def launch_servers(self) -> None:
        if self.rollout_mode != RolloutMode.HYBRID:
            raise NotImplementedError(
                f"the hf rollout runs colocated with the trainer only (hybrid mode), not {self.rollout_mode}; "
                "use verl's sync trainer (trainer.use_v1 with the default sync mode)"
            )
        if self.world_size != 1 or len(self.workers) != 1:
            raise NotImplementedError(
                "the hf rollout has no tensor/data/pipeline parallelism: set "
                "actor_rollout_ref.rollout.tensor_model_parallel_size=1 (one replica per trainer rank)"
            )
        node_id, gpu_ids = (await asyncio.gather(*[w.__ray_call__.remote(_placement) for w in self.workers]))[0]
        env_vars: dict[str, str] = {}
        if gpu_ids:
            from verl.plugin.platform import get_platform

            env_vars = {var: "1" for var in get_platform().ray_noset_envvars()}
            env_vars["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
        suffix = self.name_suffix
        role = "reward_" if self.is_reward_model else "teacher_" if self.is_teacher_model else ""
        name = (
            server_name(self.replica_rank, f"{suffix}")
            if not role
            else f"{SERVER_NAME_PREFIX}server_{role}{self.replica_rank}{suffix}"
        )
        server = (
            ray.remote(HFRolloutServer)
            .options(
                name=name,
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
                runtime_env={"env_vars": env_vars} if env_vars else None,
                max_concurrency=self.max_concurrency,
            )
            .remote(config=self.config, model_config=self.model_config, replica_rank=self.replica_rank)
        )
        await server.info.remote()  # surfaces a failed start-up here, with the server's own error
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"hf://{name}"
