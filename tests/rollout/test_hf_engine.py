"""The ``hf`` rollout's generation engine against independent recomputations (no verl, no Ray).

Batched == one at a time (greedy and seeded sampling), log-probs == one plain forward pass (no cache, no padding),
truncated sampling against the distribution computed here, EOS/length stopping, request batching through
``generate`` (incl. a request arriving while a batch runs), weight loading, and refused requests.
"""

from __future__ import annotations

import asyncio
import math
import threading

import pytest
import torch

from vlnorm_verl.cpu.rollout.hf_engine import GenerationResult, HFGenerationEngine, SamplingSettings
from vlnorm_verl.cpu.tiny_model import random_qwen2

VOCAB, PAD = 96, 0
CONFIG = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    initializer_range=0.1,  # logits spread enough that argmax and sampling are not decided by rounding
)
GREEDY = SamplingSettings(temperature=0)


def _model(seed: int = 0, attn: str = "sdpa") -> torch.nn.Module:
    return random_qwen2(seed, attn_implementation=attn, **CONFIG).eval()


def _engine(seed: int = 0, attn: str = "sdpa", **kwargs) -> HFGenerationEngine:
    kwargs = {"eos_token_ids": [], "pad_token_id": PAD, "device": "cpu", **kwargs}
    return HFGenerationEngine(_model(seed, attn), **kwargs)


@pytest.fixture(scope="module")
def engine() -> HFGenerationEngine:
    return _engine()


def _prompts(n: int = 8, seed: int = 1, step: int = 5) -> list[list[int]]:
    """``n`` prompts of lengths 3, 3 + step, ... (8 prompts: 3..38), ids in [1, VOCAB - 2]."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, VOCAB - 1, (3 + step * i,), generator=g).tolist() for i in range(n)]


def _tokens(results: list[GenerationResult]) -> list[list[int]]:
    return [r.token_ids for r in results]


def _reference_log_probs(model, prompt: list[int], response: list[int], temperature: float) -> torch.Tensor:
    """log_softmax(logits / temperature) of ``response`` from one full forward pass (no cache, no padding)."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + response])).logits[0, len(prompt) - 1 : -1].float()
    scaled = logits / temperature if temperature > 0 else logits
    return torch.log_softmax(scaled, dim=-1).gather(1, torch.tensor(response).unsqueeze(1)).squeeze(1)


def _next_token_probs(model, prompt: list[int], temperature: float) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(model(torch.tensor([prompt])).logits[0, -1].double() / temperature, dim=-1)


