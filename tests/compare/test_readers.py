"""Readers: wandb offline transaction logs (real runs written by wandb 0.31) and verl file-logger JSONL."""

from __future__ import annotations

import json
import math
import struct
import warnings
import zlib
from pathlib import Path

import pytest

from vlnorm_verl.compare.jsonl_reader import read_jsonl
from vlnorm_verl.compare.records import CompareError
from vlnorm_verl.compare.wandb_log import BLOCK_SIZE, iter_payloads, read_wandb_run_file

ACC = "val-core/countdown/acc/mean@8"


def only_file(run_dir: Path) -> Path:
    (path,) = run_dir.glob("run-*.wandb")
    return path


def as_dict(rows):
    return {step: row for step, row in rows}


def test_offline_run_rows_equal_what_was_logged(logs):
    log = read_wandb_run_file(only_file(logs.dapo_dir))
    assert log.name == "dapo"
    assert log.run_id and logs.dapo_dir.name.endswith(log.run_id)
    assert [step for step, _ in log.rows] == list(range(0, 81))
    rows = as_dict(log.rows)
    assert rows[0] == {ACC: 0.10}  # step 0: validation only, no wandb-internal "_..." keys
    assert rows[50][ACC] == 0.60 and rows[80][ACC] == 0.58
    assert ACC not in rows[55]
    assert rows[3] == {
        "response_length/mean": 103.0,
        "actor/grad_norm": 1.0 / 3,
        "critic/score/mean": 0.03,
        "actor/entropy": 1.97,
    }
    assert math.isnan(rows[7]["actor/grad_norm"])  # NaN is kept as logged (value_json "NaN")


def test_resumed_logs_have_increasing_start_times(logs):
    first, second = (read_wandb_run_file(only_file(d)) for d in logs.resumed_dirs)
    assert first.name == second.name == "resumed"
    assert first.run_id != second.run_id
    assert first.start_time < second.start_time
    assert [s for s, _ in second.rows][:2] == [40, 41]
    assert as_dict(second.rows)[40] == {ACC: 0.46}


def test_large_records_span_blocks(wandb_writer, tmp_path):
    """A row with 3000 keys is one record larger than a 32 KiB block (FIRST/MIDDLE/LAST chunks)."""
    logged = []
    for step in range(60):
        row = {f"m/k{j}": step * 100 + j for j in range(30)}
        if step == 30:
            row.update({f"wide/key_{j:04d}": j / 7 for j in range(3000)})
        logged.append((step, row))
    path = only_file(wandb_writer(tmp_path, "wide", logged))
    assert path.stat().st_size > 3 * BLOCK_SIZE
    log = read_wandb_run_file(path)
    rows = as_dict(log.rows)
    assert sorted(rows) == list(range(60))
    assert all(rows[s][f"m/k{j}"] == s * 100 + j for s in range(60) for j in range(30))
    assert len(rows[30]) == 3030 and rows[30]["wide/key_2999"] == 2999 / 7


def _chunks(data: bytes):
    """(offset, type, length) of every chunk: an independent walk over the documented layout."""
    pos, out = 7, []
    while pos < len(data):
        if BLOCK_SIZE - pos % BLOCK_SIZE < 7:
            pos += BLOCK_SIZE - pos % BLOCK_SIZE
            continue
        _, length, kind = struct.unpack_from("<IHB", data, pos)
        out.append((pos, kind, length))
        pos += 7 + length
    return out


def test_file_header_and_checksums_match_the_documented_format(logs):
    data = only_file(logs.dapo_dir).read_bytes()
    assert data[:4] == b":W&B" and struct.unpack_from("<HB", data, 4) == (0xBEE1, 0)
    chunks = _chunks(data)
    assert chunks and all(kind in (1, 2, 3, 4) for _, kind, _ in chunks)
    for pos, kind, length in chunks:
        crc = struct.unpack_from("<I", data, pos)[0]
        assert crc == zlib.crc32(bytes([kind]) + data[pos + 7 : pos + 7 + length])
    assert sum(1 for _ in iter_payloads(only_file(logs.dapo_dir))) == sum(1 for _, k, _ in chunks if k in (1, 4))


