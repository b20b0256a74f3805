"""Math data: the Open-Reasoner-Zero 57k training JSON and the evaluation sets, as verl rows.

Training set (``data_source="math_train"``): ``orz_math_57k_collected.json`` from a local path or a URL
(``http(s)://`` or ``file://``; downloads are cached under ``~/.cache/vlnorm_verl``). Each item is a list whose
``[0]["value"]`` is the question and ``[1]["ground_truth"]["value"]`` the answer.

Evaluation sets (``math500``, ``aime24``, ``amc23``, ``minerva``, ``olympiadbench``): ``<name>.jsonl`` (or
``.json``) files with ``problem`` and ``answer`` fields in a directory (``--eval-dir`` or
``$VLNORM_MATH_EVAL_DIR``), or the hub dataset ``lkevinzc/math-eval`` (the same five sets, one split each).
Answers: a list gives its first element (Minerva), integral floats print as integers (AMC: ``142.0`` → ``142``),
surrounding whitespace is stripped.

Rows: the paper's exact math prompt (:data:`vlnorm_verl.tasks.prompts.MATH_TEMPLATE`) as one user message,
``ability="math"``, ``reward_model={"style": "rule", "ground_truth": <answer string>}``,
``extra_info={"split", "index", "question", "smoke"}``.

Smoke set (:func:`smoke_splits`): a few rows of the local eval copies as a training set (``math_train``) and small
validation files, every row marked ``extra_info.smoke=True`` — for checking the pipeline offline, not for results.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from vlnorm_verl.tasks.base import RowTypes
from vlnorm_verl.tasks.math import MATH_EVAL_SOURCES, MATH_TRAIN_SOURCE
from vlnorm_verl.tasks.math.answer import ground_truth_text
from vlnorm_verl.tasks.parquet_io import DataFileError
from vlnorm_verl.tasks.prompts import math_prompt

ORZ_URL = (
    "https://raw.githubusercontent.com/Open-Reasoner-Zero/Open-Reasoner-Zero/main/data/orz_math_57k_collected.json"
)
HUB_EVAL_DATASET = "lkevinzc/math-eval"
HUB_EVAL_SPLITS = {
    "math500": "math",
    "aime24": "aime",
    "amc23": "amc",
    "minerva": "minerva",
    "olympiadbench": "olympiad_bench",
}
PAPER_EVAL_SETS = ("math500", "aime24", "amc23", "minerva")
CACHE_DIR = Path(os.environ.get("VLNORM_CACHE_DIR", "~/.cache/vlnorm_verl")).expanduser()


SMOKE_TRAIN_SIZE = 64
SMOKE_VAL_SIZE = 8


def row_types() -> RowTypes:
    """Parquet types: ``ground_truth`` = the answer string; ``extra_info`` = ``question`` and the ``smoke`` mark."""
    return RowTypes(ground_truth=pa.string(), extra_info=[("question", pa.string()), ("smoke", pa.bool_())])


def make_row(
    data_source: str, question: str, answer: str, split: str, index: int, smoke: bool = False
) -> dict[str, Any]:
    """One verl row for a math problem."""
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": math_prompt(question)}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"split": split, "index": int(index), "question": question, "smoke": smoke},
    }


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "file://"))


def fetch(source: str) -> Path:
    """A local path for ``source``: the path itself, or a cached download of a URL (atomic, reused)."""
    if not _is_url(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataFileError(f"math training file not found: {path}")
        return path
    name = Path(urllib.request.url2pathname(source.split("?", 1)[0])).name or "download.json"
    target = CACHE_DIR / f"{hashlib.sha256(source.encode()).hexdigest()[:16]}-{name}"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(source, timeout=60) as resp:  # noqa: S310
            while chunk := resp.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DataFileError(
            f"could not download {source} ({exc}); download it yourself and pass --source /path/to/file.json"
        ) from exc
    return target


def load_orz(source: str) -> list[tuple[str, str]]:
    """``(question, answer)`` pairs from the Open-Reasoner-Zero JSON at a path or URL."""
    path = fetch(source)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise DataFileError(f"{source}: expected a JSON list of [question, answer] items, got {type(data).__name__}")
    if not data:
        raise DataFileError(f"{source} holds no items")
    pairs: list[tuple[str, str]] = []
    for i, item in enumerate(data):
        try:
            question = item[0]["value"]
            answer = item[1]["ground_truth"]["value"]
        except (KeyError, IndexError, TypeError) as exc:
            raise DataFileError(
                f"{source}: item {i} is not in the Open-Reasoner-Zero schema "
                "[{'from': 'human', 'value': question}, {'from': 'assistant', 'ground_truth': {'value': answer}}]"
            ) from exc
        if not isinstance(question, str) or not question.strip():
            raise DataFileError(f"{source}: item {i} has an empty or non-string question")
        try:
            pairs.append((question, ground_truth_text(answer)))
        except ValueError as exc:
            raise DataFileError(f"{source}: item {i} has an unusable answer: {exc}") from exc
    return pairs


def _eval_records(records: Iterable[Any], origin: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "problem" not in rec or "answer" not in rec:
            keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
            raise DataFileError(f"{origin}: row {i} needs 'problem' and 'answer' fields, got {keys}")
        problem = rec["problem"]
        if not isinstance(problem, str) or not problem.strip():
            raise DataFileError(f"{origin}: row {i} has an empty or non-string 'problem'")
        try:
            answer = ground_truth_text(rec["answer"])
        except ValueError as exc:
            raise DataFileError(f"{origin}: row {i}: {exc}") from exc
        if not answer:
            raise DataFileError(f"{origin}: row {i} has an empty answer")
        pairs.append((problem, answer))
    if not pairs:
        raise DataFileError(f"{origin} holds no rows")
    return pairs


def eval_set_file(name: str, directory: str | Path) -> Path | None:
    """``<directory>/<name>.jsonl`` or, failing that, ``.json``; None when neither exists."""
    for suffix in (".jsonl", ".json"):
        path = Path(directory).expanduser() / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def load_eval_local(name: str, directory: str | Path) -> list[tuple[str, str]]:
    """``(problem, answer)`` pairs of eval set ``name`` from ``<directory>/<name>.jsonl`` (or ``.json``)."""
    if name not in MATH_EVAL_SOURCES:
        raise ValueError(f"unknown eval set {name!r}; choose from {', '.join(MATH_EVAL_SOURCES)}")
    directory = Path(directory).expanduser()
    path = eval_set_file(name, directory)
    if path is None:
        raise DataFileError(f"eval set {name!r} not found: expected {directory / (name + '.jsonl')} (or .json)")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
    except ValueError as exc:
        raise DataFileError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(records, list):
        raise DataFileError(f"{path} must hold a list of rows")
    return _eval_records(records, str(path))


def load_eval_hub(name: str, dataset: str = HUB_EVAL_DATASET) -> list[tuple[str, str]]:
    """``(problem, answer)`` pairs of eval set ``name`` from the hub (needs internet or the HF cache)."""
    if name not in HUB_EVAL_SPLITS:
        raise ValueError(f"unknown eval set {name!r}; choose from {', '.join(HUB_EVAL_SPLITS)}")
    import datasets

    try:
        ds = datasets.load_dataset(dataset, split=HUB_EVAL_SPLITS[name])
    except Exception as exc:  # noqa: BLE001 - network/cache errors come in many types
        raise DataFileError(
            f"could not load {dataset}[{HUB_EVAL_SPLITS[name]}] from the hub ({type(exc).__name__}: {exc}); "
            "use --eval-dir with local JSONL copies"
        ) from exc
    return _eval_records(ds, f"{dataset}[{HUB_EVAL_SPLITS[name]}]")


def train_rows(pairs: list[tuple[str, str]], limit: int | None = None) -> list[dict[str, Any]]:
    """Training rows (``math_train``) from ``(question, answer)`` pairs, optionally the first ``limit``."""
    chosen = pairs if limit is None else pairs[:limit]
    return [make_row(MATH_TRAIN_SOURCE, q, a, "train", i) for i, (q, a) in enumerate(chosen)]


def eval_rows(name: str, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Evaluation rows of set ``name`` (its data source) from ``(problem, answer)`` pairs."""
    return [make_row(name, q, a, "test", i) for i, (q, a) in enumerate(pairs)]


