"""The CPU platform in every verl process: the plugin installs it only under VERL_PLATFORM=cpu, and its wrapper of
verl's private ``initialize_global_process_group_ray`` is guarded by verl's version and the function's signature."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from vlnorm_verl.cpu import platform as cpu_platform


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GROUP = """
    import torch.distributed as dist
    import verl  # loads the plugin entry point
    from verl.workers import engine_workers
    from verl.utils import distributed
    print("wrapped", getattr(distributed.initialize_global_process_group_ray, "_vlnorm_cpu_wrapped", False),
          engine_workers.initialize_global_process_group_ray is distributed.initialize_global_process_group_ray)
    try:
        engine_workers.initialize_global_process_group_ray(timeout_second=None)
        print("backend", dist.get_backend())
    except ValueError as exc:
        print("error", exc)
"""


def _group_env(**extra: str) -> dict[str, str]:
    return dict(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), **extra)


def test_plugin_installs_the_cpu_platform_and_verl_starts_a_gloo_group():
    out = _python(GROUP, **_group_env(VERL_PLATFORM="cpu"))
    assert out.returncode == 0, out.stderr
    assert "wrapped True True" in out.stdout and "backend gloo" in out.stdout, out.stdout + out.stderr


def test_without_the_wrapper_verl_fails_on_cpu():
    """Negative control: verl's own function on the CPU platform builds 'cpu:gloo,cpu:gloo'."""
    code = """
        import verl, torch.distributed as dist
        from vlnorm_verl.cpu import platform as cpu_platform
        from verl.utils import distributed
        original = distributed.initialize_global_process_group_ray.__wrapped__
        try:
            original(timeout_second=None)
            print("backend", dist.get_backend())
        except ValueError as exc:
            print("error", exc)
    """
    out = _python(code, **_group_env(VERL_PLATFORM="cpu"))
    assert out.returncode == 0, out.stderr
    assert "error" in out.stdout and "Duplicate device type cpu" in out.stdout, out.stdout


def test_gpu_processes_are_left_alone():
    code = """
        import sys, verl
        from verl.utils import distributed
        print("wrapped", getattr(distributed.initialize_global_process_group_ray, "_vlnorm_cpu_wrapped", False))
        print("cpu_platform imported", "vlnorm_verl.cpu.platform" in sys.modules)
        from verl.workers.rollout.base import _ROLLOUT_REGISTRY
        print("hf", ("hf", "async") in _ROLLOUT_REGISTRY)
    """
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert "wrapped False" in out.stdout and "cpu_platform imported False" in out.stdout, out.stdout
    assert "hf False" in out.stdout, out.stdout  # the private rollout registry too (tests/integration/test_verl_guards)


def test_contract_holds_for_the_installed_verl():
    cpu_platform.check_process_group_contract()


def test_contract_fails_loudly_when_verl_changes():
    with pytest.raises(cpu_platform.UnsupportedVerlError, match=r"written against verl >=0\.9\.1,<0\.10"):
        cpu_platform.check_process_group_contract(version="0.10.0")

    def changed(timeout_second=None, backend=None, device_id=None):  # a new parameter
        return None

    with pytest.raises(cpu_platform.UnsupportedVerlError, match="differs from the expected"):
        cpu_platform.check_process_group_contract(func=changed)


def test_importing_the_platform_before_verl_still_loads_the_plugin():
    """cpu_platform imports verl, whose plugin loading imports cpu_platform while it is half-initialised (the engine
    harness's order): the plugin must still load, and the platform install itself."""
    code = """
        import sys
        from vlnorm_verl.cpu import platform as cpu_platform
        from verl.utils import distributed
        from verl.plugin.platform import get_platform
        print("plugin", "vlnorm_verl.plugin" in sys.modules)
        print("wrapped", getattr(distributed.initialize_global_process_group_ray, "_vlnorm_cpu_wrapped", False))
        print("platform", type(get_platform()).__name__)
    """
    out = _python(code, VERL_PLATFORM="cpu")
    assert out.returncode == 0, out.stderr
    assert "plugin True" in out.stdout and "wrapped True" in out.stdout and "platform PlatformCPU" in out.stdout, (
        out.stdout
    )