def test_corrupt_chunk_is_skipped_with_a_warning(logs, tmp_path):
    data = bytearray(only_file(logs.dapo_dir).read_bytes())
    assert len(data) > BLOCK_SIZE + 1000  # the damage below hits block 0 only
    # Damage the payload of a chunk in the middle of block 0: the rest of block 0 is lost.
    pos, _, length = next(c for c in _chunks(bytes(data)) if c[0] > BLOCK_SIZE // 2)
    data[pos + 7 + length // 2] ^= 0xFF
    bad = tmp_path / "run-bad.wandb"
    bad.write_bytes(bytes(data))
    with pytest.warns(UserWarning) as caught:
        log = read_wandb_run_file(bad)
    messages = [str(w.message) for w in caught]
    assert any(f"checksum mismatch at byte {pos}; skipping to byte {BLOCK_SIZE}" in m for m in messages)
    good = read_wandb_run_file(only_file(logs.dapo_dir))
    steps, all_steps = [s for s, _ in log.rows], [s for s, _ in good.rows]
    assert 0 < len(steps) < len(all_steps)
    assert steps[-1] == all_steps[-1]  # reading resumed at the next block
    good_rows = as_dict(good.rows)
    for step, row in log.rows:
        assert row.get(ACC) == good_rows[step].get(ACC)
        assert row.get("response_length/mean") == good_rows[step].get("response_length/mean")


def test_truncated_file_reads_the_complete_prefix(logs, tmp_path):
    data = only_file(logs.dapo_dir).read_bytes()
    cut = tmp_path / "run-cut.wandb"
    cut.write_bytes(data[: len(data) // 2 + 3])
    log = read_wandb_run_file(cut)
    steps = [s for s, _ in log.rows]
    assert steps == list(range(len(steps))) and 0 < len(steps) < 81


def test_not_a_wandb_file_is_a_clear_error(tmp_path):
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"PK\x03\x04 something else")
    with pytest.raises(CompareError, match="not a wandb transaction log"):
        read_wandb_run_file(path)
    path.write_bytes(b":W&B" + struct.pack("<HB", 0xBEE1, 7) + b"\0" * 20)
    with pytest.raises(CompareError, match="version 7 is not supported"):
        read_wandb_run_file(path)


def test_jsonl_written_by_verl_tracking(logs):
    # verl's FileLogger picks $VERL_FILE_LOGGER_ROOT/<project>/<experiment>.jsonl
    assert logs.vlnorm_jsonl.is_file()
    first = json.loads(logs.vlnorm_jsonl.read_text().splitlines()[0])
    assert first == {"step": 0, "data": {ACC: 0.1}}
    log = read_jsonl(logs.vlnorm_jsonl)
    assert log.name == "vlnorm" and log.start_time is None
    rows = as_dict(log.rows)
    assert sorted(rows) == list(range(101))
    assert math.isnan(rows[30][ACC])  # orjson wrote NaN as null
    assert math.isnan(rows[7]["actor/grad_norm"])
    assert rows[90][ACC] == 0.75 and rows[12]["response_length/mean"] == 112.0


def test_jsonl_non_numbers_are_ignored_and_bad_lines_reported(tmp_path):
    path = tmp_path / "run.jsonl"
    lines = [
        {"step": 1, "data": {"a": 1, "b": "text", "c": [1, 2], "d": True, "e": None}},
        {"step": 2.0, "data": {"a": 2.5}},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"step": 3, "data": {"a"')
    with pytest.warns(UserWarning, match="truncated last line"):
        log = read_jsonl(path)
    assert log.rows[0][0] == 1 and log.rows[0][1]["a"] == 1.0 and set(log.rows[0][1]) == {"a", "e"}
    assert math.isnan(log.rows[0][1]["e"])
    assert log.rows[1] == (2, {"a": 2.5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a log a running trainer is writing: its last line is not a problem
        assert read_jsonl(path, live=True).rows == log.rows

    path.write_text('{"step": 1, "data": {}}\nnot json\n{"step": 2, "data": {}}\n')
    with pytest.raises(CompareError, match=r"run.jsonl:2: not a JSON line"):
        read_jsonl(path)
    with pytest.raises(CompareError, match=r"run.jsonl:2: not a JSON line"):
        read_jsonl(path, live=True)
    path.write_text('{"step": 1.5, "data": {}}\n')
    with pytest.raises(CompareError, match=r"run.jsonl:1: step 1.5 is not an integer"):
        read_jsonl(path)
    path.write_text('{"global_step": 1, "metrics": {}}\n')
    with pytest.raises(CompareError, match="expected verl's file-logger line"):
        read_jsonl(path)