def smoke_splits(
    loaded: dict[str, list[tuple[str, str]]], train_size: int = SMOKE_TRAIN_SIZE, val_size: int = SMOKE_VAL_SIZE
) -> dict[str, list[dict[str, Any]]]:
    """The smoke set from eval pairs per set: ``{"train": rows, <set>: rows, ...}``, every row marked smoke.

    Validation: the first ``val_size`` pairs of each set, as that set (its data source). Training: up to
    ``train_size`` of the remaining pairs, taken from the sets in turn, as ``math_train``. No pair is in both.
    """
    if train_size < 1 or val_size < 1:
        raise ValueError(f"smoke sizes must be >= 1, got train {train_size} and validation {val_size}")
    splits = {
        name: [make_row(name, q, a, "test", i, smoke=True) for i, (q, a) in enumerate(pairs[:val_size])]
        for name, pairs in loaded.items()
    }
    rest = [pairs[val_size:] for pairs in loaded.values()]
    train: list[tuple[str, str]] = []
    for depth in range(max((len(r) for r in rest), default=0)):
        train.extend(r[depth] for r in rest if depth < len(r))
    if not train:
        raise DataFileError(f"the eval sets hold no rows beyond the {val_size} kept for validation per set")
    splits["train"] = [
        make_row(MATH_TRAIN_SOURCE, q, a, "train", i, smoke=True) for i, (q, a) in enumerate(train[:train_size])
    ]
    return splits
