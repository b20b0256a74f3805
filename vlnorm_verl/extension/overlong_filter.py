"""Overlong filtering (DAPO): a response that hit the length cap gets zero advantage.

The ``overlong_filter`` advantage estimator wraps any registered verl estimator::

    A_{i,t} = base(R, mask, ...)_{i,t}   if L_i <  L_max
    A_{i,t} = 0                          if L_i >= L_max

with ``L_i`` the response's token count (the ``response_mask`` row sum), ``base`` =
``algorithm.overlong_filter.base_estimator`` (default ``grpo``; GRPO group statistics are computed
over every response, truncated ones included, and only then are the truncated rows zeroed) and
``L_max`` = ``algorithm.overlong_filter.max_response_length`` (default ``data.max_response_length``).
A truncated response therefore contributes no policy gradient; in a ``token-mean`` loss its tokens
still count in the denominator (overlong filtering here sets advantages to 0; it does not drop rows).

Switching it on (the ``variant/overlong_filter`` config group does the first form)::

    algorithm.adv_estimator=overlong_filter  algorithm.overlong_filter.base_estimator=grpo
    # with VL Norm: VL Norm wraps the filter, which wraps GRPO
    algorithm.adv_estimator=vl_norm  algorithm.vl_norm.base_estimator=overlong_filter

A response that ends exactly at the cap with an end-of-sequence token cannot be told apart from a
truncated one by its mask alone; it is treated as truncated (verl's rollout does not pass the
finish reason to an advantage estimator).

:func:`check_overlong_filter` validates the settings of a composed trainer config (the launcher
runs it); the estimator re-validates ``algorithm.overlong_filter`` on every call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vlnorm_verl.extension import base_estimator
from vlnorm_verl.extension.settings import ESTIMATOR_NAME as VL_NORM_ESTIMATOR
from vlnorm_verl.extension.settings import OVERLONG_FILTER_ESTIMATOR, VLNormConfigError, section_mapping

logger = logging.getLogger(__name__)

ESTIMATOR_NAME = OVERLONG_FILTER_ESTIMATOR
SECTION = "algorithm.overlong_filter"
SETTING_KEYS = ("base_estimator", "max_response_length")
DEFAULT_BASE = "grpo"


class OverlongFilterConfigError(VLNormConfigError):
    """``algorithm.overlong_filter`` is mis-set; the message names the setting and the fix."""


@dataclass(frozen=True)
class OverlongFilterSettings:
    base_estimator: str
    max_response_length: int

    @classmethod
    def from_mapping(
        cls, raw: Mapping[str, Any] | None, data_max_response_length: Any = None
    ) -> OverlongFilterSettings:
        """Parse ``algorithm.overlong_filter``; ``max_response_length`` falls back to ``data.max_response_length``."""
        example = f"{SECTION}.base_estimator=grpo {SECTION}.max_response_length=3072"
        raw = section_mapping(raw, SETTING_KEYS, SECTION, example, OverlongFilterConfigError)
        base = str(raw.get("base_estimator") or DEFAULT_BASE)
        if base == ESTIMATOR_NAME:
            raise OverlongFilterConfigError(f"{SECTION}.base_estimator cannot be {ESTIMATOR_NAME!r} itself; use 'grpo'")
        if base == VL_NORM_ESTIMATOR:
            raise OverlongFilterConfigError(
                f"{SECTION}.base_estimator cannot be {VL_NORM_ESTIMATOR!r}: nest them the other way round, "
                f"algorithm.adv_estimator=vl_norm algorithm.vl_norm.base_estimator={ESTIMATOR_NAME}"
            )
        limit = raw.get("max_response_length")
        if limit is None:
            limit = data_max_response_length
        if limit is None:
            raise OverlongFilterConfigError(
                f"{SECTION}.max_response_length is not set and data.max_response_length is not reachable; "
                f"set {SECTION}.max_response_length='${{data.max_response_length}}'"
            )
        if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or int(limit) <= 0:
            raise OverlongFilterConfigError(
                f"{SECTION}.max_response_length must be a positive integer (the response length cap), got {limit!r}"
            )
        return cls(base_estimator=base, max_response_length=int(limit))


def truncated_rows(response_mask: torch.Tensor, max_response_length: int) -> torch.Tensor:
    """Bool tensor (rows,): True where the response has ``L_i >= max_response_length`` tokens."""
    return response_mask.sum(dim=-1) >= max_response_length


def _root_max_response_length(config: Any) -> Any:
    """``data.max_response_length`` of the whole trainer config when `config` is its ``algorithm`` node."""
    root = base_estimator.trainer_config(config)
    return root.data.get("max_response_length", None) if root is not None and "data" in root else None


def check_base_estimator(name: str) -> Any:
    """The registered estimator function `name`, or a clear error naming ``algorithm.overlong_filter``."""
    return base_estimator.check_base_estimator(
        name, setting=f"{SECTION}.base_estimator", error=OverlongFilterConfigError
    )


def compute_overlong_filter_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    config: Any = None,
    index: np.ndarray | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl advantage estimator ``overlong_filter`` (see the module docstring)."""
    if config is None:
        raise OverlongFilterConfigError("the overlong_filter estimator needs the algorithm config (verl passes it)")
    settings = OverlongFilterSettings.from_mapping(
        config.get("overlong_filter", None), _root_max_response_length(config)
    )
    check_base_estimator(settings.base_estimator)
    advantages, returns = base_estimator.call_base_estimator(
        settings.base_estimator, token_level_rewards, response_mask, config=config, index=index, **kwargs
    )
    truncated = truncated_rows(response_mask, settings.max_response_length).unsqueeze(-1)
    # in place on the base estimator's fresh output (GRPO returns one tensor as advantages and returns)
    advantages.masked_fill_(truncated, 0.0)
    if returns is not advantages:
        returns.masked_fill_(truncated, 0.0)
    if logger.isEnabledFor(logging.INFO):
        logger.info("overlong filter: %d of %d responses zeroed", int(truncated.sum()), truncated.shape[0])
    return advantages, returns


