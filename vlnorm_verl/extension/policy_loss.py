"""The ``vl_norm`` policy loss: verl's clipped PPO surrogate, aggregated the VL Norm way.

The per-token surrogate is verl's own ``compute_policy_loss_vanilla`` (clip-higher, dual clip
``clip_ratio_c``, rollout importance weights); only the aggregation of the policy-gradient term
changes. The entropy and KL terms are aggregated by verl's ``ppo_loss`` with ``loss_agg_mode`` as
before, so a KL penalty keeps its scale. M = ``actor.loss_scale_factor`` (= data.max_response_length).

* scope ``batch``: the advantages already carry w_i = L_i^-alpha / mean_batch L^-alpha (folded in by
  the ``vl_norm`` estimator); the term is the value of verl's ``seq-mean-token-sum-norm``: sum_i S_i / (G * M)
  with G the rows of the optimizer mini-batch (``global_batch_info``), the authors' released formulation,
  computed as verl's ``token-sum`` times 1/(G M).
* scope ``minibatch``: loss = (1/M) sum_i L_i^-alpha S_i / D with D = sum_{j in mini-batch} L_j^-alpha
  over all micro-batches and data-parallel ranks. The engine hook (:mod:`vlnorm_verl.extension.engine_hook`)
  has scaled each row's advantages by c_i = L_i^-alpha / (M D) once per mini-batch (the clipped surrogate is
  positively homogeneous in A, so this scales its per-token losses); the loss is verl's ``token-sum`` of them
  (times dp_size, since FSDP averages gradients over ranks).

Both report, next to verl's metrics, the weights' statistics over the normalisation set
(``actor/vl_norm/*``: effective-sample-size fraction, min/max weight relative to the mean, mean
and coefficient of variation of the response lengths, and the number of non-empty responses the set holds —
over every rank's rows of the mini-batch for ``minibatch``, over the micro-batch for ``batch``).
"""

from __future__ import annotations

from typing import Any

import torch
from verl.trainer.ppo.core_algos import compute_policy_loss_vanilla

from vlnorm_verl.aggregation import WeightSums, response_lengths
from vlnorm_verl.extension.engine_hook import current_minibatch
from vlnorm_verl.extension.loss_config import vl_norm_loss_settings
from vlnorm_verl.extension.settings import VLNormConfigError

METRIC_PREFIX = "actor/vl_norm/"


def compute_policy_loss_vl_norm(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """verl PolicyLossFn for ``loss_mode: vl_norm`` (``loss_agg_mode`` is left to entropy and KL)."""
    if config is None:
        raise VLNormConfigError("the vl_norm policy loss needs verl's actor config")
    alpha, scope = vl_norm_loss_settings(config)
    max_length = config.loss_scale_factor
    if max_length is None:
        raise VLNormConfigError(
            "actor_rollout_ref.actor.loss_scale_factor is null; set it to ${data.max_response_length} for VL Norm"
        )
    if scope == "batch":
        # the advantages carry w_i already; the term is verl's seq-mean-token-sum-norm, sum_i S_i / (G * M) with G
        # the rows of the global mini-batch, taken as one token-sum times 1/(G M) (the same value, one reduction)
        lengths = response_lengths(response_mask).tolist()  # one host copy: the diagnostics are a few Python ops
        sums = WeightSums.from_values(lengths, alpha)  # diagnostics over this micro-batch
        # G: verl's global mini-batch rows; without them (one rank, no engine) the micro-batch's non-empty rows
        rows = (getattr(config, "global_batch_info", None) or {}).get("global_batch_size") or sums.count
        loss_scale = 1.0 / (max(int(rows), 1) * float(max_length))
    else:
        sums = current_minibatch()  # diagnostics over the whole mini-batch (all ranks)
        if sums is None:
            raise VLNormConfigError(
                "VL Norm scope=minibatch needs verl's FSDP engine (actor strategy fsdp/fsdp2, verl 0.9.x) so the "
                "mini-batch sum of L^-alpha is known; this engine did not provide it. Use algorithm.vl_norm.scope=batch"
            )
        # the engine hook has scaled row i's advantages by c_i = L_i^-alpha / (M D) over the mini-batch
        loss_scale = None
    pg_loss, metrics = compute_policy_loss_vanilla(
        old_log_prob=old_log_prob,
        log_prob=log_prob,
        advantages=advantages,
        response_mask=response_mask,
        loss_agg_mode="token-sum",
        config=config,
        rollout_is_weights=rollout_is_weights,
    )
    if loss_scale is not None:
        pg_loss = pg_loss * loss_scale
    metrics.update(sums.stats().as_metrics(METRIC_PREFIX))
    return pg_loss, metrics
