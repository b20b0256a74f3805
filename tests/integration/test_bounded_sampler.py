"""Bounded DAPO dynamic sampling (extension.bounded_sampler) against verl 0.9.1's real replay-buffer machinery.

The buffers are built by verl's own ``PPOTrainer._build_replay_buffer`` from a composed recipe (the custom sampler
loaded through ``load_extern_type`` with the recipe's ``pkg://`` path); they poll a real TransferQueue (Ray, ZMQ
storage units) that a scripted rollout fills the way verl's trainer and agent loop do: prompt groups registered as
pending (``_submit_batch_to_rollout``), then per response an ``AgentLoopOutput`` turned into the fields and tags
``AgentLoopWorkerTQ._agent_loop_postprocess`` writes (``list_of_dict_to_tensordict``), then the group marked
finished. The metric value of every response is chosen by the test, so the expectations are independent of the
code under test: which groups carry signal, how many groups a step generates, when the bound is reached. verl's
built-in ``ReplayBuffer`` fed the same data is the reference (negative control: it never stops on its own).
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import types
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from vlnorm_verl.extension import bounded_sampler
from vlnorm_verl.extension.bounded_sampler import (
    SETTING,
    BoundedReplayBuffer,
    FilterGroupsBoundError,
    GenerationBoundError,
    UnboundedGenerationWarning,
    check_filter_groups_bound,
)
from vlnorm_verl.launch.compose import compose_config
from vlnorm_verl.launch.launcher import RECIPES_DIR

B = 4  # data.train_batch_size in these tests: one generation batch = 4 prompt groups


# ---------------------------------------------------------------------------------------------------------
# config and buffers, as verl's trainer builds them


@cache
def _composed(recipe: str, overrides: tuple[str, ...]) -> DictConfig:
    cfg = compose_config(config_name=recipe, overrides=list(overrides), config_dir=RECIPES_DIR)
    OmegaConf.resolve(cfg)  # TaskRunnerV1.run resolves the config before building the trainer
    return cfg


def recipe_config(recipe: str = "countdown_dapo_plain", *overrides: str) -> DictConfig:
    return OmegaConf.create(OmegaConf.to_container(_composed(recipe, (f"data.train_batch_size={B}", *overrides))))


def builtin_config(cfg: DictConfig) -> DictConfig:
    """The same config with the custom sampler unset: verl builds its own ReplayBuffer."""
    cfg = OmegaConf.create(OmegaConf.to_container(cfg))
    cfg.trainer.v1.sampler.custom_sampler.path = None
    cfg.trainer.v1.sampler.custom_sampler.name = None
    return cfg


def build_buffer(cfg: DictConfig, refill_fn: Callable[[int], int]) -> Any:
    """verl's PPOTrainer._build_replay_buffer, run on a trainer stand-in holding what it reads."""
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    trainer = SimpleNamespace(config=cfg, trainer_mode=cfg.trainer.v1.trainer_mode, _add_prompts_to_generate=refill_fn)
    trainer._resolve_filter_groups_metric = lambda: PPOTrainer._resolve_filter_groups_metric(trainer)
    buffer = PPOTrainer._build_replay_buffer(trainer)
    buffer.poll_interval = 0.01  # verl's default is 2 s between polls; nothing else changes
    return buffer


# ---------------------------------------------------------------------------------------------------------
# TransferQueue and the scripted rollout


@pytest.fixture(scope="module")
def transfer_queue() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    import transfer_queue as tq

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started:
        # the TransferQueue controller and each of its 2 storage units take num_cpus=1: 3 of the 4 CPUs
        ray.init(
            num_cpus=4,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            _temp_dir=tempfile.mkdtemp(prefix="ray", dir="/tmp"),  # AF_UNIX paths must stay < 108 bytes
        )
    tq.init()
    try:
        yield tq
    finally:
        tq.close()
        if started:
            ray.shutdown()


@pytest.fixture
def tq(transfer_queue: Any) -> Iterator[Any]:
    _clear(transfer_queue)
    yield transfer_queue
    _clear(transfer_queue)


def _clear(tq: Any) -> None:
    for partition_id, items in (tq.kv_list() or {}).items():
        if items:
            tq.kv_clear(keys=list(items), partition_id=partition_id)


