"""``vlnorm-verl train RECIPE [hydra overrides...] [--dry-run]``: launch one of the paper's runs.

RECIPE is a recipe name (``vlnorm-verl train --list``; the YAML files live in the package,
``vlnorm_verl/configs/recipes/``) or a path to a recipe YAML of your own. The launcher

1. composes the recipe exactly as ``python -m verl.trainer.main_ppo --config-path=<recipe dir>
   --config-name=<recipe> <overrides>`` would (verl's ``ppo_trainer`` plus the project's config groups),
   with the tracking environment added (see :mod:`vlnorm_verl.launch.run_env`);
2. checks it: the whole start-up check (:func:`vlnorm_verl.extension.startup_check.check_run_config`, which the recipes'
   Hydra callback also runs inside ``verl.trainer.main_ppo``) and the launcher's own check below; a failure
   exits 2 with one line naming the setting and the fix on stderr;
3. prints the settings that define the run (stderr);
4. ``--dry-run``: prints the fully resolved config as YAML on stdout and exits 0 (no GPU needed;
   ``--probe-cluster`` also checks every node of the Ray cluster, see :mod:`vlnorm_verl.launch.cluster_probe`);
   otherwise it runs verl's trainer in this process: ``verl.trainer.main_ppo.main()`` (Hydra's entry point)
   with the argument list of ``python -m verl.trainer.main_ppo --config-path=... --config-name=...
   <overrides>`` (printed, and recorded in the attempt's ``launch.json``) and the run's environment in
   ``os.environ``. verl's imports and the Python start-up are paid once instead of twice (a second
   interpreter cost ~5 s of every launch); Hydra composes, saves ``.hydra/`` and runs the recipe's callbacks
   exactly as the command would, and signals and the exit status are verl's (1 when verl raises, 2 when a
   start-up check stops the run).

The launcher's own check: ``VERL_FILE_LOGGER_PATH`` must not be set (verl would truncate that single file on
every launch; the launcher gives each launch its own log directory).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlnorm_verl.extension import settings
from vlnorm_verl.launch import run_env

ACCEPTS_EXTRA_ARGS = True
EXIT_INVALID = settings.EXIT_INVALID
RECIPES_DIR = Path(__file__).resolve().parents[1] / "configs" / "recipes"
# (label, config keys) printed before launching; values are joined with " / "
SUMMARY: list[tuple[str, tuple[str, ...]]] = [
    ("recipe / suite / task", ("vlnorm.recipe", "vlnorm.suite", "vlnorm.task")),
    ("method", ("vlnorm.method",)),
    ("model", ("actor_rollout_ref.model.path",)),
    ("advantage estimator", ("algorithm.adv_estimator",)),
    (
        "  VL Norm alpha / scope / base",
        ("algorithm.vl_norm.alpha", "algorithm.vl_norm.scope", "algorithm.vl_norm.base_estimator"),
    ),
    (
        "  overlong filter base / cap",
        ("algorithm.overlong_filter.base_estimator", "algorithm.overlong_filter.max_response_length"),
    ),
    ("  std normalisation", ("algorithm.norm_adv_by_std_in_grpo",)),
    (
        "policy loss / loss_agg_mode",
        ("actor_rollout_ref.actor.policy_loss.loss_mode", "actor_rollout_ref.actor.loss_agg_mode"),
    ),
    ("loss_scale_factor", ("actor_rollout_ref.actor.loss_scale_factor",)),
    (
        "dynamic sampling / metric / inflight / bound",
        (
            "algorithm.filter_groups.enable",
            "algorithm.filter_groups.metric",
            "algorithm.filter_groups.max_inflight_gen_batches",
            "algorithm.filter_groups.max_num_gen_batches",
        ),
    ),
    ("reward manager / function", ("reward.reward_manager.name", "reward.custom_reward_function.path")),
    (
        "soft punishment / buffer / factor",
        (
            "reward.reward_kwargs.overlong_buffer_cfg.enable",
            "reward.reward_kwargs.overlong_buffer_cfg.len",
            "reward.reward_kwargs.overlong_buffer_cfg.penalty_factor",
        ),
    ),
    ("prompt / response length", ("data.max_prompt_length", "data.max_response_length")),
    (
        "batch / mini / micro-per-GPU / n",
        (
            "data.train_batch_size",
            "actor_rollout_ref.actor.ppo_mini_batch_size",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
            "actor_rollout_ref.rollout.n",
        ),
    ),
    ("lr / schedule", ("actor_rollout_ref.actor.optim.lr", "actor_rollout_ref.actor.optim.lr_scheduler_type")),
    (
        "clip low / high / c",
        (
            "actor_rollout_ref.actor.clip_ratio_low",
            "actor_rollout_ref.actor.clip_ratio_high",
            "actor_rollout_ref.actor.clip_ratio_c",
        ),
    ),
    (
        "KL loss / KL in reward / entropy",
        ("actor_rollout_ref.actor.use_kl_loss", "algorithm.use_kl_in_reward", "actor_rollout_ref.actor.entropy_coeff"),
    ),
    (
        "grad clip (optim.clip_grad) / temperature",
        ("actor_rollout_ref.actor.optim.clip_grad", "actor_rollout_ref.rollout.temperature"),
    ),
    (
        "validation n / temperature / sample",
        (
            "actor_rollout_ref.rollout.val_kwargs.n",
            "actor_rollout_ref.rollout.val_kwargs.temperature",
            "actor_rollout_ref.rollout.val_kwargs.do_sample",
        ),
    ),
    ("nodes / GPUs per node", ("trainer.nnodes", "trainer.n_gpus_per_node")),
    ("actor / ref strategy", ("actor_rollout_ref.actor.strategy", "actor_rollout_ref.ref.strategy")),
    (
        "FSDP offload param / optim / vLLM mem",
        (
            "actor_rollout_ref.actor.fsdp_config.param_offload",
            "actor_rollout_ref.actor.fsdp_config.optimizer_offload",
            "actor_rollout_ref.rollout.gpu_memory_utilization",
        ),
    ),
    ("epochs / test_freq / save_freq", ("trainer.total_epochs", "trainer.test_freq", "trainer.save_freq")),
    ("train / val files", ("data.train_files", "data.val_files")),
    ("wandb project / name", ("trainer.project_name", "trainer.experiment_name")),
    ("wandb group / tags", ("vlnorm.tracking.group", "vlnorm.tracking.tags")),
    ("checkpoints", ("trainer.default_local_dir",)),
]


class RecipeError(ValueError):
    """A recipe, override or environment problem; the message names it and the fix."""


@dataclass
class Launch:
    """A composed, checked run: what ``run`` prints and executes."""

    config_dir: Path
    config_name: str
    overrides: list[str]
    env: dict[str, str]
    cfg: Any
    log_root: Path | None
    override_job_env: bool = False
    notes: list[str] = field(default_factory=list)  # missing data files: a real launch stops
    warnings: list[str] = field(default_factory=list)  # printed, the launch goes on

    def command(self, python: str = sys.executable) -> list[str]:
        hydra_dir = [f"hydra.run.dir={run_env.hydra_quote(str(self.log_root))}"] if self.log_root else []
        return [
            python,
            "-m",
            "verl.trainer.main_ppo",
            f"--config-path={self.config_dir}",
            f"--config-name={self.config_name}",
            *self.overrides,
            *hydra_dir,
        ]


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def describe(name: str) -> str:
    """The first comment line of a packaged recipe, without its name."""
    for line in (RECIPES_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").split(": ", 1)[-1]
    return ""


def locate(recipe: str) -> tuple[Path, str]:
    """(config dir, config name) for a recipe name or a path to a recipe YAML."""
    path = Path(recipe).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise RecipeError(f"recipe file {recipe!r} does not exist")
        return path.resolve().parent, path.stem
    if (RECIPES_DIR / f"{recipe}.yaml").is_file():
        return RECIPES_DIR, recipe
    close = difflib.get_close_matches(recipe, list_recipes(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise RecipeError(
        f"unknown recipe {recipe!r}.{hint} Known recipes: {', '.join(list_recipes())} "
        "(or give the path to a recipe .yaml file)"
    )


def _compose(config_dir: Path, name: str, overrides: list[str]) -> Any:
    from vlnorm_verl.launch.compose import compose_config

    return compose_config(name, overrides, config_dir=config_dir)


def check_launch_environment(environ: Any) -> None:
    """The launcher's own check: ``VERL_FILE_LOGGER_PATH`` must not be set (module docstring)."""
    if environ.get("VERL_FILE_LOGGER_PATH"):
        raise RecipeError(
            "VERL_FILE_LOGGER_PATH is set: verl would truncate that one file on every launch (it opens it with "
            "mode 'wb'); unset it - the launcher writes each launch's log to <runs>/logs/<experiment>/<attempt>/"
        )


