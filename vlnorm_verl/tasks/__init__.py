"""The paper's two tasks: CountDown and math (data preparation and rule-based rewards).

Modules
-------
- :mod:`~vlnorm_verl.tasks.prompts` — the exact raw-text prompts of SPEC §4.
- :mod:`~vlnorm_verl.tasks.countdown_expr` — a bounded parser/evaluator for ``+ - * /`` expressions (no ``eval``).
- :mod:`~vlnorm_verl.tasks.countdown_reward` — the CountDown judgment (last ``<answer>`` on the last line).
- :mod:`~vlnorm_verl.tasks.countdown_generator` — an offline generator of solvable instances.
- :mod:`~vlnorm_verl.tasks.countdown_data` — CountDown rows from the generator, the hub or a local copy.
- :mod:`~vlnorm_verl.tasks.math_answer` — ``\\boxed{}`` extraction and presentation-only LaTeX normalisation.
- :mod:`~vlnorm_verl.tasks.math_pool` / :mod:`~vlnorm_verl.tasks.math_worker` — math-verify in worker processes.
- :mod:`~vlnorm_verl.tasks.math_reward` — the math judgment.
- :mod:`~vlnorm_verl.tasks.math_data` — Open-Reasoner-Zero train JSON and eval-set loaders.
- :mod:`~vlnorm_verl.tasks.parquet_io` — verl RLHF parquet schema, atomic writes and validation.
- :mod:`~vlnorm_verl.tasks.prepare` — the ``vlnorm-verl prepare-data`` sub-command.

Importing this package is cheap: no heavy dependency is imported until a module that needs it is used.
"""

COUNTDOWN_SOURCE = "countdown"
MATH_TRAIN_SOURCE = "math_train"
MATH_EVAL_SOURCES = ("math500", "aime24", "amc23", "minerva", "olympiadbench")
MATH_SOURCES = (MATH_TRAIN_SOURCE, *MATH_EVAL_SOURCES)
ALL_SOURCES = (COUNTDOWN_SOURCE, *MATH_SOURCES)

__all__ = ["ALL_SOURCES", "COUNTDOWN_SOURCE", "MATH_EVAL_SOURCES", "MATH_SOURCES", "MATH_TRAIN_SOURCE"]
