"""Per-response policy-gradient vectors from a causal LM, kept as per-block Gram matrices.

For response i (prompt tokens p, response tokens y_1..y_L, the EOS token included when the response ended) with
advantage A_i::

    g_i = grad_theta ( A_i * sum_{t=1..L} log pi_theta(y_t | p, y_<t) ),   pi_theta = softmax(logits / tau)

(tau: the sampling temperature, as verl's actor computes log-probs). One forward and backward pass per response;
rows with A_i = 0 have g_i = 0 and cost nothing.

Parameter blocks: every parameter tensor belongs to one of ``embed`` (the input embedding), ``attn``, ``mlp``,
``norm``, ``lm_head`` (the output layer; part of ``embed`` when the embeddings are tied) and ``other``. For each
block b the probe keeps the Gram matrix G_b = [g_{i,b} . g_{j,b}] (N x N, float64); the whole model's is
sum_b G_b and "without the input embedding" is sum_{b != embed} G_b, so all statistics (which only need inner
products) come per block for free.

Two ways to get the block vectors:

- ``exact``: the flattened gradient itself (N x P_b float32 in host memory; for small models).
- ``sketch``: a fixed random projection to k dimensions per block, a CountSketch: every coordinate p of a
  parameter tensor goes to bucket h_p in [0, k) with sign s_p = +-1 (drawn from a generator seeded with the seed,
  the tensor's name and the chunk), y = sum_p s_p g_p e_{h_p}. For any vectors u, v: E[Su . Sv] = u . v (the
  signs of distinct coordinates are independent with mean 0), so squared norms and inner products are preserved
  in expectation, with relative error about sqrt(2/k). The projection is linear and costs O(P) per response (no
  k x P matrix is ever formed); it runs on the model's device (the GPU when there is one) and the hashes are
  cached up to ``cache_elements`` coordinates, regenerated per response beyond that (streaming: the P-dim
  gradient is never copied to the host).

``auto`` picks exact when N x P x 4 bytes fits ``exact_max_bytes`` and the sketch otherwise.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vlnorm_verl.probe.errors import ProbeError

BLOCKS = ("embed", "attn", "mlp", "norm", "lm_head", "other")
EMBED_BLOCK = "embed"
CHUNK = 1 << 22  # coordinates per CountSketch chunk (bounds temporary memory)


def block_of(name: str, tied: bool = False) -> str:
    """The block of parameter ``name`` (Hugging Face naming: embed_tokens, self_attn, mlp, *norm*, lm_head)."""
    lowered = name.lower()
    if "embed_tokens" in lowered or "wte" in lowered or "word_embeddings" in lowered:
        return EMBED_BLOCK
    if lowered.startswith("lm_head") or ".lm_head" in lowered:
        return EMBED_BLOCK if tied else "lm_head"
    if "attn" in lowered or "attention" in lowered:
        return "attn"
    if "mlp" in lowered or "feed_forward" in lowered:
        return "mlp"
    if "norm" in lowered or "ln_" in lowered:
        return "norm"
    return "other"


@dataclass(frozen=True)
class ResponseItem:
    """One response to differentiate: token ids of the prompt and of the response (EOS included if it ended)."""

    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    advantage: float


@dataclass
class GradientSet:
    """Per-block Gram matrices of the N response gradients, with the bookkeeping the report prints."""

    lengths: np.ndarray  # (N,)
    grams: dict[str, np.ndarray]  # block -> (N, N) float64
    nonzero: np.ndarray  # (N,) bool
    block_params: dict[str, int]  # block -> number of parameters
    mode: str  # exact | sketch
    sketch_dim: int | None
    device: str
    seconds_per_response: float
    tied_embeddings: bool
    notes: list[str] = field(default_factory=list)

    def gram(self, exclude: Sequence[str] = ()) -> np.ndarray:
        names = [b for b in self.grams if b not in exclude]
        if not names:
            raise ProbeError(f"no parameter block left after excluding {list(exclude)}")
        return sum((self.grams[b] for b in names), np.zeros_like(next(iter(self.grams.values()))))


class CountSketch:
    """The fixed random projection of the module docstring (seeded; one per device)."""

    def __init__(self, dim: int, seed: int, device: torch.device, cache_elements: int = 1 << 25) -> None:
        if dim < 1:
            raise ProbeError(f"the projection dimension must be >= 1, got {dim}")
        self.dim = int(dim)
        self.seed = int(seed)
        self.device = device
        self.cache_left = int(cache_elements)
        self._cache: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def _hashes(self, name: str, chunk: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (name, chunk)
        if key in self._cache:
            return self._cache[key]
        gen = torch.Generator(device=self.device)
        gen.manual_seed((self.seed * 1_000_003 + zlib.crc32(name.encode()) * 65_537 + chunk) % (1 << 62))
        buckets = torch.randint(0, self.dim, (size,), generator=gen, device=self.device)
        signs = torch.randint(0, 2, (size,), generator=gen, device=self.device).to(torch.float32) * 2.0 - 1.0
        if self.cache_left >= size:
            self._cache[key] = (buckets, signs)
            self.cache_left -= size
        return buckets, signs

    def add(self, out: torch.Tensor, name: str, grad: torch.Tensor) -> None:
        """out (dim,) += S grad (grad: any shape; processed in chunks of CHUNK coordinates)."""
        flat = grad.reshape(-1)
        for c, start in enumerate(range(0, flat.numel(), CHUNK)):
            part = flat[start : start + CHUNK].to(torch.float32)
            buckets, signs = self._hashes(name, c, part.numel())
            out.index_add_(0, buckets, part * signs)


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ProbeError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ProbeError("--device cuda was asked for but no GPU is visible to torch")
    return dev


def response_log_prob(model: Any, prompt_ids: Sequence[int], response_ids: Sequence[int], temperature: float):
    """sum_t log pi(y_t | ...) of the response under softmax(logits / temperature) (a scalar with grad)."""
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt_ids) + list(response_ids)], dtype=torch.long, device=device)
    n_resp = len(response_ids)
    try:
        out = model(input_ids=ids, logits_to_keep=n_resp + 1).logits[0]
    except TypeError:  # a model without logits_to_keep
        out = model(input_ids=ids).logits[0]
    logits = out[-(n_resp + 1) : -1]  # position t predicts token t + 1 (also right if the keyword was ignored)
    logp = torch.log_softmax(logits.float() / float(temperature), dim=-1)
    targets = ids[0, -n_resp:]
    return logp.gather(-1, targets[:, None]).sum()


def compute_gradients(
    model: Any,
    sequences: Sequence[ResponseItem],
    temperature: float,
    projection: str = "auto",
    sketch_dim: int = 2048,
    seed: int = 0,
    exact_max_bytes: int = 1 << 30,
    cache_elements: int = 1 << 25,
    progress: Callable[[int, int], None] | None = None,
) -> GradientSet:
    """Gram matrices per block of g_i for ``sequences`` (module docstring). ``projection``: auto, exact or sketch."""
    if not sequences:
        raise ProbeError("no responses to differentiate")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ProbeError(f"temperature must be > 0, got {temperature}")
    for i, s in enumerate(sequences):
        if len(s.response_ids) == 0:
            raise ProbeError(f"response {i} is empty: every response has at least one token (EOS counted)")
        if len(s.prompt_ids) == 0:
            raise ProbeError(f"response {i} has an empty prompt")
    device = next(model.parameters()).device
    tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))
    params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    blocks: dict[str, list[tuple[str, torch.nn.Parameter]]] = {}
    for name, p in params:
        blocks.setdefault(block_of(name, tied), []).append((name, p))
    sizes = {b: sum(p.numel() for _, p in ps) for b, ps in blocks.items()}
    n = len(sequences)
    total = sum(sizes.values())
    if projection == "auto":
        projection = "exact" if n * total * 4 <= exact_max_bytes else "sketch"
    if projection not in ("exact", "sketch"):
        raise ProbeError(f"projection must be auto, exact or sketch, got {projection!r}")
    if projection == "exact" and n * total * 4 > exact_max_bytes:
        raise ProbeError(
            f"exact gradients need {n * total * 4 / 2**30:.1f} GiB ({n} responses x {total:,} parameters x 4 bytes),"
            f" over the {exact_max_bytes / 2**30:.1f} GiB limit: use --projection sketch"
        )
    sketch = CountSketch(sketch_dim, seed, device, cache_elements) if projection == "sketch" else None
    dims = {b: (sizes[b] if sketch is None else sketch.dim) for b in blocks}
    store = {b: torch.zeros((n, dims[b]), dtype=torch.float32) for b in blocks}
    nonzero = np.zeros(n, dtype=bool)
    was_training = model.training
    model.eval()
    started = time.perf_counter()
    done = 0
    try:
        for i, seq in enumerate(sequences):
            if seq.advantage == 0:
                continue
            model.zero_grad(set_to_none=True)
            loss = float(seq.advantage) * response_log_prob(model, seq.prompt_ids, seq.response_ids, temperature)
            if not torch.isfinite(loss):
                raise ProbeError(f"response {i}: the log-probability is not finite (check the model and tokens)")
            loss.backward()
            for b, ps in blocks.items():
                if sketch is None:
                    row = torch.cat(
                        [
                            (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float().cpu()
                            for _, p in ps
                        ]
                    )
                else:
                    row = torch.zeros(sketch.dim, dtype=torch.float32, device=device)
                    for name, p in ps:
                        if p.grad is not None:
                            sketch.add(row, name, p.grad)
                    row = row.cpu()
                if not torch.isfinite(row).all():
                    raise ProbeError(f"response {i}: the gradient of block {b!r} has non-finite values")
                store[b][i] = row
            nonzero[i] = True
            done += 1
            if progress is not None:
                progress(i + 1, n)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    elapsed = time.perf_counter() - started
    grams = {b: _gram(store[b]) for b in blocks}
    lengths = np.array([len(s.response_ids) for s in sequences], dtype=np.float64)
    notes = []
    if tied:
        notes.append("tied embeddings: the output layer shares the input embedding, so 'embed' holds both")
    return GradientSet(
        lengths=lengths,
        grams=grams,
        nonzero=nonzero,
        block_params=sizes,
        mode=projection,
        sketch_dim=None if sketch is None else sketch.dim,
        device=str(device),
        seconds_per_response=elapsed / max(done, 1),
        tied_embeddings=tied,
        notes=notes,
    )


def _gram(rows: torch.Tensor, chunk: int = 1 << 16) -> np.ndarray:
    """rows rows^T in float64, accumulated over column chunks (rows: (N, d) float32)."""
    n = rows.shape[0]
    out = torch.zeros((n, n), dtype=torch.float64)
    for start in range(0, rows.shape[1], chunk):
        part = rows[:, start : start + chunk].to(torch.float64)
        out += part @ part.T
    return out.numpy()
