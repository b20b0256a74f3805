"""Test-only (loaded in verl's workers through ``actor_rollout_ref.model.external_lib``): the ``hf`` rollout
keeps the weights of its first push. Later pushes are drained (every rank must still run the collectives that
produce the tensors) but not sent, so the rollout samples from stale weights: the negative control of the
weight-sync check (``training/rollout_probs_diff_max`` must then grow)."""

from __future__ import annotations

from typing import Any

from vlnorm_verl.cpu.rollout.hf_adapter import HFServerAdapter

_push = HFServerAdapter.update_weights


async def _push_first_only(self: HFServerAdapter, weights: Any, *args: Any, **kwargs: Any) -> None:
    if getattr(self, "_frozen_after_first_push", False):
        for _ in weights:
            pass
        return
    self._frozen_after_first_push = True
    await _push(self, weights, *args, **kwargs)


HFServerAdapter.update_weights = _push_first_only