def prepare(recipe: str, overrides: list[str], environ: Any, reserve: bool = False) -> Launch:
    """Compose `recipe` with `overrides` and the tracking environment, and run every check.

    ``reserve`` (a real launch) creates this launch's attempt directory; a dry run only names it.
    """
    from omegaconf import OmegaConf

    from vlnorm_verl.extension.startup_check import check_run_config

    config_dir, name = locate(recipe)
    data_dir, runs_dir = run_env.absolute_dirs(environ)
    base = [f"vlnorm.runs_dir={run_env.hydra_quote(str(runs_dir))}", *overrides]
    first = _compose(config_dir, name, base)
    experiment = str(first.trainer.experiment_name)
    tracking = OmegaConf.to_container(first.vlnorm.tracking, resolve=True) if "vlnorm" in first else {}
    logger_list = OmegaConf.select(first, "trainer.logger", default=[]) or []
    wants_file = "file" in ([logger_list] if isinstance(logger_list, str) else list(logger_list))
    log_root = None
    if wants_file:
        attempt = run_env.attempt_id()
        if reserve:
            log_root = run_env.reserve_attempt_dir(runs_dir, experiment, attempt)
        else:
            log_root = run_env.attempt_dir(runs_dir, experiment, attempt)
    try:
        env = run_env.tracking_env(tracking, environ, log_root)
        ray_env, override_job = run_env.split_for_ray_job(env, environ)
        all_overrides = [*base, *run_env.env_overrides(ray_env)]
        # the same as composing with all_overrides (each is a `++` on a key nothing interpolates), without
        # composing twice; test_launch checks it against verl's own composition of the printed command
        cfg = first
        for key, value in ray_env.items():
            OmegaConf.update(cfg, f"{run_env.RUNTIME_ENV_KEY}.{key}", value, force_add=True)
        OmegaConf.resolve(cfg)  # surfaces missing values and broken interpolations now
        check_launch_environment(environ)
        bound = check_run_config(cfg)
    except BaseException:
        if reserve and log_root is not None:
            with contextlib.suppress(OSError):
                log_root.rmdir()
        raise
    launch = Launch(config_dir, name, all_overrides, env, cfg, log_root, override_job)
    launch.warnings.extend(bound.warnings if bound is not None else [])
    for key in ("data.train_files", "data.val_files"):
        value = OmegaConf.select(cfg, key, default=None)
        for f in [value] if isinstance(value, str) else list(value or []):
            if "://" not in str(f) and not Path(str(f)).expanduser().exists():
                launch.notes.append(
                    f"{key}: {f} does not exist (scripts/prepare_data.sh writes it; data dir {data_dir})"
                )
    return launch


