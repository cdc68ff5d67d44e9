"""Work units that run in worker processes: one chunk of input in, gzip part files out.

A chunk is one work unit of a source (examplegen.sources): a row-aligned byte range of a
CSV file, Parquet row groups, a file, ... For each chunk a worker has the source read it
into typed Arrow batches, converts them to serialized tf.Examples (column-wise, see
examplegen.typemap and examplegen.encode) or takes the records as read (TFRecord
import), assigns every example to an output split
(examplegen.split), frames the records as TFRecords and writes one gzip part file per
(output split, shard). Shard of a row = its index among the chunk's written rows modulo the
shard count, so output is deterministic for a given input and config. The writer
concatenates parts in chunk order at commit. Bad rows go to the chunk's RowRejects
(examplegen.bad_rows), which sources that support it receive in ``read``: under the default
policy the first one fails the run, under ``skip`` they are left out and written to the
chunk's quarantine part. Rows with a value the type map rejects are searched for only when
a batch fails to convert (typemap.bad_rows), so the check costs nothing on good input.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from examplegen import fs, sources, tfrecord, typemap
from examplegen.bad_rows import BadRowPolicy, RowRejects, keep_mask
from examplegen.errors import SourceError
from examplegen.sources import Records, WorkUnit
from examplegen.split import SplitPlan, assign_partition, assign_value, split_of_buckets
from examplegen.writer import part_file_name, quarantine_part_name

GZIP_LEVEL = 1  # isal level 1: ~370 MB/s on this machine, ratio within 1% of level 2


@dataclasses.dataclass
class ChunkResult:
    input_split: int
    chunk: int
    rows: int = 0
    counts: list[int] = dataclasses.field(default_factory=list)
    rejected: int = 0  # bad rows skipped (counted in rows)
    parts: dict[str, int] = dataclasses.field(default_factory=dict)  # part file name -> records in it
    # part file name -> (size, SHA-256 hex) of the bytes written to it (see examplegen.unit_check)
    digests: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)
    note: Any = None  # what the source's read() returned (see examplegen.sources.Plan.review)
    quarantine: str = ""  # name of the quarantine part written (in the task's quarantine_dir), if any
    reasons: list[str] = dataclasses.field(default_factory=list)  # the first few bad rows' errors


class _PartSink:
    """Appends gzip members to the part files of one chunk, counting the records and
    hashing the bytes that go into each (the launcher checks both before it commits)."""

    def __init__(self, part_path: Callable[[int, int], str], out_index: Sequence[int], num_shards: int):
        self._path = part_path
        self._out_index = out_index  # plan-local split index -> the artifact's split index
        num_splits = len(out_index)
        self.num_shards = num_shards
        self.counts = [0] * num_splits
        self.parts: dict[str, int] = {}  # part file name -> records written to it
        self._files: dict[tuple[int, int], tuple[str, object, object]] = {}  # (name, file, sha256)
        self._sizes: dict[str, int] = {}

    def write(self, records: pa.Array, split_index: np.ndarray, row_offset: int,
              framed: Optional[pa.Array] = None, crcs: Optional[np.ndarray] = None) -> None:
        """Appends each (split, shard) group of the records' frames as one gzip member
        (``framed``: the records' frames as read, TFRecord import; ``crcs``: the records'
        CRC32C when already computed, see _assign_hash)."""
        n = len(records)
        if n == 0:
            return
        shard = np.arange(row_offset, row_offset + n, dtype=np.int64) % self.num_shards
        key = split_index.astype(np.int64) * self.num_shards + shard
        groups = (tfrecord.grouped_frames(framed, key) if framed is not None
                  else tfrecord.frames_by_key(records, key, crcs))
        for k, count, data in groups:
            s, sh = divmod(k, self.num_shards)
            self.counts[s] += count
            name, f, digest = self._files.get((s, sh)) or (None, None, None)
            if f is None:
                path = self._path(self._out_index[s], sh)
                name, f, digest = self._files[(s, sh)] = path.rsplit("/", 1)[-1], fs.open_write(path), hashlib.sha256()
            self.parts[name] = self.parts.get(name, 0) + count
            member = tfrecord.gzip_member(data, GZIP_LEVEL)
            digest.update(member)
            self._sizes[name] = self._sizes.get(name, 0) + len(member)
            f.write(member)

    @property
    def digests(self) -> dict[str, tuple[int, str]]:
        """Part file name -> (size, SHA-256 hex) of the bytes written to it."""
        return {name: (self._sizes.get(name, 0), digest.hexdigest()) for name, _, digest in self._files.values()}

    def close(self) -> dict[str, tuple[int, str]]:
        """Closes the part files; returns their ``digests``."""
        digests = self.digests
        for _, f, _ in self._files.values():
            f.close()
        self._files.clear()
        return digests


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
    bad_rows: BadRowPolicy = BadRowPolicy()
    quarantine_dir: str = ""  # where the unit's quarantine part goes (bad_rows="skip")
    origins: tuple[tuple[str, str], ...] = ()  # (downloaded file, its URI): bad rows are named by the URI
    # (file the unit reads, "sha256:<hex>" taken when the span was resolved): a file the unit
    # reads from its first byte to its end is checked against it (fs.expect_digests)
    input_digests: tuple[tuple[str, str], ...] = ()

    @property
    def size(self) -> int:
        """Input bytes (for progress)."""
        return self.unit.size


def _assign_hash(records, plan: SplitPlan) -> tuple[Optional[np.ndarray], np.ndarray]:
    """(CRC32C, split index) of hash-split records: sha256 and crc32c in one pass over them.
    A plan with one split needs no hashing; the sink computes the CRCs (None here)."""
    if len(plan.names) == 1:
        return None, np.zeros(len(records), dtype=np.int32)
    crcs, buckets = tfrecord.crc_and_bucket(records, plan.cumulative_buckets[-1])
    return crcs, split_of_buckets(buckets, plan)


def _part_path(parts_dir: str, input_split: int, chunk: int) -> Callable[[int, int], str]:
    return lambda s, sh: fs.join(parts_dir, part_file_name(input_split, chunk, s, sh))


def _no_split_value(plan: SplitPlan, feature: typemap.Feature) -> list[tuple[int, str]]:
    """(row, reason) of the rows without a value in the split feature (a partition feature
    of another kind is a whole-column error, left to assign_partition)."""
    if plan.mode == "value":
        missing, what = feature.values.is_null(), "value-split feature"
    elif feature.kind in ("int64", "bytes"):
        # An empty list serializes as the 2-byte header alone (see assign_partition).
        missing = pc.fill_null(pc.less_equal(pc.binary_length(feature.feature), 2), True)
        what = "partition feature"
    else:
        return []
    if not pc.any(missing).as_py():
        return []
    rows = np.flatnonzero(missing.to_numpy(zero_copy_only=False)).tolist()
    return [(i, f"{what} {plan.feature!r} has no value") for i in rows]


def _reject(problems: list[tuple[int, str]], rejects: RowRejects, where) -> None:
    """Hands bad rows of the current batch to ``rejects``; a source that cannot locate
    its rows (no row-level rejection) fails on the first."""
    if not rejects.located:
        row, reason = problems[0]
        raise SourceError(f"{where(row)}: {reason}")
    rejects.reject_rows(problems)


def _reject_bad_values(batch: pa.RecordBatch, overrides: dict, rejects: RowRejects) -> pa.RecordBatch:
    """The batch without the rows holding a value the type map rejects, which go to
    ``rejects`` (only after the batch failed to convert: the search costs nothing otherwise)."""
    problems = typemap.bad_rows(batch, overrides)
    rejects.reject_rows(problems)
    keep = keep_mask(batch.num_rows, (i for i, _ in problems))
    rejects.narrow(keep)
    return batch.filter(pa.array(keep))


def _split_of_examples(features: list, examples: pa.Array, plan: SplitPlan, where, path: str,
                       rejects: RowRejects) -> tuple[np.ndarray, Optional[np.ndarray], pa.Array]:
    """(split index, the examples' CRC32C or None, examples) of a batch of converted rows;
    rows without a split value go to ``rejects`` and are left out of the examples returned."""
    if not plan.needs_feature:
        crcs, split_index = _assign_hash(examples, plan)
        return split_index, crcs, examples
    by_name = {f.name: f for f in features}
    feature = by_name.get(plan.feature)
    if feature is None:
        raise SourceError(f"{path}: split feature {plan.feature!r} is not a column "
                          f"(columns: {[f.name for f in features]})")
    if plan.mode == "value" and (pa.types.is_list(feature.values.type) or pa.types.is_large_list(feature.values.type)):
        raise SourceError(f"{path}: value-split feature {plan.feature!r} has a list of values per "
                          "row; a value split needs one value per row")
    problems = _no_split_value(plan, feature)
    if problems:
        _reject(problems, rejects, where)
        keep = pa.array(keep_mask(len(examples), (i for i, _ in problems)))
        examples = examples.filter(keep)
        feature = typemap.Feature(feature.name, feature.values.filter(keep), feature.kind)
    if plan.mode == "value":
        return assign_value(feature.values, plan, where), None, examples
    return assign_partition(feature.feature, feature.kind, plan, where), None, examples


def _split_of_records(batch: Records, plan: SplitPlan, where, rejects: RowRejects) -> tuple[np.ndarray, pa.Array]:
    """(split index, frames) of records as read; records without a usable split value go
    to ``rejects`` and their frames are left out."""
    from examplegen import payload

    if plan.mode not in ("partition", "value"):
        if len(plan.names) == 1:
            return np.zeros(len(batch.frames), dtype=np.int32), batch.frames
        return split_of_buckets(tfrecord.frame_buckets(batch.frames, plan.cumulative_buckets[-1]), plan), batch.frames
    if plan.mode == "partition":
        keys, kind, problems = payload.feature_keys(batch.records, batch.payload_format, plan.feature)
    else:
        keys, problems = payload.feature_values(batch.records, batch.payload_format, plan.feature)
    frames = batch.frames
    if problems:
        _reject(problems, rejects, where)
        keep = keep_mask(len(batch.records), (i for i, _ in problems))
        frames = frames.filter(pa.array(keep))
        keys = keys.filter(pa.array(keep)) if isinstance(keys, pa.Array) else [k for k, ok in zip(keys, keep) if ok]
    if plan.mode == "partition":
        return assign_partition(keys, kind, plan, where), frames
    return assign_value(keys, plan, where), frames


@functools.lru_cache(maxsize=None)
def _takes_rejects(read) -> bool:
    """Whether a source's ``read`` accepts ``rejects`` (row-level rejection, see examplegen.sources)."""
    try:
        return "rejects" in inspect.signature(read).parameters
    except (TypeError, ValueError):
        return False


def _rejects(task: UnitTask) -> RowRejects:
    """The work unit's bad-row handler; under skip it writes the unit's quarantine part."""
    skip = task.bad_rows.skip and task.quarantine_dir
    part = fs.join(task.quarantine_dir, quarantine_part_name(task.input_split, task.chunk)) if skip else None
    return RowRejects(task.bad_rows, part, dict(task.origins))


def run_unit(task: UnitTask) -> ChunkResult:
    """Converts one work unit: the source reads it, every batch is converted (typed
    columns) or taken as read (records), assigned to splits and appended to part files.
    A file the unit reads whole must still have the digest it had when the span was
    resolved (``task.input_digests``), else the unit fails naming it."""
    with fs.expect_digests(dict(task.input_digests)):
        return _convert_unit(task)


def _convert_unit(task: UnitTask) -> ChunkResult:
    source = sources.get(task.source)
    result = ChunkResult(task.input_split, task.chunk)
    sink = _PartSink(_part_path(task.parts_dir, task.input_split, task.chunk), task.out_index, task.num_shards)
    overrides = dict(getattr(task.options, "schema", None) or ())
    path = task.unit.path
    rejects = _rejects(task)
    rows = 0  # rows the source yielded
    rejected_by_reader = 0  # rows the source itself rejected (never yielded)
    if _takes_rejects(source.read):
        reader = source.read(task.unit, task.options, rejects=rejects)
    else:
        reader = source.read(task.unit, task.options)
    digests: dict[str, tuple[int, str]] = {}
    try:
        while True:
            rejects.locate(None)
            before = rejects.count
            try:
                batch = next(reader)
            except StopIteration as stop:
                result.note = stop.value
                break
            finally:
                rejected_by_reader += rejects.count - before

            def where(i: int, _offset=rows) -> str:
                return rejects.where(i) if rejects.located else task.unit.where(_offset + i)

            if isinstance(batch, Records):
                rows += len(batch.records)
                split_index, frames = _split_of_records(batch, task.plan, where, rejects)
                sink.write(frames, split_index, sum(sink.counts), framed=frames)
                continue
            if isinstance(batch, pa.Table):  # a source may yield tables too
                batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else None
            elif not isinstance(batch, pa.RecordBatch):
                raise SourceError(f"{path}: source {task.source!r} yielded a {type(batch).__name__}; its read() "
                                  "must yield pyarrow RecordBatches (or Records)")
            if batch is None or batch.num_rows == 0:
                continue
            rows += batch.num_rows
            try:
                features = typemap.batch_features(batch, where, path, overrides)
            except typemap.BadValueError:
                if not (rejects.located and rejects.policy.skip):
                    raise  # the default policy (or a source that cannot name its rows): the first fails
                batch = _reject_bad_values(batch, overrides, rejects)
                if batch.num_rows == 0:
                    continue
                features = typemap.batch_features(batch, where, path, overrides)
            examples = typemap.examples(features)
            split_index, crcs, examples = _split_of_examples(features, examples, task.plan, where, path, rejects)
            sink.write(examples, split_index, sum(sink.counts), crcs=crcs)
    finally:
        reader.close()
        digests = sink.close()
        rejects.close()
    # Rows read, counted apart from the sink: the launcher checks read = written + rejected.
    result.rows = rows + rejected_by_reader
    result.rejected = rejects.count
    result.reasons = rejects.reasons
    result.counts = sink.counts
    result.parts = sink.parts
    result.digests = digests
    result.quarantine = rejects.path.rsplit("/", 1)[-1] if rejects.wrote else ""
    return result


def run_task(task: UnitTask) -> ChunkResult:
    return run_unit(task)


__all__: Sequence[str] = ["UnitTask", "ChunkResult", "run_task", "run_unit"]