class BudgetSpent(Exception):
    """The scripted rollout refuses to generate past its budget (a buffer that never stops hits this)."""


class Rollout:
    """verl's trainer + agent loop, played against TransferQueue, synchronously.

    ``submit(k)`` is ``PPOTrainer._submit_batch_to_rollout`` for k fresh prompts (sync mode: tag-only prompt
    keys, status pending) followed by the agent loop finishing each group: status running, one trajectory per
    response (``{uid}_{session}_0``, fields and tags as ``_agent_loop_postprocess`` writes them, the reward as
    ``rm_scores`` and as ``reward_extra_info``), status finished. ``values(i)`` gives the metric of the n responses
    of the i-th group ever submitted.
    """

    def __init__(self, tq: Any, n: int, values: Callable[[int], Sequence[float]], budget: int | None = None):
        self.tq, self.n, self.values, self.budget = tq, n, values, budget
        self.submitted = 0
        self.dispatches: list[int] = []
        self.signal: set[str] = set()
        self.no_signal: set[str] = set()
        self.global_steps = 1

    def submit(self, num_prompts: int) -> int:
        if self.budget is not None and self.submitted + num_prompts > self.budget:
            raise BudgetSpent(f"{self.submitted} groups generated; {num_prompts} more asked")
        from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput
        from verl.utils.tensordict_utils import list_of_dict_to_tensordict

        first = self.submitted
        self.submitted += num_prompts
        self.dispatches.append(num_prompts)
        uids = [f"g{first + i:05d}" for i in range(num_prompts)]
        tag = {"is_prompt": True, "status": "pending", "global_steps": self.global_steps}
        self.tq.kv_batch_put(keys=uids, partition_id="train", tags=[dict(tag) for _ in uids])
        for index, uid in enumerate(uids, start=first):
            self.tq.kv_put(key=uid, partition_id="train", tag={"status": "running"})
            values = [float(v) for v in self.values(index)]
            assert len(values) == self.n
            (self.signal if len(set(values)) > 1 else self.no_signal).add(uid)
            keys, fields, tags = [], [], []
            for session, value in enumerate(values):
                length = 3 + (index + session) % 4
                output = AgentLoopOutput(
                    prompt_ids=[11, 12, 13],
                    response_ids=[20 + t for t in range(length)],
                    response_mask=[1] * length,
                    reward_score=value,
                    num_turns=2,
                    metrics=AgentLoopMetrics(),
                    extra_fields={"reward_extra_info": {"acc": value, "score": value}},
                )
                field = output.as_dict()
                field.update(uid=uid, session_id=session, global_steps=self.global_steps, data_source="countdown")
                input_ids = torch.cat([field["prompts"], field["responses"]])
                field["loss_mask"] = field["response_mask"]
                field["input_ids"] = input_ids
                field["position_ids"] = torch.arange(input_ids.numel())
                fields.append(field)
                keys.append(f"{uid}_{session}_0")
                prompt_len, response_len = field["prompts"].size(0), field["responses"].size(0)
                tags.append(
                    {
                        "status": "success",
                        "prompt_len": prompt_len,
                        "response_len": response_len,
                        "seq_len": prompt_len + response_len,
                        "global_steps": self.global_steps,
                        "min_global_steps": None,
                        "max_global_steps": None,
                    }
                )
            self.tq.kv_batch_put(keys=keys, fields=list_of_dict_to_tensordict(fields), tags=tags, partition_id="train")
            self.tq.kv_put(key=uid, partition_id="train", tag={"status": "finished"})
        return num_prompts


def train_step(tq: Any, buffer: Any, rollout: Rollout, step: int) -> tuple[Any, dict, Any]:
    """One training step's sampling as PPOTrainer.fit runs it (prepare_step, sample, the trainer's read, cleanup)."""
    rollout.global_steps = step
    rollout.submit(B)  # prepare_step -> _add_batch_to_generate: one train batch of prompts
    batch, metrics = buffer.sample(global_steps=step, partition_id="train", batch_size=B)
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["rm_scores", "uid"])
    tq.kv_clear(keys=batch.keys, partition_id=batch.partition_id)  # fit() step 7
    return batch, metrics, data


