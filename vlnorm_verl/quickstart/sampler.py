"""Rollout on CPU: Hugging Face ``generate`` from the engine's current weights, scored by the project's reward.

verl 0.9.1 has no CPU rollout engine, so the quickstart samples with a plain Hugging Face copy of the same
tiny Qwen2. Before each step :meth:`Sampler.sync` loads the engine's full parameters into it (verl's own
weight-sync export, ``get_per_tensor_param``), as verl's trainer syncs its rollout engine.

Each prompt's ``n`` answers are generated together (one prompt repeated, so there is no padding), sampled
from the full distribution at the rollout temperature (``top_k`` off, ``top_p`` = 1, as verl's default
rollout). A response is the generated tokens up to and including the first EOS, or ``max_new_tokens``
tokens when none came (truncated). Scoring decodes the response without special tokens, as verl's reward
managers do, and calls :func:`vlnorm_verl.rewards.compute_score`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from vlnorm_verl.quickstart.data import Prompt
from vlnorm_verl.tasks import COUNTDOWN_SOURCE


@dataclass
class Sample:
    prompt: Prompt
    response: list[int]
    text: str
    score: float
    acc: float
    truncated: bool


class Sampler:
    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = int(max_new_tokens)
        self.eos = int(tokenizer.eos_token_id)
        self.pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos)

    @torch.no_grad()
    def sync(self, params: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load full parameters (Hugging Face names) into the sampling model; every parameter must be given."""
        state = {name: tensor.to(torch.float32) for name, tensor in params}
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise RuntimeError(f"weight sync mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")

    @torch.no_grad()
    def generate(self, prompt: Prompt, n: int, temperature: float, do_sample: bool, seed: int) -> list[Sample]:
        ids = torch.tensor([list(prompt.ids)] * n, dtype=torch.long)
        kwargs: dict[str, Any] = {"do_sample": do_sample}
        if do_sample:
            kwargs.update(temperature=float(temperature), top_k=0, top_p=1.0)
        torch.manual_seed(seed)
        out = self.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=self.max_new_tokens,
            eos_token_id=self.eos,
            pad_token_id=self.pad,
            **kwargs,
        )
        samples = []
        for row in out[:, ids.shape[1] :].tolist():
            if self.eos in row:
                response, truncated = row[: row.index(self.eos) + 1], False
            else:
                response, truncated = row[: self.max_new_tokens], True
            samples.append(self.score(prompt, response, truncated))
        return samples

    def score(self, prompt: Prompt, response: list[int], truncated: bool = False) -> Sample:
        from vlnorm_verl.rewards import compute_score

        text = self.tokenizer.decode(response, skip_special_tokens=True)
        result = compute_score(data_source=COUNTDOWN_SOURCE, solution_str=text, ground_truth=prompt.ground_truth)
        return Sample(prompt, response, text, float(result["score"]), float(result["acc"]), truncated)
