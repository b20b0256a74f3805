"""`import verl` alone registers VL Norm: in a fresh Python process and inside a Ray worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import sys, verl\n"
    "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY\n"
    "print(ADV_ESTIMATOR_REGISTRY['vl_norm'].__module__, POLICY_LOSS_REGISTRY['vl_norm'].__module__)\n"
)


def test_fresh_process_registers_on_import_verl(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERL_USE_EXTERNAL")}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["vlnorm_verl.estimator", "vlnorm_verl.policy_loss"]


def test_disabling_verl_plugins_really_disables_it(tmp_path) -> None:
    """The probe above can fail: with verl's plugin discovery off, nothing registers."""
    env = dict(os.environ, VERL_USE_EXTERNAL_PLUGINS="none")
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode != 0 and "KeyError: 'vl_norm'" in proc.stderr


@pytest.mark.timeout(300)
def test_ray_worker_registers_on_import_verl() -> None:
    import tempfile

    ray = pytest.importorskip("ray")
    short_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # AF_UNIX socket paths must stay < 108 bytes
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=short_tmp,
        runtime_env={"env_vars": {"VERL_USE_EXTERNAL_PLUGINS": "auto"}},
    )
    try:

        @ray.remote
        def probe() -> tuple[bool, bool, int]:
            import os

            import verl  # noqa: F401
            from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY

            return "vl_norm" in ADV_ESTIMATOR_REGISTRY, "vl_norm" in POLICY_LOSS_REGISTRY, os.getpid()

        est, loss, pid = ray.get(probe.remote(), timeout=240)
    finally:
        ray.shutdown()
    assert est and loss and pid != os.getpid()
