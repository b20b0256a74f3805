"""Every paper recipe trains one step through verl's trainer (``vlnorm-verl train RECIPE cluster=cpu model=tiny``),
and what defines it shows in what verl computed.

Each run dumps its training batch with verl's ``trainer.rollout_data_dir`` (prompt, response text, the reward verl
used, group uid) and logs verl's metrics. From the dump the test recomputes, by hand, what the recipe must have
done and compares it with verl's numbers:

- rewards: the dumped reward of every response equals the test reward recomputed on its text, plus the DAPO
  soft-punishment penalty where that is on (and nowhere else);
- advantages: verl's ``critic/advantages/{max,min}`` equal the GRPO advantages recomputed from the dumped rewards
  of each group - divided by the group's std or not (Dr. GRPO), zeroed for truncated responses (overlong
  filtering), re-weighted by L_i^-alpha / mean_j L_j^-alpha under VL Norm (batch scope) where the run carries
  the length probe below (the DAPO recipes);
- VL Norm statistics (``actor/vl_norm/*``) only where VL Norm is on, with the paper's alpha:
  ``weight_max / weight_min = (L_max / L_min) ** alpha`` over the batch, lengths from verl's own metrics;
- dynamic sampling: verl evicted groups without signal, and every group of a DAPO batch has signal;
- GRPO Norm / DAPO Norm: verl's vanilla loss with its own ``loss_agg_mode`` in the config verl ran.

Rewards (a random tiny model earns no task reward, and groups need signal):

- CountDown: the test reward ``toy_rewards.parity_on_odd_prompts`` (an odd count of digits in the response, on the
  prompts with an odd target; 0 on the others, which never give a group signal, so DAPO must filter them);
- Math: ``toy_rewards.math_planted`` - the project's math reward, run inside verl's reward loop on the offline smoke
  set (``prepare-data math --smoke``), with the reference answer planted when the digit count is odd (again only
  on "odd" prompts). The test recomputes that reward on the dumped text: a planted answer scores 1 only if the
  math reward verifies it against the smoke row's ground truth. A random response can also, rarely, earn the math
  reward by itself (seen once: an unboxed "3" for the answer 3), so Math does not assume only odd prompts score.

Lengths are read from the rewards: the overlong-filter and DAPO + VL Norm runs switch on verl's DAPO length penalty with
``buffer = cap - 1`` and factor ``(cap - 1) / 2**16``, so every reward carries ``-(L - 1) / 2**16`` and the dump
gives each response's token count ``L`` exactly (a change of at most 0.001 to the reward, which the expected
advantages include; the project's run check refuses a buffer as long as the cap).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from toy_rewards import math_planted, odd_prompt, parity_on_odd_prompts
from trainer_run import SUPPORT

pytestmark = [pytest.mark.slow, pytest.mark.recipe_train]

CAP = 64  # data.max_response_length: long enough that a random model sometimes stops early
LONG_CAP = 128  # VL Norm with alpha > 0 and overlong filtering: fewer runs with all 16 responses at the cap
BUFFER = 16  # model=tiny's DAPO overlong buffer
PROBE_UNIT = 2.0**-16  # length probe: penalty -(L - 1) * PROBE_UNIT
TOL = 1e-4
AT_ONCE = 2  # recipe runs side by side (SideBySideRuns); 3 was slower in the full suite (994 s vs 718 s)


@dataclass(frozen=True)
class Method:
    alpha: float | None  # VL Norm's alpha; None: verl's own loss
    std: bool  # GRPO advantages divided by the group std
    agg_mode: str | None = None  # verl's loss_agg_mode when verl aggregates
    dapo: bool = False  # dynamic sampling
    soft_punish: bool = False
    overlong_filter: bool = False


# the paper's runs (docs/recipes.md): VL Norm alpha 1.0 for CountDown, 0.75 for Math
PAPER_ALPHA = {"countdown": 1.0, "math": 0.75}
METHODS = {
    "vlnorm": Method(alpha=-1.0, std=True),  # -1: the task's paper alpha
    "drgrpo": Method(alpha=0.0, std=False),
    "drgrpo_norm": Method(alpha=0.0, std=True),
    "grpo_norm": Method(alpha=None, std=True, agg_mode="seq-mean-token-mean"),
    "dapo_norm": Method(alpha=None, std=True, agg_mode="token-mean"),
    "dapo_plain": Method(alpha=None, std=True, agg_mode="token-mean", dapo=True),
    "dapo_vlnorm": Method(alpha=-1.0, std=True, dapo=True),
    "dapo_soft_punish": Method(alpha=None, std=True, agg_mode="token-mean", dapo=True, soft_punish=True),
    "dapo_overlong_filter": Method(alpha=None, std=True, agg_mode="token-mean", dapo=True, overlong_filter=True),
}
RECIPES = [f"{task}_{method}" for task in ("countdown", "math") for method in METHODS]


def _toy_reward(name: str) -> list[str]:
    return [
        f"reward.custom_reward_function.path={SUPPORT / 'toy_rewards.py'}",
        f"reward.custom_reward_function.name={name}",
    ]


def _length_probe(cap: int) -> list[str]:
    return [
        "reward.reward_kwargs.overlong_buffer_cfg.enable=true",
        f"reward.reward_kwargs.overlong_buffer_cfg.len={cap - 1}",
        f"reward.reward_kwargs.overlong_buffer_cfg.penalty_factor={(cap - 1) * PROBE_UNIT}",
    ]


def _cap(method: Method) -> int:
    return LONG_CAP if method.alpha == -1.0 or method.overlong_filter else CAP


def _probes_lengths(method: Method) -> bool:
    """Whether the run carries the length probe: where the dump's rewards must give each response's length."""
    return method.overlong_filter or (method.dapo and method.alpha == -1.0)  # DAPO's reward manager only


def grpo_advantages(scores: list[float], std: bool) -> list[float]:
    """verl's GRPO outcome advantage of one group, written out: (r - mean) [/ (unbiased std + 1e-6)]."""
    mean = sum(scores) / len(scores)
    if not std:
        return [s - mean for s in scores]
    sd = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)) if len(scores) > 1 else 1.0
    return [(s - mean) / (sd + 1e-6) for s in scores]


