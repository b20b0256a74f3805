"""The start-up check rejects every mis-set VL Norm run with a message naming the setting and the fix."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest
import verl  # noqa: F401  (loads the plugin)

from vlnorm_verl.extension import engine_hook, startup_check
from vlnorm_verl.extension.settings import VLNormConfigError, VLNormSettings
from vlnorm_verl.extension.startup_check import check_config
from vlnorm_verl.launch.compose import compose_config

VL = ["+aggregation=vl_norm"]


def check(overrides: list[str]):
    return check_config(compose_config("ppo_trainer", overrides))


def test_the_shipped_config_group_passes_and_returns_the_settings() -> None:
    assert check(VL) == VLNormSettings(alpha=1.0, scope="batch", base_estimator="grpo")
    assert check(VL + ["algorithm.vl_norm.alpha=0.75", "algorithm.vl_norm.scope=minibatch"]) == VLNormSettings(
        0.75, "minibatch", "grpo"
    )
    assert (
        check(VL + ["algorithm.vl_norm.base_estimator=rloo", "data.max_response_length=3072"]).base_estimator == "rloo"
    )


def test_a_run_without_vl_norm_is_left_alone() -> None:
    assert check([]) is None


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (["actor_rollout_ref.actor.policy_loss.loss_mode=vanilla"], r"policy_loss\.loss_mode=vl_norm"),
        (["algorithm.adv_estimator=grpo"], r"algorithm\.adv_estimator=vl_norm.*base_estimator=grpo"),
        (["actor_rollout_ref.actor.loss_scale_factor=1024"], r"loss_scale_factor=1024 must equal"),
        (["actor_rollout_ref.actor.loss_scale_factor=null"], r"loss_scale_factor=None must equal"),
        (["algorithm.vl_norm.alpha=-0.5"], r"algorithm\.vl_norm\.alpha.*>= 0"),
        (["algorithm.vl_norm.alpha=nan"], r"algorithm\.vl_norm\.alpha"),
        (["algorithm.vl_norm.alpha=inf"], r"algorithm\.vl_norm\.alpha"),
        (["+algorithm.vl_norm.alpah=1.0"], r"unknown key\(s\) \['alpah'\] under algorithm\.vl_norm"),
        (["algorithm.vl_norm.scope=global"], r"scope must be one of"),
        (["algorithm.vl_norm.base_estimator=no_such"], r"not a registered verl advantage estimator"),
        (["algorithm.vl_norm.base_estimator=gae"], r"needs \['gamma', 'lam', 'values'\]"),
        (["algorithm.vl_norm.base_estimator=vl_norm"], r"cannot be 'vl_norm'"),
        (
            ["actor_rollout_ref.actor.policy_loss._target_=verl.workers.config.PolicyLossConfig"],
            r"_target_ is 'verl\.workers\.config\.PolicyLossConfig'.*VLNormPolicyLossConfig",
        ),
        (["actor_rollout_ref.actor.policy_loss.alpha=0.5"], r"policy_loss\.alpha=0\.5 differs from algorithm"),
        (["actor_rollout_ref.actor.policy_loss.scope=minibatch"], r"policy_loss\.scope='minibatch' differs"),
        (
            ["algorithm.vl_norm.scope=minibatch", "actor_rollout_ref.actor.strategy=megatron"],
            r"scope=minibatch is supported on the FSDP engine only.*megatron",
        ),
    ],
)
def test_mis_set_runs_fail_with_the_setting_named(overrides: list[str], pattern: str) -> None:
    with pytest.raises(VLNormConfigError, match=pattern):
        check(VL + overrides)


def test_plain_verl_overrides_without_the_worker_config_are_rejected() -> None:
    with pytest.raises(VLNormConfigError, match="_target_"):
        check(
            [
                "algorithm.adv_estimator=vl_norm",
                "actor_rollout_ref.actor.policy_loss.loss_mode=vl_norm",
                "actor_rollout_ref.actor.loss_scale_factor=${data.max_response_length}",
            ]
        )


def test_minibatch_scope_rejects_an_unsupported_verl_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verl, "__version__", "0.10.0")
    with pytest.raises(VLNormConfigError, match=r"written against verl >=0\.9\.1,<0\.10 \(found verl 0\.10\.0\)"):
        check(VL + ["algorithm.vl_norm.scope=minibatch"])
    assert check(VL) is not None  # the batch scope does not depend on the engine hook


def test_minibatch_scope_rejects_a_changed_engine_api() -> None:
    class ChangedEngine:
        def forward_backward_batch(self, data, loss_function, forward_only=False, extra=None): ...

    with pytest.raises(engine_hook.UnsupportedEngineError, match="verl changed its engine API"):
        engine_hook.check_engine_contract(ChangedEngine)


def test_the_real_engine_matches_the_contract_the_hook_was_written_for() -> None:
    """Fails loudly when verl changes FSDPEngine.forward_backward_batch (the wrapped verl-internal method)."""
    engine_hook.check_engine_contract()
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    assert engine_hook.install()
    assert engine_hook.is_installed()
    assert engine_hook.install()  # idempotent: wraps once
    assert not hasattr(FSDPEngine.forward_backward_batch.__wrapped__, "_vl_norm_wrapped")


def test_missing_plugin_entry_point_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(startup_check, "entry_points", lambda group: [])
    with pytest.raises(VLNormConfigError, match="entry point 'vlnorm_verl' is not installed"):
        check(VL)


def test_a_plugin_that_fails_to_import_is_reported_with_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EntryPoint(name="vlnorm_verl", value="vlnorm_verl_missing_module", group="verl.plugins")
    monkeypatch.setattr(startup_check, "entry_points", lambda group: [broken])
    with pytest.raises(VLNormConfigError, match="fails to load: ModuleNotFoundError"):
        check(VL)


def test_verls_own_launcher_stops_at_start_up(tmp_path) -> None:
    """`python -m verl.trainer.main_ppo` with the config group runs the check before verl's main()."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "verl.trainer.main_ppo",
            "hydra.searchpath=[pkg://vlnorm_verl.configs]",
            "+aggregation=vl_norm",
            "actor_rollout_ref.rollout.n=4",  # verl's default n=1 gives GRPO no group (refused, tested below)
            "actor_rollout_ref.actor.loss_scale_factor=100",
            f"hydra.run.dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "vlnorm-verl: invalid run: VLNormConfigError: actor_rollout_ref.actor.loss_scale_factor=100 must equal" in (
        proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_check_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from vlnorm_verl.launch.cli import main

    # what verl's own validate_config (part of the whole check) needs on top of its defaults, and a GRPO group
    run = [
        "+aggregation=vl_norm",
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4",
    ]
    assert main(["check", *run, "algorithm.vl_norm.alpha=0.75"]) == 0
    assert "alpha=0.75 scope=batch" in capsys.readouterr().out
    assert main(["check", *run, "algorithm.vl_norm.alpha=-1"]) == 2  # as every sub-command
    assert "algorithm.vl_norm.alpha" in capsys.readouterr().err
    assert main(["check", *run[:1], *run[2:]]) == 2
    # the whole start-up check: verl's default rollout.n=1 leaves GRPO (VL Norm's default base) without a group
    assert "rollout.n=1 with algorithm.vl_norm.base_estimator=grpo" in capsys.readouterr().err
