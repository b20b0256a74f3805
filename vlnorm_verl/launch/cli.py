"""The ``vlnorm-verl`` console script.

Each sub-command lives in its own module, which exposes ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their sub-command is used, so
``vlnorm-verl --help`` stays fast and a missing optional dependency affects one command only.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("vlnorm_verl.launch.check_cli", "validate a verl config for VL Norm (the start-up check)"),
    "prepare-data": ("vlnorm_verl.tasks.prepare", "prepare CountDown or math parquet files"),
    "train": ("vlnorm_verl.launch.launcher", "launch a recipe with verl's trainer (or --dry-run)"),
    "compare": ("vlnorm_verl.compare.cli", "compare runs against a baseline (wandb or local logs)"),
    "quickstart": (
        "vlnorm_verl.quickstart.cli",
        "the CPU demo: countdown_dapo_vlnorm vs countdown_dapo_plain through verl's trainer on a tiny model",
    ),
    "probe": ("vlnorm_verl.probe.cli", "measure how gradient variance grows with response length; pick alpha from it"),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, object | None]:
    parser = argparse.ArgumentParser(prog="vlnorm-verl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = argv[0] if argv else None
    module = None
    for name, (mod_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == chosen:
            module = importlib.import_module(mod_name)
            module.add_arguments(p)
    return parser, module


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, module = build_parser(argv)
    if module is None:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(module, "ACCEPTS_EXTRA_ARGS", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
