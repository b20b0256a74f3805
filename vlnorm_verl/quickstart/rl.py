"""One arm of the quickstart: a GRPO-style RL loop whose every training computation is verl's.

Per step ``t`` (``data.train_batch_size`` prompts from the pool, in a seeded shuffled order, ``n`` answers each):

1. rollout: :class:`~vlnorm_verl.quickstart.sampler.Sampler` (Hugging Face ``generate`` on the engine's weights)
   and the project's CountDown reward (score at the response's last token, as verl's reward managers place it);
2. old log-probs and entropy: the worker's ``compute_log_prob`` (verl's engine, forward only);
3. advantages: verl's ``compute_advantage`` (``verl.trainer.ppo.ray_trainer``) with ``algorithm.adv_estimator``:
   its GRPO branch for ``grpo``, the advantage-estimator registry for ``vl_norm`` (the project's estimator,
   which calls ``grpo`` and folds in w_i = L_i^-alpha / mean_j L_j^-alpha);
4. update: the worker's ``update_actor`` (verl's FSDP2 engine, ``ppo_loss`` with the configured policy loss);
5. weight sync to the sampler, metrics through ``verl.utils.tracking.Tracking``.

Besides verl's metrics, each step appends one line to ``<output_dir>/rollouts/<arm>.jsonl`` with every response's
group id, length L_i, score, the advantage the update used, verl's plain GRPO advantage of the same rewards
(``base_advantage``) and, for VL Norm, w_i: enough to re-check the estimator from the log alone.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vlnorm_verl.quickstart import metrics as qmetrics
from vlnorm_verl.quickstart import tiny_model
from vlnorm_verl.quickstart import worker as qworker
from vlnorm_verl.quickstart.batches import ppo_batch, update_extra_info
from vlnorm_verl.quickstart.data import Prompt
from vlnorm_verl.quickstart.sampler import Sample, Sampler
from vlnorm_verl.tasks import COUNTDOWN_SOURCE


@dataclass
class ArmResult:
    arm: str
    jsonl: Path
    rollouts: Path
    scores: list[float] = field(default_factory=list)
    val: list[tuple[int, float]] = field(default_factory=list)
    nonzero_groups: list[float] = field(default_factory=list)
    param_distance: float = 0.0
    wall_s: float = 0.0


def prompt_stream(pool: list[Prompt], seed: int) -> Iterator[Prompt]:
    """The pool in a fresh seeded order per epoch, endlessly."""
    rng = random.Random(f"rl-order/{seed}")
    while True:
        order = list(range(len(pool)))
        rng.shuffle(order)
        for i in order:
            yield pool[i]


def _padded(rows: list[list[float]], width: int, value: float, dtype: torch.dtype) -> torch.Tensor:
    out = torch.full((len(rows), width), value, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=dtype)
    return out


def advantage_batch(cfg: Any, samples: list[Sample], uids: list[str], pad_id: int):
    """verl ``DataProto`` of the rollout (right-padded to the longest response), advantages from verl's dispatch."""
    from verl import DataProto
    from verl.trainer.ppo.ray_trainer import compute_advantage

    lengths = [len(s.response) for s in samples]
    width = max(lengths)
    prompt_width = max(len(s.prompt.ids) for s in samples)
    mask = _padded([[1] * n for n in lengths], width, 0, torch.int64)
    scores = torch.zeros((len(samples), width), dtype=torch.float32)
    for i, s in enumerate(samples):
        scores[i, lengths[i] - 1] = s.score
    batch = {
        "responses": _padded([s.response for s in samples], width, pad_id, torch.int64),
        "prompts": _padded([list(s.prompt.ids) for s in samples], prompt_width, pad_id, torch.int64),
        "response_mask": mask,
        "token_level_scores": scores,
        "token_level_rewards": scores.clone(),
        "prompt_length": torch.tensor([len(s.prompt.ids) for s in samples], dtype=torch.float32),
        "response_length": torch.tensor(lengths, dtype=torch.float32),
    }
    data = DataProto.from_dict(tensors=batch, non_tensors={"uid": np.array(uids, dtype=object)})
    algo = cfg.algorithm
    return compute_advantage(
        data,
        adv_estimator=algo.adv_estimator,
        gamma=algo.gamma,
        lam=algo.lam,
        num_repeat=int(cfg.actor_rollout_ref.rollout.n),
        norm_adv_by_std_in_grpo=algo.get("norm_adv_by_std_in_grpo", True),
        config=algo,
    )


