"""``vlnorm-verl check [--config-dir DIR] [--config-name NAME] [overrides...]``: run the start-up check.

Composes the config as verl's trainer would (plus the project's config groups on the search path)
and runs :func:`vlnorm_verl.extension.startup_check.check_config`. Exit 0 and a one-line summary when the
run is consistent (or does not use VL Norm); exit 2 (as every sub-command for invalid input) with the reason
otherwise. It runs the whole start-up check (:func:`vlnorm_verl.extension.startup_check.check_run_config`), as
``vlnorm-verl train`` and the Hydra callback in ``python -m verl.trainer.main_ppo`` do.
"""

from __future__ import annotations

import argparse
import sys

ACCEPTS_EXTRA_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-dir", default=None, help="directory of the primary config (default: verl's)")
    parser.add_argument("--config-name", default="ppo_trainer", help="primary config name (default: ppo_trainer)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. +aggregation=vl_norm")


def run(args: argparse.Namespace) -> int:
    import verl  # noqa: F401  (loads the plugin as every verl process does)

    from vlnorm_verl.extension.settings import EXIT_INVALID, describe_failure
    from vlnorm_verl.extension.startup_check import check_config, check_run_config
    from vlnorm_verl.launch.compose import compose_config

    overrides = list(args.overrides) + list(getattr(args, "extra", []))
    try:
        cfg = compose_config(args.config_name, overrides, config_dir=args.config_dir)
        check_run_config(cfg)
        settings = check_config(cfg)
    except Exception as exc:  # noqa: BLE001 - composition errors and every failed check are reported alike
        print(f"vlnorm-verl check: invalid run: {describe_failure(exc)}", file=sys.stderr)
        return EXIT_INVALID
    if settings is None:
        print("VL Norm is not enabled in this config (nothing to check).")
    else:
        print(
            f"VL Norm config OK: alpha={settings.alpha} scope={settings.scope} base_estimator={settings.base_estimator}"
        )
    return 0
