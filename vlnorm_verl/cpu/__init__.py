"""verl's real trainer on a machine without a GPU (``cluster=cpu``).

- :mod:`.platform` - the ``cpu`` platform for verl's registry and the (guarded) process-group fix.
- :mod:`.precision` - fp32 compute in verl's FSDP engine (its default bf16 is emulated on many CPUs).
- :mod:`.run` - what a CPU run cannot do, refused at start-up, and the driver's set-up (Hydra callback).
- :mod:`.rollout` - the ``hf`` rollout backend: Hugging Face generate behind verl's rollout server API.
- :mod:`.tiny_model` / :mod:`.tiny_tokenizer` - ``model=tiny``: a cached random Qwen2 and its word tokenizer.
"""
