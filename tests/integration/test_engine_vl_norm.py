"""VL Norm through verl's real FSDP2 engine and ppo_loss on CPU: the gradient of every optimizer step equals
a plain-PyTorch statement of the paper's formula, whatever the micro-batch size, dynamic batching, or number
of data-parallel ranks, in both scopes.

batch scope (the authors' released formulation): A_i' = A_i * L_i^-a / mean_{batch} L^-a (GRPO A_i), and each
    step's loss is sum_{i in step} S_i(A') / (rows * M);
minibatch scope (the paper, per optimizer step): loss = (1/M) sum_{i in step} L_i^-a S_i(A) / sum_{j in step} L_j^-a.

The rollout batch (16 responses, 8 prompts x n=2) is updated in two optimizer steps, so the minibatch
scope's per-step normalisation differs from the batch scope's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from engine_harness import MiniBatchData
from engine_reference import CLIP_C, EPS, assert_grads_equal, make_data, reference_grads

N = 2
ROWS = 16
M = 16  # data.max_response_length, the constant of VL Norm (responses here are 1..11 tokens)
ALPHA = {"batch": 1.0, "minibatch": 0.75}
MAX_TOKENS = 24

BASE = [
    f"actor_rollout_ref.rollout.n={N}",
    f"data.max_response_length={M}",
    f"actor_rollout_ref.actor.clip_ratio={EPS}",
    f"actor_rollout_ref.actor.clip_ratio_low={EPS}",
    f"actor_rollout_ref.actor.clip_ratio_high={EPS}",
    f"actor_rollout_ref.actor.clip_ratio_c={CLIP_C}",
    "+aggregation=vl_norm",
]
SPLITS = {
    **{f"mbs{k}": [f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={k}"] for k in (1, 2, 4, 8)},
    "dynamic_bsz": [
        "actor_rollout_ref.actor.use_dynamic_bsz=true",
        f"actor_rollout_ref.actor.ppo_max_token_len_per_gpu={MAX_TOKENS}",
        f"actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu={MAX_TOKENS}",
    ],
}


def scope_overrides(scope: str, steps: int = 2) -> list[str]:
    return [
        *BASE,
        f"actor_rollout_ref.actor.ppo_mini_batch_size={ROWS // (steps * N)}",
        f"algorithm.vl_norm.scope={scope}",
        f"algorithm.vl_norm.alpha={ALPHA[scope]}",
    ]


def expected_steps(world_size: int, steps: int = 2) -> list[list[int]]:
    """verl chunks the batch across ranks, then each rank cuts its chunk into the step's mini-batches."""
    q = ROWS // 4
    if steps == 1:
        return [list(range(ROWS))]
    if world_size == 1:
        return [list(range(0, 2 * q)), list(range(2 * q, 4 * q))]
    return [list(range(0, q)) + list(range(2 * q, 3 * q)), list(range(q, 2 * q)) + list(range(3 * q, 4 * q))]


def grpo_by_hand(rewards: list[float]) -> list[float]:
    out = []
    for start in range(0, len(rewards), N):
        group = torch.tensor(rewards[start : start + N])
        out += ((group - group.mean()) / (group.std() + 1e-6)).tolist()
    return out


class Batch:
    """A rollout batch with rewards, the estimator's advantages and hand-written reference inputs."""

    def __init__(self, scope: str) -> None:
        base, _ = make_data(seed=3, rows=ROWS)
        self.lengths = [len(r) for r in base.response_ids]
        g = torch.Generator().manual_seed(7)
        self.rewards = [float(v) for v in torch.randint(0, 2, (ROWS,), generator=g)]
        self.rewards[0], self.rewards[1] = 1.0, 0.0  # at least one group with a signal
        alpha = ALPHA[scope]
        adv_hand = grpo_by_hand(self.rewards)
        if scope == "batch":
            u = [n**-alpha for n in self.lengths]
            adv_hand = [a * ui / (sum(u) / len(u)) for a, ui in zip(adv_hand, u, strict=True)]
        self.reference = self._with_advantages(base, adv_hand)
        self.engine_input = self._with_advantages(base, self._estimator_advantages(scope))

    def _estimator_advantages(self, scope: str) -> list[float]:
        import verl  # noqa: F401
        from verl.trainer.ppo.core_algos import get_adv_estimator_fn

        from vlnorm_verl.launch.compose import compose_config

        cfg = compose_config("ppo_trainer", scope_overrides(scope))
        mask = torch.zeros(ROWS, M)
        rewards = torch.zeros(ROWS, M)
        for i, n in enumerate(self.lengths):
            mask[i, :n] = 1
            rewards[i, n - 1] = self.rewards[i]
        uids = np.array([f"p{i // N}" for i in range(ROWS)], dtype=object)
        adv, _ = get_adv_estimator_fn("vl_norm")(
            token_level_rewards=rewards, response_mask=mask, config=cfg.algorithm, index=uids
        )
        return adv[:, 0].tolist()

    @staticmethod
    def _with_advantages(base: MiniBatchData, per_row: list[float]) -> MiniBatchData:
        adv = [[a] * len(r) for a, r in zip(per_row, base.response_ids, strict=True)]
        return MiniBatchData(base.prompt_ids, base.response_ids, base.old_log_probs, adv)


