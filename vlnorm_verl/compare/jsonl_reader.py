"""Reader for verl's ``file`` logger (``trainer.logger=[...,file]``).

Format (verl 0.9.1, ``verl/utils/tracking.py::FileLogger``): one JSON object per line,
``{"step": <int>, "data": {<metric>: <value>, ...}}``, written with orjson, which writes NaN and ±inf
as ``null``. The file is ``$VERL_FILE_LOGGER_PATH`` or
``$VERL_FILE_LOGGER_ROOT/<trainer.project_name>/<trainer.experiment_name>.jsonl`` (root defaults to
the working directory); verl reopens it with mode ``wb`` on every launch, so a resumed run overwrites
it unless the earlier file was moved away (label both files alike to merge them).

The run is named after the file's stem (the experiment name). Non-numeric values are ignored, a line
that is not valid JSON is an error naming the file and line, except a truncated last line (a run that
died mid-write), which is skipped with a warning — or silently with ``live=True``, for a log a running
trainer is still writing.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from vlnorm_verl.compare.records import CompareError, Row, RunLog, as_step, to_float


def read_jsonl(path: str | Path, live: bool = False) -> RunLog:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CompareError(f"cannot read {path}: {exc}") from exc
    rows: list[Row] = []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{path}:{i + 1}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == last:
                if live:
                    continue
                warnings.warn(f"{where}: skipping a truncated last line ({exc.msg})", stacklevel=2)
                continue
            raise CompareError(f"{where}: not a JSON line ({exc.msg}); is this a verl file-logger log?") from exc
        if not isinstance(obj, dict) or "step" not in obj or not isinstance(obj.get("data"), dict):
            raise CompareError(
                f'{where}: expected verl\'s file-logger line {{"step": N, "data": {{...}}}}, got {line[:80]!r}'
            )
        step = as_step(obj["step"], where)
        row = {}
        for key, value in obj["data"].items():
            number = to_float(value)
            if number is not None:
                row[str(key)] = number
        rows.append((step, row))
    return RunLog(name=path.stem, origin=str(path), rows=rows)
