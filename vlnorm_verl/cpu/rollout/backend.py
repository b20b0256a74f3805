"""Registration of the ``hf`` rollout backend with verl (``actor_rollout_ref.rollout.name=hf``).

Two registries, both consulted by name: the trainer side builds replicas through the public
``verl.workers.rollout.replica.RolloutReplicaRegistry``; each trainer rank builds its worker-side adapter from
``verl.workers.rollout.base._ROLLOUT_REGISTRY[(name, "async")]`` (a private module-level dict of dotted class
paths, read by ``get_rollout_class``; verl has no register function for it).

Only processes that can use the backend touch verl: :func:`register_if_wanted` (called by the plugin entry point
in every verl process) registers when the process selects the CPU platform (``VERL_PLATFORM=cpu``, what
``cluster=cpu`` exports) or when ``VLNORM_HF_ROLLOUT=1`` (exported by the start-up check of a run with
``rollout.name=hf``); a GPU run with vLLM never touches the private registry. Writing it is guarded by verl's
version and ``get_rollout_class``'s signature (:func:`check_registry`): a moved registry raises
:class:`~vlnorm_verl.extension.verl_compat.UnsupportedVerlError` naming the verl version - at start-up through the run
checks; in the plugin import it is logged, so the plugin's other registrations still load.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from vlnorm_verl.extension.verl_compat import (
    INSTALL_SUPPORTED_VERL,
    UnsupportedVerlError,
    check_signature,
    check_verl_version,
    installed_verl_version,
)

logger = logging.getLogger(__name__)

NAME = "hf"
MODE = "async"
ADAPTER_PATH = "vlnorm_verl.cpu.rollout.hf_adapter.HFServerAdapter"
ENABLE_ENV = "VLNORM_HF_ROLLOUT"
REGISTRY = "verl.workers.rollout.base._ROLLOUT_REGISTRY"
GET_ROLLOUT_CLASS_PARAMS = ("rollout_name", "mode")
FIX = f"{INSTALL_SUPPORTED_VERL}, or use a rollout verl ships (actor_rollout_ref.rollout.name=vllm)"


def is_wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process can use the backend: a CPU-platform process, or one whose run selected it."""
    env = os.environ if environ is None else environ
    return str(env.get("VERL_PLATFORM", "")).strip().lower() == "cpu" or str(env.get(ENABLE_ENV, "")).strip() == "1"


def is_selected(cfg: Any) -> bool:
    """Whether a composed trainer config uses this backend (``actor_rollout_ref.rollout.name=hf``)."""
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, "actor_rollout_ref.rollout.name", default=None) == NAME


def _load_replica():
    from vlnorm_verl.cpu.rollout.hf_replica import HFReplica

    return HFReplica


def check_registry(version: str | None = None, base: Any = None) -> dict:
    """verl's private rollout registry, after checking verl's version and the registry's shape and reader."""
    what = f"the hf rollout backend (it writes verl's private {REGISTRY})"
    check_verl_version(what, FIX, version=version)
    if base is None:
        from verl.workers.rollout import base
    registry = getattr(base, "_ROLLOUT_REGISTRY", None)
    if not isinstance(registry, dict) or not all(isinstance(key, tuple) and len(key) == 2 for key in registry):
        raise UnsupportedVerlError(
            f"verl {installed_verl_version()} has no {REGISTRY} dict keyed by (name, mode): verl moved the registry "
            f"{what}; {FIX}"
        )
    check_signature(
        getattr(base, "get_rollout_class", None),
        GET_ROLLOUT_CLASS_PARAMS,
        "verl.workers.rollout.base.get_rollout_class",
        f"it reads {REGISTRY}, which {what}; {FIX}",
    )
    return registry


def register() -> None:
    """Register the backend in both registries (idempotent); raises UnsupportedVerlError if verl moved them."""
    registry = check_registry()
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    RolloutReplicaRegistry.register(NAME, _load_replica)
    registry[(NAME, MODE)] = ADAPTER_PATH


def register_if_wanted() -> bool:
    """The plugin's call: register where the backend can be used; never raise (see the module docstring)."""
    if not is_wanted():
        return False
    try:
        register()
    except UnsupportedVerlError as exc:
        logger.error("vlnorm_verl: the hf rollout backend is not registered: %s", exc)
        return False
    return True