def no_signal(index: int) -> list[float]:
    return [0.0] * 8


def every_third_has_signal(index: int) -> list[float]:
    return [float(s % 2) for s in range(8)] if index % 3 == 0 else [float(index % 2)] * 8


# ---------------------------------------------------------------------------------------------------------
# with signal: the same training batches as verl's built-in buffer


@pytest.mark.parametrize(("recipe", "metric"), [("countdown_dapo_plain", "acc"), ("math_dapo_plain", "reward")])
def test_with_signal_it_yields_the_builtin_buffers_batches(tq, recipe: str, metric: str) -> None:
    cfg = recipe_config(recipe)
    runs = {}
    for name, config in (("builtin", builtin_config(cfg)), ("bounded", cfg)):
        _clear(tq)
        rollout = Rollout(tq, cfg.actor_rollout_ref.rollout.n, every_third_has_signal)
        buffer = build_buffer(config, rollout.submit)
        assert isinstance(buffer, BoundedReplayBuffer) == (name == "bounded")
        assert (buffer.filter_groups_metric, buffer.train_batch_size, buffer.max_inflight_gen_batches) == (metric, B, 3)
        assert buffer.gen_batch_size == 1
        steps = []
        for step in (1, 2, 3):
            before = rollout.submitted
            batch, metrics, data = train_step(tq, buffer, rollout, step)
            generated = {f"g{i:05d}" for i in range(before, rollout.submitted)}
            selected = {key.split("_")[0] for key in batch.keys}
            # independent expectations: B groups, each with signal and all its n responses; every no-signal
            # group generated in the step was filtered, every other group with signal discarded as surplus
            assert len(selected) == B and selected <= rollout.signal & generated
            assert len(batch.keys) == B * rollout.n
            assert {uid for uid in data["uid"]} == selected
            assert metrics["training/filter_groups/evicted_samples"] == len(generated & rollout.no_signal)
            surplus = len(generated & rollout.signal) - B
            assert metrics.get("training/filter_groups/discarded_surplus_samples", 0) == surplus
            steps.append((list(batch.keys), list(batch.tags), metrics, list(rollout.dispatches)))
        runs[name] = steps
    assert runs["bounded"] == runs["builtin"]


# ---------------------------------------------------------------------------------------------------------
# without signal: the bound


def test_no_signal_raises_after_exactly_max_num_gen_batches(tq) -> None:
    cfg = recipe_config(
        "countdown_dapo_plain",
        "algorithm.filter_groups.max_num_gen_batches=3",
        "algorithm.filter_groups.max_inflight_gen_batches=1",  # refills of one generation batch at a time
    )
    rollout = Rollout(tq, cfg.actor_rollout_ref.rollout.n, no_signal, budget=100 * B)
    buffer = build_buffer(cfg, rollout.submit)
    with pytest.raises(GenerationBoundError) as info:
        train_step(tq, buffer, rollout, step=1)
    err = info.value
    assert rollout.submitted == 3 * B and rollout.dispatches == [B, B, B]  # exactly 3 generation batches
    assert (err.groups_generated, err.groups_kept, err.needed, err.max_num_gen_batches) == (3 * B, 0, B, 3)
    assert err.filtered_values == {0.0: 3 * B}
    message = str(err)
    for part in (
        "no group with signal after 3 generation batches",
        f"{3 * B} groups generated, 0 kept, {B} needed",
        f"data.train_batch_size={B}",
        "acc=0 on all its responses: the reward is constant",
        f"{SETTING}=3",
        "0 = unbounded",
        "warm-start the model",
        "check the reward function",
        "lower data.train_batch_size",
    ):
        assert part in message, (part, message)


def test_the_recipes_bound_raises_once_ten_generation_batches_are_done(tq) -> None:
    """Recipe settings (3 generation batches in flight, bound 10): refills come in uneven sizes, so the raise
    comes at the first poll that sees >= 10 x B groups generated, never earlier."""
    cfg = recipe_config("countdown_dapo_plain")
    assert cfg.algorithm.filter_groups.max_num_gen_batches == 10
    rollout = Rollout(tq, cfg.actor_rollout_ref.rollout.n, no_signal, budget=100 * B)
    buffer = build_buffer(cfg, rollout.submit)
    with pytest.raises(GenerationBoundError, match=rf"{SETTING}=10 ") as info:
        train_step(tq, buffer, rollout, step=1)
    assert sum(rollout.dispatches[:-1]) < 10 * B <= sum(rollout.dispatches) == info.value.groups_generated
    assert max(rollout.dispatches) <= 3 * B  # verl's in-flight bound still holds


