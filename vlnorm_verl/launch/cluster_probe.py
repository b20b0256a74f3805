"""Dry-run check of a Ray cluster: does every node see the plugin and the run's environment?

``vlnorm-verl train RECIPE --dry-run --probe-cluster`` connects to the cluster the real run would use
(``$RAY_ADDRESS``, or the Ray job's cluster), with the runtime env verl's ``ray.init`` would get, and
runs one zero-CPU task pinned to each alive node. Each task imports verl only (so the plugin is loaded
the way verl loads it, through the ``verl.plugins`` entry point), then reports whether the ``vl_norm``
estimator and policy loss and the ``overlong_filter`` estimator are in verl's registries, and which
tracking variables it sees. One line per node goes to stderr::

    [vlnorm-verl] node 3f2a... ip=10.0.0.2 resources=[node2] plugin=registered WANDB_RUN_GROUP=... ...

The probe fails (non-zero exit) when a node lacks the plugin or the cluster cannot be reached.
GPUs are counted and compared with ``trainer.nnodes x trainer.n_gpus_per_node``; a shortfall is a
warning only, so the probe also runs on a CPU-only test cluster.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from typing import Any

WATCHED = (
    "WANDB_RUN_GROUP",
    "WANDB_TAGS",
    "WANDB_MODE",
    "WANDB_DIR",
    "WANDB_API_KEY",
    "VERL_FILE_LOGGER_ROOT",
    "VLNORM_DATA_DIR",
    "VLNORM_RUNS_DIR",
)
STANDARD_RESOURCES = ("CPU", "GPU", "memory", "object_store_memory", "accelerator_type")


def node_report() -> dict[str, Any]:
    """What this process sees (runs inside a Ray worker)."""
    import verl  # noqa: F401  (loads verl.plugins entry points, as in every verl worker)
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY

    registered = {
        "vl_norm estimator": "vl_norm" in ADV_ESTIMATOR_REGISTRY,
        "vl_norm policy loss": "vl_norm" in POLICY_LOSS_REGISTRY,
        "overlong_filter estimator": "overlong_filter" in ADV_ESTIMATOR_REGISTRY,
    }
    env = {k: os.environ.get(k) for k in WATCHED}
    if env.get("WANDB_API_KEY"):
        env["WANDB_API_KEY"] = "<set>"
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "host": socket.gethostname(),
        "registered": registered,
        "env": env,
    }


def _custom_resources(resources: Mapping[str, float]) -> list[str]:
    return sorted(k for k in resources if k not in STANDARD_RESOURCES and not k.startswith("node:"))


def format_report(report: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    ok = all(report["registered"].values())
    plugin = "registered" if ok else "MISSING " + ",".join(k for k, v in report["registered"].items() if not v)
    env = " ".join(f"{k}={v}" for k, v in report["env"].items() if v is not None)
    resources = ",".join(_custom_resources(node.get("Resources", {})))
    return (
        f"[vlnorm-verl] node {report['node_id']} ip={node.get('NodeManagerAddress')} host={report['host']} "
        f"resources=[{resources}] plugin={plugin} {env}"
    )


def probe(runtime_env: Mapping[str, Any] | None, gpus_wanted: int, timeout_s: float = 300.0) -> int:
    """Run the per-node probe; returns 0 when every alive node has the plugin registered."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    address = os.environ.get("RAY_ADDRESS") or "auto"
    try:
        ray.init(address=address, runtime_env=dict(runtime_env or {}), logging_level="WARNING", log_to_driver=False)
    except Exception as exc:  # noqa: BLE001 - any connection failure is reported the same way
        print(f"[vlnorm-verl] cannot reach the Ray cluster at {address!r}: {exc}", file=sys.stderr)
        return 1
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        remote = ray.remote(num_cpus=0)(node_report)
        refs = [
            remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
            for n in nodes
        ]
        reports = ray.get(refs, timeout=timeout_s)
        failed = 0
        for node, report in zip(nodes, reports, strict=True):
            print(format_report(report, node), file=sys.stderr)
            failed += not all(report["registered"].values())
        gpus = int(sum(n.get("Resources", {}).get("GPU", 0) for n in nodes))
        print(
            f"[vlnorm-verl] cluster: {len(nodes)} alive node(s), {gpus} GPU(s); the recipe asks for {gpus_wanted}",
            file=sys.stderr,
        )
        if gpus < gpus_wanted:
            print(
                f"[vlnorm-verl] warning: the cluster has {gpus} GPU(s) < {gpus_wanted}; the real run would wait "
                "for them (set trainer.nnodes / trainer.n_gpus_per_node to what the cluster has)",
                file=sys.stderr,
            )
        if failed:
            print(
                f"[vlnorm-verl] {failed} node(s) lack the vlnorm_verl plugin: install vlnorm-verl in every node's "
                "Python environment (or set VLNORM_RAY_PIP for scripts/ray_submit.sh)",
                file=sys.stderr,
            )
            return 1
        return 0
    finally:
        ray.shutdown()
