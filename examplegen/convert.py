"""Work units that run in worker processes: one chunk of input in, gzip part files out.

A chunk is a row-aligned byte range of a CSV file (or a whole gzip CSV), or one TFRecord
file. For each chunk a worker parses rows, converts them to serialized tf.Examples
(column-wise, see examplegen.encode), assigns every example to an output split
(examplegen.split), frames the records as TFRecords and writes one gzip part file per
(output split, shard). Shard of a row = its index among the chunk's written rows modulo the
shard count, so output is deterministic for a given input and config. The writer
concatenates parts in chunk order at commit. Bad rows go to the chunk's RowRejects
(examplegen.bad_rows): under the default policy the first one fails the run, under
``skip`` they are left out and written to the chunk's quarantine part.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from examplegen import encode, tfrecord
from examplegen.bad_rows import BadRowPolicy, RowRejects, keep_mask
from examplegen.errors import SourceError
from examplegen.sources import csv as csv_source
from examplegen.split import SplitPlan, assign_hash, assign_partition, assign_value, split_of_buckets
from examplegen.writer import part_file_name, quarantine_part_path

GZIP_LEVEL = 1  # isal level 1: ~370 MB/s on this machine, ratio within 1% of level 2


@dataclasses.dataclass
class ChunkResult:
    input_split: int
    chunk: int
    rows: int = 0
    counts: list[int] = dataclasses.field(default_factory=list)
    types: Optional[list[int]] = None  # CSV: types seen in this chunk
    mismatch: bool = False  # CSV: the chunk needs a wider type than it was given
    rejected: int = 0  # bad rows skipped (counted in rows)
    reasons: list[str] = dataclasses.field(default_factory=list)  # the first few bad rows' errors


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
    bad_rows: BadRowPolicy = BadRowPolicy()
    source: str = ""  # the URI the file was downloaded from, if it was


def _frame_and_assign_hash(records, plan: SplitPlan) -> tuple[Optional[pa.Array], np.ndarray]:
    """(frames, split index) of hash-split records: sha256 and crc32c in one pass over them.
    A plan with one split needs no hashing; its frames are made by the sink (None here)."""
    if len(plan.names) == 1:
        return None, np.zeros(len(records), dtype=np.int32)
    framed, buckets = tfrecord.frame_and_bucket(records, plan.cumulative_buckets[-1])
    return framed, split_of_buckets(buckets, plan)


def _part_path(parts_dir: str, input_split: int, chunk: int) -> Callable[[int, int], str]:
    return lambda s, sh: os.path.join(parts_dir, part_file_name(input_split, chunk, s, sh))


def csv_row_checks(batch: pa.RecordBatch, names: Sequence[str], fixed: dict[int, "csv_source.ColumnType"],
                   plan: SplitPlan) -> tuple[list[tuple[int, str]], dict[int, tuple]]:
    """The bad rows of a parsed CSV batch, as sorted (row, reason) pairs: cells contradicting
    the schema override (``fixed``: column index -> type) and rows without a value in the
    partition or value-split feature. Also returns the fixed columns converted, which are
    valid when there are no bad rows."""
    problems, converted = [], {}
    for i, ctype in fixed.items():
        column = batch.column(i)
        done = csv_source.fast_convert(column, ctype)
        if done is None:
            try:
                done = csv_source.convert_column(column, ctype)
            except ValueError:
                problems += [(row, f"column {names[i]!r}: {message} (the schema says {ctype.name.lower()})")
                             for row, message in csv_source.invalid_cells(column, ctype)]
        converted[i] = done
    if plan.needs_feature and plan.feature in names:
        column = batch.column(list(names).index(plan.feature))
        empty = pc.fill_null(pc.equal(pc.binary_length(column), 0), True)
        if pc.any(empty).as_py():
            what = "value-split feature" if plan.mode == "value" else "partition feature"
            problems += [(row, f"{what} {plan.feature!r} has no value")
                         for row in np.flatnonzero(empty.to_numpy(zero_copy_only=False)).tolist()]
    return sorted(problems, key=lambda p: p[0]), converted


def run_csv_chunk(task: CsvChunkTask) -> ChunkResult:
    """Converts one CSV range; on a type mismatch only finishes inferring the chunk."""
    names = list(task.layout.column_names)
    ColumnType = csv_source.ColumnType
    # Types seen: each column's given type unless a cell proved wider (see fast_convert).
    seen = [ColumnType(t) for t in task.types]
    fixed = {i: ColumnType(t) for i, t in enumerate(task.types) if task.fixed[i]}
    result = ChunkResult(task.input_split, task.chunk)
    sink = _PartSink(_part_path(task.parts_dir, task.input_split, task.chunk), task.out_index, task.num_shards)
    rejects = _rejects(task, task.layout.path)
    feature_index = names.index(task.plan.feature) if task.plan.needs_feature else -1
    if task.plan.needs_feature and feature_index < 0:
        raise SourceError(f"{task.layout.path}: split feature {task.plan.feature!r} is not a column "
                          f"(columns: {names})")
    rows = 0  # good rows
    try:
        for block in csv_source.read_rows(task.layout, task.options, task.start, task.end, task.first_line,
                                          rejects=rejects):
            batch = block.batch
            problems, converted = csv_row_checks(batch, names, fixed, task.plan)
            position = None  # the block's row index of each remaining row, when rows were taken out
            if problems:
                for i, reason in problems:
                    rejects.reject(task.layout.path, "line", block.line(i), reason, block.raw(i))
                keep = keep_mask(batch.num_rows, (i for i, _ in problems))
                batch, position = batch.filter(pa.array(keep)), np.flatnonzero(keep)
                _, converted = csv_row_checks(batch, names, fixed, task.plan)
                if batch.num_rows == 0:
                    continue

            def where(i: int, _block=block, _position=position) -> str:
                return f"{task.layout.path}: line {_block.line(i if _position is None else int(_position[i]))}"

            columns = []
            for i, column in enumerate(batch.columns):
                ctype = ColumnType(task.types[i])
                done = converted.get(i)
                if i not in fixed and not result.mismatch:
                    done = csv_source.fast_convert(column, ctype)
                if done is None and i not in fixed:
                    # Not provably within ctype: infer exactly; wider means a second pass.
                    exact = csv_source.infer_column_type(column)
                    seen[i] = max(seen[i], exact)
                    if exact > ctype:
                        result.mismatch = True
                    elif not result.mismatch:
                        done = csv_source.convert_column(column, ctype)
                columns.append(done)
            rows += batch.num_rows
            if result.mismatch:
                continue
            features, split_values, split_kind, split_feature = [], None, None, None
            for i, (values, kind) in enumerate(columns):
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
            sink.write(examples, split_index, sum(sink.counts), framed)
    finally:
        sink.close()
        rejects.close()
    _finish(result, rows, rejects, sink)
    result.types = [int(t) for t in seen]
    return result


def _rejects(task, path: str) -> RowRejects:
    """The work unit's bad-row handler; under skip it writes the unit's quarantine part. Bad
    rows of a downloaded file are reported under its URI."""
    part = quarantine_part_path(task.parts_dir, task.input_split, task.chunk) if task.bad_rows.skip else None
    return RowRejects(task.bad_rows, part, {path: task.source} if task.source else None)


def _finish(result: ChunkResult, good_rows: int, rejects: RowRejects, sink: _PartSink) -> None:
    result.rows = good_rows + rejects.count
    result.rejected = rejects.count
    result.reasons = rejects.reasons
    result.counts = sink.counts


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
    bad_rows: BadRowPolicy = BadRowPolicy()
    source: str = ""  # the URI the file was downloaded from, if it was


def run_tfrecord_file(task: TFRecordTask) -> ChunkResult:
    """Re-splits the records of one TFRecord file (CRC-checked) into part files. The
    records are unchanged, so their frames are written out as read (not framed again)."""
    from examplegen import payload

    result = ChunkResult(task.input_split, task.chunk)
    sink = _PartSink(_part_path(task.parts_dir, task.input_split, task.chunk), task.out_index, task.num_shards)
    rejects = _rejects(task, task.path)
    plan = task.plan
    rows = 0  # records read, rejected ones included
    try:
        for records, frames in tfrecord.read_frame_batches(task.path, 65536):
            batch_size = len(records)
            position = np.arange(batch_size)  # each remaining record's index in the batch

            def drop(problems, *columns, _offset=rows):
                """Rejects records (problems: (i, reason) over the remaining ones); the rest."""
                nonlocal records, frames, position
                for i, reason in problems:
                    rejects.reject(task.path, "record", _offset + int(position[i]), reason, records[i])
                keep = keep_mask(len(records), (i for i, _ in problems))
                records = [r for r, k in zip(records, keep) if k]
                frames, position = frames.filter(pa.array(keep)), position[keep]
                return [c.filter(pa.array(keep)) if isinstance(c, pa.Array) else [v for v, k in zip(c, keep) if k]
                        for c in columns]

            def where(i: int, _offset=rows) -> str:
                return f"{task.path}: record {_offset + int(position[i])}"

            rows += batch_size
            problems = payload.bad_records(records, task.payload_format, task.verify_payload, rows - batch_size,
                                           frames=frames)
            if problems:
                drop(problems)
            if not records:
                continue
            if plan.mode == "partition":
                keys, kind, problems = payload.feature_keys(records, task.payload_format, plan.feature)
                if problems:
                    [keys] = drop(problems, keys)
                split_index = assign_partition(keys, kind, plan, where) if records else None
            elif plan.mode == "value":
                values, problems = payload.feature_values(records, task.payload_format, plan.feature)
                if problems:
                    [values] = drop(problems, values)
                split_index = assign_value(values, plan, where) if records else None
            else:
                split_index = assign_hash(records, plan)
            if records:
                sink.write(frames, split_index, sum(sink.counts), frames)
            rejects.flush()
    finally:
        sink.close()
        rejects.close()
    _finish(result, rows - rejects.count, rejects, sink)
    return result


def run_task(task) -> ChunkResult:
    if isinstance(task, CsvChunkTask):
        return run_csv_chunk(task)
    return run_tfrecord_file(task)


__all__: Sequence[str] = ["CsvChunkTask", "TFRecordTask", "ChunkResult", "csv_row_checks", "run_task"]