def uses_overlong_filter(algorithm: Any) -> bool:
    """Whether the estimator chain of ``algorithm`` (directly or under VL Norm) runs the filter."""
    if algorithm.get("adv_estimator", None) == ESTIMATOR_NAME:
        return True
    if algorithm.get("adv_estimator", None) == VL_NORM_ESTIMATOR:
        vl = algorithm.get("vl_norm", None) or {}
        return vl.get("base_estimator", None) == ESTIMATOR_NAME
    return False


def check_overlong_filter(cfg: Any) -> OverlongFilterSettings | None:
    """Validate the overlong-filter settings of a composed trainer config (None when the filter is off).

    Raises when ``algorithm.overlong_filter`` is set but no estimator uses it (e.g. a later config group
    replaced ``algorithm.adv_estimator``), when its settings are invalid, or when ``max_response_length``
    exceeds ``data.max_response_length`` (no response could ever be filtered).
    """
    algorithm = cfg.algorithm
    section = algorithm.get("overlong_filter", None)
    data_max = cfg.data.get("max_response_length", None)
    if not uses_overlong_filter(algorithm):
        if section is not None:
            raise OverlongFilterConfigError(
                f"{SECTION} is set but no estimator uses it (algorithm.adv_estimator="
                f"{algorithm.get('adv_estimator', None)!r}); select it with algorithm.adv_estimator={ESTIMATOR_NAME} "
                f"or, with VL Norm, algorithm.vl_norm.base_estimator={ESTIMATOR_NAME}; or drop the "
                "overlong_filter variant"
            )
        return None
    settings = OverlongFilterSettings.from_mapping(section, data_max)
    check_base_estimator(settings.base_estimator)
    if data_max is not None and settings.max_response_length > int(data_max):
        raise OverlongFilterConfigError(
            f"{SECTION}.max_response_length={settings.max_response_length} exceeds data.max_response_length="
            f"{data_max}: no response can reach it, so nothing would be filtered; set it to "
            "'${data.max_response_length}'"
        )
    return settings
