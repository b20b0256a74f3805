"""The vl_norm estimator and policy loss through verl's own registries and ppo_loss (CPU, one process).

References are written out here by hand from the paper and the authors' released formulation:
GRPO group normalisation, w_i = L_i^-alpha / mean_j L_j^-alpha folded into the advantages, the
clipped surrogate (clip-higher, dual clip), and (sum of masked losses) / (rows * M) per update.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from ppo_inputs import PpoInputs, actor_config, ppo_loss_call, random_inputs

M = 16
VL_NORM = ["+aggregation=vl_norm"]


def grpo_reference(rewards: torch.Tensor, uids: np.ndarray, std_norm: bool = True) -> torch.Tensor:
    out = torch.zeros_like(rewards)
    for uid in set(uids.tolist()):
        idx = torch.tensor([i for i, u in enumerate(uids.tolist()) if u == uid])
        r = rewards[idx]
        centred = r - r.mean()
        out[idx] = centred / (r.std() + 1e-6) if std_norm else centred
    return out


def surrogate_reference(log_prob, old, adv, clip_low=0.2, clip_high=0.2, clip_c=3.0) -> torch.Tensor:
    ratio = torch.exp(log_prob - old)
    pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - clip_low, 1 + clip_high))
    dual = torch.minimum(pg, -adv * clip_c)
    return torch.where(adv < 0, dual, pg)


def make_batch(lengths: list[int], group: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    inputs = random_inputs(lengths, seed=seed, width=M)
    rewards = torch.randint(0, 2, (len(lengths),), generator=g).float()
    uids = np.array([f"p{i // group}" for i in range(len(lengths))], dtype=object)
    token_rewards = torch.zeros(len(lengths), M)
    for i, n in enumerate(lengths):
        token_rewards[i, max(n - 1, 0)] = rewards[i]
    return inputs, rewards, uids, token_rewards


def vl_norm_advantages(cfg, inputs: PpoInputs, token_rewards, uids) -> torch.Tensor:
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    adv, _ = get_adv_estimator_fn("vl_norm")(
        token_level_rewards=token_rewards, response_mask=inputs.response_mask, config=cfg.algorithm, index=uids
    )
    return adv


def subset(inputs: PpoInputs, rows: list[int]) -> PpoInputs:
    leaf = inputs.log_prob.detach()[rows].clone().requires_grad_(True)
    ent = inputs.entropy.detach()[rows].clone().requires_grad_(True)
    return PpoInputs(
        leaf,
        ent,
        inputs.old_log_prob[rows],
        inputs.ref_log_prob[rows],
        inputs.advantages[rows],
        inputs.response_mask[rows],
        [inputs.lengths[i] for i in rows],
    )


def rows_view(inputs: PpoInputs, rows: list[int]) -> PpoInputs:
    """Rows of `inputs` whose log-probs are views of the same leaf, so gradients accumulate into it."""
    return PpoInputs(
        inputs.log_prob[rows],
        inputs.entropy[rows],
        inputs.old_log_prob[rows],
        inputs.ref_log_prob[rows],
        inputs.advantages[rows],
        inputs.response_mask[rows],
        [inputs.lengths[i] for i in rows],
    )


@pytest.mark.parametrize("alpha", [1.0, 0.75, 0.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_scope_equals_the_authors_formulation(alpha: float, seed: int) -> None:
    """Estimator + loss over a rollout batch of 4 prompts x 4 responses, updated in 2 mini-batches of 8 rows
    each split into micro-batches of 2 and 4: every update's loss and gradient equal the re-statement."""
    g = torch.Generator().manual_seed(100 + seed)
    lengths = torch.randint(1, M + 1, (16,), generator=g).tolist()
    inputs, rewards, uids, token_rewards = make_batch(lengths, group=4, seed=seed)
    config, cfg = actor_config(VL_NORM + [f"algorithm.vl_norm.alpha={alpha}"])
    adv = vl_norm_advantages(cfg, inputs, token_rewards, uids)

    # independent re-statement of the authors' code
    L = torch.tensor(lengths, dtype=torch.float64)
    w = L**-alpha / (L**-alpha).mean()
    adv_ref = (grpo_reference(rewards, uids).double() * w).float().unsqueeze(-1) * inputs.response_mask
    assert torch.allclose(adv, adv_ref, rtol=1e-5, atol=1e-6)

    for mini in ([0, 2, 4, 6, 8, 10, 12, 14], [1, 3, 5, 7, 9, 11, 13, 15]):
        ref_in = subset(inputs, mini)
        ref_pg = surrogate_reference(ref_in.log_prob, ref_in.old_log_prob, adv_ref[mini])
        ref_loss = (ref_pg * ref_in.response_mask).sum() / (len(mini) * M)
        ref_loss.backward()
        for micro in (2, 4):
            mb_in = subset(inputs, mini)  # a fresh leaf; micro-batches are views of it
            total = 0.0
            for start in range(0, len(mini), micro):
                rows = list(range(start, start + micro))
                loss, metrics = ppo_loss_call(
                    config, rows_view(mb_in, rows), advantages=adv[mini][rows], global_batch_size=len(mini)
                )
                loss.backward()
                total += float(loss)
            assert total == pytest.approx(float(ref_loss), rel=1e-5, abs=1e-8)
            assert torch.allclose(mb_in.log_prob.grad, ref_in.log_prob.grad, rtol=1e-5, atol=1e-8)
            assert "actor/vl_norm/ess_fraction" in metrics


