"""The overlong-filtering estimator: truncated responses get exactly zero advantage, the rest keep the base
estimator's value; it composes with VL Norm; its settings are checked with messages that name the fix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import verl  # noqa: F401  (loads the plugin through verl's entry point)
from omegaconf import OmegaConf
from verl.protocol import DataProto
from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
from verl.trainer.ppo.ray_trainer import compute_advantage

from vlnorm_verl import plugin
from vlnorm_verl.extension import registry
from vlnorm_verl.extension.overlong_filter import (
    OverlongFilterConfigError,
    OverlongFilterSettings,
    check_overlong_filter,
    compute_overlong_filter_advantage,
)
from vlnorm_verl.launch.compose import compose_config

# one group of four responses (uid "a") and one of two (uid "b"); cap M = 6 tokens
LENGTHS = [2, 6, 4, 6, 3, 5]
SCORES = [1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
UIDS = np.array(["a", "a", "a", "a", "b", "b"], dtype=object)
CAP = 6


def batch(width: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.zeros(len(LENGTHS), width)
    rewards = torch.zeros(len(LENGTHS), width)
    for i, (n, s) in enumerate(zip(LENGTHS, SCORES, strict=True)):
        mask[i, :n] = 1
        rewards[i, n - 1] = s  # outcome reward on the last response token
    return rewards, mask


def expected_grpo(std: bool) -> list[float]:
    """GRPO by hand: (s - group mean) / (unbiased group std + 1e-6), or s - mean without std."""
    out = []
    for i, s in enumerate(SCORES):
        group = [SCORES[j] for j in range(len(SCORES)) if UIDS[j] == UIDS[i]]
        mean = sum(group) / len(group)
        sd = math.sqrt(sum((g - mean) ** 2 for g in group) / (len(group) - 1))
        out.append((s - mean) / (sd + 1e-6) if std else s - mean)
    return out


def algorithm(**extra) -> object:
    node = {
        "adv_estimator": "overlong_filter",
        "norm_adv_by_std_in_grpo": True,
        "overlong_filter": {"base_estimator": "grpo", "max_response_length": CAP},
    }
    node.update(extra)
    return OmegaConf.create(node)


def per_row(adv: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """The single advantage value of each row (checks it is constant over the row's tokens, 0 off the mask)."""
    values = []
    for row, m in zip(adv, mask, strict=True):
        on = row[m.bool()]
        assert torch.allclose(on, on[0].expand_as(on))
        assert torch.all(row[~m.bool()] == 0)
        values.append(float(on[0]))
    return values


def test_the_plugin_registers_the_estimator_through_verl() -> None:
    assert ADV_ESTIMATOR_REGISTRY["overlong_filter"] is compute_overlong_filter_advantage
    assert registry.is_registered()
    plugin.register()  # idempotent
    assert ADV_ESTIMATOR_REGISTRY["overlong_filter"] is compute_overlong_filter_advantage


@pytest.mark.parametrize("std", [True, False])
def test_truncated_rows_are_zeroed_and_the_rest_keep_grpo(std: bool) -> None:
    rewards, mask = batch()
    adv, ret = compute_overlong_filter_advantage(
        rewards, mask, config=algorithm(norm_adv_by_std_in_grpo=std), index=UIDS
    )
    want = [0.0 if n >= CAP else a for n, a in zip(LENGTHS, expected_grpo(std), strict=True)]
    assert per_row(adv, mask) == pytest.approx(want, abs=1e-6)
    if std:  # group statistics include the truncated rows (std over [1, 1, 0, 0], not over the kept [1, 0])
        assert per_row(adv, mask)[0] == pytest.approx(0.5 / (math.sqrt(1 / 3) + 1e-6), rel=1e-6)
    assert torch.equal(ret, adv)


def test_a_lower_cap_filters_more_and_a_cap_above_every_length_filters_nothing() -> None:
    rewards, mask = batch()
    cfg = algorithm()
    cfg.overlong_filter.max_response_length = 4
    adv, _ = compute_overlong_filter_advantage(rewards, mask, config=cfg, index=UIDS)
    assert [v == 0.0 for v in per_row(adv, mask)] == [False, True, True, True, False, True]
    cfg.overlong_filter.max_response_length = 7
    adv, _ = compute_overlong_filter_advantage(rewards, mask, config=cfg, index=UIDS)
    assert per_row(adv, mask) == pytest.approx(expected_grpo(True), abs=1e-6)


def test_verl_dispatches_the_registered_estimator_with_the_composed_config() -> None:
    """Through verl's own compute_advantage, as its trainer calls it, with the cap from data.max_response_length."""
    cfg = compose_config("ppo_trainer", ["+variant=overlong_filter", f"data.max_response_length={CAP}"])
    assert cfg.algorithm.overlong_filter.max_response_length == CAP
    rewards, mask = batch()
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask}, non_tensors={"uid": UIDS}
    )
    out = compute_advantage(data, adv_estimator=cfg.algorithm.adv_estimator, config=cfg.algorithm)
    want = [0.0 if n >= CAP else a for n, a in zip(LENGTHS, expected_grpo(True), strict=True)]
    assert per_row(out.batch["advantages"], mask) == pytest.approx(want, abs=1e-6)


