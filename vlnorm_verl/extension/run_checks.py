"""Trainer settings that verl 0.9.x accepts at start-up but that fail, or silently run differently, on the cluster.

Each check takes the composed trainer config (verl's ``ppo_trainer`` DictConfig) and raises
:class:`RunConfigError` naming the setting and the fix:

* lengths and batches: ``data.max_response_length`` must be a positive integer; the actor's
  ``ppo_mini_batch_size`` must divide ``data.train_batch_size`` (verl splits the batch into mini-batches and
  would otherwise drop or mis-size the last optimizer step);
* group baselines: an estimator that normalises within a prompt's group (GRPO, RLOO, OPO and their variants, also
  as the base of ``vl_norm`` or ``overlong_filter``) needs ``actor_rollout_ref.rollout.n >= 2``, and so does DAPO
  dynamic sampling (a group of one never has signal and is always filtered out);
* gradient clipping: verl's FSDP engine clips with ``actor.optim.clip_grad`` (its optimizer config, or the
  deprecated ``actor.optim.grad_clip`` when set); ``actor.grad_clip`` is a legacy key the engine never reads.
  The two must agree, so the value a user sets is the value that trains (:func:`engine_clip_grad` reads it
  through verl's own optimizer dataclass);
* VL Norm with a multi-turn agent loop (``rollout.multi_turn.enable`` or an agent loop other than
  ``single_turn_agent``): refused. Its L_i is the ``response_mask`` row sum, which in a multi-turn rollout
  leaves out the tool and environment tokens between the model's turns, so the weights would not be the
  paper's length weights; exactness there is not derived;
* rewards: the legacy reward keys verl 0.9.x ignores (``reward_model.reward_manager``,
  ``reward_model.reward_kwargs``, ``custom_reward_function.*``) must be unset; the reward manager must be
  registered; the DAPO soft overlong punishment needs the dapo manager and a buffer with
  0 < ``overlong_buffer_cfg.len`` < ``max_resp_len``; the dynamic-sampling metric must be one the project's reward
  function reports;
* the ``hf`` rollout backend (``rollout.name=hf``) needs verl's private rollout registry where this package
  writes it (:func:`vlnorm_verl.cpu.rollout.backend.check_registry`; a moved registry raises
  :class:`~vlnorm_verl.extension.verl_compat.UnsupportedVerlError` naming the verl version).

:func:`verl_validate` runs verl's own ``validate_config`` as ``main_ppo`` would, after Ray has started; the
start-up check (:func:`vlnorm_verl.extension.startup_check.check_run_config`) runs it before.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Any

from omegaconf import OmegaConf

from vlnorm_verl.extension.settings import ESTIMATOR_NAME as VL_NORM_ESTIMATOR
from vlnorm_verl.extension.settings import OVERLONG_FILTER_ESTIMATOR, VLNormConfigError

CLIP_KEY = "actor_rollout_ref.actor.optim.clip_grad"
LEGACY_CLIP_KEY = "actor_rollout_ref.actor.grad_clip"
OUR_REWARD_PATH = "pkg://vlnorm_verl.rewards"
OUR_REWARD_KEYS = ("score", "acc")
#: verl estimators whose baseline comes from the other responses of the same prompt (verl's core_algos)
GROUP_ESTIMATORS = ("grpo", "grpo_passk", "grpo_vectorized", "rloo", "rloo_vectorized", "opo")
#: wrapping estimators of this package -> the section naming the estimator they wrap
WRAPPERS = {VL_NORM_ESTIMATOR: "vl_norm", OVERLONG_FILTER_ESTIMATOR: "overlong_filter"}
SINGLE_TURN_AGENT = "single_turn_agent"


class RunConfigError(VLNormConfigError):
    """A trainer setting that would fail or be ignored on the cluster; the message names it and the fix."""


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    return OmegaConf.select(cfg, key, default=default)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_lengths_and_batches(cfg: Any) -> None:
    length = _get(cfg, "data.max_response_length")
    if not _positive_int(length):
        raise RunConfigError(
            f"data.max_response_length={length!r}: it must be a positive number of tokens (the response cap; "
            "M in VL Norm); set data.max_response_length, e.g. data.max_response_length=3072"
        )
    batch = _get(cfg, "data.train_batch_size")
    mini = _get(cfg, "actor_rollout_ref.actor.ppo_mini_batch_size")
    if _positive_int(batch) and _positive_int(mini) and batch % mini:
        raise RunConfigError(
            f"actor_rollout_ref.actor.ppo_mini_batch_size={mini} does not divide data.train_batch_size={batch}: "
            f"every optimizer step must see a full mini-batch; set ppo_mini_batch_size to a divisor of {batch} "
            f"(e.g. {_largest_divisor_at_most(batch, mini)}) or change data.train_batch_size"
        )


def _largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def estimator_chain(algorithm: Any) -> list[tuple[str, str]]:
    """[(setting, estimator)] from ``algorithm.adv_estimator`` through the wrappers to the innermost estimator."""
    setting, name = "algorithm.adv_estimator", str(algorithm.get("adv_estimator", ""))
    chain = [(setting, name)]
    while name in WRAPPERS and len(chain) < 4:
        section = WRAPPERS[name]
        setting = f"algorithm.{section}.base_estimator"
        name = str((algorithm.get(section, None) or {}).get("base_estimator", None) or "grpo")
        chain.append((setting, name))
    return chain


def check_group_size(cfg: Any) -> None:
    n = _get(cfg, "actor_rollout_ref.rollout.n", 1)
    if isinstance(n, int) and n >= 2:
        return
    setting, base = estimator_chain(cfg.algorithm)[-1]
    if base in GROUP_ESTIMATORS:
        raise RunConfigError(
            f"actor_rollout_ref.rollout.n={n} with {setting}={base}: {base} takes its baseline from the other "
            f"responses to the same prompt, and a group of {n} has none; set actor_rollout_ref.rollout.n>=2 "
            "(the paper uses 8 or 10)"
        )
    if _get(cfg, "algorithm.filter_groups.enable", False):
        raise RunConfigError(
            f"actor_rollout_ref.rollout.n={n} with algorithm.filter_groups.enable=true: a group of one response "
            "never has signal, so dynamic sampling would filter every group; set actor_rollout_ref.rollout.n>=2"
        )


def engine_clip_grad(cfg: Any) -> float:
    """The gradient-norm clip verl's engine will use: ``clip_grad`` of verl's optimizer config for the actor."""
    from verl.utils.config import omega_conf_to_dataclass

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # optim.grad_clip, if set, is verl's deprecated alias
        optim = omega_conf_to_dataclass(cfg.actor_rollout_ref.actor.optim)
    return float(optim.clip_grad)


def check_grad_clip(cfg: Any) -> None:
    engine = engine_clip_grad(cfg)
    legacy = _get(cfg, LEGACY_CLIP_KEY)
    if legacy is not None and float(legacy) != engine:
        raise RunConfigError(
            f"{LEGACY_CLIP_KEY}={legacy} differs from {CLIP_KEY}={engine:g}, the gradient clip verl's engine "
            f"uses ({LEGACY_CLIP_KEY} is a legacy key it ignores); set {CLIP_KEY} to the clip you want and leave "
            f"{LEGACY_CLIP_KEY} unset (the packaged configs keep it equal) or set it to the same value"
        )


def check_agent_loop(cfg: Any) -> None:
    if cfg.algorithm.get("adv_estimator", None) != VL_NORM_ESTIMATOR:
        return
    fix = (
        "VL Norm's length weights are derived for single-turn responses (in a multi-turn rollout the "
        "response_mask leaves out the tool and environment tokens between turns); set "
        "actor_rollout_ref.rollout.multi_turn.enable=false and "
        f"actor_rollout_ref.rollout.agent.default_agent_loop={SINGLE_TURN_AGENT}, or use aggregation=dapo_norm"
    )
    if _get(cfg, "actor_rollout_ref.rollout.multi_turn.enable", False):
        raise RunConfigError(
            f"actor_rollout_ref.rollout.multi_turn.enable=true with algorithm.adv_estimator=vl_norm: {fix}"
        )
    loop = _get(cfg, "actor_rollout_ref.rollout.agent.default_agent_loop", SINGLE_TURN_AGENT)
    if loop not in (None, SINGLE_TURN_AGENT):
        raise RunConfigError(
            f"actor_rollout_ref.rollout.agent.default_agent_loop={loop!r} with algorithm.adv_estimator=vl_norm: {fix}"
        )


def check_reward(cfg: Any) -> None:
    legacy = {
        "reward_model.reward_manager": "reward.reward_manager.name",
        "reward_model.reward_kwargs": "reward.reward_kwargs",
        "custom_reward_function.path": "reward.custom_reward_function.path",
        "custom_reward_function.name": "reward.custom_reward_function.name",
    }
    for key, new in legacy.items():
        if _get(cfg, key) is not None:
            raise RunConfigError(f"{key} is a legacy key that verl 0.9.x's trainer ignores; set {new} instead")
    manager = _get(cfg, "reward.reward_manager.name")
    if _get(cfg, "reward.reward_manager.source", "register") == "register":
        from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

        if manager not in REWARD_MANAGER:
            raise RunConfigError(
                f"reward.reward_manager.name={manager!r} is not registered; choose one of {sorted(REWARD_MANAGER)}"
            )
    buffer = _get(cfg, "reward.reward_kwargs.overlong_buffer_cfg")
    soft = buffer is not None and bool(buffer.get("enable", False))
    if soft:
        if manager != "dapo":
            raise RunConfigError(
                "reward.reward_kwargs.overlong_buffer_cfg.enable=true needs reward.reward_manager.name=dapo "
                f"(found {manager!r}): only verl's dapo reward manager applies the soft overlong punishment"
            )
        max_len = _get(cfg, "reward.reward_kwargs.max_resp_len")
        length = buffer.get("len", None)
        if not _positive_int(max_len) or not _positive_int(length) or length >= max_len:
            raise RunConfigError(
                f"soft overlong punishment needs 0 < reward.reward_kwargs.overlong_buffer_cfg.len ({length}) < "
                f"reward.reward_kwargs.max_resp_len ({max_len}): a buffer as long as the response cap punishes every "
                "response; set a shorter overlong_buffer_cfg.len (the paper: 2048 of 3072), and "
                "max_resp_len='${data.max_response_length}'"
            )
    groups = cfg.algorithm.get("filter_groups", None)
    if groups is not None and groups.get("enable", False):
        metric = groups.get("metric", None)
        known = ("reward", *OUR_REWARD_KEYS)
        if soft and buffer.get("log", False):
            known = (*known, "overlong_reward", "overlong")
        if not metric:
            raise RunConfigError(
                "algorithm.filter_groups.metric must be set when dynamic sampling is on (acc or reward)"
            )
        if _get(cfg, "reward.custom_reward_function.path") == OUR_REWARD_PATH and metric not in known:
            raise RunConfigError(
                f"algorithm.filter_groups.metric={metric!r} is not reported by {OUR_REWARD_PATH}; "
                f"use one of {list(known)}"
            )


def check_rollout_backend(cfg: Any) -> None:
    from vlnorm_verl.cpu.rollout import backend

    if backend.is_selected(cfg):
        backend.check_registry()


def verl_validate(cfg: Any) -> None:
    """verl's own ``validate_config``, as ``verl.trainer.main_ppo`` runs it (its prints go to stderr)."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        validate_config(config=cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))


def check_run(cfg: Any) -> None:
    """Every check of this module (not :func:`verl_validate`)."""
    check_lengths_and_batches(cfg)
    check_group_size(cfg)
    check_grad_clip(cfg)
    check_agent_loop(cfg)
    check_reward(cfg)
    check_rollout_backend(cfg)