def _value(cfg: Any, key: str) -> str:
    from omegaconf import OmegaConf

    try:
        value = OmegaConf.select(cfg, key, default="-")
    except Exception:  # noqa: BLE001 - a missing value prints as such
        return "???"
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def summary(launch: Launch) -> str:
    lines = [f"{label:<40} {' / '.join(_value(launch.cfg, k) for k in keys)}" for label, keys in SUMMARY]
    shown = run_env.redact(launch.env)
    lines.append(f"{'wandb mode':<40} {shown.get('WANDB_MODE')}")
    if launch.log_root is not None:
        project, experiment = launch.cfg.trainer.project_name, launch.cfg.trainer.experiment_name
        lines.append(f"{'file log':<40} {launch.log_root / str(project) / f'{experiment}.jsonl'}")
    lines.append(f"{'worker environment':<40} " + " ".join(f"{k}={v}" for k, v in sorted(shown.items())))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", help="recipe name (see --list) or path to a recipe .yaml")
    parser.add_argument("--dry-run", action="store_true", help="check and print the resolved config; do not train")
    parser.add_argument("--list", action="store_true", help="list the packaged recipes and exit")
    parser.add_argument(
        "--probe-cluster",
        action="store_true",
        help="with --dry-run: check every node of the Ray cluster at $RAY_ADDRESS for the plugin and environment",
    )
    parser.add_argument(
        "--print-runtime-env",
        action="store_true",
        help="print the Ray runtime env (JSON) a submitted job needs and exit (used by scripts/ray_submit.sh)",
    )
    parser.epilog = "Extra arguments are Hydra overrides, e.g. model=qwen2.5-7b algorithm.vl_norm.alpha=0.5"


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name in list_recipes():
            print(f"{name:<32} {describe(name)}")
        return 0
    if not args.recipe:
        print("vlnorm-verl train: give a RECIPE (see vlnorm-verl train --list)", file=sys.stderr)
        return EXIT_INVALID
    bad = [a for a in args.extra if a.startswith("--")]
    if bad:
        print(f"vlnorm-verl train: unknown option(s) {bad}; Hydra overrides look like key=value", file=sys.stderr)
        return EXIT_INVALID
    dry = args.dry_run or args.print_runtime_env
    data_dir, runs_dir = run_env.absolute_dirs(os.environ)
    # ${oc.env:VLNORM_DATA_DIR} in the task configs must resolve to the same absolute path here and in verl
    run_env.apply_to_process({"VLNORM_DATA_DIR": str(data_dir), "VLNORM_RUNS_DIR": str(runs_dir)})
    from vlnorm_verl.extension.settings import describe_failure

    try:
        launch = prepare(args.recipe, list(args.extra), os.environ, reserve=not dry)
    except Exception as exc:  # noqa: BLE001 - any composition or check failure is reported the same way
        print(f"vlnorm-verl train: invalid run: {describe_failure(exc)}", file=sys.stderr)
        return EXIT_INVALID
    if args.print_runtime_env:
        print(json.dumps(run_env.submit_runtime_env(launch.env, os.environ), sort_keys=True))
        return 0
    print(summary(launch), file=sys.stderr)
    for note in [*launch.warnings, *launch.notes]:
        print(f"[vlnorm-verl] warning: {note}", file=sys.stderr)
    if args.dry_run:
        return _dry_run(launch, args.probe_cluster)
    if launch.notes:
        print("vlnorm-verl train: missing data files; prepare them first (scripts/prepare_data.sh)", file=sys.stderr)
        if launch.log_root is not None:
            with contextlib.suppress(OSError):
                launch.log_root.rmdir()
        return EXIT_INVALID
    return _execute(launch)


