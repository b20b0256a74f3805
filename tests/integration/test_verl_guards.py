"""Every verl internal the plugin touches is guarded by verl's version (release tuples) and the signatures it was
written against; each guard passes on the installed verl and fails, naming the verl version, when verl changes.
The hf rollout backend touches verl's private registry only in processes that can use it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types

import pytest
import verl
from packaging.version import Version
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from vlnorm_verl.cpu import platform as cpu_platform
from vlnorm_verl.cpu.rollout import backend
from vlnorm_verl.extension import bounded_sampler, engine_hook, verl_compat
from vlnorm_verl.extension.verl_compat import UnsupportedVerlError
from vlnorm_verl.launch import launcher as launch

NEXT_MINOR_PRE_RELEASE = "0.10.0.dev0"


@pytest.fixture
def run_dirs(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLNORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VLNORM_RUNS_DIR", str(tmp_path / "runs"))


# ---------------------------------------------------------------------------------------------------------
# the version range


def test_plain_version_ordering_would_let_a_pre_release_of_the_next_minor_through() -> None:
    assert Version(NEXT_MINOR_PRE_RELEASE) < Version("0.10")  # the trap release tuples avoid


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ("0.9.0", False),
        ("0.9.1rc1", True),  # its release is 0.9.1
        ("0.9.1", True),
        ("0.9.1.post2", True),
        ("0.9.7", True),
        (NEXT_MINOR_PRE_RELEASE, False),
        ("0.10.0rc1", False),
        ("0.10.0", False),
        ("1.0", False),
    ],
)
def test_the_supported_range_compares_release_tuples(version: str, supported: bool) -> None:
    assert verl_compat.is_supported(version) is supported


def test_the_installed_verl_is_in_the_supported_range() -> None:
    """Fails when verl is upgraded past the range: re-check every guarded internal, then widen SUPPORTED_VERL."""
    assert verl_compat.is_supported(verl.__version__), verl.__version__


GUARDS = {
    "engine hook": lambda version: engine_hook.check_verl_version(version),
    "cpu platform": lambda version: cpu_platform.check_process_group_contract(version=version),
    "hf rollout registry": lambda version: backend.check_registry(version=version),
    "bounded replay buffer": lambda version: bounded_sampler.check_replay_buffer_contract(version=version),
}


@pytest.mark.parametrize("guard", sorted(GUARDS))
def test_each_guard_passes_on_the_installed_verl(guard: str) -> None:
    GUARDS[guard](None)


@pytest.mark.parametrize("guard", sorted(GUARDS))
@pytest.mark.parametrize("version", [NEXT_MINOR_PRE_RELEASE, "0.9.0"])
def test_each_guard_refuses_another_verl_naming_its_version(guard: str, version: str) -> None:
    with pytest.raises(Exception, match=rf"written against verl >=0\.9\.1,<0\.10 \(found verl {version}\)"):
        GUARDS[guard](version)


# ---------------------------------------------------------------------------------------------------------
# the hf rollout backend: verl's private _ROLLOUT_REGISTRY


def test_a_moved_rollout_registry_is_reported_with_the_verl_version() -> None:
    from verl.workers.rollout import base

    moved = types.SimpleNamespace(get_rollout_class=base.get_rollout_class)  # no _ROLLOUT_REGISTRY
    with pytest.raises(UnsupportedVerlError, match=rf"verl {verl.__version__} has no .*_ROLLOUT_REGISTRY"):
        backend.check_registry(base=moved)

    def get_rollout_class(rollout_name, mode="async", backend="x"): ...  # the reader changed

    changed = types.SimpleNamespace(_ROLLOUT_REGISTRY={}, get_rollout_class=get_rollout_class)
    with pytest.raises(UnsupportedVerlError, match=r"get_rollout_class\(.*\) differs from the expected"):
        backend.check_registry(base=changed)


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE", backend.ENABLE_ENV)}
    full.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True, timeout=300
    )


REGISTRY_PROBE = """
    import verl  # loads the plugin
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
    from verl.workers.rollout.base import _ROLLOUT_REGISTRY
    from verl.workers.rollout.replica import RolloutReplicaRegistry
    print("vl_norm", "vl_norm" in ADV_ESTIMATOR_REGISTRY)
    print("adapter", ("hf", "async") in _ROLLOUT_REGISTRY)
    try:
        RolloutReplicaRegistry.get("hf")
        print("replica True")
    except Exception:
        print("replica False")
