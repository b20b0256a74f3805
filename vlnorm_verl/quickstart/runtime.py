"""Process set-up for running verl's FSDP2 engine in this process on CPU.

Order matters: the CPU platform's environment (``VERL_PLATFORM=cpu``, ``VERL_ENGINE_DEVICE=cuda``) must be
set and the platform registered before verl first calls ``get_platform()``; then a plain world-size-1 gloo
group is started (verl's own initialiser would ask torch for ``"cpu:gloo,cpu:gloo"``, which it rejects).
"""

from __future__ import annotations

import os

QUIET_ENV = {
    "TOKENIZERS_PARALLELISM": "false",
    "VERL_LOGGING_LEVEL": "WARN",
    "CUDA_VISIBLE_DEVICES": "",
}


def setup_cpu_process(threads: int = 0) -> None:
    """Make this process a single verl rank on CPU (idempotent). ``threads`` > 0 caps torch's threads."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    from vlnorm_verl import cpu_platform

    cpu_platform.apply_env()
    cpu_platform.register()
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    import verl  # noqa: F401  (loads the verl.plugins entry points, as in any verl process)

    cpu_platform.check_active()
    cpu_platform.init_process_group(rank=0, world_size=1)


def teardown() -> None:
    """Destroy the process group started by :func:`setup_cpu_process` (if any)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
