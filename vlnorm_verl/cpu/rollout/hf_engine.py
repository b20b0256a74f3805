"""Batched token-in/token-out generation with a Hugging Face causal LM (pure torch/transformers; no verl, no Ray).

:class:`HFGenerationEngine` owns one model and generates for many requests at once:

- **Batching.** :meth:`HFGenerationEngine.generate_batch` left-pads the prompts into one batch (chunks of
  ``max_batch_size``, grouped by prompt length), with an attention mask and position ids from the mask
  (``cumsum(mask) - 1``, clamped at 0), so a request's tokens and log-probs do not depend on what else is in the
  batch (up to floating-point rounding). The decode loop is written here (model forward + KV cache), not
  ``model.generate``: rows stop at an EOS id (kept as the last token, ``finish_reason="stop"``) or at their own
  ``max_new_tokens`` (``"length"``); finished rows are dropped from the batch and its KV cache, and leading
  columns that only hold padding are cut away. Models whose default ``DynamicCache`` is all full-attention
  layers get a cache preallocated for prompt + ``max_new_tokens`` (no per-step concatenation); others (e.g.
  sliding-window layers) use their default ``DynamicCache``.
- **Sampling, per row, in float32.** ``logits / temperature`` -> top-k -> top-p (the smallest set of most likely
  tokens whose probability reaches ``top_p``; the top token is always kept) -> one draw by inverse CDF with a
  uniform from the row's own ``torch.Generator`` (CPU, seeded from :attr:`SamplingSettings.seed`; a request
  without a seed gets a fresh random one). A row's random stream depends only on its own seed, so a seeded request
  gives the same tokens alone or in any batch. Temperature 0 is greedy (argmax).
- **Log-probs.** The log-prob of each chosen token is ``log_softmax(logits / temperature)`` of the *full*
  distribution, taken before top-k/top-p truncation: the quantity verl's actor recomputes for the response.
  Greedy rows report ``log_softmax(logits)`` (unscaled).
- **Serving.** :meth:`HFGenerationEngine.generate` (async) queues one request; a background task on the caller's
  event loop (created lazily) takes the waiting requests (up to ``max_batch_size``), runs them as one batch in a
  worker thread and resolves their futures; requests that arrive meanwhile form the next batch.
- **Weights.** :meth:`HFGenerationEngine.load_weights` copies full HF-named tensors into the model in place
  (strict); a lock shared with the batch runner keeps it from running during a batch.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import numbers
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

__all__ = ["GenerationResult", "HFGenerationEngine", "SamplingSettings"]


@dataclass(frozen=True)
class SamplingSettings:
    """Per-request sampling settings (vLLM-style); invalid values raise ValueError naming the setting."""

    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0  # in (0, 1]
    top_k: int = -1  # -1 or 0 = off
    repetition_penalty: float = 1.0  # only 1.0 is supported
    seed: int | None = None  # same seed -> same tokens, whatever else is in the batch

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, numbers.Real) and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a finite number (found {self.temperature!r})")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (found {self.temperature})")
        if not (isinstance(self.top_p, numbers.Real) and 0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1] (found {self.top_p!r})")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, numbers.Integral) or self.top_k < -1:
            raise ValueError(f"top_k must be an int >= -1 (-1 or 0 = off; found {self.top_k!r})")
        if self.repetition_penalty != 1.0:
            raise ValueError(f"repetition_penalty={self.repetition_penalty} is not supported (only 1.0)")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral)):
            raise ValueError(f"seed must be an int or None (found {self.seed!r})")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class GenerationResult:
    """One response: ``token_ids`` (an emitted EOS is included), their log-probs, and ``"stop"`` or ``"length"``."""

    token_ids: list[int]
    log_probs: list[float]
    finish_reason: str


@dataclass
class _Request:
    prompt: list[int]
    max_new_tokens: int
    settings: SamplingSettings


@dataclass
class _Pending:
    request: _Request
    future: asyncio.Future = field(repr=False)


class _Rows:
    """Sampling parameters of the rows still decoding, as device tensors, and their split into three groups.

    Each group (greedy / plain sampling / truncated sampling) is ``None`` (empty), ``slice(None)`` (every row) or
    an index tensor; a row's group depends only on its own settings, so its draws never depend on its batch.
    """

    def __init__(self, settings: Sequence[SamplingSettings], vocab: int, device: torch.device) -> None:
        self.settings = list(settings)
        temps, ks, ps, groups = [], [], [], {"greedy": [], "plain": [], "trunc": []}
        for j, s in enumerate(self.settings):
            k = int(s.top_k) if 0 < s.top_k < vocab else vocab
            temps.append(1.0 if s.greedy else float(s.temperature))
            ks.append(k)
            ps.append(float(s.top_p) if s.top_p < 1.0 else 2.0)  # 2.0: top-p off (never drops a token)
            kind = "greedy" if s.greedy else ("trunc" if k < vocab or s.top_p < 1.0 else "plain")
            groups[kind].append(j)
        n = len(self.settings)
        self.all_greedy = len(groups["greedy"]) == n
        self.temperature = torch.tensor(temps, dtype=torch.float32, device=device)

        def index(rows: list[int]) -> slice | torch.Tensor | None:
            if not rows:
                return None
            return slice(None) if len(rows) == n else torch.tensor(rows, dtype=torch.long, device=device)

        self.greedy, self.plain, self.trunc = (index(groups[g]) for g in ("greedy", "plain", "trunc"))
        self.top_k = torch.tensor([ks[j] for j in groups["trunc"]], dtype=torch.long, device=device)
        self.top_p = torch.tensor([ps[j] for j in groups["trunc"]], dtype=torch.float32, device=device)
        self.vocab, self.device = vocab, device

    def select(self, keep: list[int]) -> _Rows:
        return _Rows([self.settings[j] for j in keep], self.vocab, self.device)


def _invert_cdf(cdf: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index drawn from unnormalised ``cdf`` [b, V] with uniforms ``u`` [b]; zero-probability entries never win."""
    total = cdf[:, -1:]
    target = torch.minimum(u.unsqueeze(1) * total, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, target, right=True).squeeze(1).clamp_(max=cdf.shape[1] - 1)


