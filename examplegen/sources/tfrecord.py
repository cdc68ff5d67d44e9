"""TFRecord import: records as read (CRC-checked), split and written unchanged.

The records' frames are copied to the output as they are (not framed again), which keeps
import fast. The payload (tf.Example, tf.SequenceExample or any proto) is checked as
``verify_payload`` says (examplegen.payload); a record that is not the payload type goes
to the unit's RowRejects (examplegen.bad_rows: fails the run by default, or is quarantined).
Framing errors (a bad CRC or length, a truncated file) always fail.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa

from examplegen import fs, payload, tfrecord
from examplegen.bad_rows import BadRowPolicy, RowRejects, keep_mask
from examplegen.errors import ConfigError
from examplegen.sources.base import Plan, Records, WorkUnit, options_from_dict

FORMAT = "tfrecord"
READS_URLS = True  # reads gs:// and s3:// in place (examplegen.fs)
ROWS_NAME = "records"
BATCH_RECORDS = 65536


@dataclasses.dataclass(frozen=True)
class Options:
    payload_format: str = "FORMAT_TF_EXAMPLE"  # FORMAT_TF_EXAMPLE | FORMAT_TF_SEQUENCE_EXAMPLE | FORMAT_PROTO
    verify_payload: str = "structure"  # "structure" | "full" | "none"

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "Options":
        opts = options_from_dict(cls, d, FORMAT)
        if opts.verify_payload not in payload.VERIFY_MODES:
            raise ConfigError(f"verify_payload {opts.verify_payload!r} is unknown; use one of "
                              f"{', '.join(payload.VERIFY_MODES)}")
        return dataclasses.replace(opts, payload_format=payload.normalize_payload_format(opts.payload_format))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RecordFile(WorkUnit):
    """One TFRecord file."""

    def where(self, row: int) -> str:
        return f"{self.path}: record {row}"


def has_rows(path: str, options: Options) -> bool:
    return not tfrecord.is_empty(path)


def plan(split_name: str, files: Sequence[str], options: Options, chunk_bytes: int = 0) -> Plan:
    return Plan([RecordFile(path, fs.size(path)) for path in files])


def read(unit: RecordFile, options: Options, rejects: Optional[RowRejects] = None) -> Iterator[Records]:
    rejects = rejects if rejects is not None else RowRejects(BadRowPolicy())
    rows = 0
    for records, frames in tfrecord.read_frame_batches(unit.path, BATCH_RECORDS):
        batch_size = len(records)
        rejects.flush()  # the previous batch's bad records, in record order
        position = np.arange(len(records))  # each remaining record's index in the batch
        problems = payload.bad_records(records, options.payload_format, options.verify_payload, rows, frames=frames)
        if problems:
            for i, reason in problems:
                rejects.reject(unit.path, "record", rows + i, reason, records[i])
            keep = keep_mask(len(records), (i for i, _ in problems))
            records = [r for r, ok in zip(records, keep) if ok]
            frames, position = frames.filter(pa.array(keep)), position[keep]

        def locate(i: int, _offset=rows, _records=records, _position=position) -> tuple[str, str, int, bytes]:
            return unit.path, "record", _offset + int(_position[i]), _records[i]

        rows += batch_size
        if records:
            rejects.locate(locate)
            yield Records(records, frames, options.payload_format)
