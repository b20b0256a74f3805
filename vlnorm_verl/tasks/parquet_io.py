"""Parquet files in verl 0.9.1's RLHF dataset schema, written atomically, and a validator for them.

Row schema (what ``verl.utils.dataset.rl_dataset.RLHFDataset`` and the reward managers read)::

    data_source : string                         # selects the reward (see vlnorm_verl.rewards)
    prompt      : list<struct<role, content>>    # one user message holding the task's exact prompt (tasks.prompts)
    ability     : string
    reward_model: struct<style: "rule", ground_truth: …>
    extra_info  : struct<split: string, index: int64, …>

The task supplies the type of ``ground_truth`` and its own ``extra_info`` fields
(:attr:`vlnorm_verl.tasks.base.Task.row_types`; e.g. ``struct<target: int64, numbers: list<int64>>`` for CountDown,
a string for math); :func:`rl_schema` builds the full schema from these plain Arrow types (this module knows nothing
of tasks: :meth:`vlnorm_verl.tasks.base.Task.parquet_schema` passes them in). Every file of one task uses the same
Arrow schema, so verl can concatenate several validation files.

Writes go to a temporary file in the destination directory, are flushed and fsynced, and then renamed over the
destination with ``os.replace`` — a reader never sees a partial file and an interrupted run leaves the old file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_PROMPT = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def rl_schema(ground_truth: pa.DataType, extra_info: Sequence[tuple[str, pa.DataType]]) -> pa.Schema:
    """The Arrow schema of a task's rows: the RLHF columns, with ``ground_truth`` as the type of
    ``reward_model.ground_truth`` and the ``extra_info`` fields after the common ``split`` and ``index``."""
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", _PROMPT),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", ground_truth)])),
            ("extra_info", pa.struct([("split", pa.string()), ("index", pa.int64()), *extra_info])),
        ]
    )


REQUIRED_COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")


class DataFileError(ValueError):
    """An input or output data file is missing, empty or not in the expected schema."""


def write_rows(rows: Sequence[dict[str, Any]], path: str | os.PathLike, schema: pa.Schema) -> int:
    """Write ``rows`` to ``path`` atomically in ``schema``; returns the row count. Refuses an empty set."""
    path = Path(path)
    if not rows:
        raise DataFileError(f"refusing to write an empty data set to {path}")
    try:
        table = pa.Table.from_pylist(list(rows), schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, TypeError) as exc:
        raise DataFileError(f"rows for {path} do not match the expected schema: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(table, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return table.num_rows


def validate_rl_parquet(path: str | os.PathLike) -> int:
    """Check that ``path`` is a non-empty parquet file in the RLHF row schema; returns its row count."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file not found: {path} (run `vlnorm-verl prepare-data` first)")
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFileError(f"{path} is not a readable parquet file: {exc}") from exc
    schema = pf.schema_arrow
    missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
    if missing:
        raise DataFileError(f"{path} lacks the columns {missing} of verl's RLHF schema (has {schema.names})")
    prompt_type = schema.field("prompt").type
    if not (pa.types.is_list(prompt_type) and pa.types.is_struct(prompt_type.value_type)):
        raise DataFileError(f"{path}: 'prompt' must be a list of {{role, content}} messages, got {prompt_type}")
    rm_type = schema.field("reward_model").type
    if not pa.types.is_struct(rm_type) or rm_type.get_field_index("ground_truth") < 0:
        raise DataFileError(f"{path}: 'reward_model' must be a struct with 'ground_truth', got {rm_type}")
    if pf.metadata.num_rows == 0:
        raise DataFileError(f"{path} has no rows")
    return pf.metadata.num_rows
