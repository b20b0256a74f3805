"""Run one actor update of verl 0.9.1's real code on CPU and capture the full gradient of every optimizer step.

What runs is verl's own actor path, unmodified:

- the config is verl's ``ppo_trainer`` composed with Hydra overrides (``vlnorm_verl.launch.compose``, the same
  composition ``python -m verl.trainer.main_ppo`` does) and resolved, as the v1 TaskRunner does;
- each data-parallel rank is a spawned process (gloo, 127.0.0.1) that builds
  ``verl.workers.engine_workers.ActorRolloutRefWorker(role="actor")`` and calls its ``init_model``: the
  actor config comes from verl's ``omega_conf_to_dataclass``, the loss is
  ``functools.partial(ppo_loss, config=actor_config)``, the engine is verl's FSDP2 ``FSDPEngineWithLMHead``
  inside a ``TrainingWorker``;
- the rows go to ``update_actor`` as the v1 trainer sends them: the batch is split across ranks with
  transfer_queue's ``BatchMeta.chunk`` (what verl's ``make_nd_compute_dataproto_dispatch_fn`` applies to
  a ``KVBatchMeta``), each rank receives a no-padding TensorDict (jagged ``prompts``, ``responses``,
  ``response_mask``, ``loss_mask``, ``input_ids``, ``position_ids``, ``old_log_probs``, ``advantages``,
  ``returns``, optional ``ref_log_prob``; per-row ``uid``) with ``PPOTrainer._update_actor``'s batch-level
  ``extra_info`` attached as non-tensor data (``global_batch_size`` = ``mini_batch_size`` =
  ``ppo_mini_batch_size * rollout.n``, ``epochs``, ``seed``, ``dataloader_kwargs``, ``temperature``,
  ``calculate_entropy``, ``distillation_use_topk``, ``distillation_only``).

The only additions are observers: an optimizer step pre-hook that all-gathers every parameter's
gradient (``DTensor.full_tensor``) right before ``optimizer.step`` (clipping is made a no-op by a
huge ``clip_grad``; ``lr = 0`` keeps the parameters fixed, so every mini-batch's gradient is taken at
the same parameters), and an instance-level wrapper of ``engine.train_batch`` that records which rows
each rank's mini-batch held. The loss function object verl builds is left exactly as verl built it.

CPU settings (overridable): ``actor.strategy=fsdp2``, fp32 everywhere (``fsdp_config.model_dtype=fp32``,
``fsdp_config.mixed_precision`` param/reduce/buffer fp32 -> no autocast), eager attention (verl's
default is flash_attention_2), no torch.compile, no gradient checkpointing, no tokenizer (the model
directory holds none). ``use_remove_padding`` keeps verl's default (true); both values work on CPU.

Process model: :class:`EngineHarness` spawns its ranks once and runs any number of configurations in
them (one process group per world size); :func:`run_actor_update` is the one-shot form.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import gc
import os
import queue
import shutil
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cpu_platform
import numpy as np
import torch
import torch.multiprocessing as mp

from vlnorm_verl.cpu.tiny_model import random_qwen2

# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


@dataclass
class MiniBatchData:
    """One rollout batch: the full set of rows verl would hand to ``update_actor``, in dispatch order.

    Row order matters exactly as in verl: rank r receives the r-th contiguous chunk, and each rank cuts
    its chunk into contiguous mini-batches (``shuffle=false``). The v1 trainer reorders rows for
    sequence-length balance (``_balance_batch``) *before* this point; pass rows in post-balance order.

    ``response_mask`` defaults to all ones. verl's own padding rows (``upsample_batch_to_divisible_size``)
    have one EOS response token with mask 0; a length-0 response is also accepted.
    """

    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    old_log_probs: list[list[float]]
    advantages: list[list[float]]
    ref_log_probs: list[list[float]] | None = None
    response_mask: list[list[int]] | None = None

    def __post_init__(self) -> None:
        n = len(self.prompt_ids)
        if n == 0:
            raise ValueError("MiniBatchData needs at least one row")
        per_token = {
            "response_ids": self.response_ids,
            "old_log_probs": self.old_log_probs,
            "advantages": self.advantages,
        }
        if self.ref_log_probs is not None:
            per_token["ref_log_probs"] = self.ref_log_probs
        if self.response_mask is not None:
            per_token["response_mask"] = self.response_mask
        for name, rows in per_token.items():
            if len(rows) != n:
                raise ValueError(f"MiniBatchData.{name} has {len(rows)} rows but prompt_ids has {n}; give one per row")
        for i in range(n):
            if len(self.prompt_ids[i]) == 0:
                raise ValueError(f"row {i}: empty prompt; verl requires prompt length > 0 (no_padding_2_padding)")
            length = len(self.response_ids[i])
            for name, rows in per_token.items():
                if len(rows[i]) != length:
                    raise ValueError(
                        f"row {i}: {name} has {len(rows[i])} entries but response_ids has {length}; "
                        "give one value per response token"
                    )

    @property
    def num_rows(self) -> int:
        return len(self.prompt_ids)

    def mask(self, row: int) -> list[int]:
        if self.response_mask is None:
            return [1] * len(self.response_ids[row])
        return list(self.response_mask[row])


# --------------------------------------------------------------------------------------------------
# The tiny model
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TinyQwen2:
    """A randomly initialised Qwen2 causal LM, fully determined by these fields (init seeded by ``seed``)."""

    vocab_size: int = 64
    hidden_size: int = 32
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512
    initializer_range: float = 0.1
    seed: int = 0


DEFAULT_MODEL = TinyQwen2()
_MODEL_DIRS: dict[TinyQwen2, str] = {}


def update_extra_info(cfg: Any) -> dict[str, Any]:
    """The batch-level ``extra_info`` of verl 0.9.1's ``PPOTrainer._update_actor`` (no distillation)."""
    actor = cfg.actor_rollout_ref.actor
    rollout = cfg.actor_rollout_ref.rollout
    mini = int(actor.ppo_mini_batch_size) * int(rollout.n)
    return {
        "calculate_entropy": bool(actor.calculate_entropy or actor.entropy_coeff != 0.0),
        "distillation_use_topk": False,
        "distillation_only": False,
        "global_batch_size": mini,
        "mini_batch_size": mini,
        "epochs": int(actor.ppo_epochs),
        "seed": int(actor.data_loader_seed),
        "dataloader_kwargs": {"shuffle": bool(actor.shuffle)},
        "temperature": float(rollout.temperature),
    }


