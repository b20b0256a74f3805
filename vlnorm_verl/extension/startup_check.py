"""The start-up check: a VL Norm run whose settings do not fit together stops before any GPU work.

:func:`check_config` takes the composed trainer config (a DictConfig of verl's ``ppo_trainer``)
and raises :class:`VLNormConfigError` naming the setting and the fix when:

* the ``vl_norm`` estimator is used without the ``vl_norm`` policy loss, or the reverse;
* ``algorithm.vl_norm`` has unknown keys, a negative / non-finite alpha, an unknown scope, or a
  base estimator that is unknown or cannot be wrapped;
* the actor's policy-loss config is not :class:`VLNormPolicyLossConfig` or disagrees with
  ``algorithm.vl_norm`` on alpha or scope;
* ``actor.loss_scale_factor`` differs from ``data.max_response_length``;
* scope ``minibatch`` is asked of an engine or verl version it does not support;
* the plugin is not installed as a ``verl.plugins`` entry point, or fails to import.

It runs in the launcher (``vlnorm-verl train``, ``vlnorm-verl check``), as a Hydra callback that every
packaged recipe and the vl_norm config group install (so ``python -m verl.trainer.main_ppo`` runs it before
anything else), and on the first call of the estimator. :func:`check_run_config` is the whole start-up
check of every entry point: this module's VL Norm check plus the others (:mod:`vlnorm_verl.extension.run_checks`
lists the trainer settings). A failure stops a run (:func:`~vlnorm_verl.extension.settings.stop`) with exit
status :data:`~vlnorm_verl.extension.settings.EXIT_INVALID` (2, as every ``vlnorm-verl`` sub-command does for
invalid input) and one line naming the setting and the fix.
"""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from typing import Any

from vlnorm_verl.cpu.rollout import backend
from vlnorm_verl.extension import engine_hook
from vlnorm_verl.extension.base_estimator import check_base_estimator
from vlnorm_verl.extension.loss_config import TARGET, VLNormPolicyLossConfig
from vlnorm_verl.extension.overlong_filter import check_overlong_filter
from vlnorm_verl.extension.registry import ENTRY_POINT_GROUP, ENTRY_POINT_NAME, is_registered
from vlnorm_verl.extension.settings import ESTIMATOR_NAME, LOSS_MODE, VLNormConfigError, VLNormSettings, stop

FSDP_STRATEGIES = ("fsdp", "fsdp2")


def check_plugin() -> None:
    """The plugin is installed as a verl.plugins entry point, loads without error, and is registered."""
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == ENTRY_POINT_NAME]
    if not matches:
        raise VLNormConfigError(
            f"the {ENTRY_POINT_GROUP!r} entry point {ENTRY_POINT_NAME!r} is not installed, so verl's Ray workers "
            "will not register VL Norm; install the package (pip install vlnorm-verl; pip install -e . in a checkout)"
        )
    try:
        matches[0].load()  # imports vlnorm_verl.plugin, which registers; raises the real import error
    except Exception as exc:
        raise VLNormConfigError(f"the vlnorm_verl verl plugin fails to load: {exc!r}") from exc
    if not is_registered():
        raise VLNormConfigError("the vlnorm_verl plugin loaded but did not register 'vl_norm' with verl")