def _dry_run(launch: Launch, probe_cluster: bool) -> int:
    from omegaconf import OmegaConf

    from vlnorm_verl.extension.registry import ENTRY_POINT_NAME
    from vlnorm_verl.extension.startup_check import check_plugin

    check_plugin()
    present = {k: v for k, v in run_env.redact(dict(os.environ)).items() if k.startswith("WANDB_")}
    print(
        f"[vlnorm-verl] launcher: pid={os.getpid()} plugin={ENTRY_POINT_NAME} registered; environment "
        + " ".join(f"{k}={v}" for k, v in sorted(present.items())),
        file=sys.stderr,
    )
    print("[vlnorm-verl] would run: " + " ".join(launch.command()), file=sys.stderr)
    # an explicit document start, so the outputs of several dry runs (scripts/reproduce.sh) are one YAML stream
    sys.stdout.write("---\n" + OmegaConf.to_yaml(launch.cfg, resolve=True))
    sys.stdout.flush()
    if not probe_cluster:
        return 0
    from vlnorm_verl.launch import cluster_probe

    wanted = int(launch.cfg.trainer.nnodes) * int(launch.cfg.trainer.n_gpus_per_node)
    ray_env, _ = run_env.split_for_ray_job(launch.env, os.environ)
    return cluster_probe.probe({"env_vars": ray_env} if ray_env else None, wanted)


def _execute(launch: Launch) -> int:
    if launch.log_root is not None:
        record = {
            "config_dir": str(launch.config_dir),
            "config_name": launch.config_name,
            "overrides": launch.overrides,
            "env": run_env.redact(launch.env),
            "command": launch.command(),
        }
        (launch.log_root / "launch.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    Path(launch.env["VLNORM_RUNS_DIR"]).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(launch.env)
    from vlnorm_verl.cpu import run as cpu_run

    if cpu_run.is_cpu_run(launch.cfg):
        from vlnorm_verl.cpu.platform import apply_env

        apply_env(env)  # the driver and a Ray cluster it starts select the CPU platform
    from vlnorm_verl.cpu.rollout import backend

    if backend.is_selected(launch.cfg):
        env[backend.ENABLE_ENV] = "1"  # verl processes register the hf backend (only) where a run selects it
    if launch.override_job_env:
        env[run_env.RAY_OVERRIDE_ENV] = "1"
    command = launch.command()
    print("[vlnorm-verl] running in this process: " + " ".join(command), file=sys.stderr, flush=True)
    sys.stdout.flush()
    return run_main_ppo(command[3:], env)


def run_main_ppo(argv: list[str], env: dict[str, str]) -> int:
    """``python -m verl.trainer.main_ppo *argv`` with environment ``env``, in this process (module docstring).

    A CPU run's driver gets the CPU platform from the ``cluster=cpu`` Hydra callback, as in plain ``main_ppo``
    (:func:`vlnorm_verl.cpu.run.prepare_driver`)."""
    os.environ.update(env)
    from hydra.core.global_hydra import GlobalHydra
    from verl.trainer import main_ppo

    GlobalHydra.instance().clear()  # the launcher's own composition is done
    sys.argv = [str(main_ppo.__file__), *argv]
    main_ppo.main()
    return 0