def _group(uid: str) -> str:
    return uid.rsplit("_", 2)[0]  # verl's keys: {prompt uid}_{sample}_{turn}


def _ran_with(run, key: str):
    """``key`` of the config verl ran with (the attempt's ``.hydra/config.yaml``, interpolations resolved)."""
    (path,) = (run.runs_dir / "logs" / run.experiment).glob("*/.hydra/config.yaml")
    return OmegaConf.select(OmegaConf.load(path), key, throw_on_missing=True)


def _overrides(recipe: str, dump_dir: Path) -> list[str]:
    task, method_name = recipe.split("_", 1)
    method = METHODS[method_name]
    return [
        "trainer.total_training_steps=1",
        "trainer.save_freq=-1",
        f"data.max_response_length={_cap(method)}",
        f"trainer.rollout_data_dir={dump_dir}",
        # the whole batch (4 prompts x n=4 on 1 rank) in one micro-batch: batch-scope VL Norm reports its weights'
        # statistics per micro-batch (no engine hook), so they are the batch's and alpha is read off them exactly
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=16",
        *_toy_reward("parity_on_odd_prompts" if task == "countdown" else "math_planted"),
        *(_length_probe(_cap(method)) if _probes_lengths(method) else []),
    ]


class SideBySideRuns:
    """Runs the recipes :data:`AT_ONCE` at a time (``CPUTrainer.train_side_by_side``, one rank each) and keeps each
    run for its test."""

    def __init__(self, recipe_trainer, root: Path, selected: list[str]) -> None:
        self.recipe_trainer, self.root, self.selected = recipe_trainer, root, selected
        self.runs: dict[str, tuple[object, Path]] = {}

    def _runnable(self, recipe: str) -> bool:
        return recipe.startswith("countdown") or self.recipe_trainer.math_reason is None

    def get(self, recipe: str):
        if recipe not in self.runs:
            rest = [r for r in self.selected if r not in self.runs and r != recipe and self._runnable(r)]
            batch = [recipe, *rest[: AT_ONCE - 1]]
            launches = {r: (r, _overrides(r, self.root / r / "dump"), self.root / r, 420) for r in batch}
            runs = self.recipe_trainer.trainer.train_side_by_side(launches, VLNORM_CPU_RANKS="1")
            self.runs.update({r: (run, self.root / r / "dump") for r, run in runs.items()})
        return self.runs[recipe]