def test_reward_metric_and_too_few_groups_with_signal(tq) -> None:
    """Math recipe (metric reward, read from rm_scores): one group in eight has signal, so after 2 generation
    batches only 1 of the 4 groups needed is kept."""
    cfg = recipe_config(
        "math_dapo_plain",
        "algorithm.filter_groups.max_num_gen_batches=2",
        "algorithm.filter_groups.max_inflight_gen_batches=1",
    )

    def values(index: int) -> list[float]:
        return [float(s % 2) for s in range(8)] if index == 5 else [1.0] * 8

    rollout = Rollout(tq, cfg.actor_rollout_ref.rollout.n, values, budget=100 * B)
    buffer = build_buffer(cfg, rollout.submit)
    with pytest.raises(GenerationBoundError) as info:
        train_step(tq, buffer, rollout, step=7)
    err = info.value
    assert (err.groups_generated, err.groups_kept, err.needed, err.metric) == (2 * B, 1, B, "reward")
    assert "at training step 7: too few groups with signal (1 of 4) after 2 generation batches" in str(err)
    assert "reward=1 on all its responses" in str(err)


def test_builtin_buffer_keeps_generating_past_the_bound(tq) -> None:
    """Negative control: verl's own buffer, same config and data, does not stop; only the rollout's budget does."""
    cfg = recipe_config(
        "countdown_dapo_plain",
        "algorithm.filter_groups.max_num_gen_batches=3",
        "algorithm.filter_groups.max_inflight_gen_batches=1",
    )
    rollout = Rollout(tq, cfg.actor_rollout_ref.rollout.n, no_signal, budget=12 * B)
    buffer = build_buffer(builtin_config(cfg), rollout.submit)
    assert type(buffer).__name__ == "ReplayBuffer" and not isinstance(buffer, BoundedReplayBuffer)
    with pytest.raises(BudgetSpent):
        train_step(tq, buffer, rollout, step=1)
    assert rollout.submitted == 12 * B  # four times the bound and still generating


