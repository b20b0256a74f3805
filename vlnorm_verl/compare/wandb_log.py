"""A reader for wandb's run transaction log (``run-<id>.wandb``), without uploading anything.

wandb 0.31 ships no Python reader for these files (the old ``wandb.sdk.internal.datastore`` is gone;
the Go ``wandb-core`` service writes and replays them), so this module reads the record format
directly and decodes each record with the protobuf class wandb ships,
``wandb.proto.wandb_internal_pb2.Record``.

Format assumptions (checked against files written by wandb 0.31.0; an unknown header is an error):

* The file starts with a 7-byte header: the ASCII magic ``:W&B``, the 16-bit little-endian number
  ``0xBEE1``, and a one-byte format version, ``0``.
* The rest is a LevelDB-style log cut into 32 KiB blocks (the header counts towards the first block).
  Each chunk has a 7-byte header: CRC-32 (zlib/IEEE polynomial, little-endian, *unmasked*) of the
  type byte followed by the payload; the payload length (uint16, little-endian); the chunk type
  (1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST); then the payload. A record that does not fit the rest of a
  block is split into FIRST, MIDDLE…, LAST chunks. When fewer than 7 bytes are left in a block they
  are zero padding and the next chunk starts at the next block.
* Each reassembled payload is one serialised ``Record``. History rows are ``Record.history``: items
  whose name is ``key`` or the parts of ``nested_key`` (joined with ``.``, wandb's separator for nested
  dicts) and whose value is JSON text in ``value_json`` (``NaN``/``Infinity`` allowed), or one of the
  typed fields ``number``/``integer``/``json``; the step is the ``_step`` item (``history.step.num``
  when that item is absent). ``Record.run`` carries the run id, display name, project and start time.

Damage is tolerated the way LevelDB's reader does it: a chunk with a bad checksum or an impossible
length, or a record whose FIRST chunk has no LAST, is skipped, the reader resumes at the next block, and
a warning names the file and byte offset; a file cut short (a run still being written, or killed) ends
the read at the last complete record.
"""

from __future__ import annotations

import json
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vlnorm_verl.compare.records import WANDB_INTERNAL_PREFIX, CompareError, Row, RunLog, as_step, to_float

MAGIC = b":W&B"
MAGIC_NUMBER = 0xBEE1
VERSION = 0
FILE_HEADER = struct.Struct("<4sHB")
CHUNK_HEADER = struct.Struct("<IHB")
BLOCK_SIZE = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def iter_payloads(path: str | Path) -> Iterator[bytes]:
    """Yield the raw record payloads of a ``.wandb`` file, in write order."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CompareError(f"cannot read {path}: {exc}") from exc
    if len(data) < FILE_HEADER.size:
        raise CompareError(f"{path}: too short for a wandb transaction log ({len(data)} bytes)")
    magic, number, version = FILE_HEADER.unpack_from(data, 0)
    if magic != MAGIC or number != MAGIC_NUMBER:
        raise CompareError(f"{path}: not a wandb transaction log (header {data[:7]!r})")
    if version != VERSION:
        raise CompareError(f"{path}: wandb log format version {version} is not supported (this reader knows {VERSION})")

    pos = FILE_HEADER.size
    pending: bytes | None = None
    while pos < len(data):
        room = BLOCK_SIZE - pos % BLOCK_SIZE
        if room < CHUNK_HEADER.size:  # block trailer: zero padding
            pos += room
            continue
        if pos + CHUNK_HEADER.size > len(data):
            break  # cut short
        crc, length, kind = CHUNK_HEADER.unpack_from(data, pos)
        start, end = pos + CHUNK_HEADER.size, pos + CHUNK_HEADER.size + length
        if end > len(data) and length <= room - CHUNK_HEADER.size:
            break  # cut short inside the last chunk
        bad = None
        if length > room - CHUNK_HEADER.size or kind not in (FULL, FIRST, MIDDLE, LAST):
            bad = f"impossible chunk (type {kind}, length {length})"
        elif zlib.crc32(data[start:end], zlib.crc32(bytes([kind]))) != crc:
            bad = "checksum mismatch"
        if bad:
            next_block = pos + room
            warnings.warn(f"{path}: {bad} at byte {pos}; skipping to byte {next_block}", stacklevel=2)
            pending = None
            pos = next_block
            continue
        payload = data[start:end]
        pos = end
        if kind == FULL:
            if pending is not None:
                warnings.warn(f"{path}: record without its last chunk before byte {start}; dropped", stacklevel=2)
            pending = None
            yield payload
        elif kind == FIRST:
            pending = payload
        elif pending is None:
            warnings.warn(f"{path}: chunk continues a missing record at byte {start}; dropped", stacklevel=2)
        elif kind == MIDDLE:
            pending += payload
        else:
            yield pending + payload
            pending = None


@dataclass
class WandbFileContents:
    run_id: str | None
    display_name: str | None
    project: str | None
    start_time: float | None
    rows: list[Row]


def _item_name(item) -> str:
    return item.key if item.key else ".".join(item.nested_key)


def _item_value(item) -> float | None:
    which = item.WhichOneof("value")
    if which in ("number", "integer"):
        return float(getattr(item, which))
    if which == "json":
        raw = item.json
    elif which is not None:  # none / boolean / text: not a curve value
        return None
    else:
        raw = item.value_json
    if not raw:
        return None
    try:
        return to_float(json.loads(raw))
    except json.JSONDecodeError:
        return None


def read_wandb_file(path: str | Path) -> WandbFileContents:
    """Decode the run record and every history row of one ``.wandb`` file."""
    from wandb.proto import wandb_internal_pb2 as pb  # lazy: protobuf import costs ~0.5 s

    path = Path(path)
    contents = WandbFileContents(run_id=None, display_name=None, project=None, start_time=None, rows=[])
    record = pb.Record()
    for index, payload in enumerate(iter_payloads(path)):
        try:
            record.ParseFromString(payload)
        except Exception as exc:  # protobuf's DecodeError; a garbled record that passed the checksum
            warnings.warn(f"{path}: record {index} does not decode ({exc}); skipped", stacklevel=2)
            continue
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            contents.run_id = run.run_id or contents.run_id
            contents.display_name = run.display_name or contents.display_name
            if run.project:
                contents.project = f"{run.entity}/{run.project}" if run.entity else run.project
            if run.HasField("start_time") and contents.start_time is None:
                contents.start_time = run.start_time.seconds + run.start_time.nanos * 1e-9
        elif kind == "history":
            step: int | None = None
            row: dict[str, float] = {}
            for item in record.history.item:
                name = _item_name(item)
                if name == "_step":
                    value = _item_value(item)
                    if value is not None:
                        step = as_step(value, f"{path}: record {index}")
                    continue
                if name.startswith(WANDB_INTERNAL_PREFIX):
                    continue
                value = _item_value(item)
                if value is not None:
                    row[name] = value
            if step is None:
                step = int(record.history.step.num)
            contents.rows.append((step, row))
    return contents


def read_wandb_run_file(path: str | Path) -> RunLog:
    """One ``.wandb`` file as a :class:`RunLog`, named by the run's display name (else its id)."""
    path = Path(path)
    contents = read_wandb_file(path)
    name = contents.display_name or contents.run_id or path.parent.name
    return RunLog(
        name=name,
        origin=str(path.parent if path.parent.name else path),
        rows=contents.rows,
        start_time=contents.start_time,
        run_id=contents.run_id,
    )