def test_the_cap_defaults_to_data_max_response_length_of_the_root_config() -> None:
    cfg = compose_config("ppo_trainer", ["algorithm.adv_estimator=overlong_filter", f"data.max_response_length={CAP}"])
    rewards, mask = batch()
    adv, _ = compute_overlong_filter_advantage(rewards, mask, config=cfg.algorithm, index=UIDS)
    assert [v == 0.0 for v in per_row(adv, mask)] == [False, True, False, True, False, False]


def test_vl_norm_wraps_the_filter_which_wraps_grpo() -> None:
    """VL Norm (batch scope, alpha) re-weights the filtered advantages: w_i = L_i^-a / mean_j L_j^-a."""
    alpha = 0.75
    cfg = compose_config(
        "ppo_trainer",
        [
            "+aggregation=vl_norm",
            "+variant=overlong_filter",
            "algorithm.adv_estimator=vl_norm",
            "algorithm.vl_norm.base_estimator=overlong_filter",
            f"algorithm.vl_norm.alpha={alpha}",
            f"data.max_response_length={CAP}",
        ],
    )
    assert check_overlong_filter(cfg) == OverlongFilterSettings("grpo", CAP)
    rewards, mask = batch()
    data = DataProto.from_dict(
        tensors={"token_level_rewards": rewards, "response_mask": mask}, non_tensors={"uid": UIDS}
    )
    out = compute_advantage(data, adv_estimator="vl_norm", config=cfg.algorithm)
    inv = [n**-alpha for n in LENGTHS]
    weights = [x / (sum(inv) / len(inv)) for x in inv]
    grpo = expected_grpo(True)
    want = [0.0 if n >= CAP else w * a for n, w, a in zip(LENGTHS, weights, grpo, strict=True)]
    assert per_row(out.batch["advantages"], mask) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize(
    ("section", "pattern"),
    [
        ({"base_estimator": "grpo", "max_len": 5}, r"unknown key\(s\) \['max_len'\] under algorithm\.overlong_filter"),
        ({"base_estimator": "overlong_filter"}, r"cannot be 'overlong_filter' itself"),
        ({"base_estimator": "vl_norm"}, r"algorithm\.vl_norm\.base_estimator=overlong_filter"),
        (
            {"base_estimator": "no_such", "max_response_length": CAP},
            r"'no_such' is not a registered verl advantage est",
        ),
        (
            {"base_estimator": "gae", "max_response_length": CAP},
            r"base_estimator='gae' needs \['gamma', 'lam', 'values'\]",
        ),
        ({"base_estimator": "grpo"}, r"max_response_length is not set and data\.max_response_length is not reachable"),
        ({"max_response_length": 0}, r"max_response_length must be a positive integer"),
        ({"max_response_length": 2.5}, r"max_response_length must be a positive integer"),
    ],
)
def test_bad_settings_are_rejected_by_the_estimator(section: dict, pattern: str) -> None:
    rewards, mask = batch()
    cfg = OmegaConf.create({"adv_estimator": "overlong_filter", "overlong_filter": section})
    with pytest.raises(OverlongFilterConfigError, match=pattern):
        compute_overlong_filter_advantage(rewards, mask, config=cfg, index=UIDS)


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (
            ["+variant=overlong_filter", "algorithm.adv_estimator=grpo"],
            r"algorithm\.overlong_filter is set but no estimator uses it",
        ),
        (
            ["+variant=overlong_filter", "algorithm.overlong_filter.max_response_length=9999"],
            r"exceeds data\.max_response_length=512",
        ),
        (
            ["+aggregation=vl_norm", "+variant=overlong_filter", "algorithm.adv_estimator=vl_norm"],
            r"is set but no estimator uses it",
        ),
    ],
)
def test_config_check_names_the_fix(overrides: list[str], pattern: str) -> None:
    with pytest.raises(OverlongFilterConfigError, match=pattern):
        check_overlong_filter(compose_config("ppo_trainer", overrides))


def test_config_check_is_silent_when_the_filter_is_off() -> None:
    assert check_overlong_filter(compose_config("ppo_trainer", [])) is None
    assert check_overlong_filter(compose_config("ppo_trainer", ["+variant=overlong_filter"])) == OverlongFilterSettings(
        "grpo", 512
    )
