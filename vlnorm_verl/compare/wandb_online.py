"""Runs from the wandb online API (``wandb.Api()``), as :class:`RunLog` records.

Thin on purpose: it needs the network and a wandb login, so the test suite cannot exercise it; all
computation happens on the returned records, exactly as for offline logs.

* ``read_project("entity/project" or "project", group=..., tags=[...])``: every run of the project,
  filtered server-side by ``{"group": G}`` and ``{"tags": {"$in": tags}}`` (a run matches when it has
  any of the tags), oldest first.
* ``read_run("entity/project/run_id")``: one run.

Each run's full history comes from ``Run.scan_history()`` (all keys; rows carry ``_step``), its name
from ``Run.name`` (the display name: verl's ``trainer.experiment_name``) and its start time from
``Run.created_at``. Every failure of the client is reported as a :class:`CompareError` that names the
project and suggests reading offline run directories instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from vlnorm_verl.compare.records import WANDB_INTERNAL_PREFIX, CompareError, Row, RunLog, as_step, to_float


def _api():
    try:
        import wandb

        return wandb.Api()
    except Exception as exc:
        raise CompareError(
            f"cannot reach the wandb API ({exc}); log in (`wandb login` or WANDB_API_KEY) or compare "
            "offline run directories / JSONL files instead"
        ) from exc


def _start_time(created_at: Any) -> float | None:
    if not created_at:
        return None
    try:
        return datetime.fromisoformat(str(created_at).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def run_to_log(run: Any) -> RunLog:
    """Convert one ``wandb.apis.public.Run`` into a :class:`RunLog`."""
    where = f"wandb run {run.entity}/{run.project}/{run.id}"
    rows: list[Row] = []
    for record in run.scan_history():
        if "_step" not in record:
            continue
        step = as_step(record["_step"], where)
        row = {}
        for key, value in record.items():
            if key.startswith(WANDB_INTERNAL_PREFIX):
                continue
            number = to_float(value)
            if number is not None and value is not None:  # scan_history fills absent keys with None
                row[key] = number
        rows.append((step, row))
    return RunLog(
        name=run.name or run.id,
        origin=f"wandb:{run.entity}/{run.project}/{run.id}",
        rows=rows,
        start_time=_start_time(getattr(run, "created_at", None)),
        run_id=run.id,
        project=f"{run.entity}/{run.project}",
    )


def read_project(project: str, group: str | None = None, tags: list[str] | None = None) -> list[RunLog]:
    filters: dict[str, Any] = {}
    if group:
        filters["group"] = group
    if tags:
        filters["tags"] = {"$in": list(tags)}
    api = _api()
    try:
        runs = list(api.runs(path=project, filters=filters or None, order="+created_at"))
        logs = [run_to_log(run) for run in runs]
    except CompareError:
        raise
    except Exception as exc:
        raise CompareError(f"cannot read wandb project {project!r}: {exc}") from exc
    if not logs:
        raise CompareError(f"wandb project {project!r} has no runs matching group={group!r} tags={tags!r}")
    return logs


def read_run(path: str) -> RunLog:
    api = _api()
    try:
        return run_to_log(api.run(path))
    except CompareError:
        raise
    except Exception as exc:
        raise CompareError(f"cannot read wandb run {path!r} ({exc}); expected wandb:ENTITY/PROJECT/RUN_ID") from exc