def _truncated_draw(scaled: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Token ids drawn from temperature-scaled logits [b, V] after per-row top-k then top-p truncation."""
    values, order = scaled.sort(dim=-1, descending=True)
    ranks = torch.arange(values.shape[1], device=values.device)
    values = values.masked_fill(ranks.unsqueeze(0) >= top_k.unsqueeze(1), float("-inf"))
    probs = torch.softmax(values, dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability mass of the more likely tokens
    drop = before >= top_p.unsqueeze(1)
    drop[:, 0] = False
    probs = probs.masked_fill(drop, 0.0)
    picked = _invert_cdf(probs.cumsum(dim=-1), u)
    return order.gather(1, picked.unsqueeze(1)).squeeze(1)


def sample_next(logits: torch.Tensor, rows: _Rows, uniforms: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids [b], log-probs [b]) for float32 ``logits`` [b, V]; ``uniforms`` [b] in [0, 1) drive the draws.

    The log-prob is ``log_softmax(logits / temperature)`` of the untruncated distribution (unscaled for greedy).
    """
    scaled = logits / rows.temperature.unsqueeze(1)
    log_probs = torch.log_softmax(scaled, dim=-1)
    if rows.all_greedy:
        tokens = logits.argmax(dim=-1)
    else:
        assert uniforms is not None
        tokens = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
        if rows.greedy is not None:
            tokens[rows.greedy] = logits[rows.greedy].argmax(dim=-1)
        if rows.plain is not None:
            tokens[rows.plain] = _invert_cdf(log_probs[rows.plain].exp().cumsum(dim=-1), uniforms[rows.plain])
        if rows.trunc is not None:
            tokens[rows.trunc] = _truncated_draw(scaled[rows.trunc], rows.top_k, rows.top_p, uniforms[rows.trunc])
    return tokens, log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)


