"""Supervised warm-start of the tiny model through verl's engine and ``sft_loss``, cached by a content hash.

A randomly initialised model never earns a CountDown reward, so every GRPO group would have zero advantages
and RL would learn nothing. The warm-start trains the model on the generator's own reference solutions of
the prompt pool (response ``" <solution> = <target> </think>\\n<answer> <solution> </answer>"`` + EOS; the
loss is verl's ``sft_loss``, the mean negative log-likelihood of the response tokens) through the same
``ActorRolloutRefWorker.update_actor`` path as RL, with ``optim.lr = quickstart.warmstart.lr``. Every
``eval_every`` steps it samples ``probe_n`` answers for ``probe_prompts`` pool prompts at the rollout
temperature and stops once the share of right answers reaches ``target_acc`` (or after ``max_steps``).

The result (Hugging Face weights + tokenizer + ``quickstart.json`` with the probe history) is saved under
``<cache_dir>/warmstart-<hash>``; the hash covers the initial model, the pool's token ids and solutions, the
warm-start settings and the seed, so a rerun with the same inputs loads it and skips training.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlnorm_verl.quickstart import tiny_model
from vlnorm_verl.quickstart import worker as qworker
from vlnorm_verl.quickstart.batches import sft_batch
from vlnorm_verl.quickstart.data import Prompt
from vlnorm_verl.quickstart.sampler import Sampler


@dataclass
class WarmStartResult:
    path: Path
    cached: bool
    steps: int
    probe_acc: float
    history: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0


def cache_key(init_dir: Path, pool: list[Prompt], settings: dict[str, Any], seed: int) -> str:
    import torch
    import verl

    return tiny_model.content_hash(
        {
            "init": init_dir.name,
            "pool": [[list(p.ids), p.solution, p.ground_truth] for p in pool],
            "settings": settings,
            "seed": seed,
            "versions": [verl.__version__, torch.__version__.split("+")[0]],
        }
    )


def probe(sampler: Sampler, prompts: list[Prompt], n: int, temperature: float, seed: int) -> float:
    """Share of right answers among ``n`` sampled answers per prompt."""
    right = total = 0
    for i, prompt in enumerate(prompts):
        for s in sampler.generate(prompt, n, temperature, do_sample=True, seed=seed + i):
            right += s.acc > 0
            total += 1
    return right / max(total, 1)


def warm_start(
    cfg: Any, init_dir: Path, tokenizer: Any, pool: list[Prompt], cache_dir: Path, log=print
) -> WarmStartResult:
    """The warm-started model directory for ``pool`` (trained now, or loaded from the cache)."""
    from omegaconf import OmegaConf, open_dict

    ws = OmegaConf.to_container(cfg.quickstart.warmstart, resolve=True)
    seed = int(cfg.quickstart.seed)
    key = cache_key(init_dir, pool, ws, seed)
    target = Path(cache_dir) / f"warmstart-{key}"
    if (target / "quickstart.json").is_file():
        import json

        info = json.loads((target / "quickstart.json").read_text())
        log(f"[warm-start] cached: {target} ({info['steps']} steps, probe accuracy {info['probe_acc']:.2f})")
        return WarmStartResult(target, True, info["steps"], info["probe_acc"], info.get("history", []))

    start = time.perf_counter()
    sft_cfg = cfg.copy()
    with open_dict(sft_cfg):
        sft_cfg.actor_rollout_ref.actor.optim.lr = float(ws["lr"])
    worker = qworker.build_actor(sft_cfg, str(init_dir))
    qworker.use_sft_loss(worker)
    sampler = Sampler(tiny_model.load_hf_model(init_dir), tokenizer, int(cfg.data.max_response_length))
    temperature = float(cfg.actor_rollout_ref.rollout.temperature)
    eos = int(tokenizer.eos_token_id)
    targets = [list(tokenizer(p.warmstart_response(), add_special_tokens=False)["input_ids"]) + [eos] for p in pool]
    too_long = [p.uid for p, t in zip(pool, targets, strict=True) if len(t) > int(cfg.data.max_response_length)]
    if too_long:
        raise ValueError(
            f"warm-start targets of {too_long[:3]} are longer than data.max_response_length="
            f"{cfg.data.max_response_length}; raise it"
        )
    rng = random.Random(f"warmstart/{seed}")
    probe_prompts = pool[: int(ws["probe_prompts"])]
    history: list[dict[str, float]] = []
    acc, step, loss = 0.0, 0, float("nan")
    batch_size = min(int(ws["batch_size"]), len(pool))
    for step in range(1, int(ws["max_steps"]) + 1):
        rows = rng.sample(range(len(pool)), batch_size)
        out = worker.update_actor(sft_batch([pool[i].ids for i in rows], [targets[i] for i in rows], seed + step))
        loss = float(_mean(qworker.metrics_of(out).get("loss", float("nan"))))
        if step % int(ws["eval_every"]) == 0 or step == int(ws["max_steps"]):
            sampler.sync(qworker.engine_params(worker))
            acc = probe(sampler, probe_prompts, int(ws["probe_n"]), temperature, seed + 1000 * step)
            history.append({"step": step, "loss": loss, "probe_acc": acc})
            log(f"[warm-start] step {step:4d}  sft loss {loss:.3f}  sampled answers right {acc:.2f}")
            if acc >= float(ws["target_acc"]):
                break
    if acc < float(ws["target_acc"]):
        log(
            f"[warm-start] warning: probe accuracy {acc:.2f} < target {ws['target_acc']} after {step} steps; "
            "raise quickstart.warmstart.max_steps or lr"
        )
    info = {"steps": step, "probe_acc": acc, "loss": loss, "history": history, "key": key, "settings": ws}
    tiny_model.save_hf_model(sampler.model, tokenizer, target, info)
    del worker
    wall = time.perf_counter() - start
    log(f"[warm-start] saved {target} ({wall:.0f} s)")
    return WarmStartResult(target, False, step, acc, history, wall)


def _mean(value: Any) -> float:
    if isinstance(value, list | tuple):
        return sum(float(v) for v in value) / max(len(value), 1)
    return float(value)
