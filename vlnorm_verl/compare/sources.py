"""Turn the command line's run sources and labels into named, merged runs.

A RUN_SOURCE is one of

* a verl file-logger JSONL file (``*.jsonl``);
* a wandb transaction log (``run-<id>.wandb``) or a run directory holding one (``offline-run-*`` or
  ``run-*``);
* a directory holding run directories (a ``wandb/`` directory, or a directory with a ``wandb/``
  sub-directory), or a directory of JSONL files (verl's ``<VERL_FILE_LOGGER_ROOT>/<project>/``) or holding
  them up to :data:`JSONL_DEPTH` levels down (the launcher's ``<runs>/logs/<experiment>/<attempt>/<project>/``:
  ``runs/logs``, ``runs/logs/EXP`` and an attempt directory all work; the attempts of one experiment share a
  name and merge as a resumed run); the ``latest-run`` link is skipped and the runs are taken in the order
  they started;
* ``wandb:ENTITY/PROJECT/RUN_ID``: one run from the wandb online API.

``--wandb-project`` adds every online run of a project (optionally filtered by group/tags).

Naming: a run is named by its wandb display name (falling back to the run id) or by the JSONL file's
stem. ``--label NAME=SRC`` renames: SRC is a source (given positionally or only in the label) whose
runs all take NAME, or the name of a run read from any source. Logs that end up with the same name are
one run, merged by :func:`vlnorm_verl.compare.records.merge_logs` (a resumed run; later records win);
the merge is reported as a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vlnorm_verl.compare import wandb_online
from vlnorm_verl.compare.jsonl_reader import read_jsonl
from vlnorm_verl.compare.records import CompareError, Run, RunLog, group_logs
from vlnorm_verl.compare.wandb_log import read_wandb_run_file

ONLINE_PREFIX = "wandb:"
#: how many directory levels below a source the JSONL logs may sit (``logs/<experiment>/<attempt>/<project>/``)
JSONL_DEPTH = 4


@dataclass
class Selection:
    """What the command line asked for."""

    sources: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # "NAME=SRC"
    wandb_project: str | None = None
    wandb_group: str | None = None
    wandb_tags: list[str] = field(default_factory=list)


def _wandb_files_in_run_dir(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("run-*.wandb") if p.is_file())


def _run_dirs(directory: Path) -> list[Path]:
    found: dict[Path, Path] = {}
    for child in sorted(directory.iterdir()):
        if child.name == "latest-run" or not child.is_dir():
            continue
        if child.name.startswith(("offline-run-", "run-")) and _wandb_files_in_run_dir(child):
            found.setdefault(child.resolve(), child)
    return list(found.values())


def read_local_source(source: str) -> list[RunLog]:
    """Read every run log a local path holds; an error says what was expected when it holds none."""
    path = Path(source).expanduser()
    if not path.exists():
        raise CompareError(
            f"run source {source!r} does not exist (expected a .jsonl file, a wandb run directory, "
            f"a wandb/ directory, or {ONLINE_PREFIX}ENTITY/PROJECT/RUN_ID)"
        )
    if path.is_file():
        if path.suffix == ".jsonl":
            return [read_jsonl(path)]
        if path.suffix == ".wandb":
            return [read_wandb_run_file(path)]
        raise CompareError(f"run source {source!r}: unknown file type (expected *.jsonl or run-*.wandb)")
    files = _wandb_files_in_run_dir(path)
    if files:
        return [read_wandb_run_file(f) for f in files]
    for directory in (path, path / "wandb"):
        if directory.is_dir():
            run_dirs = _run_dirs(directory)
            if run_dirs:
                logs = [read_wandb_run_file(f) for d in run_dirs for f in _wandb_files_in_run_dir(d)]
                return sorted(logs, key=lambda log: log.start_time if log.start_time is not None else float("inf"))
    for depth in range(JSONL_DEPTH + 1):
        jsonl = sorted(f for f in path.glob("*/" * depth + "*.jsonl") if f.is_file())
        if jsonl:
            return [read_jsonl(f) for f in jsonl]
    raise CompareError(
        f"run source {source!r}: no runs found (looked for run-*.wandb, offline-run-*/ and run-*/ "
        f"directories, a wandb/ sub-directory, and *.jsonl files up to {JSONL_DEPTH} levels down)"
    )


def read_source(source: str, online_reader: Callable[[str], RunLog] | None = None) -> list[RunLog]:
    if source.startswith(ONLINE_PREFIX):
        path = source[len(ONLINE_PREFIX) :].strip("/")
        if path.count("/") not in (1, 2):
            raise CompareError(f"run source {source!r}: expected {ONLINE_PREFIX}ENTITY/PROJECT/RUN_ID")
        return [(online_reader or wandb_online.read_run)(path)]
    return read_local_source(source)


def _same_source(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith(ONLINE_PREFIX) or b.startswith(ONLINE_PREFIX):
        return False
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _origin_key(origin: str) -> str:
    return origin if origin.startswith(ONLINE_PREFIX) else str(Path(origin).expanduser().resolve())


def _parse_label(label: str) -> tuple[str, str]:
    name, sep, src = label.partition("=")
    if not sep or not name.strip() or not src.strip():
        raise CompareError(f"--label {label!r}: expected NAME=SRC (SRC: a run source or a run's name)")
    return name.strip(), src.strip()


def _looks_like_source(src: str) -> bool:
    return src.startswith(ONLINE_PREFIX) or Path(src).expanduser().exists()


def load_runs(selection: Selection, notes: list[str] | None = None) -> list[Run]:
    """Read, label and merge every run the selection names. ``notes`` collects merge notices."""
    notes = notes if notes is not None else []
    labels = [_parse_label(label) for label in selection.labels]
    sources = list(selection.sources)
    for _, src in labels:
        if _looks_like_source(src) and not any(_same_source(src, s) for s in sources):
            sources.append(src)
    if not sources and not selection.wandb_project:
        raise CompareError("no runs to compare: give RUN_SOURCES, --label NAME=SRC, or --wandb-project")

    collected: dict[str, tuple[RunLog, bool]] = {}

    def collect(source_logs: list[RunLog], labelled: bool) -> None:
        for log in source_logs:
            key = _origin_key(log.origin)
            if key in collected and (collected[key][1] or not labelled):
                continue  # the same log reached through two sources; the labelled reading wins
            collected[key] = (log, labelled)

    used_labels: set[int] = set()
    for source in sources:
        source_logs = read_source(source)
        matching = [i for i, (_, src) in enumerate(labels) if _looks_like_source(src) and _same_source(src, source)]
        if len(matching) > 1:
            names = ", ".join(labels[i][0] for i in matching)
            raise CompareError(f"run source {source!r} has several labels ({names}); give it one")
        if matching:
            names = sorted({log.name for log in source_logs})
            if len(names) > 1:
                raise CompareError(
                    f"--label {labels[matching[0]][0]}={source}: the source holds {len(names)} runs "
                    f"({', '.join(names)}); label a single run's directory or file, or label by run name "
                    "(--label NEW=OLD_NAME)"
                )
            for log in source_logs:
                log.name = labels[matching[0]][0]
            used_labels.add(matching[0])
        collect(source_logs, labelled=bool(matching))

    if selection.wandb_project:
        collect(
            wandb_online.read_project(
                selection.wandb_project, group=selection.wandb_group, tags=selection.wandb_tags or None
            ),
            labelled=False,
        )
    logs = [log for log, _ in collected.values()]

    for i, (name, src) in enumerate(labels):
        if i in used_labels:
            continue
        renamed = [log for log in logs if log.name == src]
        if not renamed:
            known = sorted({log.name for log in logs})
            raise CompareError(
                f"--label {name}={src}: {src!r} is neither a run source nor the name of a run read "
                f"(runs: {', '.join(known)})"
            )
        for log in renamed:
            log.name = name

    runs = group_logs(logs)
    for run in runs:
        if len(run.origins) > 1:
            notes.append(
                f"run {run.name!r} merges {len(run.origins)} logs in this order (a resumed run; for a step "
                f"logged twice the later record wins; give them different --label names to keep them apart): "
                + ", ".join(run.origins)
            )
    return runs