class _BufferedLayer(DynamicLayer):
    """A full-attention KV layer in preallocated buffers: appending writes in place instead of concatenating.

    ``keys``/``values`` are views of the first ``length`` positions of buffers holding ``capacity`` positions
    (prompt width + new tokens). Rows leave with ``batch_select_indices``; ``drop_leading`` cuts columns from the
    left (padding no remaining row attends to).
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        if self._k is None:
            b, h, _, d = key_states.shape
            self._k = key_states.new_empty((b, h, self.capacity, d))
            self._v = value_states.new_empty((b, h, self.capacity, value_states.shape[-1]))
            self.dtype, self.device, self.is_initialized = key_states.dtype, key_states.device, True
        end = self.length + key_states.shape[-2]
        if end > self._k.shape[-2]:
            raise RuntimeError(f"KV buffer overflow: {end} > {self._k.shape[-2]} positions")
        self._k[:, :, self.length : end] = key_states
        self._v[:, :, self.length : end] = value_states
        self.length = end
        self._views()
        return self.keys, self.values

    def _views(self) -> None:
        self.keys = self._k[:, :, : self.length]
        self.values = self._v[:, :, : self.length]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self._k is not None:
            self._k, self._v = self._k[indices], self._v[indices]
            self._views()

    def drop_leading(self, columns: int) -> None:
        if self._k is not None:
            self._k, self._v = self._k[:, :, columns:], self._v[:, :, columns:]
            self.length -= columns
            self._views()


def _new_cache(model: torch.nn.Module, capacity: int) -> Cache:
    """Buffered full-attention layers when the model's default cache is all plain ``DynamicLayer``s."""
    config = getattr(model, "config", None)
    cache = DynamicCache(config=config)
    layers = getattr(cache, "layers", None)
    if config is not None and layers and all(type(layer) is DynamicLayer for layer in layers):
        return Cache(layers=[_BufferedLayer(capacity) for _ in layers])
    return cache


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") >> 1


