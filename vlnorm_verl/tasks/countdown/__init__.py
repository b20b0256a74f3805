"""The paper's CountDown task: reach a target from 3-4 numbers with ``+ - * /``, each number used once.

Modules
-------
- :mod:`~vlnorm_verl.tasks.countdown.expr` — a bounded parser/evaluator for ``+ - * /`` expressions (no ``eval``).
- :mod:`~vlnorm_verl.tasks.countdown.reward` — the judgment (last ``<answer>`` on the last line).
- :mod:`~vlnorm_verl.tasks.countdown.generator` — an offline generator of solvable instances.
- :mod:`~vlnorm_verl.tasks.countdown.data` — verl rows from the generator, the hub or a local copy.
- :mod:`~vlnorm_verl.tasks.countdown.prepare` — the ``vlnorm-verl prepare-data countdown`` options and run.

Importing this package only defines :data:`TASK`; the modules above load on first use.
"""

from __future__ import annotations

from vlnorm_verl.tasks.base import Task, lazy

COUNTDOWN_SOURCE = "countdown"

TASK = Task(
    name="countdown",
    summary="CountDown arithmetic puzzles",
    data_sources=(COUNTDOWN_SOURCE,),
    score=lazy("vlnorm_verl.tasks.countdown.reward:score"),
    row_types=lazy("vlnorm_verl.tasks.countdown.data:row_types"),
    add_prepare_arguments=lazy("vlnorm_verl.tasks.countdown.prepare:add_arguments"),
    prepare=lazy("vlnorm_verl.tasks.countdown.prepare:prepare"),
)

__all__ = ["COUNTDOWN_SOURCE", "TASK"]
