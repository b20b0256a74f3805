"""CountDown data: verl rows from the offline generator, the hub dataset or a local copy of it.

Sources
-------
- ``generate`` (default, offline): :func:`vlnorm_verl.tasks.countdown.generator.generate_instances`; the
  reference solution of each row is kept in ``extra_info.solution``.
- ``hub``: ``Jiayi-Pan/Countdown-Tasks-3to4`` through ``datasets`` (needs internet); the paper's split is rows
  ``0 .. train_size-1`` for training and the next ``test_size`` rows for testing (32,768 / 1,024).
- a local path: a ``.parquet``/``.jsonl``/``.json`` file, or a directory holding such files (e.g. a
  ``huggingface-cli download`` of the dataset, ``data/train-00000-of-00001.parquet``), in the hub schema
  ``target: int``, ``nums: list[int]``; split as for ``hub``.

Rows: ``data_source="countdown"``, the paper's exact prompt as one user message, ``ability="math"`` (as the
authors), ``reward_model={"style": "rule", "ground_truth": {"target": t, "numbers": [...]}}``,
``extra_info={"split", "index", "solution"}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from vlnorm_verl.tasks.base import RowTypes
from vlnorm_verl.tasks.countdown import COUNTDOWN_SOURCE
from vlnorm_verl.tasks.countdown.generator import GeneratorSpec, generate_instances
from vlnorm_verl.tasks.parquet_io import DataFileError
from vlnorm_verl.tasks.prompts import countdown_prompt

HUB_DATASET = "Jiayi-Pan/Countdown-Tasks-3to4"
DEFAULT_TRAIN_SIZE = 32_768
DEFAULT_TEST_SIZE = 1_024


def row_types() -> RowTypes:
    """Parquet types: ``ground_truth`` = ``{target, numbers}``, ``extra_info.solution`` = the reference solution."""
    return RowTypes(
        ground_truth=pa.struct([("target", pa.int64()), ("numbers", pa.list_(pa.int64()))]),
        extra_info=[("solution", pa.string())],
    )


def make_row(numbers: Sequence[int], target: int, split: str, index: int, solution: str | None) -> dict[str, Any]:
    """One verl row for a CountDown instance."""
    nums = [int(n) for n in numbers]
    return {
        "data_source": COUNTDOWN_SOURCE,
        "prompt": [{"role": "user", "content": countdown_prompt(nums, int(target))}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": {"target": int(target), "numbers": nums}},
        "extra_info": {"split": split, "index": int(index), "solution": solution},
    }


def _split_rows(
    items: Sequence[tuple[Sequence[int], int, str | None]], train_size: int, test_size: int
) -> dict[str, list[dict[str, Any]]]:
    train = [make_row(n, t, "train", i, s) for i, (n, t, s) in enumerate(items[:train_size])]
    test = [make_row(n, t, "test", i, s) for i, (n, t, s) in enumerate(items[train_size : train_size + test_size])]
    return {"train": train, "test": test}


def _check_sizes(train_size: int, test_size: int) -> None:
    if train_size < 1 or test_size < 1:
        raise ValueError(f"train and test sizes must be >= 1, got {train_size} and {test_size}")


def generated_rows(
    train_size: int = DEFAULT_TRAIN_SIZE,
    test_size: int = DEFAULT_TEST_SIZE,
    seed: int = 0,
    spec: GeneratorSpec | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Train/test rows from the generator: the first ``train_size`` distinct instances, then ``test_size``."""
    _check_sizes(train_size, test_size)
    instances = generate_instances(train_size + test_size, seed=seed, spec=spec, workers=workers, progress=progress)
    return _split_rows([(x.numbers, x.target, x.solution) for x in instances], train_size, test_size)


def _validated_records(records: Iterable[Any], origin: str) -> list[tuple[list[int], int, None]]:
    out: list[tuple[list[int], int, None]] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "target" not in rec or "nums" not in rec:
            keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
            raise DataFileError(
                f"{origin}: row {i} is not in the hub schema (needs 'target' and 'nums'; got {keys}). "
                f"Expected a copy of {HUB_DATASET}."
            )
        nums, target = rec["nums"], rec["target"]
        if hasattr(nums, "tolist"):
            nums = nums.tolist()
        try:
            if isinstance(nums, str | bytes) or not nums:
                raise TypeError
            nums_i = [int(n) for n in nums]
            target_i = int(target)
            if any(float(a) != float(b) for a, b in zip(nums_i, nums, strict=True)) or float(target_i) != float(target):
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise DataFileError(
                f"{origin}: row {i} needs integer 'target' and a non-empty integer list 'nums', "
                f"got target={target!r}, nums={nums!r}"
            ) from exc
        out.append((nums_i, target_i, None))
    return out


def _read_records(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for corrupt files
            raise DataFileError(f"{path} is not a readable parquet file: {exc}") from exc
    if suffix == ".jsonl":
        rows = []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as exc:
                        raise DataFileError(f"{path}:{lineno} is not valid JSON: {exc}") from exc
        return rows
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise DataFileError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(data, list):
            raise DataFileError(f"{path} must hold a JSON list of rows, got {type(data).__name__}")
        return data
    raise DataFileError(f"{path}: unsupported file type {suffix!r} (use .parquet, .jsonl or .json)")


def load_local_copy(path: str | Path) -> list[tuple[list[int], int, None]]:
    """Records ``(nums, target, None)`` from a local copy of the hub dataset (file or directory), in order."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataFileError(f"CountDown source not found: {path} (use --source generate to build data offline)")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".parquet", ".jsonl", ".json"))
        if not files:
            raise DataFileError(f"{path} holds no .parquet/.jsonl/.json files of {HUB_DATASET}")
    else:
        files = [path]
    records: list[tuple[list[int], int, None]] = []
    for f in files:
        records.extend(_validated_records(_read_records(f), str(f)))
    if not records:
        raise DataFileError(f"{path} holds no rows")
    return records


def load_hub_records(dataset: str = HUB_DATASET) -> list[tuple[list[int], int, None]]:
    """Records from the hub dataset's ``train`` split via ``datasets`` (needs internet or the HF cache)."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a verl dependency
        raise DataFileError("the 'datasets' package is needed for --source hub") from exc
    try:
        ds = datasets.load_dataset(dataset, split="train")
    except Exception as exc:  # noqa: BLE001 - network/cache errors come in many types
        raise DataFileError(
            f"could not load {dataset} from the hub ({type(exc).__name__}: {exc}); "
            "use --source generate (offline) or --source PATH to a local copy"
        ) from exc
    return _validated_records(ds, dataset)


def records_rows(
    records: Sequence[tuple[list[int], int, None]], train_size: int, test_size: int, origin: str
) -> dict[str, list[dict[str, Any]]]:
    """The paper's split of hub-ordered records: the first ``train_size`` rows, then ``test_size`` rows."""
    _check_sizes(train_size, test_size)
    need = train_size + test_size
    if len(records) < need:
        raise DataFileError(
            f"{origin} has {len(records)} rows but train_size + test_size = {need}; "
            "lower --train-size/--test-size or use the full dataset"
        )
    return _split_rows(records, train_size, test_size)
