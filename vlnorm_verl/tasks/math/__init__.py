"""The paper's math task: Open-Reasoner-Zero training problems and five evaluation sets, judged on ``\\boxed{}``.

Modules
-------
- :mod:`~vlnorm_verl.tasks.math.answer` — ``\\boxed{}`` extraction and presentation-only LaTeX normalisation.
- :mod:`~vlnorm_verl.tasks.math.pool` / :mod:`~vlnorm_verl.tasks.math.worker` — math-verify in worker processes.
- :mod:`~vlnorm_verl.tasks.math.reward` — the judgment (single and parallel batch scorers).
- :mod:`~vlnorm_verl.tasks.math.data` — Open-Reasoner-Zero train JSON and eval-set loaders.
- :mod:`~vlnorm_verl.tasks.math.prepare` — the ``vlnorm-verl prepare-data math`` options and run.

Importing this package only defines :data:`TASK`; the modules above (and math-verify, datasets) load on first use.
"""

from __future__ import annotations

from vlnorm_verl.tasks.base import Task, lazy

MATH_TRAIN_SOURCE = "math_train"
MATH_EVAL_SOURCES = ("math500", "aime24", "amc23", "minerva", "olympiadbench")

TASK = Task(
    name="math",
    summary="competition math with boxed answers",
    data_sources=(MATH_TRAIN_SOURCE, *MATH_EVAL_SOURCES),
    score=lazy("vlnorm_verl.tasks.math.reward:score"),
    score_batch=lazy("vlnorm_verl.tasks.math.reward:score_batch"),
    row_types=lazy("vlnorm_verl.tasks.math.data:row_types"),
    add_prepare_arguments=lazy("vlnorm_verl.tasks.math.prepare:add_arguments"),
    prepare=lazy("vlnorm_verl.tasks.math.prepare:prepare"),
)

__all__ = ["MATH_EVAL_SOURCES", "MATH_TRAIN_SOURCE", "TASK"]