@pytest.fixture(scope="module")
def recipe_runs(recipe_trainer, tmp_path_factory, request) -> SideBySideRuns:
    selected = [
        item.callspec.params["recipe"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec") and "recipe" in item.callspec.params
    ]
    return SideBySideRuns(recipe_trainer, tmp_path_factory.mktemp("recipe_runs"), selected)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_with_its_defining_features(recipe: str, recipe_trainer, recipe_runs: SideBySideRuns) -> None:
    task, method_name = recipe.split("_", 1)
    method = METHODS[method_name]
    alpha = PAPER_ALPHA[task] if method.alpha == -1.0 else method.alpha
    cap = _cap(method)
    if task == "math":
        recipe_trainer.need_math()
    run, dump_dir = recipe_runs.get(recipe)
    assert run.returncode == 0, run.tail()
    assert run.steps() == [1], run.tail()
    metrics = run.records[0]["data"]
    print(  # what the run measured (pytest -s): wall time of its group, its one step, lengths, advantages
        f"{recipe}: wall {run.wall_s:.0f} s, step {metrics['timing_s/step']:.1f} s, lengths "
        f"{metrics['response_length/min']:.0f}-{metrics['response_length/max']:.0f} "
        f"(clip {metrics['response_length/clip_ratio']:.2f}), advantages {metrics['critic/advantages/min']:.3f}"
        f"..{metrics['critic/advantages/max']:.3f}, vl_norm weights {metrics.get('actor/vl_norm/weight_min')}"
        f"..{metrics.get('actor/vl_norm/weight_max')}"
    )
    rows = [json.loads(line) for line in (dump_dir / "1.jsonl").read_text().splitlines()]
    n = len(rows)
    assert n == 4 * 4  # model=tiny: 4 prompts x n = 4

    # --- rewards: the test reward on the dumped text, plus the length penalty where the recipe (or probe) has it
    test_reward = parity_on_odd_prompts if task == "countdown" else math_planted
    base = [test_reward("math_train", r["output"], r["gts"])["score"] for r in rows]
    if task == "math":
        smoke_answers = recipe_trainer.math_answers()
        assert all(r["gts"] in smoke_answers for r in rows)  # the rows came from the smoke set
    penalty = [r["score"] - b for r, b in zip(rows, base, strict=True)]
    lengths: list[int] | None = None
    if method.soft_punish:
        # -(L - (cap - BUFFER)) / BUFFER inside the buffer, 0 before it: a multiple of 1/16 in [-1, 0]
        assert all(-1.0 - 1e-6 <= p <= 1e-6 for p in penalty), penalty
        assert all(abs(p * BUFFER - round(p * BUFFER)) < 1e-4 for p in penalty), penalty
        # responses at the cap (verl's clip ratio counts them) take the full penalty, the others less
        full = sum(abs(p + 1.0) < 1e-6 for p in penalty)
        assert full == round(metrics["response_length/clip_ratio"] * n), (full, metrics["response_length/clip_ratio"])
        assert full > 0  # a random model reaches the cap: the penalty was applied in the reward verl used
    elif _probes_lengths(method):
        lengths = [1 + round(-p / PROBE_UNIT) for p in penalty]
        assert all(abs(p + (L - 1) * PROBE_UNIT) < 1e-6 for p, L in zip(penalty, lengths, strict=True))
        assert max(lengths) == metrics["response_length/max"] and min(lengths) == metrics["response_length/min"]
    else:
        assert all(abs(p) < 1e-6 for p in penalty), penalty  # no length penalty anywhere else

    # --- dynamic sampling: every group of a DAPO batch has signal (the acc / reward metric varies in it)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[_group(r["uid"])].append(i)
    assert len(groups) == 4 and all(len(g) == 4 for g in groups.values())
    signal_of = base if task == "countdown" else [r["score"] for r in rows]  # filter metric: acc / reward
    if method.dapo:
        assert all(len({signal_of[i] for i in g}) > 1 for g in groups.values()), signal_of
        if task == "countdown":  # CountDown filters on acc, which only the odd prompts can vary
            assert all(odd_prompt(rows[g[0]]["gts"]) for g in groups.values())
        # Math filters on the reward, which a length penalty (soft punishment or the probe) makes vary in almost
        # every group; elsewhere the even prompts' groups have no signal
        if not (task == "math" and (method.soft_punish or lengths is not None)):
            # half the prompts never have signal: verl's replay buffer met some and evicted them
            (evicted,) = [v for k, v in metrics.items() if k.endswith("filter_groups/evicted_samples")]
            assert evicted > 0
    else:
        assert not any(k.endswith("filter_groups/evicted_samples") for k in metrics)

    # --- advantages: GRPO from the dumped rewards, std or not, truncated responses zeroed by the filter
    expected = [0.0] * n
    for members in groups.values():
        for i, a in zip(members, grpo_advantages([rows[i]["score"] for i in members], method.std), strict=True):
            expected[i] = a
    if method.overlong_filter:
        truncated = [L >= cap for L in lengths]
        # the filter had something to do: truncated responses whose GRPO advantage is not zero
        assert any(t and abs(a) > 0.1 for t, a in zip(truncated, expected, strict=True)), (lengths, expected)
        expected = [0.0 if t else a for a, t in zip(expected, truncated, strict=True)]
    if alpha and lengths is not None:  # VL Norm, batch scope: A_i * L_i^-alpha / mean_j L_j^-alpha
        u = [L**-alpha for L in lengths]
        expected = [a * ui * n / sum(u) for a, ui in zip(expected, u, strict=True)]
    if not alpha or lengths is not None:  # the advantages verl computed, where the dump determines them
        assert metrics["critic/advantages/max"] == pytest.approx(max(expected), abs=TOL)
        assert metrics["critic/advantages/min"] == pytest.approx(min(expected), abs=TOL)
    if not method.std:
        assert max(abs(a) for a in expected) <= 1.0 + 1e-9  # Dr. GRPO: rewards in [0, 1] minus the group mean

    # --- the aggregation: VL Norm's statistics only where it is on, with its alpha; verl's own modes otherwise
    actor = "actor_rollout_ref.actor"
    vl_keys = [k for k in metrics if k.startswith("actor/vl_norm/")]
    if alpha is None:
        assert vl_keys == []
        assert _ran_with(run, f"{actor}.policy_loss.loss_mode") == "vanilla"
        assert _ran_with(run, f"{actor}.loss_agg_mode") == method.agg_mode
        assert _ran_with(run, "algorithm.adv_estimator") == ("overlong_filter" if method.overlong_filter else "grpo")
    else:
        assert _ran_with(run, f"{actor}.policy_loss.loss_mode") == "vl_norm"
        assert _ran_with(run, "algorithm.adv_estimator") == "vl_norm"
        assert _ran_with(run, f"{actor}.policy_loss.alpha") == alpha
        assert _ran_with(run, f"{actor}.loss_scale_factor") == cap  # M
        assert metrics["actor/vl_norm/responses"] == n
        w_max, w_min = metrics["actor/vl_norm/weight_max"], metrics["actor/vl_norm/weight_min"]
        l_max, l_min = metrics["response_length/max"], metrics["response_length/min"]
        if alpha == 0.0 or l_max == l_min:
            assert w_max == pytest.approx(1.0, abs=1e-6) and w_min == pytest.approx(1.0, abs=1e-6)
        else:
            assert math.log(w_max / w_min) / math.log(l_max / l_min) == pytest.approx(alpha, rel=1e-4)
    assert _ran_with(run, "algorithm.norm_adv_by_std_in_grpo") is method.std
    assert math.isfinite(metrics["actor/pg_loss"])
    # a gradient exactly when some response carries a non-zero advantage (all truncated: the filter leaves none)
    assert (metrics["actor/grad_norm"] > 0) is any(abs(a) > 1e-6 for a in expected)
