"""Server-style throughput of the ``hf`` rollout engine: concurrent requests vs one at a time (prints figures).

A tiny random Qwen2 sized like the project's tiny model (hidden 128, 2 layers, 4 heads, intermediate 512, vocab
1024), prompts of 140-159 tokens, 32 new tokens each, sampling at temperature 1 with a seed per request. No EOS id
is set (a random model's EOS would end responses at random), so every response has exactly 32 tokens and serial and
concurrent runs do identical work; throughput counts the tokens generated.

For C in 1, 8, 16, 32: the C requests sent together through ``HFGenerationEngine.generate`` (``asyncio.gather``,
as verl's agent loop does) vs the same C requests awaited one after another; generated tokens/s (median of
``--repeats`` runs, interleaved) and the ratio to serial. Target: >= 4x serial at 16 concurrent requests.

Usage: python bench/bench_hf_rollout.py [--threads 1] [--repeats 3] [--new-tokens 32] [--prompt-len 150]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import torch

from vlnorm_verl.cpu.rollout.hf_engine import HFGenerationEngine, SamplingSettings
from vlnorm_verl.cpu.tiny_model import random_qwen2

VOCAB = 1024


def build_engine(device: str | None) -> HFGenerationEngine:
    model = random_qwen2(
        0,
        vocab_size=VOCAB,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
    )
    return HFGenerationEngine(model, eos_token_ids=[], pad_token_id=0, device=device)


def requests(n: int, prompt_len: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(0)
    return [torch.randint(1, VOCAB, (prompt_len - 10 + i % 20,), generator=g).tolist() for i in range(n)]


async def concurrent(engine: HFGenerationEngine, prompts: list[list[int]], new: int) -> int:
    settings = [SamplingSettings(temperature=1.0, seed=i) for i in range(len(prompts))]
    out = await asyncio.gather(*[engine.generate(p, new, s) for p, s in zip(prompts, settings, strict=True)])
    return sum(len(r.token_ids) for r in out)


async def serial(engine: HFGenerationEngine, prompts: list[list[int]], new: int) -> int:
    total = 0
    for i, p in enumerate(prompts):
        total += len((await engine.generate(p, new, SamplingSettings(temperature=1.0, seed=i))).token_ids)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (0 = torch's default; 1 is steadiest on a shared CPU)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=150)
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16, 32])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = build_engine(args.device)
    asyncio.run(concurrent(engine, requests(4, args.prompt_len), 4))  # warm-up
    print(
        f"\n[hf rollout engine] tiny Qwen2 (hidden 128, 2 layers, vocab {VOCAB}), prompts ~{args.prompt_len} tokens,"
        f" {args.new_tokens} new tokens (temperature 1, no EOS stop), {engine.device}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats}"
    )
    print(f"  {'requests':>8s} {'serial tok/s':>13s} {'concurrent tok/s':>17s} {'ratio':>7s} {'batches':>8s}")
    for c in args.concurrency:
        prompts = requests(c, args.prompt_len)
        samples: dict[str, list[float]] = {"serial": [], "concurrent": []}
        tokens: dict[str, int] = {}
        batches = 0
        for _ in range(args.repeats):
            for name, fn in (("serial", serial), ("concurrent", concurrent)):
                before = engine.stats["batches"]
                start = time.perf_counter()
                tokens[name] = asyncio.run(fn(engine, prompts, args.new_tokens))
                samples[name].append(time.perf_counter() - start)
                if name == "concurrent":
                    batches = engine.stats["batches"] - before
        rate = {k: tokens[k] / statistics.median(v) for k, v in samples.items()}
        print(
            f"  {c:8d} {rate['serial']:13.0f} {rate['concurrent']:17.0f} "
            f"{rate['concurrent'] / rate['serial']:6.2f}x {batches:8d}"
        )


if __name__ == "__main__":
    main()