def _policy_loss_class(target: Any) -> type | None:
    if not isinstance(target, str) or "." not in target:
        return None
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _same_number(value: Any, wanted: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return float(value) == float(wanted)
    except (TypeError, ValueError):
        return False


def check_config(cfg: Any) -> VLNormSettings | None:
    """Validate a composed verl trainer config; returns the VL Norm settings (None if VL Norm is off)."""
    algorithm = cfg.algorithm
    actor = cfg.actor_rollout_ref.actor
    policy_loss = actor.policy_loss
    uses_estimator = algorithm.adv_estimator == ESTIMATOR_NAME
    uses_loss = policy_loss.get("loss_mode", "vanilla") == LOSS_MODE
    if not uses_estimator and not uses_loss:
        return None
    if uses_estimator and not uses_loss:
        raise VLNormConfigError(
            "algorithm.adv_estimator=vl_norm needs actor_rollout_ref.actor.policy_loss.loss_mode=vl_norm "
            f"(found {policy_loss.get('loss_mode')!r}): the estimator's weights are only correct with VL Norm's "
            "loss aggregation. Compose the vl_norm aggregation config group, or set both"
        )
    if uses_loss and not uses_estimator:
        raise VLNormConfigError(
            "actor_rollout_ref.actor.policy_loss.loss_mode=vl_norm needs algorithm.adv_estimator=vl_norm "
            f"(found {algorithm.adv_estimator!r}); put the estimator you want under "
            f"algorithm.vl_norm.base_estimator={algorithm.adv_estimator} instead"
        )
    check_plugin()
    settings = VLNormSettings.from_mapping(algorithm.get("vl_norm", None))
    check_base_estimator(settings.base_estimator)

    target = policy_loss.get("_target_", None)
    cls = _policy_loss_class(target)
    if cls is None or not issubclass(cls, VLNormPolicyLossConfig):
        raise VLNormConfigError(
            f"actor_rollout_ref.actor.policy_loss._target_ is {target!r}; VL Norm needs {TARGET} so alpha and scope "
            f"reach the workers: set actor_rollout_ref.actor.policy_loss._target_={TARGET} "
            "+actor_rollout_ref.actor.policy_loss.alpha='${algorithm.vl_norm.alpha}' "
            "+actor_rollout_ref.actor.policy_loss.scope='${algorithm.vl_norm.scope}'"
        )
    for key in ("alpha", "scope"):
        worker_value = policy_loss.get(key, None)
        wanted = getattr(settings, key)
        same = worker_value is not None and (
            _same_number(worker_value, wanted) if key == "alpha" else worker_value == wanted
        )
        if not same:
            raise VLNormConfigError(
                f"actor_rollout_ref.actor.policy_loss.{key}={worker_value!r} differs from algorithm.vl_norm.{key}="
                f"{wanted!r}; set actor_rollout_ref.actor.policy_loss.{key}='${{algorithm.vl_norm.{key}}}'"
            )

    max_len = cfg.data.max_response_length
    scale = actor.get("loss_scale_factor", None)
    if scale is None or not _same_number(scale, max_len):
        raise VLNormConfigError(
            f"actor_rollout_ref.actor.loss_scale_factor={scale!r} must equal data.max_response_length={max_len} "
            "(VL Norm's constant M); set actor_rollout_ref.actor.loss_scale_factor='${data.max_response_length}'"
        )

    if settings.scope == "minibatch":
        strategy = actor.get("strategy", None)
        if strategy not in FSDP_STRATEGIES:
            raise VLNormConfigError(
                f"algorithm.vl_norm.scope=minibatch is supported on the FSDP engine only (actor strategy "
                f"{list(FSDP_STRATEGIES)}), found strategy={strategy!r}; use algorithm.vl_norm.scope=batch"
            )
        engine_hook.check_verl_version()
        engine_hook.check_engine_contract()
    return settings


def check_run_config(cfg: Any) -> Any:
    """The start-up check of every entry point, before Ray starts; returns the dynamic-sampling bound (or None).

    Runs, in order: the VL Norm check (:func:`check_config`), the run checks
    (:func:`vlnorm_verl.extension.run_checks.check_run`), the overlong-filter check, the CPU-run check, the DAPO
    sampler's bound check, and verl's own ``validate_config``. ``vlnorm-verl train``/``check`` call it, and so does
    :class:`StartupCheckCallback` (installed by every packaged recipe and by the vl_norm group) in
    ``python -m verl.trainer.main_ppo``.
    """
    # imported on use: the workers import this module (through the estimator) but never run these checks, and the
    # sampler's import of verl's replay buffer and the CPU platform are not for them
    from vlnorm_verl.cpu.run import check_cpu_config
    from vlnorm_verl.extension.bounded_sampler import check_filter_groups_bound
    from vlnorm_verl.extension.run_checks import check_run, verl_validate

    check_config(cfg)
    check_run(cfg)
    check_overlong_filter(cfg)
    check_cpu_config(cfg)
    bound = check_filter_groups_bound(cfg)
    verl_validate(cfg)
    return bound


def _on_job_start(config: Any) -> None:
    # Hydra turns exceptions raised by callbacks into warnings, so stop the run explicitly.
    try:
        check_run_config(config)
    except Exception as exc:  # noqa: BLE001 - every failed check stops the run the same way
        stop(exc)
    if backend.is_selected(config):
        os.environ[backend.ENABLE_ENV] = "1"  # verl processes the trainer starts register the hf backend


try:  # Hydra callback, installed by every packaged recipe (base/paper) and the vl_norm group (hydra.callbacks)
    from hydra.experimental.callback import Callback

    class StartupCheckCallback(Callback):
        """Runs :func:`check_run_config` on the composed config before verl's main() starts."""

        def on_job_start(self, config: Any, **kwargs: Any) -> None:
            _on_job_start(config)

except ImportError:  # pragma: no cover - hydra is a dependency; keep the module importable regardless
    StartupCheckCallback = None  # type: ignore[assignment,misc]
