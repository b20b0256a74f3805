"""What verl's engine will use, read through verl's own config dataclasses, equals what the launcher prints, for
every recipe: the gradient clip (``actor.optim.clip_grad``; ``actor.grad_clip`` is a legacy key the engine ignores)
and the actor/ref strategy (FSDP2, the engine the CPU tests run)."""

from __future__ import annotations

import re
import warnings

import pytest
import verl  # noqa: F401  (loads the plugin through verl's entry point)
from verl.utils.config import omega_conf_to_dataclass

from vlnorm_verl.launch import cli
from vlnorm_verl.launch import launcher as launch

RECIPES = launch.list_recipes()


def engine_actor(cfg):
    """The actor config verl's engine worker builds (``ActorRolloutRefWorker``: omega_conf_to_dataclass(actor))."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return omega_conf_to_dataclass(cfg.actor_rollout_ref.actor)


def printed(summary: str, label: str) -> list[str]:
    line = next(line for line in summary.splitlines() if line.startswith(label))
    return [part.strip() for part in line[len(label) :].split(" / ")]


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("clip", [None, 0.5])
def test_the_printed_grad_clip_is_the_one_the_engine_uses(run_dirs, recipe: str, clip: float | None) -> None:
    overrides = [] if clip is None else [f"actor_rollout_ref.actor.optim.clip_grad={clip}"]
    launched = launch.prepare(recipe, overrides, {})
    used = engine_actor(launched.cfg).optim.clip_grad
    assert used == (1.0 if clip is None else clip)  # the paper's runs clip gradients at 1.0 (docs/recipes.md)
    shown = printed(launch.summary(launched), "grad clip (optim.clip_grad) / temperature")
    assert float(shown[0]) == used
    assert launched.cfg.actor_rollout_ref.actor.grad_clip == used  # the legacy key follows


@pytest.mark.parametrize("recipe", ["countdown_dapo_vlnorm", "math_grpo_norm"])
def test_setting_only_the_legacy_grad_clip_is_refused_naming_both_keys(run_dirs, capsys, recipe: str) -> None:
    assert cli.main(["train", recipe, "actor_rollout_ref.actor.grad_clip=0.5", "--dry-run"]) == launch.EXIT_INVALID
    err = capsys.readouterr().err
    assert re.search(r"actor\.grad_clip=0\.5 differs from actor_rollout_ref\.actor\.optim\.clip_grad=1", err), err


def test_the_legacy_key_set_to_the_same_value_passes(run_dirs) -> None:
    launched = launch.prepare(
        "countdown_vlnorm",
        ["actor_rollout_ref.actor.grad_clip=0.5", "actor_rollout_ref.actor.optim.clip_grad=0.5"],
        {},
    )
    assert engine_actor(launched.cfg).optim.clip_grad == 0.5


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_trains_with_the_fsdp2_engine_the_tests_run(run_dirs, monkeypatch, recipe: str) -> None:
    launched = launch.prepare(recipe, [], {})
    # the worker builds the ref's dataclass from the ref section after renaming its batch keys; strategy passes as is
    used = [engine_actor(launched.cfg).strategy, launched.cfg.actor_rollout_ref.ref.strategy]
    assert used == ["fsdp2", "fsdp2"]  # not verl's default FSDP1 ("fsdp")
    assert printed(launch.summary(launched), "actor / ref strategy") == used
    # the engine class verl's EngineRegistry picks for it on a GPU node is the FSDP engine the CPU tests run
    from verl.workers.engine import EngineRegistry

    monkeypatch.setenv("VERL_ENGINE_DEVICE", "cuda")  # as on a GPU node (the CPU runs set the same)
    monkeypatch.setenv("VERL_ENGINE_VENDOR", "nvidia")
    engine = EngineRegistry.get_engine_cls(model_type="language_model", backend=used[0])
    assert engine.__name__ == "FSDPEngineWithLMHead"


def test_the_strategy_stays_overridable(run_dirs) -> None:
    launched = launch.prepare("countdown_vlnorm", ["actor_rollout_ref.actor.strategy=fsdp"], {})
    assert engine_actor(launched.cfg).strategy == "fsdp"
    assert printed(launch.summary(launched), "actor / ref strategy") == ["fsdp", "fsdp2"]
