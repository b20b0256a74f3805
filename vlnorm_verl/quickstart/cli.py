"""``python -m vlnorm_verl.quickstart [--arms vl_norm,dapo] [hydra overrides...]``: the CPU quickstart run.

Runs the warm-start (or loads it from the cache) and then each arm in turn in this process, on CPU, and prints
both arms' reward curves. Outputs under ``quickstart.output_dir`` (``$QS_OUT``, default ``outputs/quickstart``):

- ``logs/<trainer.project_name>/<arm>.jsonl``: verl's ``file`` logger, one line per step (verl's metric names);
- ``wandb/offline-run-*``: verl's ``wandb`` logger (``WANDB_MODE=offline`` unless set);
- ``rollouts/<arm>.jsonl``: per-step lengths, scores, advantages and VL Norm weights of every response;
- ``summary.json``: the reward and validation curves of each arm;
- ``cache/``: the tiny model and the warm-started checkpoint (``$QS_CACHE``).

Compare the arms with ``vlnorm-verl compare <output_dir>/logs/<project> --baseline dapo``.
Exit status: 0 on success, 2 on a configuration or data error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from vlnorm_verl.quickstart.config import ARMS, BASELINE

ACCEPTS_EXTRA_ARGS = True
EXIT_INVALID = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--arms",
        default=",".join(ARMS),
        help=f"comma-separated arms to run, in order (default {','.join(ARMS)}; {BASELINE} is the DAPO baseline)",
    )


def _log(msg: str) -> None:
    print(msg, flush=True)


def _curves(results: list[Any]) -> str:
    steps = max((len(r.scores) for r in results), default=0)
    head = "step  " + "  ".join(f"{r.arm:>10}" for r in results)
    lines = ["training reward (critic/score/mean) per step", head]
    for t in range(steps):
        cells = [f"{r.scores[t]:10.3f}" if t < len(r.scores) else " " * 10 for r in results]
        lines.append(f"{t + 1:4d}  " + "  ".join(cells))
    window = 5
    lines.append(f"mean reward over steps, in windows of {window}")
    for r in results:
        means = [sum(r.scores[i : i + window]) / len(r.scores[i : i + window]) for i in range(0, len(r.scores), window)]
        lines.append(f"  {r.arm:>10}: " + "  ".join(f"{m:.3f}" for m in means))
    if results:
        val_steps = ", ".join(str(s) for s, _ in results[0].val)
        lines.append(f"held-out accuracy (val-core/countdown/acc/mean@1) at steps {val_steps}")
    for r in results:
        lines.append(f"  {r.arm:>10}: " + "  ".join(f"{a:.3f}" for _, a in r.val))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    overrides = list(getattr(args, "extra", None) or getattr(args, "overrides", None) or [])
    arms = [a.strip() for a in str(args.arms).split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        print(f"error: unknown arm(s) {unknown}; choose from {sorted(ARMS)}", file=sys.stderr)
        return EXIT_INVALID
    start = time.perf_counter()
    from vlnorm_verl.quickstart import runtime

    runtime.setup_cpu_process(threads=int(os.environ.get("QS_THREADS", "0") or 0))
    from vlnorm_verl.quickstart import config as qconfig

    try:
        cfgs = {arm: qconfig.compose_arm(arm, overrides) for arm in arms}
        for cfg in cfgs.values():
            qconfig.check(cfg)
    except Exception as exc:  # noqa: BLE001 - Hydra/OmegaConf raise many types for bad overrides
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        return _run(arms, cfgs, start)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        runtime.teardown()


def _run(arms: list[str], cfgs: dict[str, Any], start: float) -> int:
    from vlnorm_verl.quickstart import rl, tiny_model
    from vlnorm_verl.quickstart.data import load_prompts
    from vlnorm_verl.quickstart.warmstart import warm_start

    first = cfgs[arms[0]]
    qs = first.quickstart
    out_dir = Path(str(qs.output_dir)).resolve()
    cache_dir = Path(str(qs.cache_dir)).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["VERL_FILE_LOGGER_ROOT"] = str(out_dir / "logs")
    os.environ.pop("VERL_FILE_LOGGER_PATH", None)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_DIR", str(out_dir))
    os.environ.setdefault("WANDB_SILENT", "true")

    tokenizer = tiny_model.build_tokenizer()
    spec = tiny_model.TinyModelSpec.from_config(
        qs.model, max_positions=int(first.data.max_prompt_length) + int(first.data.max_response_length) + 16
    )
    init_dir = tiny_model.create_model_dir(spec, tokenizer, cache_dir)
    pool = load_prompts(str(qs.data.train_file), int(qs.data.train_prompts), tokenizer, "train")
    val_prompts = load_prompts(str(qs.data.val_file), int(qs.data.val_prompts), tokenizer, "test")
    longest = max(len(p.ids) for p in pool + val_prompts)
    if longest > int(first.data.max_prompt_length):
        raise ValueError(f"a prompt has {longest} tokens > data.max_prompt_length={first.data.max_prompt_length}")
    _log(
        f"[quickstart] {len(pool)} training prompts, {len(val_prompts)} held-out prompts; tiny Qwen2 "
        f"{spec.num_hidden_layers}x{spec.hidden_size}, vocab {len(tokenizer)}; outputs in {out_dir}"
    )
    ws = warm_start(first, init_dir, tokenizer, pool, cache_dir, log=_log)
    results = []
    for arm in arms:
        cfg = cfgs[arm]
        _log(
            f"[quickstart] arm {arm}: adv_estimator={cfg.algorithm.adv_estimator} "
            f"policy_loss={cfg.actor_rollout_ref.actor.policy_loss.loss_mode} "
            f"loss_agg_mode={cfg.actor_rollout_ref.actor.loss_agg_mode} "
            f"{cfg.quickstart.rl.steps} steps x {cfg.data.train_batch_size} prompts "
            f"x n={cfg.actor_rollout_ref.rollout.n}"
        )
        results.append(rl.run_arm(cfg, arm, ws.path, tokenizer, pool, val_prompts, out_dir, log=_log))
    summary = {
        "output_dir": str(out_dir),
        "warmstart": {"path": str(ws.path), "cached": ws.cached, "steps": ws.steps, "probe_acc": ws.probe_acc},
        "arms": {
            r.arm: {
                "jsonl": str(r.jsonl),
                "rollouts": str(r.rollouts),
                "reward": r.scores,
                "val_acc": r.val,
                "nonzero_adv_groups": r.nonzero_groups,
                "param_distance": r.param_distance,
                "wall_s": r.wall_s,
            }
            for r in results
        },
        "wall_s": time.perf_counter() - start,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    _log(_curves(results))
    _log(f"[quickstart] done in {summary['wall_s']:.0f} s; logs: {out_dir / 'logs'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlnorm_verl.quickstart", description=__doc__.split("\n")[0])
    add_arguments(parser)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of configs/quickstart/cpu.yaml")
    return run(parser.parse_args(argv))
