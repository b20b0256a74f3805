"""CountDown prompts for the quickstart, read from the parquet files ``vlnorm-verl prepare-data countdown`` writes.

A row's prompt is its single user message, fed as raw text (the identity chat template of
``configs/task/countdown.yaml``); the ground truth is ``reward_model.ground_truth`` and the warm-start target
is the generator's reference solution ``extra_info.solution``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlnorm_verl.tasks import COUNTDOWN_SOURCE


@dataclass(frozen=True)
class Prompt:
    uid: str
    text: str
    ids: tuple[int, ...]
    ground_truth: dict[str, Any]
    solution: str | None

    def warmstart_response(self) -> str:
        """The supervised target: the reference solution with its value as the thought, then the answer line."""
        if not self.solution:
            raise ValueError(
                f"row {self.uid} has no reference solution (extra_info.solution); the quickstart warm-start needs "
                "rows from the offline generator: vlnorm-verl prepare-data countdown --source generate"
            )
        target = self.ground_truth["target"]
        return f" {self.solution} = {target} </think>\n<answer> {self.solution} </answer>"


def load_prompts(path: str | Path, limit: int, tokenizer: Any, split: str) -> list[Prompt]:
    """The first ``limit`` CountDown rows of ``path``, tokenized."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: prepare the data first, e.g. "
            f"`vlnorm-verl prepare-data countdown --out {path.parent} --train-size 256 --test-size 64`, "
            "or set VLNORM_DATA_DIR / data.train_files / data.val_files"
        )
    if limit < 1:
        raise ValueError(f"need at least one {split} prompt, got {limit}")
    rows = pq.read_table(path).slice(0, limit).to_pylist()
    out = []
    for i, row in enumerate(rows):
        if row.get("data_source") != COUNTDOWN_SOURCE:
            raise ValueError(f"{path} row {i}: data_source {row.get('data_source')!r}, expected 'countdown'")
        text = "".join(m["content"] for m in row["prompt"])
        gt = row["reward_model"]["ground_truth"]
        extra = row.get("extra_info") or {}
        ids = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
        out.append(
            Prompt(
                uid=f"{split}-{extra.get('index', i)}",
                text=text,
                ids=ids,
                ground_truth={"target": int(gt["target"]), "numbers": [int(n) for n in gt["numbers"]]},
                solution=extra.get("solution"),
            )
        )
    if len(out) < limit:
        raise ValueError(f"{path} has {len(out)} rows, fewer than the {limit} the quickstart asks for")
    return out
