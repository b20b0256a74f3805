"""Per-response gradients: the CountSketch projection and the exact per-block Gram matrices on a tiny Qwen2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from probe_testlib import tiny_model_dir

from vlnorm_verl.probe.errors import ProbeError
from vlnorm_verl.probe.gradients import CountSketch, ResponseItem, block_of, compute_gradients


def test_countsketch_preserves_inner_products_in_expectation():
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(3000, generator=gen)
    v = 0.5 * u + torch.randn(3000, generator=gen)
    dots, norms = [], []
    for seed in range(300):
        sk = CountSketch(32, seed, torch.device("cpu"))
        su, sv = torch.zeros(32), torch.zeros(32)
        sk.add(su, "w", u)
        sk.add(sv, "w", v)
        dots.append(float(su @ sv))
        norms.append(float(su @ su))
    dots, norms = np.array(dots), np.array(norms)
    exact_dot, exact_norm = float(u @ v), float(u @ u)
    assert abs(dots.mean() - exact_dot) < 4 * dots.std() / np.sqrt(dots.size)
    assert abs(norms.mean() - exact_norm) < 4 * norms.std() / np.sqrt(norms.size)
    # relative error of one squared norm is about sqrt(2/k)
    assert norms.std() / exact_norm == pytest.approx(np.sqrt(2 / 32), rel=0.3)


def test_countsketch_is_fixed_and_linear():
    u, v = torch.randn(1000), torch.randn(1000)
    a, b = CountSketch(64, 7, torch.device("cpu")), CountSketch(64, 7, torch.device("cpu"), cache_elements=0)
    outs = []
    for sk in (a, b):
        s_sum, s_u, s_v = torch.zeros(64), torch.zeros(64), torch.zeros(64)
        sk.add(s_sum, "p", u + v)
        sk.add(s_u, "p", u)
        sk.add(s_v, "p", v)
        torch.testing.assert_close(s_sum, s_u + s_v)
        outs.append(s_u)
    torch.testing.assert_close(outs[0], outs[1])  # cached and regenerated hashes agree
    c = CountSketch(64, 8, torch.device("cpu"))
    other = torch.zeros(64)
    c.add(other, "p", u)
    assert not torch.allclose(other, outs[0])  # another seed, another projection


def test_block_names():
    assert block_of("model.embed_tokens.weight") == "embed"
    assert block_of("lm_head.weight") == "lm_head"
    assert block_of("lm_head.weight", tied=True) == "embed"
    assert block_of("model.layers.0.self_attn.q_proj.weight") == "attn"
    assert block_of("model.layers.1.mlp.down_proj.weight") == "mlp"
    assert block_of("model.layers.1.input_layernorm.weight") == "norm"
    assert block_of("model.norm.weight") == "norm"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model", hidden=32)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    return model, AutoTokenizer.from_pretrained(path)


def _items(tok, n=12, seed=0):
    rng = np.random.default_rng(seed)
    eos = tok.eos_token_id
    prompt = tuple(tok("Using the numbers [1, 2, 3], create", add_special_tokens=False)["input_ids"])
    items = []
    for i in range(n):
        body = rng.integers(3, len(tok) - 1, int(rng.integers(1, 30))).tolist()
        items.append(ResponseItem(prompt, tuple(body + [eos]), float(rng.normal()) if i != 3 else 0.0))
    return items


def _direct_gradient(model, item, temperature):
    model.zero_grad(set_to_none=True)
    ids = torch.tensor([list(item.prompt_ids) + list(item.response_ids)])
    logits = model(input_ids=ids).logits[0]  # full forward, no logits_to_keep
    n = len(item.response_ids)
    logp = torch.log_softmax(logits[-n - 1 : -1] / temperature, dim=-1)
    (item.advantage * logp[torch.arange(n), ids[0, -n:]].sum()).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def test_exact_gradients_match_autograd(tiny):
    model, tok = tiny
    items = _items(tok)
    gs = compute_gradients(model, items, temperature=0.7, projection="exact")
    assert gs.mode == "exact" and set(gs.grams) == {"embed", "attn", "mlp", "norm", "lm_head"}
    np.testing.assert_array_equal(gs.lengths, [len(i.response_ids) for i in items])  # EOS counted
    assert not gs.nonzero[3] and np.all(gs.gram()[3] == 0)  # zero advantage: g = 0, no backward
    g0, g5 = _direct_gradient(model, items[0], 0.7), _direct_gradient(model, items[5], 0.7)
    for block in gs.grams:
        names = [n for n in g0 if block_of(n) == block]
        dot = sum(float((g0[n].double() * g5[n].double()).sum()) for n in names)
        sq = sum(float((g0[n].double() ** 2).sum()) for n in names)
        assert gs.grams[block][0, 0] == pytest.approx(sq, rel=1e-5)
        assert gs.grams[block][0, 5] == pytest.approx(dot, rel=1e-4, abs=1e-6 * sq)
    # negative control: the temperature matters (the score scales like 1/tau)
    g0_hot = _direct_gradient(model, items[0], 1.0)
    sq_hot = sum(float((g.double() ** 2).sum()) for g in g0_hot.values())
    assert abs(sq_hot - gs.gram()[0, 0]) > 0.05 * sq_hot
    assert np.allclose(gs.gram(), sum(gs.grams.values()))
    assert np.allclose(gs.gram(exclude=("embed",)), gs.gram() - gs.grams["embed"])


def test_sketched_gram_is_close_to_exact(tiny):
    model, tok = tiny
    items = _items(tok, n=10, seed=1)
    exact = compute_gradients(model, items, 1.0, projection="exact")
    sketch = compute_gradients(model, items, 1.0, projection="sketch", sketch_dim=2048, seed=3)
    assert sketch.mode == "sketch" and sketch.sketch_dim == 2048
    for block in ("embed", "mlp", "lm_head"):
        d_exact, d_sketch = np.diag(exact.grams[block]), np.diag(sketch.grams[block])
        nz = d_exact > 0
        rel = np.abs(d_sketch[nz] / d_exact[nz] - 1)
        assert rel.max() < 6 * np.sqrt(2 / 2048), block  # about sqrt(2/k) per entry
    # the whole matrix: off-diagonal inner products too, relative to the norms
    e, s = exact.gram(), sketch.gram()
    scale = np.sqrt(np.outer(np.diag(e), np.diag(e))) + 1e-30
    assert np.max(np.abs(s - e) / scale) < 0.2


def test_auto_projection_and_limits(tiny):
    model, tok = tiny
    items = _items(tok, n=4)
    assert compute_gradients(model, items, 1.0, projection="auto").mode == "exact"
    assert compute_gradients(model, items, 1.0, projection="auto", exact_max_bytes=1000, sketch_dim=64).mode == (
        "sketch"
    )
    with pytest.raises(ProbeError, match="over the .* limit: use --projection sketch"):
        compute_gradients(model, items, 1.0, projection="exact", exact_max_bytes=1000)
    with pytest.raises(ProbeError, match="temperature"):
        compute_gradients(model, items, 0.0)
    with pytest.raises(ProbeError, match="empty"):
        compute_gradients(model, [ResponseItem((1, 2), (), 1.0)], 1.0)
