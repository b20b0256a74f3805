"""Bounded DAPO dynamic sampling for verl 0.9.x's v1 sync trainer.

verl 0.9.1's v1 :class:`~verl.trainer.ppo.v1.replay_buffer.ReplayBuffer` implements DAPO dynamic sampling
(``algorithm.filter_groups.{enable,metric,max_inflight_gen_batches}``) but ignores
``algorithm.filter_groups.max_num_gen_batches``: while no group has signal (every response of a group has the
same metric value, e.g. a model that never earns reward) it generates forever without training.
:class:`BoundedReplayBuffer` is that buffer with the bound restored.

Contract
--------
* Selected with verl's public setting ``trainer.v1.sampler.custom_sampler.{path,name}`` =
  ``pkg://vlnorm_verl.extension.bounded_sampler`` / ``BoundedReplayBuffer`` (``variant/dapo`` does it). verl hands a
  custom sampler only ``trainer_mode``, ``trainer_config``, ``max_off_policy_*``, ``sampler_kwargs`` and ``refill_fn``
  (``PPOTrainer._build_replay_buffer``), so the filter-groups settings reach it through
  ``trainer.v1.sampler.sampler_kwargs`` (a free-form mapping verl stores but never reads), as interpolations of
  the settings they mirror — :data:`SAMPLER_KWARGS` lists them; every key is required, unknown keys are refused.
* Behaviour is verl's: the constructor passes verl's built-in buffer exactly the arguments
  ``_build_replay_buffer`` computes for it (metric, train batch size, gen batch size, in-flight bound, failed-group
  refill), and nothing of the filtering, refilling, draining or selection is re-implemented: the subclass only
  observes two of verl's steps (eviction and the sampleable set) to count groups.
* The bound: one generation batch is ``data.train_batch_size`` prompts' worth of groups (verl's v1 unit for
  ``max_inflight_gen_batches``). Within one ``sample()`` call for the training partition — one training batch; the
  count starts at zero for each — a group counts as generated once it is terminal (finished or failed) and verl
  has classified it: filtered out (no signal, or a failed group refilled) or kept (sampleable). As soon as
  ``generated >= max_num_gen_batches * train_batch_size`` while ``kept < batch_size``, :class:`GenerationBoundError`
  is raised. It names the cause (no / too few groups with signal; the constant metric value when the filtered
  groups share one), the numbers (groups generated, kept, needed), the setting and the likely fixes.
* Where it is raised: in ``sample()`` itself, on the trainer's main path —
  ``TaskRunnerV1.run`` -> ``PPOTrainer.fit`` -> ``step`` -> ``_step_once`` -> ``replay_buffer.sample`` ->
  (verl's poll loop) -> ``_sampleable_terminal_keys`` — never in an asyncio task, so it propagates out of
  ``fit()`` (``TaskRunnerV1.run`` has only ``try/finally``) and out of ``ray.get`` in ``run_ppo``.
* ``max_num_gen_batches: 0`` keeps verl's unbounded behaviour and logs a warning at construction; negative or
  non-integer values raise :class:`FilterGroupsBoundError` (a ``ValueError``) at construction. With
  ``filter_groups`` disabled, or for the validation partition, there is no bound and the buffer is verl's.
* ``sampler_kwargs.poll_interval`` (optional, seconds; verl's default 2.0) is how often verl's buffer polls the
  rollout's progress: ``cluster=cpu`` sets 0.05, since a 2 s poll would be most of a CPU training step.
* Sync trainer only (``trainer.v1.trainer_mode=sync``); other modes are refused at construction.
* Guarded: the subclass overrides verl's private ``ReplayBuffer._evict_terminal_groups`` and
  ``._sampleable_terminal_keys`` and reads its ``filter_groups_metric`` / ``train_batch_size`` state, so
  :func:`check_replay_buffer_contract` (verl's version, the signatures in :data:`REPLAY_BUFFER_CONTRACT`) runs at
  the launch-time check and again at construction, raising
  :class:`~vlnorm_verl.extension.verl_compat.UnsupportedVerlError` when verl changed - never falling back to an
  unbounded buffer.

:func:`check_filter_groups_bound` is the launch-time check (cheap, no Ray): it warns when dynamic sampling is on
without this buffer (the bound is then not enforced) and raises when this buffer is selected with invalid or
inconsistent settings.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from vlnorm_verl.extension.verl_compat import (
    INSTALL_SUPPORTED_VERL,
    UnsupportedVerlError,
    check_signature,
    check_verl_version,
)

logger = logging.getLogger(__name__)

SAMPLER_PATH = "pkg://vlnorm_verl.extension.bounded_sampler"
SAMPLER_NAME = "BoundedReplayBuffer"
SETTING = "algorithm.filter_groups.max_num_gen_batches"
# sampler_kwargs key -> the trainer setting it must interpolate (what verl's _build_replay_buffer reads for its
# built-in buffer)
SAMPLER_KWARGS: dict[str, str] = {
    "filter_groups_enable": "algorithm.filter_groups.enable",
    "filter_groups_metric": "algorithm.filter_groups.metric",
    "max_num_gen_batches": "algorithm.filter_groups.max_num_gen_batches",
    "max_inflight_gen_batches": "algorithm.filter_groups.max_inflight_gen_batches",
    "train_batch_size": "data.train_batch_size",
    "gen_batch_size": "data.gen_batch_size",
    "sync_refill_failed_groups": "trainer.v1.sampler.sync_refill_failed_groups",
}
#: optional sampler_kwargs: key -> default (verl's built-in value)
OPTIONAL_SAMPLER_KWARGS: dict[str, Any] = {
    "poll_interval": 2.0,  # seconds between polls of the rollout's progress (verl's ReplayBuffer default)
}
FIXES = (
    "warm-start the model (e.g. a short SFT on reference solutions) so that it sometimes earns reward; "
    "check the reward function on a few real responses (reward.custom_reward_function, "
    "algorithm.filter_groups.metric); or lower data.train_batch_size so fewer groups with signal fill a batch"
)


#: the verl ReplayBuffer methods the subclass calls or overrides -> their parameters in verl 0.9.1
REPLAY_BUFFER_CONTRACT: dict[str, tuple[str, ...]] = {
    "__init__": (
        "self",
        "trainer_mode",
        "trainer_config",
        "max_off_policy_threshold",
        "max_off_policy_strategy",
        "sampler_kwargs",
        "poll_interval",
        "refill_fn",
        "filter_groups_metric",
        "train_batch_size",
        "gen_batch_size",
        "max_inflight_gen_batches",
        "sync_refill_failed_groups",
    ),
    "sample": ("self", "global_steps", "partition_id", "batch_size"),
    "_evict_terminal_groups": ("self", "global_steps", "partition_id", "eviction_reasons"),
    "_sampleable_terminal_keys": ("self", "partition_id", "eviction_reasons"),
}
#: the state verl's ReplayBuffer.__init__ sets and the subclass reads
REPLAY_BUFFER_STATE = ("filter_groups_metric", "train_batch_size")
CONTRACT_FIX = (
    f"{INSTALL_SUPPORTED_VERL}, or turn DAPO dynamic sampling off "
    "(algorithm.filter_groups.enable=false, and unset trainer.v1.sampler.custom_sampler)"
)


def check_replay_buffer_contract(version: str | None = None, base: type | None = None) -> None:
    """Raise :class:`UnsupportedVerlError` unless verl's version and ``ReplayBuffer``'s methods are the known ones."""
    base = ReplayBuffer if base is None else base
    check_verl_version(
        f"{SAMPLER_NAME} (it overrides private methods of verl's v1 ReplayBuffer)", CONTRACT_FIX, version=version
    )
    for method, params in REPLAY_BUFFER_CONTRACT.items():
        check_signature(
            getattr(base, method, None),
            params,
            f"verl.trainer.ppo.v1.replay_buffer.ReplayBuffer.{method}",
            f"{SAMPLER_NAME} relies on it; {CONTRACT_FIX}",
        )


class FilterGroupsBoundError(ValueError):
    """The dynamic-sampling bound is mis-configured; the message names the setting and the fix."""


class GenerationBoundError(RuntimeError):
    """DAPO dynamic sampling generated ``max_num_gen_batches`` generation batches without filling a training batch.

    Constructed with the message only (so it pickles through Ray); the numbers are attributes.
    """

    groups_generated: int
    groups_kept: int
    needed: int
    max_num_gen_batches: int
    train_batch_size: int
    metric: str
    filtered_values: dict[float, int]


class UnboundedGenerationWarning(UserWarning):
    """DAPO dynamic sampling may generate forever (the bound is off or not enforced)."""


def _kwargs_hint() -> str:
    return ", ".join(f"{key}: ${{{target}}}" for key, target in SAMPLER_KWARGS.items())


@dataclass(frozen=True)
class BoundedSamplerSettings:
    """What :class:`BoundedReplayBuffer` reads from ``trainer.v1.sampler.sampler_kwargs``."""

    filter_groups_enable: bool
    filter_groups_metric: str | None
    max_num_gen_batches: int
    max_inflight_gen_batches: int
    train_batch_size: int
    gen_batch_size: int | None
    sync_refill_failed_groups: bool
    poll_interval: float = OPTIONAL_SAMPLER_KWARGS["poll_interval"]

    @classmethod
    def from_sampler_kwargs(cls, raw: Mapping[str, Any] | None) -> BoundedSamplerSettings:
        where = "trainer.v1.sampler.sampler_kwargs"
        raw = dict(raw or {})
        missing = [key for key in SAMPLER_KWARGS if key not in raw]
        unknown = sorted(set(raw) - set(SAMPLER_KWARGS) - set(OPTIONAL_SAMPLER_KWARGS))
        if missing or unknown:
            problem = f"is missing {missing}" if missing else f"has unknown keys {unknown}"
            if missing and unknown:
                problem += f" and unknown keys {unknown}"
            raise FilterGroupsBoundError(
                f"{where} {problem}: {SAMPLER_NAME} reads the filter-groups settings from there (verl does not "
                f"hand them to a custom sampler); set {where}={{{_kwargs_hint()}}} (variant/dapo does)"
            )
        enable = raw["filter_groups_enable"]
        if not isinstance(enable, bool):
            raise FilterGroupsBoundError(f"algorithm.filter_groups.enable must be true or false, got {enable!r}")
        metric = raw["filter_groups_metric"]
        if metric is not None and not isinstance(metric, str):
            raise FilterGroupsBoundError(f"algorithm.filter_groups.metric must be a string, got {metric!r}")
        if enable and not metric:
            # verl's _resolve_filter_groups_metric raises this for its built-in buffer; it skips custom samplers
            raise FilterGroupsBoundError("algorithm.filter_groups.metric must be set when group filtering is enabled")
        inflight = raw["max_inflight_gen_batches"]
        if enable and (isinstance(inflight, bool) or not isinstance(inflight, int) or inflight <= 0):
            # verl's _validate_mode_config checks the same, naming no setting
            raise FilterGroupsBoundError(
                f"algorithm.filter_groups.max_inflight_gen_batches must be a positive integer, got {inflight!r}"
            )
        bound = raw["max_num_gen_batches"]
        if isinstance(bound, bool) or not isinstance(bound, int) or bound < 0:
            raise FilterGroupsBoundError(
                f"{SETTING} must be a non-negative integer (the number of generation batches of "
                f"data.train_batch_size prompts DAPO dynamic sampling may generate for one training batch; "
                f"0 = unbounded), got {bound!r}"
            )
        train_batch_size = raw["train_batch_size"]
        if isinstance(train_batch_size, bool) or not isinstance(train_batch_size, int) or train_batch_size <= 0:
            raise FilterGroupsBoundError(f"data.train_batch_size must be a positive integer, got {train_batch_size!r}")
        refill_failed = raw["sync_refill_failed_groups"]
        if not isinstance(refill_failed, bool):
            raise FilterGroupsBoundError(
                f"trainer.v1.sampler.sync_refill_failed_groups must be true or false, got {refill_failed!r}"
            )
        poll = raw.get("poll_interval", OPTIONAL_SAMPLER_KWARGS["poll_interval"])
        if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0 < poll <= 60:
            raise FilterGroupsBoundError(
                f"trainer.v1.sampler.sampler_kwargs.poll_interval must be a number of seconds in (0, 60], got {poll!r}"
            )
        return cls(
            poll_interval=float(poll),
            filter_groups_enable=enable,
            filter_groups_metric=str(metric) if metric is not None else None,
            max_num_gen_batches=bound,
            max_inflight_gen_batches=inflight,
            train_batch_size=train_batch_size,
            gen_batch_size=raw["gen_batch_size"],
            sync_refill_failed_groups=refill_failed,
        )

    def builtin_kwargs(self) -> dict[str, Any]:
        """The extra arguments verl's ``_build_replay_buffer`` gives its built-in sync ``ReplayBuffer``."""
        metric = self.filter_groups_metric if self.filter_groups_enable else None
        exact_refill = metric is not None or self.sync_refill_failed_groups
        return {
            "filter_groups_metric": metric,
            "sync_refill_failed_groups": self.sync_refill_failed_groups,
            "train_batch_size": self.train_batch_size,
            "gen_batch_size": 1 if exact_refill else (self.gen_batch_size or self.train_batch_size),
            "max_inflight_gen_batches": self.max_inflight_gen_batches if metric is not None else 1,
        }


