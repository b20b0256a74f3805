"""The warm-start through verl's own SFT trainer on the CPU: a loadable model directory, cached by content."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vlnorm_verl.warmstart import WarmStartError, WarmStartSettings, warm_start

pytestmark = pytest.mark.slow
SETTINGS = WarmStartSettings(steps=6, batch_size=8, lr=3e-3)


@pytest.fixture(scope="module")
def train_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data") / "countdown"
    subprocess.run(
        [sys.executable, "-m", "vlnorm_verl.launch.cli", "prepare-data", "countdown", "--out", str(out),
         "--train-size", "16", "--test-size", "4", "--four-fraction", "0", "--no-progress"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return out / "train.parquet"


@pytest.fixture(scope="module")
def warmed(train_parquet: Path, tmp_path_factory: pytest.TempPathFactory):
    cache = tmp_path_factory.mktemp("cache")
    lines: list[str] = []
    return warm_start(train_parquet, cache, SETTINGS, log=lines.append, timeout_s=600), cache, lines


def test_verl_sft_trainer_lowers_the_loss_and_writes_a_hugging_face_model(warmed) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from vlnorm_verl.cpu.tiny_tokenizer import build_tokenizer

    result, cache, lines = warmed
    assert not result.cached and result.steps == SETTINGS.steps
    info = json.loads((result.path / "warmstart.json").read_text())
    losses = [loss for _, loss in info["losses"]]
    assert [s for s, _ in info["losses"]] == list(range(1, SETTINGS.steps + 1))  # verl's file logger, every step
    assert losses[-1] < losses[0]
    tok = AutoTokenizer.from_pretrained(result.path)
    text = "Using the numbers [3, 5, 7], create an equation that equals 22. <think> 3 * 5 + 7 = 22 </think>"
    assert tok(text)["input_ids"] == build_tokenizer()(text)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(result.path, dtype=torch.float32)
    init = AutoModelForCausalLM.from_pretrained(next(cache.glob("tiny-qwen2-*")), dtype=torch.float32)
    moved = sum(float((a - b).detach().abs().sum()) for a, b in zip(model.parameters(), init.parameters(), strict=True))
    assert moved > 0
    assert not list(cache.glob(".warmstart-*"))  # the work directory is gone, the output was renamed in place
    assert any("verl's SFT trainer" in line for line in lines)


def test_same_inputs_load_from_the_cache(warmed, train_parquet: Path) -> None:
    result, cache, _ = warmed
    before = sorted(p.name for p in cache.iterdir()), (result.path / "warmstart.json").stat().st_mtime_ns
    again = warm_start(train_parquet, cache, SETTINGS, log=lambda _: None)
    assert again.cached and again.path == result.path and again.final_loss == result.final_loss
    assert (sorted(p.name for p in cache.iterdir()), (result.path / "warmstart.json").stat().st_mtime_ns) == before


def test_missing_or_unusable_data_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(WarmStartError, match="prepare-data countdown"):
        warm_start(tmp_path / "nope" / "train.parquet", tmp_path / "cache", SETTINGS)
    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = tmp_path / "train.parquet"
    pq.write_table(pa.table({"data_source": ["countdown"], "prompt": [[{"role": "user", "content": "x"}]],
                             "extra_info": [{"solution": None}]}), bad)  # fmt: skip
    with pytest.raises(WarmStartError, match="no reference solution"):
        warm_start(bad, tmp_path / "cache", SETTINGS)


#: runs verl's SFT trainer in this process for one step (sft_cpu.compose + train) with a forward pre-hook on every
#: linear layer of the engine's module, and prints the dtypes of the weights and inputs those layers computed with;
#: argv: [model dir, sft parquet, work dir, "checked" | "verl-default"]. "verl-default" composes verl's config
#: without the warm-start's fp32 defaults and check, to show that the hook sees verl's bf16 when it is left on.
DTYPE_PROBE = r"""
import json, sys
from pathlib import Path
import torch
from vlnorm_verl.cpu import platform
platform.apply_env(); platform.install_if_requested()
from vlnorm_verl.warmstart import sft, sft_cpu
model, data, work, mode = sys.argv[1:5]
overrides = sft.sft_overrides(Path(model), Path(data), Path(work), sft.WarmStartSettings(steps=1, batch_size=4), 4)
overrides += ["checkpoint.save_contents=[]", "trainer.logger=[console]"]
if mode == "verl-default":
    sft_cpu.CPU_DEFAULTS = tuple(d for d in sft_cpu.CPU_DEFAULTS if "mixed_precision" not in d)
    sft_cpu.require_fp32 = lambda *a, **k: None
seen = set()
def hook(module, args):
    seen.add(str(module.weight.dtype)); seen.update(str(a.dtype) for a in args if torch.is_tensor(a))
def before_fit(trainer):
    for m in trainer.engine.module.modules():
        if isinstance(m, torch.nn.Linear):
            m.register_forward_pre_hook(hook)
sft_cpu.train(sft_cpu.compose(overrides), before_fit=before_fit)
print("DTYPES " + json.dumps(sorted(seen)))
"""


def _compute_dtypes(warmed, train_parquet: Path, tmp_path: Path, mode: str) -> list[str]:
    from vlnorm_verl.warmstart.sft import _write_conversations, conversations

    _, cache, _ = warmed
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "sft.parquet"
    _write_conversations(conversations(train_parquet, max_tries=2)[:4], data)
    init = next(cache.glob("tiny-qwen2-*"))
    proc = subprocess.run([sys.executable, "-c", DTYPE_PROBE, str(init), str(data), str(tmp_path), mode],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("DTYPES "))
    return json.loads(line.removeprefix("DTYPES "))


def test_the_warm_start_computes_in_fp32_in_verls_engine(warmed, train_parquet: Path, tmp_path: Path) -> None:
    """Every linear layer of verl's FSDP engine sees fp32 weights and inputs during the warm-start's SFT step."""
    assert _compute_dtypes(warmed, train_parquet, tmp_path / "fp32", "checked") == ["torch.float32"]
    # the same probe on verl's own mixed-precision default sees bf16: the check above can fail
    assert "torch.bfloat16" in _compute_dtypes(warmed, train_parquet, tmp_path / "default", "verl-default")


def test_a_warm_start_engine_that_would_compute_in_bf16_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vlnorm_verl.warmstart.sft_cpu", "engine.mixed_precision.param_dtype=bf16"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "engine.mixed_precision" in proc.stderr and "fp32" in proc.stderr