def plain_grpo_advantages(cfg: Any, data: Any) -> torch.Tensor:
    """verl's GRPO advantage of the same rewards (for the log; VL Norm's base)."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    adv, _ = compute_grpo_outcome_advantage(
        token_level_rewards=data.batch["token_level_rewards"],
        response_mask=data.batch["response_mask"],
        index=data.non_tensor_batch["uid"],
        norm_adv_by_std_in_grpo=bool(cfg.algorithm.get("norm_adv_by_std_in_grpo", True)),
    )
    return adv


def validate(sampler: Sampler, prompts: list[Prompt], cfg: Any, seed: int) -> dict[str, float]:
    vk = cfg.actor_rollout_ref.rollout.val_kwargs
    n = int(vk.n)
    sources, uids, accs, scores = [], [], [], []
    for i, p in enumerate(prompts):
        for s in sampler.generate(p, n, float(vk.temperature), bool(vk.do_sample), seed=seed + i):
            sources.append(COUNTDOWN_SOURCE)
            uids.append(p.uid)
            accs.append(s.acc)
            scores.append(s.score)
    return qmetrics.validation_metrics(sources, uids, {"acc": accs, "reward": scores})


def _group_nonzero(adv: list[float], uids: list[str]) -> float:
    groups: dict[str, bool] = {}
    for a, u in zip(adv, uids, strict=True):
        groups[u] = groups.get(u, False) or abs(a) > 1e-8
    return sum(groups.values()) / max(len(groups), 1)


def run_arm(
    cfg: Any,
    arm: str,
    model_dir: Path,
    tokenizer: Any,
    pool: list[Prompt],
    val_prompts: list[Prompt],
    output_dir: Path,
    log: Callable[[str], None] = print,
) -> ArmResult:
    """Train arm ``arm`` from ``model_dir`` for ``quickstart.rl.steps`` steps; metrics to verl's tracking."""
    from omegaconf import OmegaConf
    from verl.trainer.ppo.core_algos import agg_loss
    from verl.trainer.ppo.metric_utils import compute_data_metrics
    from verl.utils.tracking import Tracking
    from verl.workers.utils.padding import response_from_nested

    start = time.perf_counter()
    seed = int(cfg.quickstart.seed)
    n = int(cfg.actor_rollout_ref.rollout.n)
    per_step = int(cfg.data.train_batch_size)
    steps = int(cfg.quickstart.rl.steps)
    val_every = int(cfg.quickstart.rl.val_every)
    temperature = float(cfg.actor_rollout_ref.rollout.temperature)
    actor_cfg = cfg.actor_rollout_ref.actor
    is_vl_norm = cfg.algorithm.adv_estimator == "vl_norm"
    alpha = float(cfg.algorithm.vl_norm.alpha) if is_vl_norm else None
    if per_step > len(pool):
        raise ValueError(f"data.train_batch_size={per_step} exceeds the pool of {len(pool)} prompts")

    project, name = str(cfg.trainer.project_name), str(cfg.trainer.experiment_name)
    result = ArmResult(arm, output_dir / "logs" / project / f"{name}.jsonl", output_dir / "rollouts" / f"{name}.jsonl")
    result.rollouts.parent.mkdir(parents=True, exist_ok=True)
    worker = qworker.build_actor(cfg, str(model_dir))
    sampler = Sampler(tiny_model.load_hf_model(model_dir), tokenizer, int(cfg.data.max_response_length))
    initial = {k: v.clone() for k, v in qworker.engine_params(worker)}
    sampler.sync(initial.items())
    tracker = Tracking(
        project_name=project,
        experiment_name=name,
        default_backend=list(cfg.trainer.logger),
        config=OmegaConf.to_container(cfg, resolve=True),
    )
    extra = update_extra_info(cfg)
    stream = prompt_stream(pool, seed)
    try:
        val = validate(sampler, val_prompts, cfg, seed=seed)
        tracker.log(data=val, step=0)
        result.val.append((0, _core_acc(val)))
        with result.rollouts.open("w") as rollout_log:
            for step in range(1, steps + 1):
                t0 = time.perf_counter()
                prompts = [next(stream) for _ in range(per_step)]
                samples: list[Sample] = []
                for j, p in enumerate(prompts):
                    samples.extend(sampler.generate(p, n, temperature, True, seed=seed * 1_000_003 + step * 1000 + j))
                uids = [f"{s.prompt.uid}@{step}" for s in samples]
                t_gen = time.perf_counter()

                # old log-probs and entropy through the worker (verl's engine, forward only)
                p_ids = [list(s.prompt.ids) for s in samples]
                r_ids = [s.response for s in samples]
                td = ppo_batch(p_ids, r_ids, uids, {**extra, "calculate_entropy": True, "compute_loss": False})
                out = worker.compute_log_prob(td)
                old_lp = response_from_nested(out["log_probs"], td["response_mask"])
                entropy = response_from_nested(out["entropy"], td["response_mask"])
                old_rows = [old_lp[i].tolist() for i in range(len(samples))]
                t_logp = time.perf_counter()

                # advantages through verl's dispatch (registry for vl_norm)
                data = advantage_batch(cfg, samples, uids, sampler.pad)
                lengths = [len(r) for r in r_ids]
                adv_rows = [data.batch["advantages"][i, : lengths[i]].tolist() for i in range(len(samples))]
                base = plain_grpo_advantages(cfg, data)

                # the update: verl's FSDP2 engine and ppo_loss
                td = ppo_batch(p_ids, r_ids, uids, extra, old_log_probs=old_rows, advantages=adv_rows)
                upd = worker.update_actor(td)
                t_upd = time.perf_counter()

                params = {k: v for k, v in qworker.engine_params(worker)}
                sampler.sync(params.items())
                distance = math.sqrt(sum(float((params[k] - initial[k]).pow(2).sum()) for k in initial))

                metrics: dict[str, float] = {"training/global_step": step, "training/epoch": 0}
                metrics.update(compute_data_metrics(batch=data, use_critic=False))
                metrics.update(qmetrics.actor_metrics(qworker.metrics_of(upd)))
                ent = agg_loss(
                    loss_mat=torch.nested.to_padded_tensor(entropy, 0.0),
                    loss_mask=data.batch["response_mask"],
                    loss_agg_mode=str(actor_cfg.loss_agg_mode),
                    loss_scale_factor=actor_cfg.loss_scale_factor,
                )
                metrics["actor/entropy"] = float(ent)
                scalar_adv = [row[0] for row in adv_rows]
                nonzero = _group_nonzero(scalar_adv, uids)
                metrics.update(
                    {
                        "quickstart/nonzero_adv_groups": nonzero,
                        "quickstart/param_distance": distance,
                        "quickstart/truncated_frac": sum(s.truncated for s in samples) / len(samples),
                        "timing_s/gen": t_gen - t0,
                        "timing_s/old_log_prob": t_logp - t_gen,
                        "timing_s/update_actor": t_upd - t_logp,
                        "timing_s/step": time.perf_counter() - t0,
                    }
                )
                if step % val_every == 0 or step == steps:
                    val = validate(sampler, val_prompts, cfg, seed=seed)
                    metrics.update(val)
                    result.val.append((step, _core_acc(val)))
                tracker.log(data=metrics, step=step)

                record = {
                    "step": step,
                    "uid": uids,
                    "length": lengths,
                    "score": [s.score for s in samples],
                    "advantage": scalar_adv,
                    "base_advantage": [float(base[i, 0]) for i in range(len(samples))],
                    "text": samples[0].text,
                }
                if is_vl_norm:
                    from vlnorm_verl.aggregation import batch_scope_advantage_scale

                    w = batch_scope_advantage_scale(torch.tensor(lengths, dtype=torch.float64), alpha)
                    record.update(alpha=alpha, vl_norm_weight=[float(x) for x in w])
                rollout_log.write(json.dumps(record) + "\n")
                rollout_log.flush()
                result.scores.append(metrics["critic/score/mean"])
                result.nonzero_groups.append(nonzero)
                result.param_distance = distance
                log(
                    f"[{name}] step {step:3d}  reward {metrics['critic/score/mean']:.3f}  "
                    f"len {metrics['response_length/mean']:.1f}  groups with signal {nonzero:.2f}  "
                    f"pg_loss {metrics.get('actor/pg_loss', float('nan')):+.4f}  "
                    f"grad_norm {metrics.get('actor/grad_norm', float('nan')):.3f}  "
                    f"({metrics['timing_s/step']:.1f} s)"
                )
    finally:
        tracker.finish()
    del worker
    result.wall_s = time.perf_counter() - start
    return result


def _core_acc(val: dict[str, float]) -> float:
    keys = [k for k in val if k.startswith("val-core/") and "/acc/mean@" in k]
    return val[keys[0]] if keys else float("nan")
