"""verl's metric names for the quickstart loop, computed by verl's own metric functions where verl has them.

- training data: ``verl.trainer.ppo.metric_utils.compute_data_metrics`` (``critic/score/mean``,
  ``critic/advantages/*``, ``response_length/mean``, ``response_length/clip_ratio``, ...);
- actor update: the worker's metrics renamed ``actor/*`` and reduced with ``reduce_metrics`` exactly as the v1
  trainer's ``_update_actor`` does (``actor/pg_loss``, ``actor/grad_norm``, ``actor/vl_norm/*``, ...);
- ``actor/entropy``: verl's ``agg_loss`` of the old policy's entropy with the actor's ``loss_agg_mode``, as the
  v1 trainer's ``_compute_old_log_prob``;
- validation: ``process_validation_metrics`` and the v1 trainer's naming rule,
  ``val-core/<data_source>/<acc|reward>/<mean|maj|best>@<N max>`` and ``val-aux/...`` for the rest.

Quickstart-only diagnostics live under ``quickstart/``.
"""

from __future__ import annotations

from typing import Any


def actor_metrics(raw: dict[str, Any]) -> dict[str, float]:
    from verl.utils.metric import reduce_metrics
    from verl.utils.py_functional import rename_dict

    out = rename_dict(raw, "actor/")
    if "actor/mfu" in out:
        out["perf/mfu/actor"] = out.pop("actor/mfu")
    return {k: float(v) for k, v in reduce_metrics(out).items()}


def validation_metrics(data_sources: list[str], uids: list[str], infos: dict[str, list[float]]) -> dict[str, float]:
    from verl.trainer.ppo.metric_utils import process_validation_metrics

    result: dict[str, float] = {}
    for source, var2metric in process_validation_metrics(data_sources, uids, infos).items():
        core_var = "acc" if "acc" in var2metric else "reward"
        for var, metric2val in var2metric.items():
            n_max = max(int(name.split("@")[-1].split("/")[0]) for name in metric2val)
            for name, val in metric2val.items():
                core = var == core_var and name.startswith(("mean", "maj", "best")) and f"@{n_max}" in name
                result[f"{'val-core' if core else 'val-aux'}/{source}/{var}/{name}"] = float(val)
    return result
