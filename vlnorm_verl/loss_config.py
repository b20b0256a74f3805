"""Stable path of the VL Norm policy-loss config, the ``_target_`` in users' YAML (a re-export).

The class lives in :mod:`vlnorm_verl.extension.loss_config`.
"""

from vlnorm_verl.extension.loss_config import VLNormPolicyLossConfig

__all__ = ["VLNormPolicyLossConfig"]