def _truncate(probs: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """The reference truncation, token by token: top-k most likely, then the smallest prefix reaching top_p."""
    order = sorted(range(len(probs)), key=lambda t: -float(probs[t]))[: top_k if top_k > 0 else len(probs)]
    kept, mass, total = [], 0.0, float(probs[order].sum())
    for t in order:
        kept.append(t)
        mass += float(probs[t]) / total
        if mass >= top_p:
            break
    out = torch.zeros_like(probs)
    out[kept] = probs[kept]
    return out / out.sum()


def _chi2_critical(df: int, z: float = 4.0) -> float:
    """Upper chi-square quantile (Wilson-Hilferty); z = 4 is a ~3e-5 false-alarm rate."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _gpt2_engine() -> HFGenerationEngine:
    """GPT-2 has learned absolute positions (RoPE is shift-invariant): wrong position ids would show here."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=VOCAB, n_positions=128, n_embd=32, n_layer=2, n_head=4, initializer_range=0.1,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=PAD, eos_token_id=PAD,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(config).eval()
    return HFGenerationEngine(model, eos_token_ids=[], pad_token_id=PAD, device="cpu")


# -- batching does not change a request's output --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["qwen2-sdpa", "qwen2-eager", "gpt2"])
def test_greedy_batched_equals_one_at_a_time(kind):
    engine = _gpt2_engine() if kind == "gpt2" else _engine(attn=kind.split("-")[1])
    prompts = _prompts()  # lengths 3..38: up to 35 columns of left padding
    batched = engine.generate_batch(prompts, 12, GREEDY)
    alone = [engine.generate_batch([p], 12, GREEDY)[0] for p in prompts]
    assert _tokens(batched) == _tokens(alone)
    for prompt, b, a in zip(prompts, batched, alone, strict=True):
        torch.testing.assert_close(torch.tensor(b.log_probs), torch.tensor(a.log_probs), atol=1e-5, rtol=0)
        expected = _reference_log_probs(engine.model, prompt, b.token_ids, 0.0)
        torch.testing.assert_close(torch.tensor(b.log_probs), expected, atol=1e-5, rtol=0)
    assert engine.stats["max_batch_size_seen"] == 8 and engine.stats["batches"] == 9
    assert engine.to("cpu") is engine
    assert engine.generate_batch(prompts[:1], 12, GREEDY)[0].token_ids == batched[0].token_ids


def test_seeded_sampling_does_not_depend_on_the_batch(engine):
    prompts = _prompts()
    settings = [
        SamplingSettings(temperature=1.0, seed=100),
        GREEDY,
        SamplingSettings(temperature=0.7, top_k=5, seed=101),
        SamplingSettings(temperature=1.2, top_p=0.8, seed=102),
        SamplingSettings(temperature=1.0, top_k=10, top_p=0.9, seed=103),
        SamplingSettings(temperature=1.0, seed=104),
        SamplingSettings(temperature=1.0, top_k=0, seed=105),
        SamplingSettings(temperature=0.9, seed=106),
    ]
    limits = [16, 4, 16, 9, 16, 1, 16, 12]  # rows leave the batch at different steps
    batched = engine.generate_batch(prompts, limits, settings)
    alone = [engine.generate_batch([p], m, s)[0] for p, m, s in zip(prompts, limits, settings, strict=True)]
    assert _tokens(batched) == _tokens(alone)
    assert [len(r.token_ids) for r in batched] == limits
    reordered = engine.generate_batch(prompts[::-1], limits[::-1], settings[::-1])[::-1]
    assert _tokens(reordered) == _tokens(batched)
    other = engine.generate_batch([prompts[0]], 16, SamplingSettings(temperature=1.0, seed=999))[0]
    assert other.token_ids != batched[0].token_ids
    unseeded = engine.generate_batch([prompts[0]] * 2, 16, SamplingSettings(temperature=1.0))
    assert unseeded[0].token_ids != unseeded[1].token_ids  # each seedless request draws a fresh seed


# -- log-probs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "settings",
    [
        GREEDY,
        SamplingSettings(temperature=0.7, seed=1),
        SamplingSettings(temperature=1.0, seed=2),
        SamplingSettings(temperature=1.5, seed=3),
        SamplingSettings(temperature=0.8, top_k=5, top_p=0.9, seed=4),  # truncation does not change the log-probs
    ],
    ids=["greedy", "t0.7", "t1.0", "t1.5", "t0.8-topk-topp"],
)
def test_log_probs_equal_a_full_forward_pass(engine, settings):
    prompts = _prompts(6, seed=2, step=7)
    for prompt, result in zip(prompts, engine.generate_batch(prompts, 20, settings), strict=True):
        expected = _reference_log_probs(engine.model, prompt, result.token_ids, settings.temperature)
        torch.testing.assert_close(torch.tensor(result.log_probs), expected, atol=1e-5, rtol=0)


# -- truncated sampling ---------------------------------------------------------------------------------------
def test_top_k_1_and_tiny_top_p_are_greedy(engine):
    prompts = _prompts(4, seed=5)
    greedy = _tokens(engine.generate_batch(prompts, 10, GREEDY))
    k1 = engine.generate_batch(prompts, 10, [SamplingSettings(temperature=1.3, top_k=1, seed=i) for i in range(4)])
    p0 = engine.generate_batch(prompts, 10, [SamplingSettings(temperature=1.3, top_p=1e-6, seed=i) for i in range(4)])
    assert _tokens(k1) == greedy
    assert _tokens(p0) == greedy


