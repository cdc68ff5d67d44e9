"""Work units that run in worker processes: one chunk of input in, gzip part files out.

A chunk is one work unit of a source (examplegen.sources): a row-aligned byte range of a
CSV file, Parquet row groups, a file, ... For each chunk a worker has the source read it
into typed Arrow batches, converts them to serialized tf.Examples (column-wise, see
examplegen.typemap and examplegen.encode) or takes the records as read (TFRecord
import), assigns every example to an output split
(examplegen.split), frames the records as TFRecords and writes one gzip part file per
(output split, shard). Shard of a row = its index within the chunk modulo the shard count,
so output is deterministic for a given input and config. The writer concatenates parts
in chunk order at commit.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pyarrow as pa

from examplegen import encode, sources, tfrecord, typemap
from examplegen.errors import SourceError
from examplegen.sources import Records, WorkUnit
from examplegen.split import SplitPlan, assign_hash, assign_partition, assign_value, split_of_buckets
from examplegen.writer import part_file_name

GZIP_LEVEL = 1  # isal level 1: ~370 MB/s on this machine, ratio within 1% of level 2


@dataclasses.dataclass
class ChunkResult:
    input_split: int
    chunk: int
    rows: int = 0
    counts: list[int] = dataclasses.field(default_factory=list)
    rejected: int = 0  # bad rows skipped (counted in rows)
    parts: dict[str, int] = dataclasses.field(default_factory=dict)  # part file name -> records in it
    note: Any = None  # what the source's read() returned (see examplegen.sources.Plan.review)


class _PartSink:
    """Appends gzip members to the part files of one chunk."""

    def __init__(self, part_path: Callable[[int, int], str], out_index: Sequence[int], num_shards: int):
        self._path = part_path
        self._out_index = out_index  # plan-local split index -> the artifact's split index
        num_splits = len(out_index)
        self.num_shards = num_shards
        self.counts = [0] * num_splits
        self.parts: dict[str, int] = {}  # part file name -> records written to it
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
            name = os.path.basename(f.name)
            self.parts[name] = self.parts.get(name, 0) + count
            f.write(tfrecord.gzip_member(data, GZIP_LEVEL))

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


@dataclasses.dataclass(frozen=True)
class UnitTask:
    """One work unit of a source (examplegen.sources) and where its output goes."""

    source: str  # the format, found with examplegen.sources.get in the worker
    unit: WorkUnit
    options: Any  # the source's Options
    input_split: int
    chunk: int
    plan: SplitPlan
    out_index: tuple[int, ...]  # artifact split index of each of the plan's splits
    num_shards: int
    parts_dir: str

    @property
    def size(self) -> int:
        """Input bytes (for progress)."""
        return self.unit.size


def _frame_and_assign_hash(records, plan: SplitPlan) -> tuple[Optional[pa.Array], np.ndarray]:
    """(frames, split index) of hash-split records: sha256 and crc32c in one pass over them.
    A plan with one split needs no hashing; its frames are made by the sink (None here)."""
    if len(plan.names) == 1:
        return None, np.zeros(len(records), dtype=np.int32)
    framed, buckets = tfrecord.frame_and_bucket(records, plan.cumulative_buckets[-1])
    return framed, split_of_buckets(buckets, plan)


def _part_path(parts_dir: str, input_split: int, chunk: int) -> Callable[[int, int], str]:
    return lambda s, sh: os.path.join(parts_dir, part_file_name(input_split, chunk, s, sh))


def _split_of_examples(features: list, examples: pa.Array, plan: SplitPlan, where,
                       path: str) -> tuple[np.ndarray, Optional[pa.Array]]:
    """(split index, frames or None) of a batch of converted rows."""
    if not plan.needs_feature:
        framed, split_index = _frame_and_assign_hash(examples, plan)
        return split_index, framed
    by_name = {f.name: f for f in features}
    feature = by_name.get(plan.feature)
    if feature is None:
        raise SourceError(f"{path}: split feature {plan.feature!r} is not a column "
                          f"(columns: {[f.name for f in features]})")
    if plan.mode == "value":
        if pa.types.is_list(feature.values.type) or pa.types.is_large_list(feature.values.type):
            raise SourceError(f"{path}: value-split feature {plan.feature!r} has a list of values per "
                              "row; a value split needs one value per row")
        return assign_value(feature.values, plan, where), None
    return assign_partition(feature.feature, feature.kind, plan, where), None


def _split_of_records(batch: Records, plan: SplitPlan, where) -> np.ndarray:
    from examplegen import payload

    if plan.mode == "partition":
        keys, kind = payload.feature_keys(batch.records, batch.payload_format, plan.feature, where)
        return assign_partition(keys, kind, plan, where)
    if plan.mode == "value":
        values = payload.feature_values(batch.records, batch.payload_format, plan.feature, where)
        return assign_value(values, plan, where)
    return assign_hash(batch.records, plan)


def run_unit(task: UnitTask) -> ChunkResult:
    """Converts one work unit: the source reads it, every batch is converted (typed
    columns) or taken as read (records), assigned to splits and appended to part files."""
    source = sources.get(task.source)
    result = ChunkResult(task.input_split, task.chunk)
    sink = _PartSink(_part_path(task.parts_dir, task.input_split, task.chunk), task.out_index, task.num_shards)
    overrides = dict(getattr(task.options, "schema", None) or ())
    path = task.unit.path
    rows = 0
    reader = source.read(task.unit, task.options)
    try:
        while True:
            try:
                batch = next(reader)
            except StopIteration as stop:
                result.note = stop.value
                break

            def where(i: int, _offset=rows) -> str:
                return task.unit.where(_offset + i)

            if isinstance(batch, Records):
                split_index = _split_of_records(batch, task.plan, where)
                sink.write(batch.frames, split_index, rows, batch.frames)
                rows += len(batch.records)
                continue
            if isinstance(batch, pa.Table):  # a source may yield tables too
                batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else None
            elif not isinstance(batch, pa.RecordBatch):
                raise SourceError(f"{path}: source {task.source!r} yielded a {type(batch).__name__}; its read() "
                                  "must yield pyarrow RecordBatches (or Records)")
            if batch is None or batch.num_rows == 0:
                continue
            features = typemap.batch_features(batch, where, path, overrides)
            examples = encode.example_column([f.name for f in features], [f.feature for f in features])
            split_index, framed = _split_of_examples(features, examples, task.plan, where, path)
            sink.write(examples, split_index, rows, framed)
            rows += batch.num_rows
    finally:
        reader.close()
        sink.close()
    result.rows = rows
    result.counts = sink.counts
    result.parts = sink.parts
    return result


def run_task(task: UnitTask) -> ChunkResult:
    return run_unit(task)


__all__: Sequence[str] = ["UnitTask", "ChunkResult", "run_task", "run_unit"]