def test_minibatch_scope_loss_with_the_minibatch_sum() -> None:
    """With the mini-batch the engine hook prepares (advantages scaled once per mini-batch, its statistics in
    context), the micro-batch losses add up to (1/M) sum_i L_i^-alpha S_i / sum_j L_j^-alpha over the mini-batch."""
    from tensordict import TensorDict
    from verl.workers.utils.losses import ppo_loss

    from vlnorm_verl.extension import engine_hook

    alpha = 0.75
    lengths = [3, 16, 7, 1, 12, 9]
    inputs, rewards, uids, token_rewards = make_batch(lengths, group=3, seed=4)
    config, cfg = actor_config(VL_NORM + [f"algorithm.vl_norm.alpha={alpha}", "algorithm.vl_norm.scope=minibatch"])
    adv = vl_norm_advantages(cfg, inputs, token_rewards, uids)
    base = grpo_reference(rewards, uids).unsqueeze(-1) * inputs.response_mask
    assert torch.allclose(adv, base, atol=1e-6)  # minibatch scope leaves the estimator's advantages alone

    L = torch.tensor(lengths, dtype=torch.float64)
    pg = surrogate_reference(inputs.log_prob, inputs.old_log_prob, base)
    ref = ((pg * inputs.response_mask).sum(-1).double() * L**-alpha).sum() / ((L**-alpha).sum() * M)

    data = TensorDict({"response_mask": inputs.response_mask, "advantages": adv}, batch_size=[len(lengths)])
    assert engine_hook.minibatch_loss_config(functools.partial(ppo_loss, config=config)) is config
    prepared, sums = engine_hook.prepare_minibatch(data, config)
    rows = ([0, 1], [2, 3], [4, 5])
    assert torch.equal(data["advantages"], adv)  # the engine's own mini-batch is left as it was (PPO epochs)
    assert sums.count == len(lengths) and sums.sum_u == pytest.approx(float((L**-alpha).sum()), rel=1e-12)
    token = engine_hook._current_minibatch.set(sums)
    try:
        scaled = prepared["advantages"]
        losses = [ppo_loss_call(config, subset(inputs, r), advantages=scaled[r], global_batch_size=6)[0] for r in rows]
        total = sum(float(loss) for loss in losses)
    finally:
        engine_hook._current_minibatch.reset(token)
    assert total == pytest.approx(float(ref), rel=1e-5)


def test_minibatch_scope_without_engine_statistics_fails_loudly() -> None:
    from vlnorm_verl.extension.settings import VLNormConfigError

    inputs = random_inputs([2, 3], seed=1, width=M)
    config, _ = actor_config(VL_NORM + ["algorithm.vl_norm.scope=minibatch"])
    with pytest.raises(VLNormConfigError, match="FSDP engine"):
        ppo_loss_call(config, inputs)


@pytest.mark.parametrize("agg", ["token-mean", "seq-mean-token-mean"])
def test_kl_and_entropy_terms_are_the_same_with_vl_norm_on_and_off(agg: str) -> None:
    common = [
        "actor_rollout_ref.actor.use_kl_loss=true",
        "actor_rollout_ref.actor.kl_loss_coef=0.1",
        "actor_rollout_ref.actor.entropy_coeff=0.01",
        f"actor_rollout_ref.actor.loss_agg_mode={agg}",
    ]
    lengths = [5, 16, 2, 9]
    results = {}
    for name, extra in {"off": [], "on": VL_NORM}.items():
        inputs = random_inputs(lengths, seed=3, width=M)
        config, _ = actor_config(common + extra)
        loss, metrics = ppo_loss_call(config, inputs, global_batch_size=4)
        loss.backward()
        results[name] = (metrics, inputs.entropy.grad.clone())
    off, on = results["off"], results["on"]
    for key in ("actor/entropy_loss", "kl_loss"):
        assert float(on[0][key].values[0]) == pytest.approx(float(off[0][key].values[0]), rel=1e-7)
    assert torch.allclose(on[1], off[1], rtol=1e-7)  # entropy enters only through its own term


