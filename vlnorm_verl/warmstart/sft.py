"""Supervised warm-start of the ``model=tiny`` policy with verl's own SFT trainer, cached by content.

A randomly initialised model never earns a CountDown reward, so every GRPO group would have zero advantages and
RL would learn nothing. The warm-start trains the tiny policy on the generator's own reference solutions of the
training rows: one two-turn conversation per row, the prompt exactly as the RL run feeds it (the task's identity
chat template) and the response of :func:`vlnorm_verl.warmstart.traces.response` (0 .. ``max_tries`` rejected
tries, then the solution) followed by EOS. verl's ``SFTTrainer`` (:mod:`vlnorm_verl.warmstart.sft_cpu`, one
gloo rank on the CPU) minimises the mean negative log-likelihood of the response tokens for ``steps`` steps of
``batch_size`` rows at learning rate ``lr``.

The result is a Hugging Face model directory with the tokenizer (it loads with ``AutoTokenizer`` /
``AutoModelForCausalLM``) at ``<cache_dir>/warmstart-<hash>``; the hash covers the initial model, the
conversations, the settings and the verl/torch versions, so a rerun with the same inputs skips training. The
directory is written atomically (a temporary sibling renamed into place).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from vlnorm_verl.compare.jsonl_reader import read_jsonl
from vlnorm_verl.cpu.tiny_model import TinyModelSpec, content_hash, create_model_dir, write_atomically
from vlnorm_verl.quickstart.processes import Child
from vlnorm_verl.tasks import COUNTDOWN_SOURCE
from vlnorm_verl.warmstart.traces import response

TINY_GROUP = Path(__file__).resolve().parents[1] / "configs" / "model" / "tiny.yaml"
#: the SFT conversation template: message contents as they are (the CountDown task's identity template) and EOS
#: after the assistant's turn, so that the model learns to stop.
SFT_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
)


class WarmStartError(RuntimeError):
    """The warm-start could not run; the message names the cause and the fix."""


@dataclass(frozen=True)
class WarmStartSettings:
    steps: int = 160
    lr: float = 3e-3
    batch_size: int = 16
    max_length: int = 384
    max_tries: int = 6


@dataclass
class WarmStart:
    path: Path
    cached: bool
    steps: int
    final_loss: float
    wall_s: float


def tiny_spec() -> TinyModelSpec:
    """The ``model=tiny`` group's model settings (their one statement is the group's YAML)."""
    from omegaconf import OmegaConf

    node = OmegaConf.to_container(OmegaConf.load(TINY_GROUP).vlnorm.tiny_model, resolve=True)
    return TinyModelSpec.from_mapping(node)


def conversations(train_parquet: Path, max_tries: int) -> list[list[dict[str, str]]]:
    """One SFT conversation (user prompt, assistant search trace + reference solution) per CountDown row."""
    import pyarrow.parquet as pq

    if not Path(train_parquet).is_file():
        raise WarmStartError(
            f"no training data at {train_parquet}: "
            f"run vlnorm-verl prepare-data countdown --out {Path(train_parquet).parent}"
        )
    rows = pq.read_table(train_parquet).to_pylist()
    out = []
    for i, row in enumerate(rows):
        if row.get("data_source") != COUNTDOWN_SOURCE:
            raise WarmStartError(f"{train_parquet} row {i}: data_source {row.get('data_source')!r}, not countdown")
        solution = (row.get("extra_info") or {}).get("solution")
        if not solution:
            raise WarmStartError(
                f"{train_parquet} row {i} has no reference solution (extra_info.solution); the warm-start needs "
                "rows from the offline generator: vlnorm-verl prepare-data countdown --source generate"
            )
        truth = row["reward_model"]["ground_truth"]
        answer = response(truth["numbers"], int(truth["target"]), solution, seed=i, max_tries=max_tries)
        prompt = "".join(m["content"] for m in row["prompt"])
        out.append([{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}])
    if not out:
        raise WarmStartError(f"{train_parquet} has no rows")
    return out


def _versions() -> list[str]:
    import torch
    import verl

    return [verl.__version__, torch.__version__.split("+")[0]]


def sft_overrides(model_dir: Path, data: Path, out: Path, settings: WarmStartSettings, rows: int) -> list[str]:
    """verl ``sft_trainer_engine`` overrides for the warm-start."""
    batch = min(settings.batch_size, rows)
    return [
        f"model.path={model_dir}",
        f'+model.custom_chat_template="{SFT_CHAT_TEMPLATE}"',
        "model.use_remove_padding=false",
        "model.enable_gradient_checkpointing=false",
        "+model.override_config.attn_implementation=eager",
        f"data.train_files={data}",
        f"data.val_files={data}",
        f"data.train_batch_size={batch}",
        f"data.micro_batch_size_per_gpu={batch}",
        "data.use_dynamic_bsz=false",
        f"data.max_length={settings.max_length}",
        "data.truncation=error",
        "data.num_workers=0",
        "data.ignore_input_ids_mismatch=true",  # prompt and response are tokenized apart, as in the RL rollout
        "engine.dtype=float32",
        "engine.use_torch_compile=false",
        f"optim.lr={settings.lr}",
        "optim.lr_warmup_steps_ratio=0",
        "trainer.total_epochs=1000000",
        f"trainer.total_training_steps={settings.steps}",
        "trainer.test_freq=-1",
        "trainer.logger=[console,file]",
        f"trainer.default_local_dir={out / 'checkpoints'}",
        "trainer.resume_mode=disable",
        "trainer.project_name=vlnorm-warmstart",
        "trainer.experiment_name=warmstart",
        "checkpoint.save_contents=[model,hf_model]",
    ]


def _losses(jsonl: Path) -> list[tuple[int, float]]:
    """(step, ``train/loss``) from the SFT trainer's file-logger log, which may still be being written."""
    if not jsonl.is_file():
        return []
    return [(step, row["train/loss"]) for step, row in read_jsonl(jsonl, live=True).rows if "train/loss" in row]


