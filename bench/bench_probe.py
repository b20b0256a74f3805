"""Cost of ``vlnorm-verl probe`` (prints figures; not a test).

1. Statistics alone (``stats.analyze``, default settings) on synthetic gradients: N responses x D dimensions.
2. Per-response gradient on the model=tiny Qwen2 (random init): exact vs CountSketch (k = 2048 per block).
3. The whole probe on that model: 32 prompts x 8 responses, cap 256, A_i = 1 (sampling, gradients, statistics).

Usage: python bench/bench_probe.py [--threads 1] [--skip-model]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "probe"))


def bench_stats() -> None:
    from probe_testlib import synthetic

    from vlnorm_verl.probe import stats

    for n, dim in ((256, 256), (1024, 256), (2000, 48)):
        lengths, grads = synthetic(1.0, n=n, dim=dim)
        data = stats.from_vectors(lengths, grads)
        t = time.perf_counter()
        a = stats.analyze(data)
        print(
            f"stats N={n:5d} D={dim:4d}: {time.perf_counter() - t:6.1f} s "
            f"(beta {a.fit.beta:.3f}, alpha {a.choice.alpha})"
        )


def bench_model(tmp: Path) -> None:
    from probe_testlib import write_countdown_parquet
    from transformers import AutoModelForCausalLM

    from vlnorm_verl.cpu.tiny_model import TinyModelSpec, create_model_dir
    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer
    from vlnorm_verl.probe import api, sampling
    from vlnorm_verl.probe.gradients import ResponseItem, compute_gradients

    model_dir = create_model_dir(TinyModelSpec(), build_tokenizer(), tmp / "cache")
    parquet = write_countdown_parquet(tmp / "train.parquet", rows=32)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    rng = np.random.default_rng(0)
    items = [ResponseItem(tuple(range(3, 60)), tuple(rng.integers(3, 500, 200).tolist()), 1.0) for _ in range(32)]
    for mode in ("exact", "sketch"):
        gs = compute_gradients(model, items, 1.0, projection=mode)
        print(
            f"gradient per response ({mode}, {sum(gs.block_params.values()):,} params, 257 tokens): "
            f"{gs.seconds_per_response * 1000:.1f} ms"
        )
    t = time.perf_counter()
    result = api.probe_model(
        str(model_dir),
        data=parquet,
        sampling=sampling.SamplingSettings(n=8, num_prompts=32, max_response_length=256),
        advantage="one",
        device="cpu",
    )
    info = result.info
    print(
        f"probe, 256 responses: {time.perf_counter() - t:.1f} s (sampling {info['sampling_s']:.1f} s, gradients "
        f"{info['gradient_s']:.1f} s); beta {result.analysis.fit.beta:.3f} {result.analysis.fit.beta_ci}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_stats()
    if not args.skip_model:
        with tempfile.TemporaryDirectory() as tmp:
            bench_model(Path(tmp))


if __name__ == "__main__":
    main()
