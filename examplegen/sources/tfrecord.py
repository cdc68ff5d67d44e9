"""TFRecord import: records as read (CRC-checked), split and written unchanged.

The records' frames are copied to the output as they are (not framed again), which keeps
import fast. The payload (tf.Example, tf.SequenceExample or any proto) is checked as
``verify_payload`` says (examplegen.payload).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator, Optional, Sequence

from examplegen import payload, tfrecord
from examplegen.errors import ConfigError
from examplegen.sources.base import Plan, Records, WorkUnit, options_from_dict

FORMAT = "tfrecord"
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
    return Plan([RecordFile(path, os.path.getsize(path)) for path in files])


def read(unit: RecordFile, options: Options) -> Iterator[Records]:
    rows = 0
    for records, frames in tfrecord.read_frame_batches(unit.path, BATCH_RECORDS):
        payload.check(records, options.payload_format, options.verify_payload, unit.path, rows, frames=frames)
        yield Records(records, frames, options.payload_format)
        rows += len(records)
