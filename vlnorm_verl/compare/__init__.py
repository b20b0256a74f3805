"""Compare training runs (VL Norm vs DAPO baselines) from wandb or verl's local logs.

Pipeline: readers (:mod:`.jsonl_reader` for verl's ``file`` logger, :mod:`.wandb_log` for wandb's
offline transaction logs, :mod:`.wandb_online` for the wandb API) produce
:class:`~vlnorm_verl.compare.records.RunLog` records; :mod:`.sources` names and merges them into runs
(resumed runs: the later record for a step wins); :mod:`.metrics` computes peak, final, AUC,
steps-to-threshold and speedup; :mod:`.output` renders Markdown/JSON; :mod:`.plots` writes PNGs;
:mod:`.publish` saves a wandb report; :mod:`.cli` is the ``vlnorm-verl compare`` sub-command.
"""