class HFGenerationEngine:
    """Batched generation with one Hugging Face causal LM (see the module docstring for the contract).

    ``device`` None -> ``"cuda"`` when available, else ``"cpu"``; the model is moved there, put in eval mode and
    its parameters frozen. ``stats`` counts ``batches``, ``requests``, ``prompt_tokens``, ``generated_tokens``,
    ``decode_steps``, ``max_batch_size_seen`` and ``last_batch_size``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        eos_token_ids: Iterable[int],
        pad_token_id: int,
        device: str | torch.device | None = None,
        max_batch_size: int = 64,
    ) -> None:
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval().requires_grad_(False)
        embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        vocab = getattr(embeddings, "num_embeddings", None) or model.config.vocab_size
        self.vocab_size = int(vocab)
        self.eos_token_ids = sorted({int(t) for t in eos_token_ids})  # empty: only max_new_tokens stops a row
        bad = [t for t in [*self.eos_token_ids, int(pad_token_id)] if not 0 <= t < self.vocab_size]
        if bad:
            raise ValueError(f"eos/pad token ids {bad} are outside the vocab [0, {self.vocab_size})")
        self.pad_token_id = int(pad_token_id)
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1 (found {max_batch_size})")
        self.max_batch_size = int(max_batch_size)
        params = inspect.signature(type(model).forward).parameters
        self._logits_kwargs = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        self._lock = threading.Lock()  # one batch or one weight load at a time
        self._eos = torch.tensor(self.eos_token_ids, dtype=torch.long, device=self.device)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Pending] = []
        self._wakeup: asyncio.Event | None = None
        self._runner: asyncio.Task | None = None
        self.stats: dict[str, int] = {
            "batches": 0,
            "requests": 0,
            "prompt_tokens": 0,
            "generated_tokens": 0,
            "decode_steps": 0,
            "max_batch_size_seen": 0,
            "last_batch_size": 0,
        }

    # -- validation --------------------------------------------------------------------------------------------
    def _request(self, prompt: Sequence[int], max_new_tokens: int, settings: SamplingSettings) -> _Request:
        if not isinstance(settings, SamplingSettings):
            raise ValueError(f"settings must be a SamplingSettings (found {type(settings).__name__})")
        prompt = [int(t) for t in prompt]
        if not prompt:
            raise ValueError("empty prompt: at least one prompt token id is needed")
        outside = sorted({t for t in prompt if not 0 <= t < self.vocab_size})
        if outside:
            raise ValueError(f"prompt token ids {outside[:8]} are outside the vocab [0, {self.vocab_size})")
        if isinstance(max_new_tokens, bool) or int(max_new_tokens) != max_new_tokens or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an int >= 1 (found {max_new_tokens!r})")
        return _Request(prompt, int(max_new_tokens), settings)

    # -- synchronous API ---------------------------------------------------------------------------------------
    def generate_batch(
        self,
        prompts: list[list[int]],
        max_new_tokens: list[int] | int,
        settings: list[SamplingSettings] | SamplingSettings,
    ) -> list[GenerationResult]:
        """Generate for every prompt (results in prompt order); ``max_new_tokens``/``settings``: one or one each."""
        n = len(prompts)
        limits = [max_new_tokens] * n if isinstance(max_new_tokens, int) else list(max_new_tokens)
        per_row = [settings] * n if isinstance(settings, SamplingSettings) else list(settings)
        if len(limits) != n or len(per_row) != n:
            raise ValueError(f"{n} prompts but {len(limits)} max_new_tokens and {len(per_row)} settings")
        return self._run_requests([self._request(p, m, s) for p, m, s in zip(prompts, limits, per_row, strict=True)])

    def _run_requests(self, requests: list[_Request]) -> list[GenerationResult]:
        order = sorted(range(len(requests)), key=lambda i: len(requests[i].prompt))  # less padding per chunk
        results: list[GenerationResult | None] = [None] * len(requests)
        for start in range(0, len(order), self.max_batch_size):
            chunk = order[start : start + self.max_batch_size]
            with self._lock:
                outputs = self._run_chunk([requests[i] for i in chunk])
            for i, out in zip(chunk, outputs, strict=True):
                results[i] = out
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def _run_chunk(self, requests: list[_Request]) -> list[GenerationResult]:
        """One padded batch through prefill + decode; the caller holds the lock."""
        dev, n = self.device, len(requests)
        width = max(len(r.prompt) for r in requests)
        steps = max(r.max_new_tokens for r in requests)
        ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, width + steps), dtype=torch.long)  # the prompt's columns, then ones
        mask[:, width:] = 1
        uniforms = torch.zeros((n, steps), dtype=torch.float32)
        for i, r in enumerate(requests):
            ids[i, width - len(r.prompt) :] = torch.tensor(r.prompt, dtype=torch.long)
            mask[i, width - len(r.prompt) :] = 1
            if not r.settings.greedy:
                seed = int(r.settings.seed) if r.settings.seed is not None else _fresh_seed()
                gen = torch.Generator(device="cpu").manual_seed(seed % 2**64)
                uniforms[i, : r.max_new_tokens] = torch.rand(r.max_new_tokens, generator=gen)
        ids, full_mask = ids.to(dev), mask.to(dev)
        mask = full_mask[:, :width]
        positions = (mask.cumsum(dim=-1) - 1).clamp_(min=0)
        rows = _Rows([r.settings for r in requests], self.vocab_size, dev)
        uniforms = None if rows.all_greedy else uniforms.to(dev)
        limits = torch.tensor([r.max_new_tokens for r in requests], dtype=torch.long, device=dev)
        out_tokens = torch.zeros((n, steps), dtype=torch.long, device=dev)
        out_logps = torch.zeros((n, steps), dtype=torch.float32, device=dev)
        active = list(range(n))
        active_t = torch.arange(n, device=dev)
        lengths, reasons = [0] * n, [""] * n
        cache = _new_cache(self.model, width + steps)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            **self._logits_kwargs,
        )
        last_pos = positions[:, -1]
        seen = width  # columns the cache holds
        decode_steps = 0
        for step in range(steps):
            logits = out.logits[:, -1, :].float()
            u = None if uniforms is None else uniforms[active_t, step]
            tokens, logps = sample_next(logits, rows, u)
            out_tokens[active_t, step] = tokens
            out_logps[active_t, step] = logps
            stop = torch.isin(tokens, self._eos)
            done = stop | (limits[active_t] <= step + 1)
            flags = (done.to(torch.int8) + stop.to(torch.int8)).tolist()  # 0 running, 1 length, 2 stop
            if any(flags):
                keep = []
                for j, flag in enumerate(flags):
                    if flag:
                        lengths[active[j]] = step + 1
                        reasons[active[j]] = "stop" if flag == 2 else "length"
                    else:
                        keep.append(j)
                if not keep:
                    break
                sel = torch.tensor(keep, dtype=torch.long, device=dev)
                cache.batch_select_indices(sel)
                full_mask, tokens, last_pos, active_t = full_mask[sel], tokens[sel], last_pos[sel], active_t[sel]
                active = [active[j] for j in keep]
                rows = rows.select(keep)
                full_mask, cut = self._trim_padding(cache, full_mask, seen)
                seen -= cut
            last_pos = last_pos + 1
            seen += 1
            mask = full_mask[:, :seen]
            out = self.model(
                input_ids=tokens.unsqueeze(1),
                attention_mask=mask,
                position_ids=last_pos.unsqueeze(1),
                past_key_values=cache,
                use_cache=True,
                **self._logits_kwargs,
            )
            decode_steps += 1
        token_rows, logp_rows = out_tokens.cpu().tolist(), out_logps.cpu().tolist()
        results = [
            GenerationResult(token_rows[i][: lengths[i]], logp_rows[i][: lengths[i]], reasons[i]) for i in range(n)
        ]
        s = self.stats
        s["batches"] += 1
        s["requests"] += n
        s["prompt_tokens"] += sum(len(r.prompt) for r in requests)
        s["generated_tokens"] += sum(lengths)
        s["decode_steps"] += decode_steps
        s["max_batch_size_seen"] = max(s["max_batch_size_seen"], n)
        s["last_batch_size"] = n
        return results

    @staticmethod
    def _trim_padding(cache: Cache, full_mask: torch.Tensor, seen: int) -> tuple[torch.Tensor, int]:
        """(mask, columns cut): leading columns that are padding in every remaining row are cut from the cache and
        ``full_mask`` ([rows, all columns], the first ``seen`` in the cache); ``_BufferedLayer`` caches only."""
        layers = getattr(cache, "layers", None)
        if not layers or any(not isinstance(layer, _BufferedLayer) for layer in layers):
            return full_mask, 0
        first = int(full_mask[:, :seen].any(dim=0).to(torch.int8).argmax())
        if first:
            for layer in layers:
                layer.drop_leading(first)
        return full_mask[:, first:], first

    # -- asynchronous, queued API ------------------------------------------------------------------------------
    async def generate(
        self, prompt_ids: list[int], max_new_tokens: int, settings: SamplingSettings
    ) -> GenerationResult:
        """Queue one request; it runs batched with the requests waiting when the next batch starts.

        Invalid requests raise ValueError here, before queueing. The background task lives on the caller's event
        loop (created on first use; a new loop, e.g. a second ``asyncio.run``, gets a new one): use one loop at a
        time. A batch's exception is raised to each of its callers.
        """
        request = self._request(prompt_ids, max_new_tokens, settings)
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._runner is None or self._runner.done():
            self._loop, self._pending, self._wakeup = loop, [], asyncio.Event()
            self._runner = loop.create_task(self._serve(self._wakeup))
        future = loop.create_future()
        self._pending.append(_Pending(request, future))
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    async def _serve(self, wakeup: asyncio.Event) -> None:
        """Background task: batches of waiting requests, one at a time, each in a worker thread."""
        while True:
            await wakeup.wait()
            wakeup.clear()
            while self._pending:
                taken, self._pending = self._pending[: self.max_batch_size], self._pending[self.max_batch_size :]
                batch = [p for p in taken if not p.future.done()]  # callers that gave up are skipped
                if not batch:
                    continue
                try:
                    results = await asyncio.to_thread(self._run_requests, [p.request for p in batch])
                except asyncio.CancelledError:
                    for p in batch:
                        p.future.cancel()
                    raise
                except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(exc)
                    continue
                for p, result in zip(batch, results, strict=True):
                    if not p.future.done():
                        p.future.set_result(result)

    # -- weights and placement ---------------------------------------------------------------------------------
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copy full tensors into the model by ``state_dict`` name, in place; returns how many were loaded.

        Strict: unknown names or shape mismatches raise ValueError naming them, before anything is copied.
        Waits for a running batch to finish.
        """
        items = list(named_tensors)
        with self._lock:
            state = self.model.state_dict(keep_vars=True)
            unknown = [name for name, _ in items if name not in state]
            mismatched = [
                f"{name}: {tuple(t.shape)} vs model {tuple(state[name].shape)}"
                for name, t in items
                if name in state and tuple(t.shape) != tuple(state[name].shape)
            ]
            if unknown or mismatched:
                raise ValueError(f"load_weights: unknown names {unknown[:8]}; shape mismatches {mismatched[:8]}")
            with torch.no_grad():
                for name, tensor in items:
                    state[name].data.copy_(tensor)
        return len(items)

    def to(self, device: str | torch.device) -> HFGenerationEngine:
        """Move the model (and the engine's tensors) to ``device``; waits for a running batch to finish."""
        with self._lock:
            self.device = torch.device(device)
            self.model.to(self.device)
            self._eos = self._eos.to(self.device)
        return self