@pytest.mark.parametrize(("top_k", "top_p"), [(-1, 1.0), (6, 1.0), (-1, 0.5), (8, 0.7)])
def test_one_step_frequencies_match_the_truncated_distribution(top_k, top_p):
    engine = _engine(max_batch_size=1000)
    prompt, temperature, n = _prompts(1, seed=6)[0], 1.5, 2000
    expected = _truncate(_next_token_probs(engine.model, prompt, temperature), top_k, top_p)
    settings = [SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, seed=s) for s in range(n)]
    drawn = torch.tensor([r.token_ids[0] for r in engine.generate_batch([prompt] * n, 1, settings)])
    counts = torch.bincount(drawn, minlength=VOCAB).double()
    assert counts[expected == 0].sum() == 0, "a truncated-away token was drawn"
    support = expected > 0
    assert 1 < int(support.sum()) <= (top_k if top_k > 0 else VOCAB)
    # chi-square over the support, pooling rare tokens (expected count < 5) into one cell
    exp_counts = n * expected[support]
    obs = counts[support]
    rare = exp_counts < 5
    cells_e = torch.cat([exp_counts[~rare], exp_counts[rare].sum().reshape(1)])
    cells_o = torch.cat([obs[~rare], obs[rare].sum().reshape(1)])
    keep = cells_e > 0
    chi2 = float(((cells_o[keep] - cells_e[keep]) ** 2 / cells_e[keep]).sum())
    assert chi2 < _chi2_critical(int(keep.sum()) - 1), (chi2, int(keep.sum()))


# -- stopping ---------------------------------------------------------------------------------------------------
def test_stops_at_eos_with_the_eos_included_or_at_the_cap():
    prompts = _prompts(3, seed=7)
    free = _engine().generate_batch(prompts, 10, GREEDY)
    eos = free[0].token_ids[3]  # make the 4th greedy token of prompt 0 the EOS
    engine = _engine(eos_token_ids=[eos, VOCAB - 1])  # several EOS ids: any of them stops
    out = engine.generate_batch(prompts, [10, 10, 2], GREEDY)
    for result, reference, cap in zip(out, free, [10, 10, 2], strict=True):
        ref = reference.token_ids[:cap]
        cut = ref.index(eos) + 1 if eos in ref else len(ref)
        assert result.token_ids == ref[:cut]
        assert result.finish_reason == ("stop" if eos in ref else "length")
        torch.testing.assert_close(result.log_probs, reference.log_probs[:cut], atol=1e-5, rtol=0)
    assert out[0].token_ids[-1] == eos and len(out[0].token_ids) <= 4 and out[0].finish_reason == "stop"
    assert out[2].token_ids == free[2].token_ids[:2] and out[2].finish_reason == "length"


# -- queued, batched serving ------------------------------------------------------------------------------------
def test_concurrent_generate_calls_are_batched_and_match_generate_batch(engine):
    prompts = _prompts(16, seed=8, step=2)
    settings = [SamplingSettings(temperature=1.0, seed=50 + i) if i % 4 else GREEDY for i in range(16)]
    expected = engine.generate_batch(prompts, 12, settings)
    before = dict(engine.stats)

    async def main() -> list[GenerationResult]:
        return await asyncio.gather(*[engine.generate(p, 12, s) for p, s in zip(prompts, settings, strict=True)])

    got = asyncio.run(main())
    assert _tokens(got) == _tokens(expected)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.log_probs, e.log_probs, atol=1e-5, rtol=0)
    assert engine.stats["requests"] - before["requests"] == 16
    assert engine.stats["batches"] - before["batches"] < 16
    # a second event loop (e.g. a fresh asyncio.run) gets its own background task
    again = asyncio.run(main())
    assert _tokens(again) == _tokens(expected)


def _gated(engine: HFGenerationEngine) -> tuple[threading.Event, threading.Event]:
    """Make the model's next forward wait for ``gate``; ``entered`` is set when it starts waiting."""
    gate, entered = threading.Event(), threading.Event()

    def hook(module, args):
        if not gate.is_set():
            entered.set()
            gate.wait(30)

    engine.model.register_forward_pre_hook(hook)
    return gate, entered