def unbounded_message() -> str:
    return (
        f"{SETTING}=0: DAPO dynamic sampling is unbounded - if no group has signal (a constant reward: the model "
        f"earns no reward, or always full reward) the trainer keeps generating forever without training. Set "
        f"{SETTING}=N (e.g. 10, as in verl's DAPO scripts) to stop with an error after N generation batches of "
        "data.train_batch_size prompts without a full training batch."
    )


@dataclass
class _Round:
    """Groups seen while one training batch is being filled (one ``sample()`` call)."""

    needed: int
    limit: int
    global_steps: int
    evicted: int = 0
    filtered_values: Counter = field(default_factory=Counter)


class BoundedReplayBuffer(ReplayBuffer):
    """verl's sync ``ReplayBuffer`` with ``algorithm.filter_groups.max_num_gen_batches`` enforced (module docstring)."""

    def __init__(
        self,
        trainer_mode: str,
        trainer_config: Any,
        max_off_policy_threshold: int | None,
        max_off_policy_strategy: str,
        sampler_kwargs: Mapping[str, Any],
        poll_interval: float = 2.0,
        refill_fn: Any = None,
    ) -> None:
        if trainer_mode != "sync":
            raise FilterGroupsBoundError(
                f"{SAMPLER_NAME} supports trainer.v1.trainer_mode=sync only (got {trainer_mode!r}); unset "
                "trainer.v1.sampler.custom_sampler for the async trainers"
            )
        check_replay_buffer_contract()
        self.settings = BoundedSamplerSettings.from_sampler_kwargs(sampler_kwargs)
        super().__init__(
            trainer_mode=trainer_mode,
            trainer_config=trainer_config,
            max_off_policy_threshold=max_off_policy_threshold,
            max_off_policy_strategy=max_off_policy_strategy,
            sampler_kwargs=sampler_kwargs,
            # sampler_kwargs.poll_interval when given (cluster=cpu: a 2 s poll would be most of a CPU step)
            poll_interval=self.settings.poll_interval if "poll_interval" in (sampler_kwargs or {}) else poll_interval,
            refill_fn=refill_fn,
            **self.settings.builtin_kwargs(),
        )
        missing = [name for name in REPLAY_BUFFER_STATE if not hasattr(self, name)]
        if missing:
            raise UnsupportedVerlError(
                f"verl's ReplayBuffer no longer sets {missing}, which {SAMPLER_NAME} reads; {CONTRACT_FIX}"
            )
        self.max_num_gen_batches = self.settings.max_num_gen_batches
        self._round: _Round | None = None
        if self.filter_groups_metric is not None and self.max_num_gen_batches == 0:
            logger.warning(unbounded_message())

    def sample(self, global_steps: int, partition_id: str, batch_size: int) -> tuple[KVBatchMeta, dict]:
        """verl's ``sample`` (the same batch and metrics), raising :class:`GenerationBoundError` at the bound."""
        bounded = partition_id != "val" and self.filter_groups_metric is not None and self.max_num_gen_batches > 0
        assert self.train_batch_size is not None
        self._round = (
            _Round(needed=batch_size, limit=self.max_num_gen_batches * self.train_batch_size, global_steps=global_steps)
            if bounded
            else None
        )
        try:
            return super().sample(global_steps=global_steps, partition_id=partition_id, batch_size=batch_size)
        finally:
            self._round = None  # the count restarts with the next training batch

    def _evict_terminal_groups(
        self,
        global_steps: int,
        partition_id: str,
        eviction_reasons: tuple[set[str], set[str], set[str], Counter],
    ) -> tuple[set[str], int, int, dict]:
        result = super()._evict_terminal_groups(global_steps, partition_id, eviction_reasons)
        if self._round is not None:
            evicted_uids = result[0]
            self._round.evicted += len(evicted_uids)  # cleared from TransferQueue: each uid is counted once
            self._round.filtered_values.update(eviction_reasons[3])
        return result

    def _sampleable_terminal_keys(
        self,
        partition_id: str,
        eviction_reasons: tuple[set[str], set[str], set[str], Counter],
    ) -> set[str]:
        keys = super()._sampleable_terminal_keys(partition_id, eviction_reasons)
        current = self._round
        if current is not None:
            kept = len(keys)
            generated = current.evicted + kept
            if generated >= current.limit and kept < current.needed:
                raise self._bound_error(current, generated, kept)
        return keys

    def _bound_error(self, current: _Round, generated: int, kept: int) -> GenerationBoundError:
        metric = str(self.filter_groups_metric)
        batch = int(self.train_batch_size or 0)
        cause = "no group with signal" if kept == 0 else f"too few groups with signal ({kept} of {current.needed})"
        values = dict(sorted(current.filtered_values.items()))
        if len(values) == 1:
            (value,) = values
            why = (
                f"every filtered group had {metric}={value:g} on all its responses: the reward is constant "
                "(e.g. the model earns no reward, or always full reward)"
            )
        elif values:
            shown = ", ".join(f"{metric}={v:g}: {n}" for v, n in values.items())
            why = f"filtered groups by the {metric} value all their responses shared: {shown}"
        else:
            why = "no group was filtered for lack of signal (failed groups were refilled)"
        message = (
            f"DAPO dynamic sampling stopped at training step {current.global_steps}: {cause} after "
            f"{generated / batch:g} generation batches ({generated} groups generated, {kept} kept, "
            f"{current.needed} needed for one training batch; a generation batch is data.train_batch_size={batch} "
            f"prompts; a group is kept when its responses differ in algorithm.filter_groups.metric={metric!r}). "
            f"{why[0].upper()}{why[1:]}. The bound is {SETTING}={self.max_num_gen_batches} (raise it to keep "
            f"trying; 0 = unbounded, verl's default, which generates forever). Likely fixes: {FIXES}."
        )
        error = GenerationBoundError(message)
        error.groups_generated = generated
        error.groups_kept = kept
        error.needed = current.needed
        error.max_num_gen_batches = self.max_num_gen_batches
        error.train_batch_size = batch
        error.metric = metric
        error.filtered_values = values
        return error


