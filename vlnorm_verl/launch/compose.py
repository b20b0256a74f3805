"""Compose a verl trainer config the way ``python -m verl.trainer.main_ppo`` would, in-process.

The primary config comes from ``config_dir`` (a directory, e.g. a recipe folder) or, by default,
verl's packaged ``verl.trainer.config``; the project's config groups (``pkg://vlnorm_verl.configs``)
are always on the search path, so ``+aggregation=vl_norm`` resolves from a checkout and from a wheel.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

PROJECT_SEARCHPATH = "pkg://vlnorm_verl.configs"
VERL_SEARCHPATH = "pkg://verl.trainer.config"


def compose_config(
    config_name: str = "ppo_trainer",
    overrides: list[str] | None = None,
    config_dir: str | Path | None = None,
    return_hydra_config: bool = False,
) -> DictConfig:
    from vlnorm_verl.cpu.tiny_model import register_resolver

    register_resolver()  # model=tiny refers to its directory through ${vlnorm_tiny_model:}
    overrides = list(overrides or [])
    if not any(o.startswith("hydra.searchpath") for o in overrides):
        overrides.append(f"hydra.searchpath=[{PROJECT_SEARCHPATH},{VERL_SEARCHPATH}]")
    GlobalHydra.instance().clear()
    if config_dir is None:
        ctx = initialize_config_module(config_module="verl.trainer.config", version_base=None)
    else:
        ctx = initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base=None)
    with ctx:
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
