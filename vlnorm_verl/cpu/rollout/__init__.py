"""The ``hf`` rollout backend: verl token-in/token-out generation with plain Hugging Face transformers.

:mod:`~vlnorm_verl.cpu.rollout.hf_engine` is the batched generation core (pure torch/transformers, no verl, no Ray).
"""