def warm_start(
    train_parquet: Path,
    cache_dir: Path,
    settings: WarmStartSettings = WarmStartSettings(),
    log: Callable[[str], None] = print,
    timeout_s: float = 1800,
) -> WarmStart:
    """The warm-started model directory for the rows of ``train_parquet`` (trained now, or from the cache)."""
    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    cache_dir = Path(cache_dir)
    convs = conversations(Path(train_parquet), settings.max_tries)
    cache_dir.mkdir(parents=True, exist_ok=True)
    init_dir = create_model_dir(tiny_spec(), build_tokenizer(), cache_dir)
    key = content_hash({"init": init_dir.name, "rows": convs, "settings": asdict(settings), "v": _versions()})
    target = cache_dir / f"warmstart-{key}"
    info_path = target / "warmstart.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        log(f"[warm-start] cached: {target} ({info['steps']} SFT steps, final loss {info['final_loss']:.3f})")
        return WarmStart(target, True, int(info["steps"]), float(info["final_loss"]), 0.0)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".warmstart-", dir=cache_dir) as tmp:
        work = Path(tmp)
        data = work / "sft.parquet"
        _write_conversations(convs, data)
        jsonl = work / "sft.jsonl"
        env = {**os.environ, "VERL_FILE_LOGGER_PATH": str(jsonl), "WANDB_MODE": "disabled"}
        cmd = [
            sys.executable,
            "-m",
            "vlnorm_verl.warmstart.sft_cpu",
            *sft_overrides(init_dir, data, work, settings, len(convs)),
        ]
        log(
            f"[warm-start] verl's SFT trainer: {settings.steps} steps x {min(settings.batch_size, len(convs))} rows, "
            f"lr {settings.lr:g}, on {len(convs)} reference solutions with 0-{settings.max_tries} rejected tries"
        )
        child = Child("warm-start", cmd, env, work / "sft.log").start()
        shown = 0
        try:
            while (code := child.poll()) is None:
                time.sleep(1.0)
                losses = _losses(jsonl)
                for step, loss in losses[shown:]:
                    if step % 25 == 0 or step == settings.steps:
                        log(f"[warm-start] step {step:4d}/{settings.steps}  sft loss {loss:.3f}")
                shown = len(losses)
                if time.perf_counter() - start > timeout_s:  # the work directory goes: quote the log
                    raise WarmStartError(f"the warm-start ran past {timeout_s:.0f} s:\n{_tail(work / 'sft.log')}")
        finally:
            child.stop()  # the SFT trainer and anything it started, whatever ended the loop (error, signal)
        if code != 0:
            raise WarmStartError(f"verl's SFT trainer failed (exit {code}):\n{_tail(work / 'sft.log')}")
        hf = work / "checkpoints" / f"global_step_{settings.steps}" / "huggingface"
        if not (hf / "config.json").is_file():
            raise WarmStartError(f"verl's SFT trainer wrote no Hugging Face model at {hf}")
        losses = _losses(jsonl)
        final_loss = losses[-1][1] if losses else float("nan")
        info = {"steps": settings.steps, "final_loss": final_loss, "losses": losses, "settings": asdict(settings)}

        def fill(tmp_target: Path) -> None:
            shutil.copytree(hf, tmp_target, dirs_exist_ok=True)
            (tmp_target / "warmstart.json").write_text(json.dumps(info, indent=1))

        write_atomically(target, fill)
    wall = time.perf_counter() - start
    log(f"[warm-start] saved {target} ({wall:.0f} s, final sft loss {final_loss:.3f})")
    return WarmStart(target, False, settings.steps, final_loss, wall)


def _tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _write_conversations(convs: list[list[dict[str, str]]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"messages": convs}), path)
