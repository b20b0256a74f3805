"""``python -m vlnorm_verl.warmstart.sft_cpu [hydra overrides]``: verl's own SFT trainer, one rank, on the CPU.

verl's entry point (``python -m verl.trainer.sft_trainer`` under ``torchrun``) starts its process group with the
backend string ``"cpu:gloo,<device>:<backend>"``, which torch rejects when the device is the CPU. This entry
starts a plain single-rank ``gloo`` group on loopback (:func:`vlnorm_verl.cpu.platform.init_process_group`) and
then runs verl's ``SFTTrainer`` unchanged, composed from verl's ``sft_trainer_engine`` config with the caller's
overrides (``trainer.device=cpu``, ``engine.strategy=fsdp2`` and fp32 are set here; the caller's win). It
selects the project's CPU platform (``VERL_PLATFORM=cpu``) when the environment has not.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from vlnorm_verl.cpu import platform as cpu_platform

CPU_DEFAULTS = ("trainer.device=cpu", "engine.strategy=fsdp2", "engine.model_dtype=fp32")


def main(argv: list[str] | None = None) -> int:
    cpu_platform.apply_env()
    cpu_platform.install_if_requested()
    import verl.trainer
    from hydra import compose, initialize_config_dir
    from verl.trainer.sft_trainer import SFTTrainer
    from verl.utils.device import auto_set_device
    from verl.utils.distributed import destroy_global_process_group

    overrides = list(sys.argv[1:] if argv is None else argv)
    config_dir = Path(verl.trainer.__file__).resolve().parent / "config"
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        config = compose("sft_trainer_engine", overrides=[*CPU_DEFAULTS, *overrides])
    cpu_platform.check_active()
    auto_set_device(config)
    cpu_platform.init_process_group(rank=0, world_size=1)
    try:
        SFTTrainer(config=config).fit()
    finally:
        destroy_global_process_group()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