def model_dir(spec: TinyQwen2 = DEFAULT_MODEL) -> str:
    """Directory holding ``spec``'s weights (created once per process, removed at exit).

    verl's engine loads the model with ``from_pretrained`` on rank 0 and broadcasts it, and the
    reference loads the same files, so engine and reference start from bit-identical parameters.
    """
    path = _MODEL_DIRS.get(spec)
    if path is not None and Path(path).is_dir():
        return path
    path = tempfile.mkdtemp(prefix="vlnorm-tiny-qwen2-")
    atexit.register(shutil.rmtree, path, True)
    fields = {k: v for k, v in asdict(spec).items() if k != "seed"}
    model = random_qwen2(spec.seed, **fields, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    model.save_pretrained(path)
    _MODEL_DIRS[spec] = path
    return path


def load_tiny_model(spec: TinyQwen2 = DEFAULT_MODEL) -> torch.nn.Module:
    """The tiny model as a plain fp32 PyTorch module (eager attention), same weights as the engine's."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir(spec), dtype=torch.float32, attn_implementation="eager")
    model.train()
    return model


def reference_token_log_probs(
    data: MiniBatchData, spec: TinyQwen2 = DEFAULT_MODEL, temperature: float = 1.0
) -> tuple[torch.nn.Module, list[torch.Tensor]]:
    """A fresh plain-PyTorch copy of the model and, per row, log p(response token | prefix) (requires grad).

    Each row is run alone (no padding, no packing), logits divided by ``temperature`` as verl does.
    Row i's tensor has ``len(data.response_ids[i])`` entries (masked tokens included).
    """
    model = load_tiny_model(spec)
    out: list[torch.Tensor] = []
    for prompt, response in zip(data.prompt_ids, data.response_ids, strict=True):
        ids = torch.tensor([list(prompt) + list(response)], dtype=torch.long)
        logits = model(input_ids=ids, use_cache=False).logits[0].float() / temperature
        p, r = len(prompt), len(response)
        logp = torch.log_softmax(logits[p - 1 : p + r - 1], dim=-1)
        out.append(logp.gather(-1, torch.tensor(response, dtype=torch.long).view(-1, 1)).view(-1))
    return model, out


# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------

#: Hydra overrides that make verl's actor run on CPU in fp32 with fixed parameters; applied before the caller's.
CPU_OVERRIDES: tuple[str, ...] = (
    "actor_rollout_ref.actor.strategy=fsdp2",
    "actor_rollout_ref.actor.fsdp_config.model_dtype=fp32",
    "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    "actor_rollout_ref.actor.fsdp_config.use_torch_compile=false",
    "actor_rollout_ref.actor.use_torch_compile=false",
    "actor_rollout_ref.actor.optim.lr=0.0",
    "actor_rollout_ref.actor.optim.clip_grad=1.0e30",
    "actor_rollout_ref.model.enable_gradient_checkpointing=false",
    "+actor_rollout_ref.model.override_config.attn_implementation=eager",
    "+actor_rollout_ref.model.load_tokenizer=false",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=1",
    "trainer.device=cpu",
    "trainer.nnodes=1",
)


def compose_actor_config(overrides: Sequence[str], world_size: int = 1, spec: TinyQwen2 = DEFAULT_MODEL):
    """verl's ``ppo_trainer`` config composed with :data:`CPU_OVERRIDES`, the model path, then ``overrides``."""
    from omegaconf import OmegaConf

    from vlnorm_verl.launch.compose import compose_config

    full = [
        *CPU_OVERRIDES,
        f"trainer.n_gpus_per_node={world_size}",
        f"actor_rollout_ref.model.path={model_dir(spec)}",
        *overrides,
    ]
    cfg = compose_config("ppo_trainer", full)
    OmegaConf.resolve(cfg)  # as verl's TaskRunnerV1.run does before building workers
    return cfg


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass
class ActorUpdateResult:
    """What one ``update_actor`` call did.

    ``grads[k]``: {parameter name: full fp32 gradient} right before optimizer step k.
    ``step_rows[k]``: sorted indices (into the caller's rows) of every row in step k, over all ranks.
    ``rank_rows[k][r]``: the rows rank r held in step k, in verl's order.
    ``micro_batches[k][r]``: the ``input_ids`` shape of each forward pass (micro-batch) rank r ran in step k:
    ``(1, tokens)`` when packed (``use_remove_padding``), ``(rows, longest)`` when padded.
    ``metrics``: verl's ``update_actor`` metrics (rank 0). ``plugins``: ``verl.plugins`` entry points and
    whether each one's module was imported in the rank processes. ``wall_s``: seconds for the call.
    """

    grads: list[dict[str, torch.Tensor]]
    step_rows: list[list[int]]
    rank_rows: list[list[list[int]]]
    micro_batches: list[list[list[tuple[int, ...]]]]
    metrics: dict[str, Any]
    plugins: dict[str, bool]
    wall_s: float


class HarnessError(RuntimeError):
    """A rank failed; the message carries its traceback."""


# --------------------------------------------------------------------------------------------------
# Rank side (runs in the spawned processes)
# --------------------------------------------------------------------------------------------------


def _nested(rows: Sequence[Sequence[float | int]], dtype: torch.dtype) -> torch.Tensor:
    return torch.nested.as_nested_tensor([torch.tensor(list(r), dtype=dtype) for r in rows], layout=torch.jagged)


def _rank_tensordict(data: MiniBatchData, rows: list[int], extra_info: dict[str, Any]):
    """This rank's rows as the TensorDict verl's tqbridge hands to ``update_actor``."""
    from tensordict import NonTensorData, NonTensorStack, TensorDict
    from verl.utils import tensordict_utils as tu

    prompts = [data.prompt_ids[i] for i in rows]
    responses = [data.response_ids[i] for i in rows]
    masks = [data.mask(i) for i in rows]
    fields = {
        "prompts": _nested(prompts, torch.int64),
        "responses": _nested(responses, torch.int64),
        "response_mask": _nested(masks, torch.int64),
        "loss_mask": _nested(masks, torch.int64),
        "input_ids": _nested([list(p) + list(r) for p, r in zip(prompts, responses, strict=True)], torch.int64),
        "position_ids": _nested([range(len(p) + len(r)) for p, r in zip(prompts, responses, strict=True)], torch.int64),
        "old_log_probs": _nested([data.old_log_probs[i] for i in rows], torch.float32),
        "advantages": _nested([data.advantages[i] for i in rows], torch.float32),
        "returns": _nested([data.advantages[i] for i in rows], torch.float32),
    }
    if data.ref_log_probs is not None:
        fields["ref_log_prob"] = _nested([data.ref_log_probs[i] for i in rows], torch.float32)
    td = TensorDict(fields, batch_size=[len(rows)])
    td["uid"] = NonTensorStack(*[f"row{i}" for i in rows])
    # as verl.utils.transferqueue_utils._async_meta_to_realdata attaches the meta's extra_info
    for key, val in copy.deepcopy(extra_info).items():
        if isinstance(val, NonTensorData | NonTensorStack):
            td[key] = val
        else:
            tu.assign_non_tensor_data(tensor_dict=td, key=key, val=val)
    return td


def _dispatch_rows(num_rows: int, dp_size: int, dp_rank: int, extra_info: dict[str, Any]) -> list[int]:
    """Row indices verl's dispatch gives ``dp_rank``: ``BatchMeta.chunk`` of the trainer's batch."""
    from transfer_queue import BatchMeta

    meta = BatchMeta(
        global_indexes=list(range(num_rows)),
        partition_ids=["train"] * num_rows,
        extra_info=extra_info,
        custom_meta=[{} for _ in range(num_rows)],
        _custom_backend_meta=[{} for _ in range(num_rows)],
    )
    return list(meta.chunk(dp_size)[dp_rank].global_indexes)


def _row_ids(td) -> list[int]:
    uid = td.get("uid")
    values = uid.tolist() if hasattr(uid, "tolist") else list(uid)
    return [int(str(v).removeprefix("row")) for v in values]


def _full_grads(module: torch.nn.Module) -> dict[str, np.ndarray]:
    out = {}
    for name, param in module.named_parameters():
        grad = param.grad
        if grad is None:
            continue
        if hasattr(grad, "full_tensor"):
            grad = grad.full_tensor()  # collective: every rank runs this hook in the same order
        out[name] = grad.detach().to(torch.float32).cpu().numpy().copy()
    return out


def _plugin_status() -> dict[str, bool]:
    from importlib.metadata import entry_points

    return {ep.name: ep.module in sys.modules for ep in entry_points(group="verl.plugins")}


def _run_job(rank: int, world_size: int, job: dict[str, Any]) -> dict[str, Any]:
    from omegaconf import OmegaConf
    from verl.workers.engine_workers import ActorRolloutRefWorker

    cfg = OmegaConf.create(job["config_yaml"])
    data: MiniBatchData = job["data"]
    extra_info = update_extra_info(cfg)

    worker = ActorRolloutRefWorker(config=cfg.actor_rollout_ref, role="actor")
    worker.init_model()
    engine = worker.actor.engine
    dp_rank, dp_size = engine.get_data_parallel_rank(), engine.get_data_parallel_size()

    grads: list[dict[str, np.ndarray]] = []
    rows_per_step: list[list[int]] = []
    shapes_per_step: list[list[tuple[int, ...]]] = []
    module = engine.module

    def before_forward(mod: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        shapes_per_step[-1].append(tuple(ids.shape) if ids is not None else ())

    def recording_train_batch(mini_batch, *args, **kwargs):
        rows_per_step.append(_row_ids(mini_batch))
        shapes_per_step.append([])
        return original_train_batch(mini_batch, *args, **kwargs)

    original_train_batch = engine.train_batch
    engine.train_batch = recording_train_batch  # instance attribute: observes, passes everything through
    hooks = [
        engine.optimizer.register_step_pre_hook(lambda opt, args, kwargs: grads.append(_full_grads(module))),
        module.register_forward_pre_hook(before_forward, with_kwargs=True),
    ]
    try:
        rows = _dispatch_rows(data.num_rows, dp_size, dp_rank, extra_info)
        output = worker.update_actor(_rank_tensordict(data, rows, extra_info))
    finally:
        for hook in hooks:
            hook.remove()
        del engine.train_batch
    if len(grads) != len(rows_per_step):
        raise RuntimeError(
            f"captured {len(grads)} optimizer steps for {len(rows_per_step)} mini-batches "
            "(verl skips optimizer.step when the gradient norm is not finite)"
        )
    metrics = {}
    if output is not None and "metrics" in output.keys():
        metrics = dict(output["metrics"])
    result = {
        "rows": rows_per_step,
        "shapes": shapes_per_step,
        "grads": grads if rank == 0 else None,
        "metrics": metrics if rank == 0 else None,
    }
    if rank == 0:
        result["plugins"] = _plugin_status()
    return result


def _rank_main(rank: int, world_size: int, port: int, jobs: Any, results: Any) -> None:
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    cpu_platform.apply_env()
    torch.set_num_threads(1)
    try:
        cpu_platform.register()
        import verl  # noqa: F401  (loads every verl.plugins entry point, as in any verl process)
        from verl.plugin.platform import get_platform

        platform = get_platform()
        if not isinstance(platform, cpu_platform.PlatformCPU):
            raise RuntimeError(
                f"verl resolved its platform to {type(platform).__name__} before the CPU platform was registered "
                "(a verl.plugins entry point called get_platform() at import time?)"
            )
        # verl would init "cpu:gloo,cpu:gloo" (duplicate device type, rejected by torch); gloo alone is what CPU needs.
        torch.distributed.init_process_group(backend="gloo", rank=rank, world_size=world_size)
    except BaseException:
        results.put((None, rank, False, traceback.format_exc()))
        return
    try:
        while True:
            job = jobs.get()
            if job is None:
                break
            job_id = job["id"]
            try:
                reply = _run_job(rank, world_size, job)
                gc.collect()  # drop the finished job's worker, engine and model before the next one
                results.put((job_id, rank, True, reply))
            except BaseException:
                results.put((job_id, rank, False, traceback.format_exc()))
                break  # the process group may be out of step now; the parent restarts the ranks
    finally:
        with contextlib.suppress(Exception):
            torch.distributed.destroy_process_group()
        # Flush the replies, then skip interpreter teardown (seconds with torch + transformers loaded).
        results.close()
        results.join_thread()
        os._exit(0)


# --------------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: Environment of the rank processes (inherited at spawn, before torch is imported there).
RANK_ENV: dict[str, str] = {
    **cpu_platform.ENV,
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "CUDA_VISIBLE_DEVICES": "",
    "VERL_LOGGING_LEVEL": "WARN",
}


@dataclass
class EngineHarness:
    """``world_size`` spawned verl actor ranks that run one configuration after another.

    Use as a context manager (or call :meth:`close`); the ranks exit when closed, when the parent exits,
    or after a failed job (the next job starts fresh ranks).
    """

    world_size: int = 1
    spec: TinyQwen2 = DEFAULT_MODEL
    job_timeout_s: float = 600.0
    _procs: list[Any] = field(default_factory=list, repr=False)
    _jobs: list[Any] = field(default_factory=list, repr=False)
    _results: Any = field(default=None, repr=False)
    _next_id: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {self.world_size}")

    def __enter__(self) -> EngineHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        port = _free_port()
        self._results = ctx.Queue()
        self._jobs = [ctx.Queue() for _ in range(self.world_size)]
        with _env(RANK_ENV):
            for rank in range(self.world_size):
                proc = ctx.Process(
                    target=_rank_main,
                    args=(rank, self.world_size, port, self._jobs[rank], self._results),
                    daemon=True,
                    name=f"verl-cpu-rank{rank}",
                )
                proc.start()
                self._procs.append(proc)
        atexit.register(self.close)

    def close(self) -> None:
        """Stop the rank processes (those this harness started)."""
        for q in self._jobs:
            with contextlib.suppress(Exception):
                q.put(None)
        for proc in self._procs:
            proc.join(timeout=10)
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        self._procs, self._jobs = [], []
        if self._results is not None:
            with contextlib.suppress(Exception):
                self._results.close()
        self._results = None

    def update(self, data: MiniBatchData, overrides: Sequence[str] = ()) -> ActorUpdateResult:
        """Run one ``update_actor`` with verl's ``ppo_trainer`` config plus ``overrides``."""
        start = time.perf_counter()
        cfg = compose_actor_config(overrides, self.world_size, self.spec)
        from omegaconf import OmegaConf

        if not self._procs or not all(p.is_alive() for p in self._procs):
            self.close()
            self._start()
        job_id = self._next_id
        self._next_id += 1
        job = {"id": job_id, "config_yaml": OmegaConf.to_yaml(cfg), "data": data}
        for q in self._jobs:
            q.put(job)
        replies = self._collect(job_id)
        rank_steps = [replies[r]["rows"] for r in range(self.world_size)]
        n_steps = len(rank_steps[0])
        if any(len(steps) != n_steps for steps in rank_steps):
            raise HarnessError(f"ranks ran different numbers of optimizer steps: {[len(s) for s in rank_steps]}")
        lead = replies[0]
        grads = [{k: torch.from_numpy(v) for k, v in step.items()} for step in lead["grads"]]
        return ActorUpdateResult(
            grads=grads,
            step_rows=[sorted(r for steps in rank_steps for r in steps[k]) for k in range(n_steps)],
            rank_rows=[[rank_steps[r][k] for r in range(self.world_size)] for k in range(n_steps)],
            micro_batches=[[replies[r]["shapes"][k] for r in range(self.world_size)] for k in range(n_steps)],
            metrics=lead["metrics"] or {},
            plugins=lead["plugins"],
            wall_s=time.perf_counter() - start,
        )

    def _collect(self, job_id: int) -> dict[int, dict[str, Any]]:
        replies: dict[int, dict[str, Any]] = {}
        deadline = time.monotonic() + self.job_timeout_s
        while len(replies) < self.world_size:
            try:
                got_id, rank, ok, payload = self._results.get(timeout=1.0)
            except queue.Empty:
                dead = [p.name for p in self._procs if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    self.close()
                    why = f"rank processes exited: {dead}" if dead else f"no reply within {self.job_timeout_s:.0f} s"
                    raise HarnessError(why) from None
                continue
            if not ok:
                self.close()
                raise HarnessError(f"rank {rank} failed:\n{payload}")
            if got_id == job_id:
                replies[rank] = payload
        return replies


def run_actor_update_detailed(
    data: MiniBatchData, overrides: Sequence[str] = (), world_size: int = 1, spec: TinyQwen2 = DEFAULT_MODEL
) -> ActorUpdateResult:
    """One-shot :meth:`EngineHarness.update` (spawns and stops ``world_size`` ranks)."""
    with EngineHarness(world_size=world_size, spec=spec) as harness:
        return harness.update(data, overrides)


def run_actor_update(
    data: MiniBatchData, overrides: Sequence[str] = (), world_size: int = 1, spec: TinyQwen2 = DEFAULT_MODEL
) -> list[dict[str, torch.Tensor]]:
    """Full fp32 gradients ({param name: tensor}) of every optimizer step of one verl actor update."""
    return run_actor_update_detailed(data, overrides, world_size, spec).grads


__all__ = [
    "CPU_OVERRIDES",
    "DEFAULT_MODEL",
    "ActorUpdateResult",
    "EngineHarness",
    "HarnessError",
    "MiniBatchData",
    "TinyQwen2",
    "compose_actor_config",
    "load_tiny_model",
    "model_dir",
    "reference_token_log_probs",
    "run_actor_update",
    "run_actor_update_detailed",
    "update_extra_info",
]