def test_the_count_restarts_after_each_training_batch(tq) -> None:
    """Bound 3: steps 1 and 2 each need all 3 generation batches (signal only in each step's third one), which is
    allowed only if the count restarted; step 3 has no signal and raises after 3 more, not 9."""
    cfg = recipe_config(
        "countdown_dapo_plain",
        "algorithm.filter_groups.max_num_gen_batches=3",
        "algorithm.filter_groups.max_inflight_gen_batches=1",
    )

    def values(index: int) -> list[float]:
        signal = index < 6 * B and (index // B) % 3 == 2
        return [float(s % 2) for s in range(8)] if signal else [0.0] * 8

    rollout = Rollout(tq, cfg.actor_rollout_ref.rollout.n, values, budget=100 * B)
    buffer = build_buffer(cfg, rollout.submit)
    for step, end in ((1, 3 * B), (2, 6 * B)):
        batch, _metrics, _data = train_step(tq, buffer, rollout, step)
        assert rollout.submitted == end
        assert {key.split("_")[0] for key in batch.keys} == {f"g{i:05d}" for i in range(end - B, end)}
    with pytest.raises(GenerationBoundError) as info:
        train_step(tq, buffer, rollout, step=3)
    assert info.value.groups_generated == 3 * B and rollout.submitted == 9 * B


def test_zero_is_unbounded_with_a_warning(tq, caplog: pytest.LogCaptureFixture) -> None:
    cfg = recipe_config("countdown_dapo_plain", "algorithm.filter_groups.max_num_gen_batches=0")
    dispatches = {}
    for name, config in (("builtin", builtin_config(cfg)), ("bounded", cfg)):
        _clear(tq)
        rollout = Rollout(tq, cfg.actor_rollout_ref.rollout.n, no_signal, budget=40 * B)
        with caplog.at_level(logging.WARNING, logger=bounded_sampler.__name__):
            caplog.clear()
            buffer = build_buffer(config, rollout.submit)
        warned = [r.getMessage() for r in caplog.records if r.name == bounded_sampler.__name__]
        if name == "bounded":
            assert len(warned) == 1
            assert f"{SETTING}=0: DAPO dynamic sampling is unbounded" in warned[0]
            assert f"Set {SETTING}=N" in warned[0]
        else:
            assert warned == []
        with pytest.raises(BudgetSpent):  # 40 generation batches without signal, and no GenerationBoundError
            train_step(tq, buffer, rollout, step=1)
        dispatches[name] = rollout.dispatches
    assert dispatches["bounded"] == dispatches["builtin"]


def test_disabled_filtering_is_a_passthrough(tq) -> None:
    """filter_groups off (the sampler still selected): no filtering, no refill, no bound - verl's batch."""
    cfg = recipe_config(
        "countdown_dapo_plain", "algorithm.filter_groups.enable=false", "algorithm.filter_groups.max_num_gen_batches=1"
    )
    runs = {}
    for name, config in (("builtin", builtin_config(cfg)), ("bounded", cfg)):
        _clear(tq)
        rollout = Rollout(tq, cfg.actor_rollout_ref.rollout.n, no_signal, budget=B)
        buffer = build_buffer(config, rollout.submit)
        assert buffer.filter_groups_metric is None
        batch, metrics, _data = train_step(tq, buffer, rollout, step=1)
        assert {key.split("_")[0] for key in batch.keys} == rollout.no_signal and rollout.dispatches == [B]
        runs[name] = (list(batch.keys), list(batch.tags), metrics)
    assert runs["bounded"] == runs["builtin"]


def test_the_raise_leaves_verls_step_and_crosses_ray(tq) -> None:
    """PPOTrainer.step -> _step_once -> replay_buffer.sample (verl's own code, nothing catches it), and the error
    survives the TaskRunner actor -> driver hop (ray.get) with its message and numbers."""
    import ray
    from verl.trainer.ppo.v1.trainer_base import PPOTrainer

    cfg = recipe_config(
        "countdown_dapo_plain",
        "algorithm.filter_groups.max_num_gen_batches=2",
        "algorithm.filter_groups.max_inflight_gen_batches=1",
    )
    rollout = Rollout(tq, cfg.actor_rollout_ref.rollout.n, no_signal, budget=100 * B)
    trainer = SimpleNamespace(
        config=cfg,
        parameter_sync_step=1,
        global_steps=1,
        replay_buffer=build_buffer(cfg, rollout.submit),
        _add_batch_to_generate=lambda: rollout.submit(B),
        on_sample_begin=lambda: None,
        on_sample_end=lambda: None,
    )
    trainer.prepare_step = types.MethodType(PPOTrainer.prepare_step, trainer)
    trainer._step_once = types.MethodType(PPOTrainer._step_once, trainer)
    with pytest.raises(GenerationBoundError) as info:
        PPOTrainer.step(trainer, {}, {})
    assert rollout.submitted == 2 * B

    err = pickle.loads(pickle.dumps(info.value))
    assert str(err) == str(info.value) and err.groups_generated == 2 * B

    @ray.remote
    def fit_that_raises(error: GenerationBoundError) -> None:
        raise error

    with pytest.raises(GenerationBoundError) as remote:
        ray.get(fit_that_raises.remote(info.value))
    assert SETTING in str(remote.value) and "no group with signal" in str(remote.value)


# ---------------------------------------------------------------------------------------------------------
# construction (no TransferQueue needed: verl's buffer touches it only when sampling)


@pytest.mark.parametrize("value", ["-1", "2.5", "ten", "true"])
def test_invalid_bound_is_refused_at_construction(value: str) -> None:
    cfg = recipe_config("countdown_dapo_plain", f"algorithm.filter_groups.max_num_gen_batches={value}")
    with pytest.raises(ValueError, match=rf"{SETTING} must be a non-negative integer .*0 = unbounded"):
        build_buffer(cfg, print)


def test_sampler_kwargs_must_carry_every_setting() -> None:
    cfg = recipe_config("countdown_dapo_plain")
    del cfg.trainer.v1.sampler.sampler_kwargs["max_num_gen_batches"]
    with pytest.raises(FilterGroupsBoundError, match=r"missing \['max_num_gen_batches'\].*max_num_gen_batches: "):
        build_buffer(cfg, print)
    cfg = recipe_config("countdown_dapo_plain")
    cfg.trainer.v1.sampler.sampler_kwargs["max_num_gen_batch"] = 3
    with pytest.raises(FilterGroupsBoundError, match=r"unknown keys \['max_num_gen_batch'\]"):
        build_buffer(cfg, print)


def test_only_the_sync_trainer() -> None:
    cfg = recipe_config("countdown_dapo_plain", "trainer.v1.trainer_mode=colocate_async")
    with pytest.raises(FilterGroupsBoundError, match=r"trainer_mode=sync only"):
        build_buffer(cfg, print)


def test_metric_is_required_as_verl_requires_it() -> None:
    cfg = recipe_config("countdown_dapo_plain", "algorithm.filter_groups.metric=null")
    with pytest.raises(ValueError, match=r"algorithm\.filter_groups\.metric must be set"):
        build_buffer(cfg, print)


# ---------------------------------------------------------------------------------------------------------
# the launch-time check


def test_check_accepts_the_dapo_recipes_and_ignores_the_aggregation_suite() -> None:
    for recipe in ("countdown_dapo_plain", "math_dapo_vlnorm"):
        found = check_filter_groups_bound(recipe_config(recipe))
        assert found is not None and found.enforced and found.max_num_gen_batches == 10 and not found.warnings
    assert check_filter_groups_bound(recipe_config("countdown_vlnorm")) is None


def test_check_warns_when_the_bound_is_not_enforced() -> None:
    with pytest.warns(UnboundedGenerationWarning, match=rf"{SETTING} is not enforced.*BoundedReplayBuffer"):
        found = check_filter_groups_bound(builtin_config(recipe_config("countdown_dapo_plain")))
    assert found is not None and not found.enforced
    cfg = recipe_config("countdown_dapo_plain")
    cfg.trainer.v1.sampler.custom_sampler.path = "pkg://verl.trainer.ppo.v1.replay_buffer"
    cfg.trainer.v1.sampler.custom_sampler.name = "ReplayBuffer"
    with pytest.warns(UnboundedGenerationWarning, match=r"custom sampler ReplayBuffer .* is not BoundedReplayBuffer"):
        found = check_filter_groups_bound(cfg)
    assert found is not None and not found.enforced
    with pytest.warns(UnboundedGenerationWarning, match=rf"{SETTING}=0: DAPO dynamic sampling is unbounded"):
        found = check_filter_groups_bound(
            recipe_config("countdown_dapo_plain", "algorithm.filter_groups.max_num_gen_batches=0")
        )
    assert found is not None and not found.enforced and found.max_num_gen_batches == 0


@pytest.mark.parametrize(
    ("overrides", "edit", "pattern"),
    [
        (["algorithm.filter_groups.max_num_gen_batches=-2"], None, rf"{SETTING} must be a non-negative integer"),
        ([], ("max_num_gen_batches", 3), r"sampler_kwargs\.max_num_gen_batches=3 disagrees with " + SETTING + "=10"),
        ([], ("train_batch_size", 64), r"sampler_kwargs\.train_batch_size=64 disagrees with data\.train_batch_size"),
        (["trainer.v1.trainer_mode=separate_async"], None, r"trainer_mode=sync only"),
        (["reward.reward_model.enable=true"], None, r"requires the reward metric at sampling time"),
        (
            ["trainer.v1.sampler.custom_sampler.path=pkg://vlnorm_verl.nope"],
            None,
            r"custom_sampler .* cannot be loaded",
        ),
    ],
)
def test_check_refuses_invalid_settings(overrides: list[str], edit: tuple[str, int] | None, pattern: str) -> None:
    cfg = recipe_config("countdown_dapo_plain", *overrides)
    if edit is not None:
        cfg.trainer.v1.sampler.sampler_kwargs[edit[0]] = edit[1]
    with pytest.raises(FilterGroupsBoundError, match=pattern):
        check_filter_groups_bound(cfg)