# ---------------------------------------------------------------------------------------------------------
# launch-time check


@dataclass(frozen=True)
class FilterGroupsBound:
    """What :func:`check_filter_groups_bound` found: whether the bound is enforced, and the warnings it issued."""

    enforced: bool
    max_num_gen_batches: int | None
    warnings: tuple[str, ...] = ()


def _is_ours(path: Any, name: Any) -> bool:
    from verl.utils.import_utils import load_extern_object  # what verl's (deprecated) load_extern_type calls

    if not path or not name:
        return False
    try:
        cls = load_extern_object(str(path), str(name))
    except Exception as exc:
        raise FilterGroupsBoundError(
            f"trainer.v1.sampler.custom_sampler (path={path!r}, name={name!r}) cannot be loaded: {exc!r}; "
            f"for the bounded DAPO sampler use path={SAMPLER_PATH} name={SAMPLER_NAME}"
        ) from exc
    return isinstance(cls, type) and issubclass(cls, BoundedReplayBuffer)


def check_filter_groups_bound(cfg: Any) -> FilterGroupsBound | None:
    """Validate the DAPO dynamic-sampling bound of a composed trainer config (None when filtering is off).

    * filtering on without :class:`BoundedReplayBuffer` selected (or without the v1 trainer): warns
      (:class:`UnboundedGenerationWarning`) that ``max_num_gen_batches`` is not enforced;
    * :class:`BoundedReplayBuffer` selected: raises :class:`FilterGroupsBoundError` when ``sampler_kwargs`` is
      incomplete, invalid or disagrees with the settings it mirrors, when the trainer mode is not ``sync``, or
      when the reward reaches the sampler too late (verl's own check, which it skips for custom samplers);
      warns when ``max_num_gen_batches`` is 0 (unbounded).
    """
    from omegaconf import OmegaConf

    def get(key: str, default: Any = None) -> Any:
        return OmegaConf.select(cfg, key, default=default)

    sampler = get("trainer.v1.sampler.custom_sampler") or {}
    path, name = sampler.get("path"), sampler.get("name")
    ours = _is_ours(path, name)
    if ours:
        check_replay_buffer_contract()
    enabled = bool(get("algorithm.filter_groups.enable", False))
    use_v1 = bool(get("trainer.use_v1", True))
    settings: BoundedSamplerSettings | None = None
    if ours:
        mode = get("trainer.v1.trainer_mode", "sync")
        if mode != "sync":
            raise FilterGroupsBoundError(
                f"{SAMPLER_NAME} supports trainer.v1.trainer_mode=sync only (got {mode!r}); unset "
                "trainer.v1.sampler.custom_sampler for the async trainers"
            )
        raw = get("trainer.v1.sampler.sampler_kwargs")
        raw = OmegaConf.to_container(raw, resolve=True) if OmegaConf.is_config(raw) else raw
        settings = BoundedSamplerSettings.from_sampler_kwargs(raw)
        for key, target in SAMPLER_KWARGS.items():
            want, got = get(target), getattr(settings, key)
            if want != got:
                raise FilterGroupsBoundError(
                    f"trainer.v1.sampler.sampler_kwargs.{key}={got!r} disagrees with {target}={want!r}: set "
                    f"sampler_kwargs.{key}='${{{target}}}' and change {target} instead"
                )
    if not enabled:
        return None
    if settings is None or not use_v1:
        if not use_v1:
            who = "the legacy trainer (trainer.use_v1=false) does not use trainer.v1.sampler"
        elif path and name:
            who = f"the custom sampler {name} ({path}) is not {SAMPLER_NAME}; unless it implements the bound itself"
        else:
            who = "verl 0.9.x's built-in v1 replay buffer ignores it"
        message = (
            f"algorithm.filter_groups is on but {SETTING} is not enforced: {who}, and DAPO dynamic sampling "
            "generates forever while no group has signal (a constant reward). Select "
            f"trainer.v1.sampler.custom_sampler.path={SAMPLER_PATH} name={SAMPLER_NAME} with its sampler_kwargs "
            "(variant/dapo does)"
        )
        warnings.warn(message, UnboundedGenerationWarning, stacklevel=2)
        return FilterGroupsBound(enforced=False, max_num_gen_batches=None, warnings=(message,))
    reward_model = get("reward.reward_model") or {}
    if reward_model.get("enable", False) and not reward_model.get("enable_resource_pool", False):
        raise FilterGroupsBoundError(
            "algorithm.filter_groups requires the reward metric at sampling time: use rule-based reward or "
            "reward.reward_model.enable_resource_pool=True (a colocated reward model scores only after sampling)"
        )
    if settings.max_num_gen_batches == 0:
        message = unbounded_message()
        warnings.warn(message, UnboundedGenerationWarning, stacklevel=2)
        return FilterGroupsBound(enforced=False, max_num_gen_batches=0, warnings=(message,))
    return FilterGroupsBound(enforced=True, max_num_gen_batches=settings.max_num_gen_batches)
