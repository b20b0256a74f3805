"""The ``hf`` rollout server as verl's agent loop calls it (in-process, without Ray): TokenOutput, the response
cap verl's vLLM server applies, greedy validation, log-probs on request, weights and control calls."""

from __future__ import annotations

import asyncio

import pytest
import torch

from vlnorm_verl.cpu.rollout.hf_server import HFRolloutServer, max_new_tokens
from vlnorm_verl.cpu.tiny_model import TinyModelSpec, create_model_dir, random_qwen2
from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

SPEC = TinyModelSpec(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_key_value_heads=2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from verl.workers.config import HFModelConfig, RolloutConfig

    path = create_model_dir(SPEC, build_tokenizer(), tmp_path_factory.mktemp("tiny"))
    config = RolloutConfig(
        name="hf",
        prompt_length=64,
        response_length=12,
        dtype="float32",
        tensor_model_parallel_size=1,
        n_gpus_per_node=1,
        engine_kwargs={"hf": {"threads": 1}},
    )
    model_config = HFModelConfig(path=str(path), override_config={"attn_implementation": "eager"})
    return HFRolloutServer(config, model_config, replica_rank=0)


def _generate(server, prompt, **params):
    return asyncio.run(server.generate(prompt_ids=prompt, sampling_params=params, request_id="r"))


def test_token_output_and_the_response_cap(server):
    out = _generate(server, [5, 6, 7, 8], temperature=1.0, top_p=1.0, top_k=-1, repetition_penalty=1.0, logprobs=True)
    assert out.stop_reason == "completed" and len(out.token_ids) <= 12 and len(out.log_probs) == len(out.token_ids)
    assert out.extra_fields == {"global_steps": None}
    assert _generate(server, [5, 6], temperature=1.0, logprobs=False).log_probs is None
    assert len(_generate(server, [5, 6], temperature=1.0, max_tokens=3).token_ids) <= 3
    # vLLM's rule: min(response_length, prompt_length + response_length - len(prompt)), within max_model_len
    assert max_new_tokens(server.config, 70, {}) == 6
    with pytest.raises(ValueError, match="no room"):
        max_new_tokens(server.config, 76, {})


def test_greedy_when_temperature_is_zero(server):
    prompt = [9, 10, 11, 12, 13]
    first = _generate(server, prompt, temperature=0, logprobs=True)
    assert _generate(server, prompt, temperature=0).token_ids == first.token_ids
    model = server.engine.model
    ids = torch.tensor([prompt + first.token_ids])
    with torch.no_grad():
        lp = torch.log_softmax(model(ids).logits[0, len(prompt) - 1 : -1].float(), -1)
    assert lp.argmax(-1).tolist() == first.token_ids


def test_weights_steps_and_control_calls(server):
    state = server.engine.model.state_dict()
    other = random_qwen2(
        7,
        vocab_size=state["model.embed_tokens.weight"].shape[0],
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=SPEC.max_position_embeddings,
    )
    loaded = asyncio.run(server.update_weights(list(other.state_dict().items()), global_steps=3))
    assert loaded == len(other.state_dict())
    assert torch.equal(server.engine.model.lm_head.weight, other.lm_head.weight)
    assert _generate(server, [5, 6], temperature=0).extra_fields["global_steps"] == 3

    async def controls():
        await server.sleep()
        assert server.asleep
        out = await server.generate(prompt_ids=[5, 6], sampling_params={"temperature": 0}, request_id="s")
        assert not server.asleep  # a request wakes it
        await server.abort_all_requests(reject_request=True)
        with pytest.raises(RuntimeError, match="aborted"):
            await server.generate(prompt_ids=[5, 6], sampling_params={}, request_id="t")
        await server.abort_all_requests()
        held = asyncio.ensure_future(
            server.generate(prompt_ids=[5, 6], sampling_params={"temperature": 0}, request_id="u")
        )
        await asyncio.sleep(0.05)
        assert not held.done()  # held until generation resumes
        await server.resume_generation()
        assert (await held).token_ids == out.token_ids
        for call in (server.clear_kv_cache, server.release_kv_cache, server.resume_kv_cache, server.stop_profile):
            await call()
        await server.wake_up(tags=["weights"])

    asyncio.run(controls())


def test_unknown_engine_kwargs_are_refused(tmp_path):
    from verl.workers.config import HFModelConfig, RolloutConfig

    path = create_model_dir(SPEC, build_tokenizer(), tmp_path)
    config = RolloutConfig(
        name="hf", dtype="float32", tensor_model_parallel_size=1, engine_kwargs={"hf": {"thread": 1}}
    )
    with pytest.raises(ValueError, match="unknown keys"):
        HFRolloutServer(config, HFModelConfig(path=str(path)), replica_rank=0)
