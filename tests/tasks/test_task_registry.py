"""The task registry: every task's sources reach its scorer, no shared sources, a config per task, prepare-data.

A new task must add a known-correct and a known-wrong response to ``EXAMPLES`` (the first test says so).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
import yaml

import vlnorm_verl
from vlnorm_verl import rewards
from vlnorm_verl.tasks import ALL_SOURCES, TASKS, TASKS_BY_NAME, TASKS_BY_SOURCE, task_for_source, task_named
from vlnorm_verl.tasks import prepare as prepare_cli

CONFIG_DIR = Path(vlnorm_verl.__file__).resolve().parent / "configs"

# task name -> (ground truth, correct response, wrong response)
EXAMPLES = {
    "countdown": (
        {"target": 98, "numbers": [44, 19, 35]},
        "<think>44 + 19 = 63, 63 + 35 = 98</think>\n<answer> 44 + 19 + 35 </answer>",
        "<think>hmm</think>\n<answer> 44 + 19 - 35 </answer>",
    ),
    "math": ("\\frac{1}{2}", "so the answer is \\boxed{\\frac{1}{2}}", "so the answer is \\boxed{3}"),
}


@pytest.fixture
def default_math_pool(math_pool, monkeypatch):
    """The shared warmed pool as the process-wide one the math scorer uses."""
    from vlnorm_verl.tasks.math import pool as mp

    monkeypatch.setattr(mp, "_DEFAULT", math_pool)
    return math_pool


def test_every_task_has_examples():
    assert set(EXAMPLES) == set(TASKS_BY_NAME), "add a correct and a wrong response for each task to EXAMPLES"


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_compute_score_dispatches_each_source_to_its_task(task, default_math_pool):
    truth, right, wrong = EXAMPLES[task.name]
    assert task.score(right, truth) == {"score": 1.0, "acc": 1.0}
    assert task.score(wrong, truth) == {"score": 0.0, "acc": 0.0}
    for source in task.data_sources:
        assert task_for_source(source) is task
        for response in (right, wrong):
            assert rewards.compute_score(source, response, truth) == task.score(response, truth)
            assert rewards.compute_score(source.encode(), response, truth, extra_info={}) == task.score(response, truth)
    n = len(task.data_sources)
    batch = rewards.compute_scores(list(task.data_sources) * 2, [right] * n + [wrong] * n, [truth] * (2 * n))
    assert batch == task.score_many([right] * n + [wrong] * n, [truth] * (2 * n))
    assert [r["acc"] for r in batch] == [1.0] * n + [0.0] * n


def test_compute_score_calls_the_owning_tasks_scorer(monkeypatch):
    calls: list[tuple[str, str]] = []
    for source, task in list(TASKS_BY_SOURCE.items()):

        def spy(solution_str, ground_truth, _name=task.name, **options):
            calls.append((_name, solution_str))
            return {"score": 0.5, "acc": 0.0}

        monkeypatch.setitem(TASKS_BY_SOURCE, source, dataclasses.replace(task, score=spy, score_batch=None))
    for source in ALL_SOURCES:
        assert rewards.compute_score(source, f"response for {source}", None, math_timeout_s=1) == {
            "score": 0.5,
            "acc": 0.0,
        }
    assert calls == [(TASKS_BY_SOURCE[s].name, f"response for {s}") for s in ALL_SOURCES]
    calls.clear()
    mixed = list(reversed(ALL_SOURCES))
    assert len(rewards.compute_scores(mixed, mixed, [None] * len(mixed))) == len(mixed)
    assert sorted(calls) == sorted((TASKS_BY_SOURCE[s].name, s) for s in mixed)


def test_unknown_source_lists_every_handled_source():
    with pytest.raises(ValueError, match="cannot score data_source 'gsm8k'") as info:
        rewards.compute_score("gsm8k", "x", "1")
    for source in ALL_SOURCES:
        assert source in str(info.value)
    with pytest.raises(KeyError, match="gsm8k"):
        task_for_source("gsm8k")
    with pytest.raises(KeyError, match="countdown"):
        task_named("gsm8k")


def test_no_data_source_belongs_to_two_tasks():
    sources = [s for task in TASKS for s in task.data_sources]
    assert len(sources) == len(set(sources)) == len(ALL_SOURCES)
    assert set(ALL_SOURCES) == set(TASKS_BY_SOURCE)
    assert len({task.name for task in TASKS}) == len(TASKS)
    assert all(task.data_sources for task in TASKS)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_every_task_has_a_config_using_the_reward_entry_point(task):
    path = CONFIG_DIR / "task" / f"{task.name}.yaml"
    assert path.is_file(), f"task {task.name!r} has no config {path}"
    reward = yaml.safe_load(path.read_text())["reward"]["custom_reward_function"]
    assert reward["path"] == "pkg://vlnorm_verl.rewards"
    assert reward["name"] == "compute_score"


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_every_task_has_a_parquet_schema(task):
    schema = task.parquet_schema()
    assert schema.names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    assert [f.name for f in schema.field("extra_info").type][:2] == ["split", "index"]


def test_prepare_data_offers_exactly_the_registered_tasks():
    parser = argparse.ArgumentParser(prog="prepare-data", exit_on_error=False)
    prepare_cli.add_arguments(parser)
    (task_action,) = [a for a in parser._actions if a.dest == "task"]
    assert list(task_action.choices) == [task.name for task in TASKS]
    for task in TASKS:
        assert parser.parse_args([task.name]).task == task.name
    with pytest.raises(argparse.ArgumentError):
        parser.parse_args(["gsm8k"])
    # every task contributes its meaning of the shared options to their help
    for action in parser._actions:
        if action.dest in ("source", "train_size"):
            assert [part.split(":")[0] for part in action.help.split("; ")] == [task.name for task in TASKS]
