"""The environment a recipe's verl processes run with: tracking, data and log locations.

verl 0.9.1 initialises wandb inside its TaskRunner (a Ray actor, possibly on another node) with only
``project`` and ``name``, and its ``file`` logger opens ``$VERL_FILE_LOGGER_PATH`` or
``$VERL_FILE_LOGGER_ROOT/<project>/<experiment>.jsonl`` with mode ``wb``. So the launcher computes:

* ``WANDB_RUN_GROUP`` / ``WANDB_TAGS`` from ``vlnorm.tracking.{group,tags}`` (tags comma-joined);
* ``WANDB_MODE``: as set in the environment, else ``online`` with a ``WANDB_API_KEY`` and ``offline``
  without one (the run then logs locally instead of failing);
* ``WANDB_DIR``: the runs directory (offline runs land in ``<runs>/wandb/offline-run-*``);
* ``VERL_FILE_LOGGER_ROOT``: a fresh attempt directory ``<runs>/logs/<experiment>/<attempt>`` per launch,
  so a resumed run (``trainer.resume_mode=auto``) writes a new file and keeps the earlier ones; every
  attempt's file is named ``<experiment>.jsonl``, so ``vlnorm-verl compare`` merges them as one run;
* ``VLNORM_DATA_DIR`` / ``VLNORM_RUNS_DIR``: absolute, so ``${oc.env:VLNORM_DATA_DIR}`` resolves to the
  same files in every process, whatever its working directory.

These variables go into the trainer config as ``ray_kwargs.ray_init.runtime_env.env_vars`` (which verl
passes to ``ray.init``, reaching every Ray worker on every node) and into the launcher's own
environment. Inside a Ray job (``ray job submit``) Ray refuses a ``ray.init`` runtime env that repeats
a variable of the job's runtime env, so variables the job already carries with the same value are left
out, and a differing value is kept with ``RAY_OVERRIDE_JOB_RUNTIME_ENV=1`` (the recipe wins).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

RAY_JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
RAY_OVERRIDE_ENV = "RAY_OVERRIDE_JOB_RUNTIME_ENV"
RUNTIME_ENV_KEY = "ray_kwargs.ray_init.runtime_env.env_vars"
# passed through to a submitted Ray job when set (never written into the trainer config)
PASSTHROUGH = (
    "WANDB_API_KEY",
    "WANDB_ENTITY",
    "WANDB_BASE_URL",
    "HF_TOKEN",
    "HF_HOME",
    "HF_ENDPOINT",
    "HF_HUB_OFFLINE",
    "VLNORM_MATH_TIMEOUT_S",
)
SECRETS = ("WANDB_API_KEY", "HF_TOKEN")


def absolute_dirs(environ: Mapping[str, str]) -> tuple[Path, Path]:
    """(data dir, runs dir): ``$VLNORM_DATA_DIR`` (default ./data) and ``$VLNORM_RUNS_DIR`` (default ./runs)."""
    data = Path(environ.get("VLNORM_DATA_DIR") or "data").expanduser()
    runs = Path(environ.get("VLNORM_RUNS_DIR") or "runs").expanduser()
    return data.absolute(), runs.absolute()


def wandb_mode(environ: Mapping[str, str]) -> str:
    """``$WANDB_MODE`` if set, else online with ``$WANDB_API_KEY`` and offline without."""
    explicit = environ.get("WANDB_MODE")
    if explicit:
        return explicit
    return "online" if environ.get("WANDB_API_KEY") else "offline"


def attempt_id(now: float | None = None) -> str:
    """A launch's id: its UTC start time, e.g. ``20260101T120000Z``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))


def attempt_dir(runs_dir: Path, experiment: str, attempt: str) -> Path:
    return runs_dir / "logs" / experiment / attempt


def reserve_attempt_dir(runs_dir: Path, experiment: str, attempt: str) -> Path:
    """Create and return a new attempt directory, suffixing ``-2``, ``-3``, ... if the id is taken."""
    base = attempt_dir(runs_dir, experiment, attempt)
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")


def tracking_env(tracking: Mapping[str, Any], environ: Mapping[str, str], log_root: Path | None) -> dict[str, str]:
    """The variables every verl process of the run needs (see the module docstring)."""
    data_dir, runs_dir = absolute_dirs(environ)
    tags = [str(t) for t in tracking.get("tags") or []]
    bad = [t for t in tags if "," in t]
    if bad:
        raise ValueError(f"vlnorm.tracking.tags entries cannot contain a comma (WANDB_TAGS is comma-separated): {bad}")
    env = {
        "WANDB_RUN_GROUP": str(tracking.get("group") or ""),
        "WANDB_TAGS": ",".join(tags),
        "WANDB_MODE": wandb_mode(environ),
        "WANDB_DIR": str(runs_dir),
        "VLNORM_DATA_DIR": str(data_dir),
        "VLNORM_RUNS_DIR": str(runs_dir),
    }
    if log_root is not None:
        env["VERL_FILE_LOGGER_ROOT"] = str(log_root)
    return env


def job_env_vars(environ: Mapping[str, str]) -> dict[str, str]:
    """The env_vars of the Ray job this process runs in (empty outside ``ray job submit``)."""
    raw = environ.get(RAY_JOB_CONFIG_ENV)
    if not raw:
        return {}
    try:
        runtime_env = json.loads(raw).get("runtime_env") or {}
    except (ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in (runtime_env.get("env_vars") or {}).items()}


def split_for_ray_job(env: Mapping[str, str], environ: Mapping[str, str]) -> tuple[dict[str, str], bool]:
    """(variables to put in ray.init's runtime env, whether the job's runtime env must be overridden)."""
    job = job_env_vars(environ)
    keep = {k: v for k, v in env.items() if job.get(k) != v}
    return keep, any(k in job for k in keep)


def hydra_quote(value: str) -> str:
    """A Hydra override value that stays a string whatever it contains (commas, '=', spaces, quotes).

    In a single-quoted Hydra string a quote is escaped as ``\\'`` and only backslashes that precede a
    quote (or the closing quote) are escapes, so those are doubled; other backslashes stay literal.
    """
    escaped = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
    return f"'{escaped}'"


def env_overrides(env: Mapping[str, str]) -> list[str]:
    """Hydra overrides putting `env` into ``ray_kwargs.ray_init.runtime_env.env_vars``."""
    return [f"++{RUNTIME_ENV_KEY}.{k}={hydra_quote(v)}" for k, v in sorted(env.items())]


def submit_runtime_env(env: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, Any]:
    """The runtime env for ``ray job submit``: `env` plus the pass-through variables that are set,
    and ``pip`` packages from ``$VLNORM_RAY_PIP`` (comma-separated) for nodes without the plugin."""
    env_vars = dict(env)
    env_vars.pop("VERL_FILE_LOGGER_ROOT", None)  # each launch (the job's entrypoint) picks its own attempt
    for key in PASSTHROUGH:
        if environ.get(key):
            env_vars[key] = environ[key]
    runtime_env: dict[str, Any] = {"env_vars": env_vars}
    pip = [p.strip() for p in (environ.get("VLNORM_RAY_PIP") or "").split(",") if p.strip()]
    if pip:
        runtime_env["pip"] = {"packages": pip, "pip_check": False}
    return runtime_env


def redact(env: Mapping[str, str]) -> dict[str, str]:
    return {k: ("<set>" if k in SECRETS and v else v) for k, v in env.items()}


def apply_to_process(env: Mapping[str, str]) -> None:
    """Export `env` in this process (so a local Ray started by verl inherits it too)."""
    os.environ.update(env)
