"""``python -m vlnorm_verl.warmstart.sft_cpu [hydra overrides]``: verl's own SFT trainer, one rank, on the CPU.

verl's entry point (``python -m verl.trainer.sft_trainer`` under ``torchrun``) starts its process group with the
backend string ``"cpu:gloo,<device>:<backend>"``, which torch rejects when the device is the CPU. This entry
starts a plain single-rank ``gloo`` group on loopback (:func:`vlnorm_verl.cpu.platform.init_process_group`) and
then runs verl's ``SFTTrainer`` unchanged, composed from verl's ``sft_trainer_engine`` config with the caller's
overrides. :data:`CPU_DEFAULTS` come first (the caller's win): ``trainer.device=cpu``, ``engine.strategy=fsdp2``
and fp32 throughout - the model's dtype and the engine's mixed precision, which verl otherwise sets to bf16
(emulated, several times slower, on CPUs without native bf16; :mod:`vlnorm_verl.cpu.precision`). A config that
would still compute in another dtype is refused (exit 2) before the model is built. It selects the project's
CPU platform (``VERL_PLATFORM=cpu``) when the environment has not.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vlnorm_verl.cpu import platform as cpu_platform
from vlnorm_verl.cpu.precision import PrecisionError, hydra_value, require_fp32
from vlnorm_verl.extension.settings import EXIT_INVALID

CPU_DEFAULTS = (
    "trainer.device=cpu",
    "engine.strategy=fsdp2",
    "engine.model_dtype=fp32",
    f"++engine.mixed_precision={hydra_value()}",
)


def compose(overrides: list[str]) -> Any:
    """verl's ``sft_trainer_engine`` config with :data:`CPU_DEFAULTS` and ``overrides``; refuses a non-fp32 engine."""
    import verl.trainer
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    config_dir = Path(verl.trainer.__file__).resolve().parent / "config"
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base=None):
        config = hydra_compose("sft_trainer_engine", overrides=[*CPU_DEFAULTS, *overrides])
    require_fp32(config.engine, "engine")
    return config


def train(config: Any, before_fit: Callable[[Any], None] | None = None) -> None:
    """Run verl's ``SFTTrainer`` on ``config`` in this process (one gloo rank); ``before_fit`` sees the trainer."""
    from verl.trainer.sft_trainer import SFTTrainer
    from verl.utils.device import auto_set_device
    from verl.utils.distributed import destroy_global_process_group

    cpu_platform.check_active()
    auto_set_device(config)
    cpu_platform.init_process_group(rank=0, world_size=1)
    try:
        trainer = SFTTrainer(config=config)
        if before_fit is not None:
            before_fit(trainer)
        trainer.fit()
    finally:
        destroy_global_process_group()


def main(argv: list[str] | None = None) -> int:
    cpu_platform.apply_env()
    cpu_platform.install_if_requested()
    try:
        config = compose(list(sys.argv[1:] if argv is None else argv))
    except PrecisionError as exc:
        print(f"vlnorm-verl warm-start: invalid run: {exc}", file=sys.stderr)
        return EXIT_INVALID
    train(config)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
