"""The paper's runs as Hydra primary configs: one short experiment file per recipe on ``configs/paper_run.yaml``.

See docs/recipes.md.
"""
