"""Cost of VL Norm next to verl's baselines, measured in one run (prints figures; not a test).

1. Advantage step on a rollout batch of 1024 responses x 8192 tokens: the ``vl_norm`` estimator
   (base ``grpo`` + length weights) vs verl's plain ``grpo`` estimator.
2. Policy loss on one micro-batch (forward + backward of the loss w.r.t. the log-probs): the
   ``vl_norm`` loss (batch and minibatch scopes) vs verl's ``vanilla`` loss with ``token-mean``.

Targets: advantage step <= 1.10x; policy loss <= 1.02x (batch scope, which runs outside any hook: verl's engine
is left untouched) and <= 1.05x (minibatch scope, with the engine hook's statistics in context, as in verl's FSDP
engine); the hook's own cost is printed once per mini-batch.
Usage: python bench/bench_core.py [--rows 1024] [--width 8192] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))


def timeit(fn, repeats: int, warmup: int = 2) -> float:
    """Median wall time of fn() in seconds, over `repeats` runs interleaved by the caller."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def interleaved(fns: dict[str, callable], repeats: int) -> dict[str, float]:
    """Median of each fn, measured round-robin so background load hits all of them alike."""
    for fn in fns.values():
        fn()
        fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in samples.items()}


def bench_estimator(rows: int, width: int, group: int, repeats: int) -> None:
    import verl  # noqa: F401
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    from vlnorm_verl.extension import estimator
    from vlnorm_verl.launch.compose import compose_config

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, width + 1, (rows,), generator=g)
    mask = (torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)).to(torch.int64)
    rewards = torch.zeros(rows, width)
    rewards[torch.arange(rows), lengths - 1] = torch.randint(0, 2, (rows,), generator=g).float()
    index = np.array([f"p{i // group}" for i in range(rows)], dtype=object)
    cfg = compose_config("ppo_trainer", ["+aggregation=vl_norm", f"data.max_response_length={width}"])
    estimator._checked_once = True  # the one-off start-up check is not part of the per-step cost
    grpo = get_adv_estimator_fn("grpo")
    vl = get_adv_estimator_fn("vl_norm")
    fns = {
        "grpo": lambda: grpo(token_level_rewards=rewards, response_mask=mask, index=index, config=cfg.algorithm),
        "vl_norm (batch)": lambda: vl(
            token_level_rewards=rewards, response_mask=mask, index=index, config=cfg.algorithm
        ),
    }
    times = interleaved(fns, repeats)
    base = times["grpo"]
    print(f"\n[advantage step] rollout batch {rows} x {width} tokens, groups of {group}, median of {repeats}")
    for name, t in times.items():
        print(f"  {name:<22s} {t * 1e3:9.2f} ms   ratio vs grpo: {t / base:5.3f}x")


def bench_loss(rows: int, width: int, repeats: int) -> None:
    from ppo_inputs import actor_config
    from tensordict import TensorDict
    from verl.trainer.ppo.core_algos import get_policy_loss_fn

    from vlnorm_verl.extension import engine_hook

    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, width + 1, (rows,), generator=g)
    mask = (torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)).float()
    old = -torch.rand(rows, width, generator=g) * mask
    adv = torch.randn(rows, 1, generator=g).expand(rows, width) * mask
    base_logp = old + 0.05 * torch.randn(rows, width, generator=g)
    common = [f"data.max_response_length={width}"]
    vanilla_cfg, _ = actor_config(common)
    batch_cfg, _ = actor_config(common + ["+aggregation=vl_norm"])
    mini_cfg, _ = actor_config(common + ["+aggregation=vl_norm", "algorithm.vl_norm.scope=minibatch"])
    info = {"dp_size": 1, "batch_num_tokens": int(mask.sum()) * 8, "global_batch_size": rows * 8}
    for c in (vanilla_cfg, batch_cfg, mini_cfg):
        c.global_batch_info.update(info, loss_scale_factor=c.loss_scale_factor)
    vanilla = get_policy_loss_fn("vanilla")
    vl = get_policy_loss_fn("vl_norm")
    # the mini-batch the engine hook sees: this micro-batch 8 times; it scales the advantages once per mini-batch
    minibatch = TensorDict({"response_mask": mask.repeat(8, 1), "advantages": adv.repeat(8, 1)}, batch_size=[8 * rows])
    prepared, stats = engine_hook.prepare_minibatch(minibatch, mini_cfg)
    scaled_adv = prepared["advantages"][:rows]

    def step(fn, config, mode, advantages=adv):
        logp = base_logp.clone().requires_grad_(True)
        inputs = {"old_log_prob": old, "log_prob": logp, "advantages": advantages, "response_mask": mask}
        loss, _ = fn(**inputs, loss_agg_mode=mode, config=config)
        loss.backward()

    def hooked(config):
        # as inside verl's FSDP engine with the VL Norm hook: scaled advantages, mini-batch statistics in context
        def run():
            token = engine_hook._current_minibatch.set(stats)
            try:
                step(vl, config, "token-mean", scaled_adv)
            finally:
                engine_hook._current_minibatch.reset(token)

        return run

    fns = {
        "vanilla token-mean": lambda: step(vanilla, vanilla_cfg, "token-mean"),
        "vl_norm (batch)": lambda: step(vl, batch_cfg, "token-mean"),
        "vl_norm (minibatch)": hooked(mini_cfg),
    }
    times = interleaved(fns, repeats)
    base = times["vanilla token-mean"]
    print(f"\n[policy loss fwd+bwd] micro-batch {rows} x {width} tokens, median of {repeats}")
    for name, t in times.items():
        print(f"  {name:<22s} {t * 1e3:9.2f} ms   ratio vs vanilla token-mean: {t / base:5.3f}x")
    # the hook's once-per-mini-batch cost (lengths, weight sums, scaled advantages), against the loss over that
    # mini-batch's 8 micro-batches
    hook = timeit(lambda: engine_hook.prepare_minibatch(minibatch, mini_cfg), repeats)
    print(
        f"  engine hook per mini-batch of {8 * rows} rows: {hook * 1e3:.3f} ms "
        f"= {hook / (8 * base):.3f}x of the mini-batch's vanilla loss time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--width", type=int, default=8192)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--micro-rows", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    bench_estimator(args.rows, args.width, args.group, args.repeats)
    bench_loss(args.micro_rows, args.width, args.repeats * 4)


if __name__ == "__main__":
    main()
