"""The CPU engine harness runs verl's real actor update and its gradients are the textbook ones.

With verl's built-in ``vanilla`` policy loss and ``loss_agg_mode=token-mean`` (one token count over the
whole optimizer mini-batch, all ranks), the gradient of every optimizer step must equal a hand-written
plain-PyTorch reference: the clipped PPO surrogate with dual clip,
    l_t = max(-A_t r_t, -A_t clip(r_t, 1-eps, 1+eps)),  and for A_t < 0: min(l_t, -A_t c),
    r_t = exp(logp_t - old_logp_t),  loss = sum_{i in step, t} m_it l_it / sum_{i in step, t} m_it,
whatever the micro-batch size, dynamic batching, remove-padding mode or number of data-parallel ranks.
"""

from __future__ import annotations

import pytest
import torch
from engine_harness import EngineHarness, HarnessError, MiniBatchData, run_actor_update_detailed
from engine_reference import CLIP_C, EPS, assert_grads_equal, make_data, reference_grads

N = 2  # rollout.n
ROWS = 16
EOS = 1  # the tiny model's eos_token_id

BASE = [
    f"actor_rollout_ref.rollout.n={N}",
    "actor_rollout_ref.actor.policy_loss.loss_mode=vanilla",
    "actor_rollout_ref.actor.loss_agg_mode=token-mean",
    f"actor_rollout_ref.actor.clip_ratio={EPS}",
    f"actor_rollout_ref.actor.clip_ratio_low={EPS}",
    f"actor_rollout_ref.actor.clip_ratio_high={EPS}",
    f"actor_rollout_ref.actor.clip_ratio_c={CLIP_C}",
]
ONE_STEP = [f"actor_rollout_ref.actor.ppo_mini_batch_size={ROWS // N}"]  # one optimizer step over all rows
TWO_STEPS = [f"actor_rollout_ref.actor.ppo_mini_batch_size={ROWS // (2 * N)}"]


