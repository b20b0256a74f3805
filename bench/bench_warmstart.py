"""Benchmark: the quickstart's warm-start (verl's SFT trainer on the CPU) in fp32 vs verl's default bf16.

verl's FSDP engine computes in its mixed-precision ``param_dtype``, bf16 unless set; the warm-start now pins fp32
(:mod:`vlnorm_verl.cpu.precision`). This runs the warm-start's own SFT job (``python -m
vlnorm_verl.warmstart.sft_cpu`` with :func:`vlnorm_verl.warmstart.sft.sft_overrides`: the quickstart's 32
CountDown rows, 16 rows x up to 384 tokens per step) for ``--steps`` steps twice - as shipped (fp32) and with
verl's default mixed precision (bf16, what the warm-start ran before) - and prints the time spent in its
``train_batch`` calls (forward, backward, optimizer step), the process's wall time and the ratio.
``--emulate-avx2`` also runs both with oneDNN and ATen limited to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2``), the closest this machine gets to a CPU without native bf16.

Usage: python bench/bench_warmstart.py [--steps 20] [--emulate-avx2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the warm-start's SFT job; "verl-default" drops the fp32 mixed precision and its check (the code before)
RUNNER = r"""
import sys
from vlnorm_verl.cpu import platform
platform.apply_env(); platform.install_if_requested()
from vlnorm_verl.warmstart import sft_cpu
if sys.argv[1] == "verl-default":
    sft_cpu.CPU_DEFAULTS = tuple(d for d in sft_cpu.CPU_DEFAULTS if "mixed_precision" not in d)
    sft_cpu.require_fp32 = lambda *a, **k: None
import time
spent = []
def before_fit(trainer):
    client = trainer.training_client
    inner = client.train_batch
    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)
    client.train_batch = timed
sft_cpu.train(sft_cpu.compose(sys.argv[2:]), before_fit=before_fit)
print(f"TRAIN_BATCH_S {sum(spent):.3f} {len(spent)}")
"""


def run(mode: str, overrides: list[str], env: dict[str, str]) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, mode, *overrides], env=env, capture_output=True, text=True, timeout=3600
    )
    wall = time.perf_counter() - t0
    found = re.search(r"TRAIN_BATCH_S ([0-9.]+) ", proc.stdout)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"{mode} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return float(found.group(1)), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--emulate-avx2", action="store_true")
    args = parser.parse_args()
    from vlnorm_verl.cpu.tiny_model import create_model_dir
    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer
    from vlnorm_verl.warmstart.sft import (
        WarmStartSettings,
        _write_conversations,
        conversations,
        sft_overrides,
        tiny_spec,
    )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "vlnorm_verl.launch.cli", "prepare-data", "countdown", "--out", str(root / "cd"),
             "--train-size", "32", "--test-size", "4", "--four-fraction", "0", "--no-progress"],
            check=True, capture_output=True,
        )  # fmt: skip
        settings = WarmStartSettings(steps=args.steps)
        convs = conversations(root / "cd" / "train.parquet", settings.max_tries)
        _write_conversations(convs, root / "sft.parquet")
        model = create_model_dir(tiny_spec(), build_tokenizer(), root / "cache")
        base_env = {**os.environ, "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
        base_env.pop("VERL_FILE_LOGGER_PATH", None)
        envs = {"native": base_env}
        if args.emulate_avx2:
            envs["AVX2 (emulated)"] = {**base_env, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
        print(f"warm-start SFT, {args.steps} steps x {min(settings.batch_size, len(convs))} rows (<= 384 tokens)")
        print("| CPU | dtype | train steps (s) | per step (s) | process wall (s) |")
        print("|---|---|---|---|---|")
        for i, (cpu, env) in enumerate(envs.items()):
            times = {}
            for label, mode in (("fp32 (now)", "checked"), ("bf16, verl's default (before)", "verl-default")):
                work = root / f"run{i}-{mode}"
                overrides = [*sft_overrides(model, root / "sft.parquet", work, settings, len(convs)),
                             "checkpoint.save_contents=[]", "trainer.logger=[console]"]  # fmt: skip
                train, wall = run(mode, overrides, env)
                times[mode] = train
                print(f"| {cpu} | {label} | {train:.1f} | {train / args.steps:.2f} | {wall:.1f} |", flush=True)
            print(f"| {cpu} | ratio before / now | {times['verl-default'] / times['checked']:.2f}x | | |", flush=True)


if __name__ == "__main__":
    main()
