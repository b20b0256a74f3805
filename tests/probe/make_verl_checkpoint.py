"""Write a real verl FSDP checkpoint of a Hugging Face model directory, on CPU (gloo, world size 1).

Usage: python make_verl_checkpoint.py MODEL_DIR OUT_DIR  (OUT_DIR becomes <...>/global_step_1/actor)

The model is wrapped with torch's FSDP2 ``fully_shard`` on a one-rank CPU mesh and saved by verl's own
``FSDPCheckpointManager.save_checkpoint`` (model only): ``model_world_size_1_rank_0.pt`` (DTensor shards),
``fsdp_config.json`` and ``huggingface/`` (config + tokenizer), exactly what a verl run writes.
"""

from __future__ import annotations

import os
import socket
import sys


def main(src: str, out: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), CUDA_VISIBLE_DEVICES="")
    import torch
    import torch.distributed as dist
    from omegaconf import OmegaConf
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(src)
        fully_shard(model, mesh=init_device_mesh("cpu", (1,), mesh_dim_names=("fsdp",)))
        from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager

        config = OmegaConf.create({"save_contents": ["model"], "load_contents": ["model"]})
        FSDPCheckpointManager(model, None, None, processing_class=tok, checkpoint_config=config).save_checkpoint(
            out, global_step=1
        )
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
