"""Re-export of :mod:`vlnorm_verl.cpu.platform` (the one implementation) under the name the harness imports."""

from vlnorm_verl.cpu.platform import (
    ENV,
    PLATFORM_NAME,
    PlatformCPU,
    apply_env,
    check_active,
    init_process_group,
    register,
)

__all__ = ["ENV", "PLATFORM_NAME", "PlatformCPU", "apply_env", "check_active", "init_process_group", "register"]
