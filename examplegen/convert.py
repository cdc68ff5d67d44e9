"""Work units that run in worker processes: one chunk of input in, gzip part files out.

A chunk is a row-aligned byte range of a CSV file (or a whole gzip CSV), or one TFRecord
file. For each chunk a worker parses rows, converts them to serialized tf.Examples
(column-wise, see examplegen.encode), assigns every example to an output split
(examplegen.split), frames the records as TFRecords and writes one gzip part file per
(output split, shard). Shard of a row = its index within the chunk modulo the shard count,
so output is deterministic for a given input and config. The writer concatenates parts
in chunk order at commit.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from examplegen import encode, tfrecord
from examplegen.errors import SourceError
from examplegen.sources import csv as csv_source
from examplegen.split import SplitPlan, assign_hash, assign_partition, assign_value, split_of_buckets
from examplegen.writer import part_file_name

GZIP_LEVEL = 1  # isal level 1: ~370 MB/s on this machine, ratio within 1% of level 2


@dataclasses.dataclass
class ChunkResult:
    input_split: int
    chunk: int
    rows: int = 0
    counts: list[int] = dataclasses.field(default_factory=list)
    types: Optional[list[int]] = None  # CSV: types seen in this chunk
    mismatch: bool = False  # CSV: the chunk needs a wider type than it was given


class _PartSink:
    """Appends gzip members to the part files of one chunk."""

    def __init__(self, part_path: Callable[[int, int], str], out_index: Sequence[int], num_shards: int):
        self._path = part_path
        self._out_index = out_index  # plan-local split index -> the artifact's split index
        num_splits = len(out_index)
        self.num_shards = num_shards
        self.counts = [0] * num_splits
        self._files: dict[tuple[int, int], object] = {}

    def write(self, records: pa.Array, split_index: np.ndarray, row_offset: int,
              framed: Optional[pa.Array] = None) -> None:
        """Appends each (split, shard) group of the records' frames as one gzip member
        (``framed``: the frames of ``records`` when already made, see _frame_and_assign_hash)."""
        n = len(records)
        if n == 0:
            return
        if framed is None:
            framed = tfrecord.frame_column(records)
        shard = np.arange(row_offset, row_offset + n, dtype=np.int64) % self.num_shards
        key = split_index.astype(np.int64) * self.num_shards + shard
        for k, count, data in tfrecord.grouped_frames(framed, key):
            s, sh = divmod(k, self.num_shards)
            self.counts[s] += count
            f = self._files.get((s, sh))
            if f is None:
                f = self._files[(s, sh)] = open(self._path(self._out_index[s], sh), "wb")
            f.write(tfrecord.gzip_member(data, GZIP_LEVEL))

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


@dataclasses.dataclass(frozen=True)
class CsvChunkTask:
    input_split: int
    chunk: int
    layout: csv_source.CsvLayout
    options: csv_source.CsvOptions
    start: int
    end: int
    first_line: int
    types: tuple[int, ...]  # ColumnType per column to convert with
    fixed: tuple[bool, ...]  # column type set by the schema override (no inference)
    plan: SplitPlan
    out_index: tuple[int, ...]  # artifact split index of each of the plan's splits
    num_shards: int
    parts_dir: str
    size: int  # input bytes (for progress)


def _frame_and_assign_hash(records, plan: SplitPlan) -> tuple[Optional[pa.Array], np.ndarray]:
    """(frames, split index) of hash-split records: sha256 and crc32c in one pass over them.
    A plan with one split needs no hashing; its frames are made by the sink (None here)."""
    if len(plan.names) == 1:
        return None, np.zeros(len(records), dtype=np.int32)
    framed, buckets = tfrecord.frame_and_bucket(records, plan.cumulative_buckets[-1])
    return framed, split_of_buckets(buckets, plan)


def _part_path(parts_dir: str, input_split: int, chunk: int) -> Callable[[int, int], str]:
    return lambda s, sh: os.path.join(parts_dir, part_file_name(input_split, chunk, s, sh))


def run_csv_chunk(task: CsvChunkTask) -> ChunkResult:
    """Converts one CSV range; on a type mismatch only finishes inferring the chunk."""
    names = list(task.layout.column_names)
    ColumnType = csv_source.ColumnType
    # Types seen: each column's given type unless a cell proved wider (see fast_convert).
    seen = [ColumnType(t) for t in task.types]
    result = ChunkResult(task.input_split, task.chunk)
    sink = _PartSink(_part_path(task.parts_dir, task.input_split, task.chunk), task.out_index, task.num_shards)
    feature_index = names.index(task.plan.feature) if task.plan.needs_feature else -1
    if task.plan.needs_feature and feature_index < 0:
        raise SourceError(f"{task.layout.path}: split feature {task.plan.feature!r} is not a column "
                          f"(columns: {names})")
    rows = 0
    try:
        for batch in csv_source.read_chunk(task.layout, task.options, task.start, task.end, task.first_line):

            def where(i: int, _offset=rows) -> str:
                line = csv_source.line_of_row(task.layout, task.options, task.start, task.end,
                                              task.first_line, _offset + i)
                return f"{task.layout.path}: line {line}"

            converted = []
            for i, (name, column) in enumerate(zip(names, batch.columns)):
                ctype = ColumnType(task.types[i])
                done = None if result.mismatch else csv_source.fast_convert(column, ctype)
                if done is None and not task.fixed[i]:
                    # Not provably within ctype: infer exactly; wider means a second pass.
                    exact = csv_source.infer_column_type(column)
                    seen[i] = max(seen[i], exact)
                    if exact > ctype:
                        result.mismatch = True
                if done is None and not result.mismatch:
                    try:
                        done = csv_source.convert_column(column, ctype)
                    except ValueError as exc:  # a schema override the data contradicts
                        bad = _first_bad_row(column, ctype)
                        raise SourceError(f"{where(bad)}: column {name!r}: {exc} "
                                          f"(the schema says {ctype.name.lower()})") from None
                converted.append(done)
            if result.mismatch:
                rows += batch.num_rows
                continue
            features, split_values, split_kind, split_feature = [], None, None, None
            for i, (values, kind) in enumerate(converted):
                feature = encode.feature_column(values, kind)
                features.append(feature)
                if i == feature_index:
                    split_values, split_kind, split_feature = values, kind, feature
            examples = encode.example_column(names, features)
            framed = None
            if task.plan.mode == "value":
                split_index = assign_value(split_values, task.plan, where)
            elif task.plan.mode == "partition":
                split_index = assign_partition(split_feature, split_kind, task.plan, where)
            else:
                framed, split_index = _frame_and_assign_hash(examples, task.plan)
            sink.write(examples, split_index, rows, framed)
            rows += batch.num_rows
    finally:
        sink.close()
    result.rows = rows
    result.counts = sink.counts
    result.types = [int(t) for t in seen]
    return result


def _first_bad_row(column: pa.Array, ctype) -> int:
    for i, cell in enumerate(pc.fill_null(column, "").cast(pa.binary()).to_pylist()):
        if cell:
            try:
                csv_source._convert_cells([cell], ctype)
            except ValueError:
                return i
    return 0


@dataclasses.dataclass(frozen=True)
class TFRecordTask:
    input_split: int
    chunk: int
    path: str
    payload_format: str  # FORMAT_TF_EXAMPLE | FORMAT_TF_SEQUENCE_EXAMPLE | FORMAT_PROTO
    plan: SplitPlan
    out_index: tuple[int, ...]
    num_shards: int
    parts_dir: str
    size: int
    verify_payload: str = "structure"  # "structure" | "full" | "none"


def run_tfrecord_file(task: TFRecordTask) -> ChunkResult:
    """Re-splits the records of one TFRecord file (CRC-checked) into part files. The
    records are unchanged, so their frames are written out as read (not framed again)."""
    from examplegen import payload

    result = ChunkResult(task.input_split, task.chunk)
    sink = _PartSink(_part_path(task.parts_dir, task.input_split, task.chunk), task.out_index, task.num_shards)
    plan = task.plan
    rows = 0
    try:
        for records, frames in tfrecord.read_frame_batches(task.path, 65536):
            payload.check(records, task.payload_format, task.verify_payload, task.path, rows, frames=frames)

            def where(i: int, _offset=rows) -> str:
                return f"{task.path}: record {_offset + i}"

            if plan.mode == "partition":
                keys, kind = payload.feature_keys(records, task.payload_format, plan.feature, where)
                split_index = assign_partition(keys, kind, plan, where)
            elif plan.mode == "value":
                values = payload.feature_values(records, task.payload_format, plan.feature, where)
                split_index = assign_value(values, plan, where)
            else:
                split_index = assign_hash(records, plan)
            sink.write(frames, split_index, rows, frames)
            rows += len(records)
    finally:
        sink.close()
    result.rows = rows
    result.counts = sink.counts
    return result


def run_task(task) -> ChunkResult:
    if isinstance(task, CsvChunkTask):
        return run_csv_chunk(task)
    return run_tfrecord_file(task)


__all__: Sequence[str] = ["CsvChunkTask", "TFRecordTask", "ChunkResult", "run_task"]
