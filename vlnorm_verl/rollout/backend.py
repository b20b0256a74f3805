"""Registration of the ``hf`` rollout backend with verl (``actor_rollout_ref.rollout.name=hf``).

Two registries, both consulted by name: the trainer side builds replicas through the public
``verl.workers.rollout.replica.RolloutReplicaRegistry``; each trainer rank builds its worker-side adapter from
``verl.workers.rollout.base._ROLLOUT_REGISTRY[(name, "async")]`` (a module-level dict of dotted class paths;
verl has no register function for it). :func:`register` fills both, idempotently; the plugin entry point calls it
in every verl process. The replica loader imports lazily, like verl's own loaders.
"""

from __future__ import annotations

NAME = "hf"
ADAPTER_PATH = "vlnorm_verl.rollout.hf_adapter.HFServerAdapter"


def _load_replica():
    from vlnorm_verl.rollout.hf_replica import HFReplica

    return HFReplica


def register() -> None:
    from verl.workers.rollout import base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    RolloutReplicaRegistry.register(NAME, _load_replica)
    base._ROLLOUT_REGISTRY[(NAME, "async")] = ADAPTER_PATH