"""


def test_a_gpu_process_never_touches_the_private_rollout_registry() -> None:
    out = _python(REGISTRY_PROBE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["vl_norm", "True", "adapter", "False", "replica", "False"], out.stdout


@pytest.mark.parametrize("env", [{"VERL_PLATFORM": "cpu"}, {backend.ENABLE_ENV: "1"}])
def test_processes_that_can_use_the_backend_register_it(env: dict[str, str]) -> None:
    out = _python(REGISTRY_PROBE, **env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["vl_norm", "True", "adapter", "True", "replica", "True"], out.stdout


def test_a_moved_registry_never_breaks_the_plugin_import() -> None:
    """Registration fails with the reason logged; VL Norm's own registrations still load."""
    code = """
        import os, verl
        from vlnorm_verl import plugin
        from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
        from verl.workers.rollout.base import _ROLLOUT_REGISTRY
        verl.__version__ = "0.10.0.dev0"
        os.environ["VLNORM_HF_ROLLOUT"] = "1"
        plugin.register()
        print("vl_norm", "vl_norm" in ADV_ESTIMATOR_REGISTRY, "adapter", ("hf", "async") in _ROLLOUT_REGISTRY)
    """
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert "vl_norm True adapter False" in out.stdout, out.stdout
    assert "hf rollout backend is not registered" in out.stderr and "found verl 0.10.0.dev0" in out.stderr


def test_a_run_that_selects_the_backend_is_checked_at_start_up(run_dirs, monkeypatch) -> None:
    monkeypatch.setattr(verl, "__version__", NEXT_MINOR_PRE_RELEASE)
    with pytest.raises(UnsupportedVerlError, match="hf rollout backend"):
        launch.prepare("countdown_vlnorm", ["actor_rollout_ref.rollout.name=hf"], os.environ)


# ---------------------------------------------------------------------------------------------------------
# BoundedReplayBuffer: private ReplayBuffer methods and state


def test_a_changed_replay_buffer_method_is_refused() -> None:
    class Changed(ReplayBuffer):
        def _sampleable_terminal_keys(self, partition_id, eviction_reasons, global_steps=None): ...

    with pytest.raises(UnsupportedVerlError, match=r"_sampleable_terminal_keys\(.*\) differs from the expected"):
        bounded_sampler.check_replay_buffer_contract(base=Changed)

    class Removed(ReplayBuffer):
        _evict_terminal_groups = None  # verl dropped the method

    with pytest.raises(UnsupportedVerlError, match=r"has no verl\.trainer\.ppo\.v1\.replay_buffer\.ReplayBuffer\._ev"):
        bounded_sampler.check_replay_buffer_contract(base=Removed)


def test_the_buffer_refuses_to_start_on_another_verl_instead_of_running_unbounded(monkeypatch) -> None:
    monkeypatch.setattr(verl, "__version__", NEXT_MINOR_PRE_RELEASE)
    with pytest.raises(UnsupportedVerlError, match="BoundedReplayBuffer .*found verl 0.10.0.dev0"):
        bounded_sampler.BoundedReplayBuffer("sync", None, None, "drop", {})


def test_every_dapo_recipe_fails_at_start_up_on_another_verl(run_dirs, monkeypatch) -> None:
    monkeypatch.setattr(verl, "__version__", NEXT_MINOR_PRE_RELEASE)
    for recipe in [r for r in launch.list_recipes() if "_dapo_" in r and not r.endswith("_dapo_norm")]:
        with pytest.raises(UnsupportedVerlError, match="BoundedReplayBuffer"):
            launch.prepare(recipe, [], os.environ)
