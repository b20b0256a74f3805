"""verl's actor worker in this process: build it, switch its loss, read its weights.

:func:`build_actor` is what verl's v1 TaskRunner does for the actor role, minus Ray: the config is resolved,
``ActorRolloutRefWorker(config.actor_rollout_ref, role="actor")`` is constructed and ``init_model`` builds
the FSDP2 engine (``FSDPEngineWithLMHead``), its optimizer and ``functools.partial(ppo_loss, config=actor_config)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import torch


def build_actor(cfg: Any, model_path: str) -> Any:
    """verl's ``ActorRolloutRefWorker`` (role ``actor``) for ``cfg`` with the model at ``model_path``."""
    from omegaconf import OmegaConf, open_dict
    from verl.workers.engine_workers import ActorRolloutRefWorker

    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.actor_rollout_ref.model.path = str(model_path)
    OmegaConf.resolve(cfg)
    worker = ActorRolloutRefWorker(config=cfg.actor_rollout_ref, role="actor")
    worker.init_model()
    return worker


def use_sft_loss(worker: Any) -> None:
    """Make the worker's ``update_actor`` train with verl's ``sft_loss`` (as verl's SFT trainer binds it)."""
    from verl.workers.utils.losses import sft_loss

    worker.set_loss_fn(partial(sft_loss, config=None))


def engine_params(worker: Any) -> Iterator[tuple[str, torch.Tensor]]:
    """The engine's full (un-sharded) parameters under Hugging Face names (verl's rollout weight-sync export)."""
    params, _ = worker.actor.engine.get_per_tensor_param()
    for name, tensor in params:
        yield name, tensor.detach()


def metrics_of(output: Any) -> dict[str, Any]:
    """The ``metrics`` dict of a worker reply (empty if none)."""
    if output is None or "metrics" not in output.keys():
        return {}
    return dict(output["metrics"])