def test_a_request_arriving_during_a_batch_runs_in_the_next_batch():
    engine = _engine()
    prompts = _prompts(5, seed=9)
    settings = [SamplingSettings(temperature=1.0, seed=i) for i in range(5)]
    expected = _engine().generate_batch(prompts, 6, settings)
    gate, entered = _gated(engine)

    async def main() -> list[GenerationResult]:
        first = [
            asyncio.ensure_future(engine.generate(p, 6, s)) for p, s in zip(prompts[:3], settings[:3], strict=True)
        ]
        assert await asyncio.wait_for(asyncio.to_thread(entered.wait, 20), 25)  # batch 1 is in its prefill...
        late = [asyncio.ensure_future(engine.generate(p, 6, s)) for p, s in zip(prompts[3:], settings[3:], strict=True)]
        await asyncio.sleep(0.05)  # ...and the event loop is free meanwhile
        assert not any(f.done() for f in first + late)
        gate.set()
        return await asyncio.gather(*first, *late)

    got = asyncio.run(main())
    assert _tokens(got) == _tokens(expected)
    assert engine.stats["batches"] == 2 and engine.stats["requests"] == 5
    assert engine.stats["max_batch_size_seen"] == 3 and engine.stats["last_batch_size"] == 2


def test_generate_refuses_a_bad_request_at_the_call():
    engine = _engine()
    with pytest.raises(ValueError, match="max_new_tokens"):
        asyncio.run(engine.generate([1, 2], 0, GREEDY))
    assert engine.stats["requests"] == 0


# -- weights ----------------------------------------------------------------------------------------------------
def test_load_weights_makes_the_engine_generate_as_the_other_model():
    engine, reference = _engine(seed=0), _engine(seed=1)
    prompts = _prompts(3, seed=10)
    settings = [GREEDY, SamplingSettings(temperature=1.0, seed=3), SamplingSettings(temperature=0.8, top_k=4, seed=4)]
    before = engine.generate_batch(prompts, 8, settings)
    want = reference.generate_batch(prompts, 8, settings)
    assert _tokens(before) != _tokens(want)
    state = _model(seed=1).state_dict()
    assert engine.load_weights(state.items()) == len(state)
    got = engine.generate_batch(prompts, 8, settings)
    assert _tokens(got) == _tokens(want)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g.log_probs, w.log_probs, atol=1e-6, rtol=0)


def test_load_weights_is_strict_and_all_or_nothing():
    engine = _engine()
    head = engine.model.lm_head.weight.clone()
    good = ("lm_head.weight", torch.zeros_like(head))
    with pytest.raises(ValueError, match="no.such.weight"):
        engine.load_weights([good, ("no.such.weight", torch.zeros(1))])
    with pytest.raises(ValueError, match=r"model\.norm\.weight"):
        engine.load_weights([good, ("model.norm.weight", torch.zeros(3, 3))])
    assert torch.equal(engine.model.lm_head.weight, head)  # nothing was copied


def test_load_weights_waits_for_the_running_batch():
    engine, old = _engine(seed=0), _engine(seed=0)
    prompts = _prompts(2, seed=11)
    expected = old.generate_batch(prompts, 5, GREEDY)  # the batch runs with the old weights throughout
    gate, entered = _gated(engine)
    state = _model(seed=1).state_dict()
    results: list = []
    batch = threading.Thread(target=lambda: results.append(engine.generate_batch(prompts, 5, GREEDY)))
    batch.start()
    assert entered.wait(20)
    loader = threading.Thread(target=lambda: results.append(engine.load_weights(state.items())))
    loader.start()
    loader.join(0.1)
    assert loader.is_alive()  # blocked behind the batch
    gate.set()
    batch.join(30)
    loader.join(30)
    assert _tokens(results[0]) == _tokens(expected) and results[1] == len(state)
    assert torch.equal(engine.model.lm_head.weight, state["lm_head.weight"])


# -- refused requests -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("prompt", "max_new", "match"),
    [([], 4, "empty prompt"), ([VOCAB + 5], 4, "outside the vocab"), ([-1, 2], 4, "outside"), ([1, 2], 0, "max_new")],
)
def test_bad_requests_are_refused(engine, prompt, max_new, match):
    with pytest.raises(ValueError, match=match):
        engine.generate_batch([prompt], max_new, GREEDY)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": -1.0}, "temperature"),
        ({"repetition_penalty": 1.1}, "repetition_penalty"),
        ({"top_k": -2}, "top_k"),
    ],
)
def test_bad_settings_are_refused(fields, match):
    with pytest.raises(ValueError, match=match):
        SamplingSettings(**fields)