def test_alpha_zero_is_verls_seq_mean_token_sum_norm_with_clip_higher() -> None:
    """Dr. GRPO Norm = VL Norm alpha 0: same loss, gradient and clip metrics as verl's vanilla loss with
    seq-mean-token-sum-norm and loss_scale_factor = M, including clip-higher and dual clip."""
    clip = [
        "actor_rollout_ref.actor.clip_ratio_low=0.1",
        "actor_rollout_ref.actor.clip_ratio_high=0.28",
        "actor_rollout_ref.actor.clip_ratio_c=2.0",
    ]
    lengths = [4, 16, 8, 1]
    inputs, _, uids, token_rewards = make_batch(lengths, group=2, seed=9)
    config_vl, cfg = actor_config(clip + VL_NORM + ["algorithm.vl_norm.alpha=0"])
    adv = vl_norm_advantages(cfg, inputs, token_rewards, uids)
    loss_vl, metrics_vl = ppo_loss_call(config_vl, inputs, advantages=adv)
    loss_vl.backward()
    grad_vl = inputs.log_prob.grad.clone()

    inputs.log_prob.grad = None
    config_dr, _ = actor_config(
        clip
        + [
            "actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-sum-norm",
            "actor_rollout_ref.actor.loss_scale_factor=16",
        ]
    )
    loss_dr, metrics_dr = ppo_loss_call(config_dr, inputs, advantages=adv)
    loss_dr.backward()
    assert float(loss_vl) == pytest.approx(float(loss_dr), rel=1e-6)
    assert torch.allclose(grad_vl, inputs.log_prob.grad, rtol=1e-6)
    for key in ("actor/pg_clipfrac", "actor/pg_clipfrac_lower", "actor/ppo_kl"):
        assert float(metrics_vl[key].values[0]) == pytest.approx(float(metrics_dr[key].values[0]))
    # and both equal the hand-written clip-higher / dual-clip surrogate
    ref = surrogate_reference(inputs.log_prob.detach(), inputs.old_log_prob, adv, 0.1, 0.28, 2.0)
    assert float(loss_dr) == pytest.approx(float((ref * inputs.response_mask).sum() / (4 * M)), rel=1e-6)


def test_zero_length_rows_get_zero_advantage_and_finite_loss() -> None:
    lengths = [0, 5, 9, 0, 3, 12]
    inputs, _, uids, token_rewards = make_batch(lengths, group=3, seed=2)
    config, cfg = actor_config(VL_NORM)
    adv = vl_norm_advantages(cfg, inputs, token_rewards, uids)
    assert torch.isfinite(adv).all()
    assert torch.all(adv[[0, 3]] == 0)
    loss, metrics = ppo_loss_call(config, inputs, advantages=adv)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(inputs.log_prob.grad).all()
    assert float(metrics["actor/vl_norm/length_mean"].values[0]) == pytest.approx(np.mean([5, 9, 3, 12]))


def test_dr_grpo_base_advantages_follow_norm_adv_by_std() -> None:
    lengths = [4, 4, 4, 4]
    inputs, rewards, uids, token_rewards = make_batch(lengths, group=4, seed=5)
    _, cfg = actor_config(VL_NORM + ["algorithm.norm_adv_by_std_in_grpo=false"])
    adv = vl_norm_advantages(cfg, inputs, token_rewards, uids)  # equal lengths: w = 1
    expected = grpo_reference(rewards, uids, std_norm=False).unsqueeze(-1) * inputs.response_mask
    assert torch.allclose(adv, expected, atol=1e-6)


def test_the_loss_needs_the_vl_norm_config_in_the_worker() -> None:
    from vlnorm_verl.extension.settings import VLNormConfigError

    config, _ = actor_config(["actor_rollout_ref.actor.policy_loss.loss_mode=vl_norm"])
    with pytest.raises(VLNormConfigError, match="_target_"):
        ppo_loss_call(config, random_inputs([3, 4], seed=0, width=M))


def test_estimator_first_call_runs_the_startup_check(monkeypatch: pytest.MonkeyPatch) -> None:
    from vlnorm_verl.extension import estimator
    from vlnorm_verl.extension.settings import VLNormConfigError

    monkeypatch.setattr(estimator, "_checked_once", False)
    inputs, _, uids, token_rewards = make_batch([3, 5], group=2, seed=0)
    _, cfg = actor_config(VL_NORM + ["actor_rollout_ref.actor.loss_scale_factor=8"])
    with pytest.raises(VLNormConfigError, match="loss_scale_factor"):
        vl_norm_advantages(cfg, inputs, token_rewards, uids)