def mbs(k: int) -> list[str]:
    return [f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={k}"]


MAX_TOKENS = 24
DYNAMIC = [
    "actor_rollout_ref.actor.use_dynamic_bsz=true",
    f"actor_rollout_ref.actor.ppo_max_token_len_per_gpu={MAX_TOKENS}",
    f"actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu={MAX_TOKENS}",
]
SPLITS = {"mbs1": mbs(1), "mbs2": mbs(2), "mbs4": mbs(4), "mbs8": mbs(8), "dynamic_bsz": DYNAMIC}


def check_micro_batches(result, world_size: int, split: str, packed: bool) -> None:
    """The split really happened: K rows per micro-batch, or token-bounded dynamic micro-batches."""
    for step in result.micro_batches:
        rows_per_rank = ROWS // world_size // len(result.micro_batches)
        counts = [len(shapes) for shapes in step]
        if split == "dynamic_bsz":
            assert min(counts) >= 2 and len(set(counts)) == 1, counts  # verl keeps the count equal across ranks
            if packed:
                assert all(shape[1] <= MAX_TOKENS for shapes in step for shape in shapes), step
        else:
            k = int(split.removeprefix("mbs"))
            assert counts == [rows_per_rank // k] * world_size, counts
            if not packed:
                assert all(shape[0] == k for shapes in step for shape in shapes), step


@pytest.fixture(scope="module")
def batch() -> tuple[MiniBatchData, list[torch.Tensor]]:
    return make_data(seed=0)


CASES = [(ws, split, "true") for ws in (1, 2) for split in SPLITS] + [
    (ws, split, "false") for ws in (1, 2) for split in ("mbs2", "dynamic_bsz")
]


@pytest.mark.parametrize(("world_size", "split", "remove_padding"), CASES)
def test_vanilla_token_mean_matches_reference(
    engine_harness, batch, record_property, world_size, split, remove_padding
):
    data, _ = batch
    overrides = [*BASE, *ONE_STEP, *SPLITS[split], f"actor_rollout_ref.model.use_remove_padding={remove_padding}"]
    result = engine_harness(world_size).update(data, overrides)
    record_property("wall_s", result.wall_s)

    assert result.step_rows == [list(range(ROWS))]
    check_micro_batches(result, world_size, split, packed=remove_padding == "true")
    clipfrac = result.metrics["actor/pg_clipfrac"]
    assert max(clipfrac) > 0, "the data should exercise the clipped branch"
    assert_grads_equal(result.grads, reference_grads(data, [list(range(ROWS))]))
    assert result.plugins and all(result.plugins.values()), f"verl.plugins not loaded in the ranks: {result.plugins}"


@pytest.mark.parametrize("split", ["mbs2", "dynamic_bsz"])
@pytest.mark.parametrize("world_size", [1, 2])
def test_two_minibatches(engine_harness, batch, record_property, world_size, split):
    """Two optimizer steps. verl chunks the batch across ranks first, then each rank cuts its chunk into
    mini-batches, so with 2 ranks step k is {rank 0's k-th quarter} + {rank 1's k-th quarter}."""
    data, _ = batch
    result = engine_harness(world_size).update(data, [*BASE, *TWO_STEPS, *SPLITS[split]])
    record_property("wall_s", result.wall_s)

    q = ROWS // 4
    expected = {
        1: [list(range(0, 2 * q)), list(range(2 * q, 4 * q))],
        2: [list(range(0, q)) + list(range(2 * q, 3 * q)), list(range(q, 2 * q)) + list(range(3 * q, 4 * q))],
    }[world_size]
    assert result.step_rows == expected
    check_micro_batches(result, world_size, split, packed=True)
    assert_grads_equal(result.grads, reference_grads(data, expected))


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-sum-norm"])
def test_padding_and_empty_rows(engine_harness, record_property, agg):
    """verl's own padding rows (one EOS response token, mask 0) and a length-0 response add no loss.
    token-mean divides by the masked-in tokens of the whole step (both ranks); seq-mean-token-sum-norm
    divides by global_batch_size * loss_scale_factor, and global_batch_size (ppo_mini_batch_size * n)
    counts the padding and empty rows too."""
    data, _ = make_data(seed=1, rows=13)
    pad_prompt = [EOS] * 5
    rows = MiniBatchData(
        prompt_ids=[*data.prompt_ids, [7, 8, 9], pad_prompt, pad_prompt],
        response_ids=[*data.response_ids, [], [EOS], [EOS]],
        old_log_probs=[*data.old_log_probs, [], [0.0], [0.0]],
        advantages=[*data.advantages, [], [0.0], [0.0]],
        response_mask=[*(data.mask(i) for i in range(13)), [], [0], [0]],
    )
    scale = 16
    overrides = [*BASE, *ONE_STEP, *mbs(2), f"actor_rollout_ref.actor.loss_agg_mode={agg}"]
    overrides.append(f"actor_rollout_ref.actor.loss_scale_factor={scale}")
    result = engine_harness(2).update(rows, overrides)
    record_property("wall_s", result.wall_s)

    assert result.step_rows == [list(range(ROWS))]
    if agg == "token-mean":
        assert_grads_equal(result.grads, reference_grads(rows, [list(range(ROWS))]))
    else:
        per_row = lambda data, step: dict.fromkeys(step, 1.0 / (len(step) * scale))  # noqa: E731
        assert_grads_equal(result.grads, reference_grads(rows, [list(range(ROWS))], per_row))


def test_rank_failure_is_reported():
    data, _ = make_data(seed=2, rows=4)
    bad = [
        *BASE,
        "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        *mbs(2),
        "actor_rollout_ref.actor.policy_loss.loss_mode=no_such_loss",
    ]
    with pytest.raises(HarnessError, match="no_such_loss"):
        run_actor_update_detailed(data, bad, world_size=1)


def test_harness_rejects_inconsistent_rows():
    with pytest.raises(ValueError, match="row 0: old_log_probs has 1 entries but response_ids has 2"):
        MiniBatchData([[3, 4]], [[5, 6]], [[0.0]], [[0.0, 0.0]])
    with pytest.raises(ValueError, match="empty prompt"):
        MiniBatchData([[]], [[5]], [[0.0]], [[0.0]])
    with pytest.raises(ValueError, match="world_size"):
        EngineHarness(world_size=0)