def weights_for(scope: str):
    alpha = ALPHA[scope]

    def batch_scope(data: MiniBatchData, rows: list[int]) -> dict[int, float]:
        return dict.fromkeys(rows, 1.0 / (len(rows) * M))

    def minibatch_scope(data: MiniBatchData, rows: list[int]) -> dict[int, float]:
        u = {i: len(data.response_ids[i]) ** -alpha for i in rows}
        return {i: u[i] / (M * sum(u.values())) for i in rows}

    return batch_scope if scope == "batch" else minibatch_scope


@pytest.fixture(scope="module", params=["batch", "minibatch"])
def batch(request) -> tuple[str, Batch]:
    return request.param, Batch(request.param)


# two optimizer steps everywhere except micro-batch 8, which needs 8 rows per rank and step
CASES = [(ws, split, 1 if split == "mbs8" else 2) for ws in (1, 2) for split in SPLITS]


@pytest.mark.parametrize(("world_size", "split", "num_steps"), CASES)
def test_gradient_equals_the_papers_formula(
    engine_harness, batch, record_property, world_size, split, num_steps
) -> None:
    scope, data = batch
    # the estimator's advantages are the hand-written ones
    np.testing.assert_allclose(
        [row[0] for row in data.engine_input.advantages], [row[0] for row in data.reference.advantages], rtol=1e-5
    )
    overrides = [*scope_overrides(scope, num_steps), *SPLITS[split]]
    result = engine_harness(world_size).update(data.engine_input, overrides)
    record_property("wall_s", result.wall_s)

    steps = expected_steps(world_size, num_steps)
    assert result.step_rows == steps
    assert result.plugins and all(result.plugins.values())
    assert_grads_equal(result.grads, reference_grads(data.reference, steps, weights_for(scope)))

    # minibatch scope: the logged diagnostics describe each step's mini-batch (all ranks, all micro-batches, from
    # the engine hook); batch scope installs no hook, so they describe each micro-batch of each rank (verl chunks a
    # step's rows across ranks in order, and averages the metric over every rank's micro-batches)
    logged = np.mean(result.metrics["actor/vl_norm/ess_fraction"])
    if scope == "batch" and split == "dynamic_bsz":  # micro-batches cut by token budget: no fixed partition
        assert 0.0 < logged <= 1.0
        return
    expected_ess = []
    for rows in steps:
        sets = [rows]
        if scope == "batch":
            share, size = len(rows) // world_size, int(split.removeprefix("mbs"))
            ranks = [rows[r * share : (r + 1) * share] for r in range(world_size)]
            sets = [part[i : i + size] for part in ranks for i in range(0, share, size)]
        for members in sets:
            u = np.array([data.lengths[i] ** -ALPHA[scope] for i in members])
            expected_ess.append(u.sum() ** 2 / (len(u) * (u * u).sum()))
    np.testing.assert_allclose(logged, np.mean(expected_ess), rtol=1e-6)


def test_minibatch_scope_differs_from_batch_scope(engine_harness) -> None:
    """The two scopes are different estimators on this batch (so the tests above can tell them apart)."""
    batch_grads = reference_grads(Batch("batch").reference, expected_steps(1), weights_for("batch"))
    mini = Batch("minibatch").reference
    mini_grads = reference_grads(mini, expected_steps(1), weights_for("minibatch"))
    name = next(iter(batch_grads[0]))
    assert not torch.allclose(batch_grads[0][name], mini_grads[0][name], rtol=1e-3)
