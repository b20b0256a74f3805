"""Supervised warm-start of the tiny CPU policy (verl's SFT trainer on CPU), cached by content.

- :mod:`~.traces`: the targets, a search trace of 0 .. k rejected tries before the reference solution, so that
  response lengths vary several-fold (VL Norm has nothing to reweight when every response has one length);
- :mod:`~.sft_cpu`: verl's ``SFTTrainer`` on one gloo rank on the CPU;
- :mod:`~.sft`: :func:`warm_start`, the cached model directory.
"""

from vlnorm_verl.warmstart.sft import WarmStart, WarmStartError, WarmStartSettings, warm_start

__all__ = ["WarmStart", "WarmStartError", "WarmStartSettings", "warm_start"]
