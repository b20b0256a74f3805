"""VL Norm's user settings, parsed and validated. No verl import.

The single source of truth is ``algorithm.vl_norm`` in the trainer config::

    algorithm:
      adv_estimator: vl_norm
      vl_norm: {alpha: 1.0, scope: batch, base_estimator: grpo}

``alpha`` >= 0 (0 = Dr. GRPO Norm); ``scope`` is the normalisation set S: ``batch`` (the whole
rollout batch, the authors' released formulation) or ``minibatch`` (each optimizer mini-batch
across micro-batches and data-parallel ranks, the paper's definition); ``base_estimator`` is the
verl advantage estimator whose advantages VL Norm re-weights.

A setting that does not fit raises :class:`VLNormConfigError`; every entry point ends the run with
:func:`stop` (exit status :data:`EXIT_INVALID`, one line naming the setting and the fix).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from vlnorm_verl.aggregation import check_alpha

ESTIMATOR_NAME = "vl_norm"
#: the DAPO overlong-filtering estimator (:mod:`vlnorm_verl.extension.overlong_filter`), which VL Norm can wrap
OVERLONG_FILTER_ESTIMATOR = "overlong_filter"
LOSS_MODE = "vl_norm"
SCOPES = ("batch", "minibatch")
SETTING_KEYS = ("alpha", "scope", "base_estimator")
DEFAULTS: dict[str, Any] = {"alpha": 1.0, "scope": "batch", "base_estimator": "grpo"}
#: exit status of every entry point (the vlnorm-verl sub-commands, the start-up check in verl's main_ppo) for
#: invalid input or an invalid run configuration, detected before any work starts
EXIT_INVALID = 2


class VLNormConfigError(ValueError):
    """A VL Norm run is mis-configured; the message names the setting and the fix."""


def section_mapping(
    raw: Mapping[str, Any] | None,
    keys: tuple[str, ...],
    where: str,
    example: str,
    error: type[VLNormConfigError] = VLNormConfigError,
) -> dict[str, Any]:
    """``raw`` (a dict, DictConfig or None) as a dict, or `error` naming any key outside `keys`."""
    raw = {} if raw is None else dict(raw)
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise error(f"unknown key(s) {unknown} under {where}; the valid keys are {list(keys)} (e.g. {example})")
    return raw


def describe_failure(exc: BaseException) -> str:
    """One line: the error's type and message (with its cause when that adds something)."""
    text = str(exc).strip() or type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text = f"{text}: {str(cause).strip()}"
    return " ".join(f"{type(exc).__name__}: {text}".split())


def stop(exc: BaseException) -> NoReturn:
    """Leave the process with :data:`EXIT_INVALID` and one line on stderr naming the setting and the fix."""
    print(f"vlnorm-verl: invalid run: {describe_failure(exc)}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_INVALID)


@dataclass(frozen=True)
class VLNormSettings:
    alpha: float
    scope: str
    base_estimator: str

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, where: str = "algorithm.vl_norm") -> VLNormSettings:
        """Parse and validate ``algorithm.vl_norm`` (a dict or DictConfig); missing keys take DEFAULTS."""
        example = f"{where}.alpha=1.0 {where}.scope=batch {where}.base_estimator=grpo"
        raw = section_mapping(raw, SETTING_KEYS, where, example)
        values = {**DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
        try:
            alpha = check_alpha(values["alpha"])
        except ValueError as exc:
            raise VLNormConfigError(f"{where}.alpha: {exc}; set {where}.alpha to a finite value >= 0") from None
        scope = str(values["scope"])
        if scope not in SCOPES:
            raise VLNormConfigError(f"{where}.scope must be one of {list(SCOPES)}, got {scope!r}")
        base = str(values["base_estimator"])
        if base == ESTIMATOR_NAME:
            raise VLNormConfigError(
                f"{where}.base_estimator cannot be {ESTIMATOR_NAME!r} itself; use a verl estimator such as 'grpo'"
            )
        return cls(alpha=alpha, scope=scope, base_estimator=base)
