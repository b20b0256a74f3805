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
    assert proc.stdout.split() == ["vlnorm_verl.extension.estimator", "vlnorm_verl.extension.policy_loss"]


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

        @ray.remote
        def build_actor_config(actor_cfg) -> tuple[str, float, str, bool]:
            """What a verl worker does with the actor section it is handed."""
            import verl  # noqa: F401
            from verl.utils.config import omega_conf_to_dataclass

            from vlnorm_verl.extension import engine_hook

            config = omega_conf_to_dataclass(actor_cfg)
            loss = config.policy_loss
            return type(loss).__name__, loss.alpha, loss.scope, engine_hook.is_installed()

        from omegaconf import OmegaConf

        from vlnorm_verl.launch.compose import compose_config

        cfg = compose_config(
            "ppo_trainer",
            [
                "+aggregation=vl_norm",
                "algorithm.vl_norm.alpha=0.75",
                "algorithm.vl_norm.scope=minibatch",
                "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
            ],
        )
        OmegaConf.resolve(cfg)  # as verl's TaskRunner does before building workers
        est, loss, pid = ray.get(probe.remote(), timeout=240)
        worker_config = ray.get(build_actor_config.remote(cfg.actor_rollout_ref.actor), timeout=240)
    finally:
        ray.shutdown()
    assert est and loss and pid != os.getpid()
    # alpha and scope reach the worker with the config itself (no environment variables), and the
    # minibatch scope's engine hook is installed there
    assert worker_config == ("VLNormPolicyLossConfig", 0.75, "minibatch", True)
