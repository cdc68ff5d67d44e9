"""Ingestion: resolve spans, convert and split the data, write the Examples artifact.

``ingest`` is the engine's entry point (the CLI and the KFP components call it):

1. parse the TFX-style configs; open the lineage store (a bad store fails before any data
   is read);
2. resolve the span(s) and the files of every input split, with content digests;
3. reuse an earlier identical run's artifact when ML Metadata has one (same config, same
   input fingerprint), unless ``force``;
4. convert: the input is cut into row-aligned chunks that worker processes turn into gzip
   TFRecord part files (examplegen.convert); the writer commits them atomically
   (examplegen.writer);
5. record the run, its inputs and its output in ML Metadata.

``resplit`` re-splits an existing Examples artifact the same way.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import sys
import threading
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Optional, Sequence

from examplegen import __version__, fs, sources, worker_pool
from examplegen import sources as sources_module
from examplegen.config import (
    InputConfig,
    InputSplit,
    OutputConfig,
    effective_output_config,
    effective_output_splits,
    load_object,
    parse_input_config,
    parse_output_config,
    parse_range_config,
)
from examplegen.bad_rows import QUARANTINE_DIR, QUARANTINE_PATH, BadRowPolicy, RejectTally
from examplegen.convert import ChunkResult, UnitTask, run_task
from examplegen.errors import ConfigError, ExampleGenError, OutputError, SourceError, os_error_message
from examplegen.output_lock import lock_output
from examplegen.unit_check import check_units
from examplegen.payload import VERIFY_MODES, normalize_payload_format
from examplegen.result import IngestResult
from examplegen.sources import tfrecord as tfrecord_source
from examplegen.span import SpanResolution, combined_fingerprint, resolve_spans
from examplegen.split import SplitPlan, plan_for
from examplegen.writer import ExamplesWriter, is_complete, read_metadata, split_dir

log = logging.getLogger(__name__)

CHUNK_BYTES = 16 << 20  # input bytes per work unit (sources that can cut their files)
SHARD_BYTES = 256 << 20  # input bytes per output shard when the shard count is automatic
# Starting worker processes costs ~1.5 s here (interpreter + pyarrow per worker); below this
# much input one process is faster.
PARALLEL_MIN_BYTES = 64 << 20
MAX_SHARDS = 1000  # output files per split; also the automatic choice's cap
MAX_WORKERS = 256
ENGINES = ("local", "beam")  # what runs the work units: this machine's processes, or Apache Beam


@dataclasses.dataclass
class _InputSplitFiles:
    name: str
    files: list[str]
    origins: dict[str, str] = dataclasses.field(default_factory=dict)  # downloaded file -> its URI


def _auto_shards(total_bytes: int) -> int:
    return max(1, min(MAX_SHARDS, math.ceil(total_bytes / SHARD_BYTES)))


def check_run_options(num_shards: Any, workers: Any, lock_timeout: Any) -> None:
    """Bounds of the run options, checked before anything is read or written."""
    def check(value, name, option, low, high, what):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{name} ({option}) must be {what}, got {value!r}")

    check(num_shards, "num_shards", "--num-shards", 0, MAX_SHARDS,
          f"0 (automatic) or an output file count per split from 1 to {MAX_SHARDS}")
    check(workers, "workers", "--workers", 0, MAX_WORKERS,
          f"0 (one per CPU core) or a number of units converted at once (this process and "
          f"workers - 1 worker processes) from 1 to {MAX_WORKERS}")
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) \
            or not 0 <= lock_timeout < math.inf:
        raise ConfigError(f"lock_timeout (--lock-timeout) must be 0 (fail at once) or a number of "
                          f"seconds to wait, got {lock_timeout!r}")


class _Runner:
    """Runs work units, results in submission order: inline (one worker), or ``workers`` at
    a time, one in a thread of this process and the others on a pool of ``workers - 1``
    spawned processes. Converting here too saves starting one interpreter that imports
    pyarrow and the engine (~0.5 s of CPU), a sixth of a 1M-row Parquet run on 2 cores
    (bench/README.md); this process is otherwise idle while the workers convert."""

    def __init__(self, workers: int, progress: bool, total_bytes: int):
        self.workers = workers
        self._pool: Optional[ProcessPoolExecutor] = None
        self._bar = None
        self._bar_lock = threading.Lock()
        if workers > 1:
            # Spawned (examplegen.worker_pool); started now, so that they import the engine
            # while this process reads headers and samples types, unless the command started
            # them even earlier.
            self._pool = worker_pool.take(workers - 1) or worker_pool.start(workers - 1)
        else:
            worker_pool.discard()
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="ingest",
                             file=sys.stderr, leave=False)

    def run(self, tasks: Iterable) -> list[ChunkResult]:
        """Runs the tasks (an iterable, consumed as workers free up) and returns their results
        in task order. Each task has a ``size`` in input bytes for the progress bar. A
        failure anywhere stops handing out tasks; the unit this process is converting is
        finished before the failure is raised, so nothing writes parts after it."""
        if self.workers <= 1:
            results = []
            for task in tasks:
                results.append(run_task(task))
                self._advance(task.size)
            return results
        numbered = enumerate(tasks)
        take_lock, stop = threading.Lock(), threading.Event()
        results: dict[int, ChunkResult] = {}
        failure: list[BaseException] = []

        def take():
            with take_lock:
                return None if stop.is_set() else next(numbered, None)

        def convert_here() -> None:
            try:
                while (item := take()) is not None:
                    index, task = item
                    results[index] = run_task(task)
                    self._advance(task.size)
            except BaseException as exc:  # noqa: BLE001 - raised by run() in the caller's thread
                failure.append(exc)
                stop.set()

        here = threading.Thread(target=convert_here, name="examplegen-convert", daemon=True)
        here.start()
        try:
            window = 2 * (self.workers - 1)  # tasks in flight on the pool: busy workers, bounded memory
            pending: collections.deque = collections.deque()
            while not stop.is_set():
                while len(pending) < window and (item := take()) is not None:
                    index, task = item
                    pending.append((index, self._pool.submit(run_task, task), task.size))
                if not pending:
                    break
                index, future, size = pending.popleft()
                results[index] = self._result(future)
                self._advance(size)
        except BaseException:
            stop.set()
            raise
        finally:
            here.join()
        if failure:
            raise failure[0]
        return [results[index] for index in range(len(results))]

    @staticmethod
    def _result(future) -> ChunkResult:
        try:
            return future.result()
        except BrokenProcessPool:
            raise ExampleGenError(
                "a worker process died (killed, out of memory, or it could not start: a script "
                "that calls ingest() must do so under `if __name__ == \"__main__\":`, because "
                "workers are started with multiprocessing's spawn method); pass workers=1 to "
                "convert in this process") from None

    def _advance(self, size: int) -> None:
        if self._bar is not None:
            with self._bar_lock:
                self._bar.update(size)

    def close(self, wait: bool = True) -> None:
        """Shuts the workers down; ``wait=False`` lets them exit while this process goes on
        (with the commit), and a later close() waits for them."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _split_files(resolutions: Sequence[SpanResolution]) -> list[_InputSplitFiles]:
    """Files per input split over all resolved spans (spans ascending)."""
    out: dict[str, _InputSplitFiles] = {}
    for r in resolutions:
        for s in r.splits:
            out.setdefault(s.name, _InputSplitFiles(s.name, [])).files.extend(s.files)
    return list(out.values())


def _local_split_files(resolutions: Sequence[SpanResolution], sources: list, source_format: str,
                       stack: contextlib.ExitStack) -> tuple[list[_InputSplitFiles], dict[str, str]]:
    """_split_files with remote inputs made readable by the source, and {path: input URI}.

    A source that reads URLs itself (``READS_URLS``, all built-in file formats) gets them as
    they are: its workers read their ranges, row groups or files from the store. For other
    sources remote inputs are downloaded (fs.localize) and checked against their digests,
    to $EXAMPLEGEN_INPUT_CACHE when set (kept between runs), else to a temporary
    directory removed after the run.
    """
    split_files = _split_files(resolutions)
    paths = [f for s in split_files for f in s.files]
    uris = {p: p for p in paths}
    if any(fs.is_remote(p) for p in paths) and not getattr(sources_module.get(source_format), "READS_URLS", False):
        cache_dir = os.environ.get("EXAMPLEGEN_INPUT_CACHE") or stack.enter_context(
            tempfile.TemporaryDirectory(prefix="examplegen-inputs-"))
        local = fs.localize(paths, cache_dir, {s.uri: s.digest for s in sources})
        uris = {local[p]: p for p in paths}
        for split in split_files:
            split.origins = {local[f]: f for f in split.files if local[f] != f}
            split.files = [local[f] for f in split.files]
    return split_files, uris


def _worker_digests(split_files: list[_InputSplitFiles], sources: list) -> dict[str, str]:
    """{path a worker reads: the digest its input had when the span was resolved} (a
    downloaded copy gets its URI's digest)."""
    by_uri = {s.uri: s.digest for s in sources}
    out = {}
    for split in split_files:
        for path in split.files:
            digest = by_uri.get(split.origins.get(path, path))
            if digest:
                out[path] = digest
    return out


def _remote_versions(split_files: list[_InputSplitFiles]) -> dict[str, Optional[str]]:
    """{URL: version} of the remote inputs the workers read in place (fs.version)."""
    return {f: fs.version(f) for s in split_files for f in s.files if fs.is_remote(f)}


def _check_unchanged(versions: dict[str, Optional[str]]) -> None:
    """The remote inputs are the objects whose digests were taken: none was replaced while
    the workers read them (checked before the commit)."""
    for url, before in versions.items():
        now = fs.version(url)
        if now != before:
            raise SourceError(f"{url}: the object was replaced while it was being converted ({before}, now "
                              f"{now}); nothing was committed, run again")


def _drop_files_without_rows(split_files: list[_InputSplitFiles], uris: dict[str, str],
                             source_format: str, options: Any) -> dict[str, list[str]]:
    """Leaves out input files that hold no rows (an empty file, a CSV header alone, a
    TFRecord file without records: the source's optional ``has_rows``) with a warning
    naming each; an input split none of whose files has rows is an error. Returns
    {input split: [URIs left out]}."""
    source = sources.get(source_format)
    has_rows = getattr(source, "has_rows", None)
    if has_rows is None:
        return {}
    what = getattr(source, "ROWS_NAME", "rows")
    left_out = {}
    for split in split_files:
        empty = [f for f in split.files if not has_rows(f, options)]
        if not empty:
            continue
        names = [uris.get(f, f) for f in empty]
        if len(empty) == len(split.files):
            raise SourceError(f"input split {split.name!r}: no {what} in {', '.join(names)}")
        for name in names:
            log.warning("%s: no %s; skipped (input split %r has other files)", name, what, split.name)
        split.files = [f for f in split.files if f not in empty]
        left_out[split.name] = names
    return left_out


def _convert(split_files: list[_InputSplitFiles], plans: list[tuple[str, SplitPlan]], split_names: list[str],
             source_format: str, source_options: Any, writer: ExamplesWriter, runner, tally: RejectTally, *,
             chunk_bytes: int, digests: Optional[dict[str, str]] = None) -> tuple[dict[str, int], int, dict]:
    """_convert_plans, then every source Plan it made closed (Plan.close: a query source drops
    its temporary tables), whether the conversion succeeded or failed."""
    opened: list = []
    try:
        return _convert_plans(split_files, plans, split_names, source_format, source_options, writer, runner,
                              tally, chunk_bytes=chunk_bytes, opened=opened, digests=digests or {})
    finally:
        for source_plan in opened:
            if source_plan.close is not None:
                source_plan.close()


def _convert_plans(split_files: list[_InputSplitFiles], plans: list[tuple[str, SplitPlan]], split_names: list[str],
                   source_format: str, source_options: Any, writer: ExamplesWriter, runner, tally: RejectTally, *,
                   chunk_bytes: int, opened: list, digests: dict[str, str]) -> tuple[dict[str, int], int, dict]:
    """Converts every input split into the writer's part files; ``tally`` counts the rows
    read and rejected and applies the bad-row limits. Returns counts, rows, extras. Every
    source Plan made is appended to ``opened`` as soon as it exists. ``digests`` ({path:
    "sha256:<hex>"}): each unit gets those of the files it names (its path, and ``files``
    for units of several files), checked by the worker when it reads a file whole.

    The units of all input splits go to the runner as one batch (one Beam pipeline), and
    their results are verified (examplegen.unit_check) before they count; an input split
    whose source asks for another pass (CSV: a column is wider than the sample showed) is
    converted again, in a second batch (its rows rejected in the first are forgotten).
    """
    source = sources.get(source_format)
    by_name = {s.name: s for s in split_files}
    # Output split indices of each plan's splits within the artifact's split list.
    out_index = [tuple(split_names.index(n) for n in plan.names) for _, plan in plans]
    pending: dict[int, Any] = {}  # input split index -> the source's Plan still to convert
    for k, (input_name, plan) in enumerate(plans):
        files = by_name[input_name].files
        source_plan = source.plan(input_name, files, source_options, chunk_bytes)
        opened.append(source_plan)
        if plan.needs_feature and source_plan.columns is not None and plan.feature not in source_plan.columns:
            raise ConfigError(f"split feature {plan.feature!r} is not a column of {files[0]} "
                              f"(columns: {list(source_plan.columns)})")
        pending[k] = source_plan
    # downloaded file -> its URI, per input split: bad rows are named by the URI
    origins = [tuple(sorted(by_name[input_name].origins.items())) for input_name, _ in plans]
    done: dict[int, tuple[Any, list[ChunkResult]]] = {}
    while pending:
        planned: list[UnitTask] = []

        def tasks():  # consumed lazily by the local engine: conversion starts with the first unit
            for k, source_plan in pending.items():
                for i, unit in enumerate(source_plan.units):
                    task = UnitTask(source_format, unit, source_options, k, i, plans[k][1], out_index[k],
                                    writer.num_shards, writer.parts_dir, tally.policy, writer.quarantine_parts,
                                    origins[k], _unit_digests(unit, digests))
                    planned.append(task)
                    yield task

        results = check_units(planned, runner.run(tasks()), writer.parts_dir)
        for r in results:
            tally.add(r.input_split, r.rows, r.rejected, r.reasons)
        again = {}
        for k, source_plan in pending.items():
            split_results = [r for r in results if r.input_split == k]
            new_plan = source_plan.review([r.note for r in split_results]) if source_plan.review else None
            if new_plan is None:
                done[k] = (source_plan, split_results)
            else:
                writer.discard_parts(k)
                tally.restart(k)
                again[k] = new_plan
                opened.append(new_plan)
        pending = again
    verified = [r for k in sorted(done) for r in done[k][1]]
    writer.expect_parts([name for r in verified for name in r.parts], [r.quarantine for r in verified if r.quarantine],
                        {name: digest for r in verified for name, digest in r.digests.items()})
    counts = {name: 0 for name in split_names}
    rows = 0
    extras: dict[str, Any] = {}
    for k, (input_name, _) in enumerate(plans):
        source_plan, split_results = done[k]
        for key, value in source_plan.info.items():
            extras.setdefault(key, {})[input_name] = value
        for r in split_results:
            rows += r.rows
            for local, count in enumerate(r.counts):
                counts[split_names[out_index[k][local]]] += count
    return counts, rows, extras


def _unit_digests(unit, digests: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """(path, digest) of the files a work unit names that have a recorded digest."""
    if not digests:
        return ()
    paths = dict.fromkeys((unit.path, *getattr(unit, "files", ())))
    return tuple((p, digests[p]) for p in paths if p in digests)


def _open_runner(engine: str, beam_pipeline_args: Optional[Sequence[str]], workers: int, progress: bool,
                 total_bytes: int, writer: ExamplesWriter):
    """The engine that runs the work units: this machine's process pool, or Apache Beam."""
    if engine == "beam":
        from examplegen.beam_engine import BeamRunner

        return BeamRunner(beam_pipeline_args or (), writer.staging)
    return _Runner(workers, progress, total_bytes)


def check_engine(engine: str, beam_pipeline_args: Optional[Sequence[str]], workers: int = 0) -> list[str]:
    """Validates the engine arguments; returns beam_pipeline_args as a list."""
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is unknown; use one of {', '.join(ENGINES)}")
    if isinstance(beam_pipeline_args, str):
        raise ConfigError("beam_pipeline_args must be a list of arguments, e.g. "
                          "['--runner=DataflowRunner', '--project=my-project'], not one string")
    args = list(beam_pipeline_args or ())
    if args and engine != "beam":
        raise ConfigError("beam_pipeline_args apply to engine='beam' only; pass engine='beam' as well")
    if engine == "beam" and workers:
        raise ConfigError("workers applies to engine='local'; with engine='beam' the Beam runner decides "
                          "(see its options in beam_pipeline_args)")
    return args


def convert_files(split_files: list[_InputSplitFiles], output_uri: str, *, source_format: str,
                  input_config: InputConfig, output_config: OutputConfig, source_options: Any = None,
                  payload_format: str = "FORMAT_TF_EXAMPLE", num_shards: int = 0, workers: int = 0,
                  progress: bool = False, metadata: Optional[dict | Callable[[dict], dict]] = None,
                  chunk_bytes: Optional[int] = None, total_bytes: Optional[int] = None,
                  bad_rows: BadRowPolicy = BadRowPolicy(), engine: str = "local",
                  beam_pipeline_args: Optional[Sequence[str]] = None, digests: Optional[dict[str, str]] = None):
    """Converts resolved input files into a committed Examples artifact at ``output_uri``.
    Returns split names, counts, rows read, shard count, extras and the rows rejected.

    ``source_options``: the source's Options (examplegen.sources); None for its defaults.
    ``metadata``: the artifact's metadata, or a function of the sources' extras (Plan.info
    by key and input split) giving it, called before the commit. ``total_bytes``: the input
    size when the inputs are not files (queries); it picks the shard and worker counts.
    ``bad_rows``: the bad-row policy (examplegen.bad_rows).
    ``engine``: "local" (worker processes on this machine) or "beam" (an Apache Beam
    pipeline with ``beam_pipeline_args``); both give the same artifact.
    ``digests``: {input path: "sha256:<hex>"} taken when the files were resolved; a file a
    work unit reads from its first byte to its end is checked against it by the worker.
    """
    beam_pipeline_args = check_engine(engine, beam_pipeline_args, workers)
    if source_options is None:
        source_options = sources.get(source_format).Options.from_dict(None)
    effective = effective_output_config(input_config, output_config)
    split_names = effective_output_splits(input_config, output_config)
    plans = plan_for(effective, [s.name for s in input_config.splits])
    if total_bytes is None:
        work_bytes = getattr(sources.get(source_format), "work_bytes", None) or (lambda path, _: fs.size(path))
        total_bytes = sum(work_bytes(f, source_options) for s in split_files for f in s.files)
    num_shards = num_shards or _auto_shards(total_bytes)
    if not workers:
        workers = worker_pool.default_workers() if total_bytes >= PARALLEL_MIN_BYTES else 1
    writer = ExamplesWriter(output_uri, split_names, num_shards, quarantine=bad_rows.skip)
    runner = None
    tally = RejectTally(bad_rows)
    try:
        runner = _open_runner(engine, beam_pipeline_args, workers, progress and sys.stderr.isatty(), total_bytes,
                              writer)
        counts, rows, extras = _convert(split_files, plans, split_names, source_format, source_options, writer,
                                        runner, tally, chunk_bytes=chunk_bytes or CHUNK_BYTES, digests=digests)
        runner.close(wait=False)  # the workers exit during the commit
        tally.finish()
        md = dict((metadata(extras) if callable(metadata) else metadata) or {})
        md.update({"split_names": json.dumps(split_names), "example_counts": json.dumps(counts, sort_keys=True),
                   "payload_format": payload_format, "file_format": "tfrecords_gzip",
                   "num_shards": num_shards})
        if bad_rows.skip:
            md.update({"rows_rejected": tally.rejected, "quarantine_file": QUARANTINE_PATH})
        writer.commit(md)
    except OSError as exc:
        writer.abort()
        if not _is_output_failure(exc, writer.output_uri):
            raise
        raise OutputError(_output_failure_message(exc, writer)) from exc
    except BaseException:
        writer.abort()
        raise
    finally:
        if runner is not None:
            runner.close()
    return split_names, counts, rows, num_shards, extras, tally.rejected


def _source_options(source_format: str, csv_options: Optional[dict], source_options: Any,
                    payload_format: str, verify_payload: str):
    """The source's Options from the API's arguments (csv_options: CSV's own keyword;
    payload_format and verify_payload: options of the records sources that have them)."""
    source = sources.get(source_format)
    if csv_options and source_format != "csv":
        raise ConfigError("csv options apply to --format csv only")
    given = dict(csv_options or {})
    fields = getattr(source.Options, "__dataclass_fields__", {})
    given.update({key: value for key, value in (("payload_format", payload_format),
                                                ("verify_payload", verify_payload)) if key in fields})
    given.update(load_object(source_options, "source_options") or {})
    return source.Options.from_dict(given)


def _default_input_config(source_format: str, options: Any, input_config: Any) -> Any:
    """The source's default input pattern (e.g. '*/*' for labels from folders) when no input
    config is given."""
    pattern = getattr(sources.get(source_format), "default_input_pattern", None)
    if input_config not in (None, "") or pattern is None:
        return input_config
    return {"splits": [{"name": "single_split", "pattern": pattern(options)}]}


def _source_for_output(source_format: str, options: Any, output_uri: str, input_base: str,
                       store_of: Optional[Any]) -> Any:
    """The options after the source's optional ``for_output`` hook, which may take settings
    from the previous artifact (e.g. its label map): the committed artifact at the output,
    else the newest one ML Metadata records for the same input base and format (when
    lineage is on; ``store_of()`` opens the store)."""
    hook = getattr(sources.get(source_format), "for_output", None)
    if hook is None:
        return options

    def previous() -> Optional[dict]:
        if os.path.exists(os.path.join(output_uri, "examples_metadata.json")):
            return read_metadata(output_uri)
        if store_of is None:
            return None
        from examplegen.lineage.query import latest_examples_properties

        return latest_examples_properties(store_of(), {"source_format": source_format, "input_base": input_base})

    return hook(options, previous)


def _prepare_source(source_format: str, options: Any, split_files: list[_InputSplitFiles]) -> tuple[Any, dict]:
    """(options for the run, extra artifact metadata) from the source's optional hooks."""
    source = sources.get(source_format)
    if hasattr(source, "prepare"):
        options = source.prepare(options, {s.name: list(s.files) for s in split_files})
    extra = source.artifact_metadata(options) if hasattr(source, "artifact_metadata") else {}
    return options, {key: value for key, value in extra.items() if value is not None}


def _reused_source_metadata(source_format: str, options: Any, output_uri: str) -> dict:
    """The source's artifact metadata (its keys: see artifact_metadata) as the reused
    artifact at ``output_uri`` recorded it."""
    source = sources.get(source_format)
    keys = source.artifact_metadata(options) if hasattr(source, "artifact_metadata") else {}
    recorded = read_metadata(output_uri)
    return {key: recorded[key] for key in keys if key in recorded}


def _is_query_format(source_format: str) -> bool:
    """True for a query source (examplegen.sources.query), which takes a connection, not files."""
    return bool(getattr(sources.get(source_format), "QUERY", False))


def _is_output_failure(exc: OSError, output_uri: str) -> bool:
    """Whether an OSError is about writing the output (a write() on a full disk names no file)."""
    if not isinstance(exc.filename, (str, bytes)):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
    return os.path.abspath(os.fsdecode(exc.filename)).startswith(output_uri + os.sep)


def _output_failure_message(exc: OSError, writer: ExamplesWriter) -> str:
    if writer.replacing:
        state = "the earlier artifact there was partly replaced and no longer counts as complete"
    elif writer.had_artifact:
        state = "the earlier artifact there is unchanged"
    else:
        state = "no artifact was written"
    reason = os_error_message(OSError(exc.errno, exc.strerror))  # the output, not a staging file
    return (f"cannot write the Examples artifact to {writer.output_uri}: {reason}. "
            f"The partial output was removed; {state}")


def _load_configs(input_config, output_config, range_config):
    return parse_input_config(input_config), parse_output_config(output_config), parse_range_config(range_config)


def ingest(input_base: str, output_uri: str, *, source_format: str = "csv",
           input_config: Any = None, output_config: Any = None, range_config: Any = None,
           csv_options: Optional[dict] = None, source_options: Optional[dict] = None,
           payload_format: str = "FORMAT_TF_EXAMPLE", verify_payload: str = "structure",
           num_shards: int = 0, workers: int = 0, mlmd: Optional[str] = None, record_lineage: bool = True,
           pipeline_name: str = "examplegen", run_name: Optional[str] = None, force: bool = False,
           progress: bool = False, expected_fingerprint: Optional[str] = None,
           lock_timeout: float = 0, bad_rows: str = "fail", max_bad_rows: Optional[int] = None,
           max_bad_ratio: Optional[float] = None, engine: str = "local",
           beam_pipeline_args: Optional[Sequence[str]] = None) -> IngestResult:
    """Ingests the files under ``input_base`` into an Examples artifact at ``output_uri``.

    ``source_format``: a built-in format (examplegen.sources.BUILTIN), an entry point of the
    ``examplegen.sources`` group or a module path; ``source_options``: that source's options
    (a dict, JSON text or a .json path; ``csv_options`` is the same for CSV).
    ``expected_fingerprint`` (from an earlier ``resolve``) makes the run fail before
    anything is written when the resolved files are not exactly those. Another run holding
    ``output_uri`` (examplegen.output_lock) is an OutputError at once, or after waiting up
    to ``lock_timeout`` seconds for it.

    ``bad_rows``: "fail" (default) stops at the first bad row; "skip" leaves bad rows out
    and lists them in <output>/Quarantine/bad_rows.jsonl.gz, failing the run when more than
    ``max_bad_rows`` or a share above ``max_bad_ratio`` of the rows read are bad (see
    examplegen.bad_rows).
    ``engine``: "local" (worker processes on this machine, the default) or "beam": the same
    work units as an Apache Beam pipeline run with ``beam_pipeline_args`` (TFX's spelling,
    e.g. ``["--runner=DataflowRunner", "--project=..."]``); the artifact is the same.
    """
    beam_pipeline_args = check_engine(engine, beam_pipeline_args, workers)
    if verify_payload not in VERIFY_MODES:
        raise ConfigError(f"verify_payload {verify_payload!r} is unknown; use one of {', '.join(VERIFY_MODES)}")
    check_run_options(num_shards, workers, lock_timeout)
    if _is_query_format(source_format):
        raise ConfigError(f"format {source_format!r} runs queries: give the database with --connection "
                          "(examplegen.query_ingest.ingest_query), not an input base")
    policy = BadRowPolicy.create(bad_rows, max_bad_rows, max_bad_ratio)
    opts = _source_options(source_format, csv_options, source_options, payload_format, verify_payload)
    base_uri = os.path.abspath(input_base) if not fs.is_remote(input_base) else input_base
    store = _LazyStore(mlmd) if record_lineage else None
    opts = _source_for_output(source_format, opts, output_uri, base_uri, store)
    input_config = _default_input_config(source_format, opts, input_config)
    in_cfg, out_cfg, range_cfg = _load_configs(input_config, output_config, range_config)
    payload_format = getattr(opts, "payload_format", "FORMAT_TF_EXAMPLE")
    effective_out = effective_output_config(in_cfg, out_cfg)
    config = {
        "source_format": source_format,
        "input_base": base_uri,
        "input_config": in_cfg.to_dict(),
        "output_config": effective_out.to_dict(),
        "range_config": range_cfg.to_dict() if range_cfg else None,
        "csv_options": opts.to_dict() if source_format == "csv" else None,
        "source_options": opts.to_dict() if source_format not in ("csv", "tfrecord") else None,
        "payload_format": payload_format,
        "num_shards": num_shards,
    }
    if policy.skip:  # a different artifact: never reuse one of another policy
        config["bad_rows"] = policy.to_dict()
    recorder = _open_recorder(mlmd, record_lineage, "examplegen.Ingest", pipeline_name, run_name, config,
                              store=store.opened if store is not None else None)
    started = time.time()
    with lock_output(output_uri, lock_timeout), recorder, contextlib.ExitStack() as stack:
        resolutions = resolve_spans(input_base, in_cfg, range_cfg)
        fingerprint = combined_fingerprint(resolutions)
        if expected_fingerprint and fingerprint != expected_fingerprint:
            raise SourceError(
                f"the input files changed since they were resolved: resolved fingerprint "
                f"{expected_fingerprint}, now {fingerprint}; nothing was written, rerun the pipeline")
        sources = [s for r in resolutions for s in r.sources()]
        spans = [r.span for r in resolutions]
        last = resolutions[-1]
        recorder.record_inputs(sources)
        if not force:
            cached = recorder.find_cached(fingerprint)
            if cached is not None:
                result = _reuse(cached, output_uri)
                result.extra_metadata = _reused_source_metadata(source_format, opts, output_uri)
                recorder.complete_cached(result)
                return result
        span_md = {"span": last.span, "input_fingerprint": fingerprint}
        if last.version is not None:
            span_md["version"] = last.version
        if len(spans) > 1:
            span_md["spans"] = json.dumps(spans)
        split_files, uris = _local_split_files(resolutions, sources, source_format, stack)
        versions = _remote_versions(split_files)
        without_rows = _drop_files_without_rows(split_files, uris, source_format, opts)
        opts, extra_md = _prepare_source(source_format, opts, split_files)
        span_md.update(extra_md)
        split_names, counts, rows, num_shards, extras, rejected = convert_files(
            split_files, output_uri, source_format=source_format,
            input_config=in_cfg, output_config=out_cfg, source_options=opts,
            payload_format=payload_format, num_shards=num_shards,
            workers=workers, progress=progress, metadata=lambda _: _check_unchanged(versions) or span_md,
            bad_rows=policy, engine=engine, beam_pipeline_args=beam_pipeline_args,
            digests=_worker_digests(split_files, sources))
        if without_rows:
            extras["files_without_rows"] = without_rows
        result = IngestResult(
            output_uri=fs.absolute(output_uri), split_names=split_names, counts=counts,
            span=last.span, version=last.version, input_fingerprint=fingerprint,
            payload_format=payload_format, spans=spans, rows_read=rows,
            rows_written=sum(counts.values()), rows_rejected=rejected, sources=sources, extra_metadata=extra_md,
            config=dict(config, **extras, engine=engine, elapsed_seconds=round(time.time() - started, 3)),
            files_digest=read_metadata(output_uri).get("files_digest"),
            quarantine_file=QUARANTINE_PATH if policy.skip else None)
        recorder.complete(result)
        return result


def _reuse(cached: IngestResult, output_uri: str) -> IngestResult:
    """An earlier artifact with the same data and config: make ``output_uri`` hold it."""
    target = fs.absolute(output_uri)
    source = fs.absolute(cached.output_uri)
    if source != target:
        writer = ExamplesWriter(target, cached.split_names, 1)
        try:
            if writer.remote or fs.is_remote(source):
                _copy_splits_as_parts(source, writer)
            else:
                import shutil

                for split in cached.split_names:
                    shutil.copytree(split_dir(source, split), os.path.join(writer.staging, f"Split-{split}"))
                if os.path.isdir(os.path.join(source, QUARANTINE_DIR)):
                    shutil.copytree(os.path.join(source, QUARANTINE_DIR), os.path.join(writer.staging, QUARANTINE_DIR))
                writer._assemble = lambda: None  # the splits are already complete copies
            writer.commit(read_metadata(source))
        except BaseException:
            writer.abort()
            raise
    return dataclasses.replace(cached, output_uri=target, cached=True)


def _copy_splits_as_parts(source: str, writer: ExamplesWriter) -> None:
    """Stages the shard files of the artifact at ``source`` as the writer's part files,
    one part per shard, so that its commit writes the same files (streamed copies)."""
    from examplegen.writer import part_file_name

    recorded = [entry["path"] for entry in read_metadata(source).get("files", [])]
    written = []
    for s, split in enumerate(writer.split_names):
        prefix = f"Split-{split}/"
        # The files examples_metadata.json lists (verified before reuse), not a listing.
        names = sorted(p[len(prefix):] for p in recorded if p.startswith(prefix)) or fs.listdir(split_dir(source, split))
        writer.num_shards = max(writer.num_shards, len(names))
        for shard, name in enumerate(names):
            part = part_file_name(0, 0, s, shard)
            with fs.open_read(fs.join(split_dir(source, split), name)) as f, \
                    fs.open_write(fs.join(writer.parts_dir, part)) as out:
                fs._copy(f, out)
            written.append(part)
    writer.expect_parts(written)


class _NoLineage:
    """Stands in for the lineage recorder when lineage is switched off."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def find_cached(self, fingerprint):
        return None

    def record_inputs(self, sources):
        pass

    def complete(self, result=None, **_):
        pass

    def complete_cached(self, result):
        pass

    def set_properties(self, **properties):
        pass

    def record_input_examples(self, uri, metadata=None):
        pass


class _LazyStore:
    """Opens the lineage store on first call, once (``opened``: the store, if it was)."""

    def __init__(self, mlmd: Optional[str]):
        self.mlmd = mlmd
        self.opened = None

    def __call__(self):
        if self.opened is None:
            from examplegen.lineage import open_store

            self.opened = open_store(self.mlmd)
        return self.opened


def _open_recorder(mlmd, record_lineage, execution_type, pipeline_name, run_name, config, store=None):
    if not record_lineage:
        return _NoLineage()
    from examplegen.lineage import Recorder, open_store

    store = store or open_store(mlmd)
    return Recorder(store, execution_type=execution_type, pipeline_name=pipeline_name,
                    run_name=run_name, config=config, engine_version=__version__)


def resolve(input_base: str, input_config: Any = None, range_config: Any = None, *,
            source_format: str = "csv", source_options: Any = None,
            mlmd: Optional[str] = None, record_lineage: bool = True, pipeline_name: str = "examplegen",
            run_name: Optional[str] = None) -> tuple[list[SpanResolution], str]:
    """Resolves the spans to ingest, recorded as an examplegen.ResolveSpan execution.

    Without an input config the format's default pattern applies, as in ``ingest``
    (``source_format`` and ``source_options``: e.g. images read ``*/*``, labels from
    folders). Returns the resolutions (ascending spans) and the input fingerprint that
    ``ingest`` computes for the same files.
    """
    if _is_query_format(source_format):
        raise ConfigError(f"format {source_format!r} runs queries: there are no files to resolve")
    if input_config in (None, "", {}):
        opts = _source_options(source_format, None, source_options, "FORMAT_TF_EXAMPLE", "structure")
        input_config = _default_input_config(source_format, opts, None)
    in_cfg, _, range_cfg = _load_configs(input_config, None, range_config)
    config = {"input_base": os.path.abspath(input_base) if not fs.is_remote(input_base) else input_base,
              "input_config": in_cfg.to_dict(), "range_config": range_cfg.to_dict() if range_cfg else None}
    recorder = _open_recorder(mlmd, record_lineage, "examplegen.ResolveSpan", pipeline_name, run_name, config)
    with recorder:
        resolutions = resolve_spans(input_base, in_cfg, range_cfg)
        fingerprint = combined_fingerprint(resolutions)
        recorder.record_inputs([source for r in resolutions for source in r.sources()])
        last = resolutions[-1]
        recorder.set_properties(input_fingerprint=fingerprint, span=last.span,
                                **({"version": last.version} if last.version is not None else {}))
        recorder.complete()
    return resolutions, fingerprint


def examples_split_files(examples_uri: str, input_splits: Optional[Sequence[str]] = None) -> list[_InputSplitFiles]:
    """The TFRecord files of each split of an Examples artifact (a local path, gs:// or
    s3://). One without examples_metadata.json but with a staging folder is a commit that
    never finished: a SourceError."""
    from examplegen.writer import SPLIT_PREFIX, incomplete_message, is_interrupted, split_folders

    if not fs.exists(examples_uri):
        raise SourceError(f"examples artifact {examples_uri!r} does not exist")
    available = [name[len(SPLIT_PREFIX):] for name in split_folders(examples_uri)]
    if not available:
        raise SourceError(f"examples artifact {examples_uri!r} has no Split-* directories")
    if is_interrupted(examples_uri):
        raise SourceError(incomplete_message(examples_uri))
    if is_complete(examples_uri):
        recorded = json.loads(read_metadata(examples_uri).get("split_names", "[]"))
        available.sort(key=lambda n: recorded.index(n) if n in recorded else len(recorded))
    wanted = list(input_splits) if input_splits else available
    missing = [s for s in wanted if s not in available]
    if missing:
        raise SourceError(f"examples artifact {examples_uri!r} has no split(s) {missing}; it has {available}")
    out = []
    for name in wanted:
        folder = split_dir(examples_uri, name)
        out.append(_InputSplitFiles(name, [fs.join(folder, f) for f in fs.listdir(folder)]))
    return out


def resplit(examples_uri: str, output_uri: str, *, output_config: Any,
            input_splits: Optional[Sequence[str]] = None, payload_format: Optional[str] = None,
            verify_payload: str = "structure", num_shards: int = 0, workers: int = 0,
            mlmd: Optional[str] = None, record_lineage: bool = True, pipeline_name: str = "examplegen",
            run_name: Optional[str] = None, progress: bool = False, lock_timeout: float = 0,
            bad_rows: str = "fail", max_bad_rows: Optional[int] = None,
            max_bad_ratio: Optional[float] = None, engine: str = "local",
            beam_pipeline_args: Optional[Sequence[str]] = None) -> IngestResult:
    """Re-splits an Examples artifact (its chosen splits pooled) into new output splits.
    ``bad_rows``, ``max_bad_rows``, ``max_bad_ratio``: as for ``ingest`` (a bad row is a
    record that is not the payload type or lacks the split feature); ``engine``,
    ``beam_pipeline_args``: see ``ingest``."""
    check_run_options(num_shards, workers, lock_timeout)
    beam_pipeline_args = check_engine(engine, beam_pipeline_args, workers)
    policy = BadRowPolicy.create(bad_rows, max_bad_rows, max_bad_ratio)
    out_cfg = parse_output_config(output_config)
    if not out_cfg.splits:
        raise ConfigError("resplit needs output splits in output_config.split_config.splits")
    split_files = examples_split_files(examples_uri, input_splits)
    md = read_metadata(examples_uri) if is_complete(examples_uri) else {}
    payload_format = normalize_payload_format(payload_format or md.get("payload_format") or "FORMAT_TF_EXAMPLE")
    pooled = [_InputSplitFiles("input", [f for s in split_files for f in s.files])]
    in_cfg = InputConfig((InputSplit("input", "*"),))
    config = {"examples_uri": fs.absolute(examples_uri), "input_splits": [s.name for s in split_files],
              "output_config": out_cfg.to_dict(), "payload_format": payload_format, "num_shards": num_shards}
    if policy.skip:
        config["bad_rows"] = policy.to_dict()
    recorder = _open_recorder(mlmd, record_lineage, "examplegen.Split", pipeline_name, run_name, config)
    started = time.time()
    with lock_output(output_uri, lock_timeout), recorder:
        recorder.record_input_examples(fs.absolute(examples_uri), md)
        span_md = {k: md[k] for k in ("span", "version", "input_fingerprint", "spans") if k in md}
        split_names, counts, rows, num_shards, _, rejected = convert_files(
            pooled, output_uri, source_format="tfrecord", input_config=in_cfg, output_config=out_cfg,
            source_options=tfrecord_source.Options.from_dict(
                {"payload_format": payload_format, "verify_payload": verify_payload}),
            payload_format=payload_format, num_shards=num_shards,
            workers=workers, progress=progress, metadata=span_md, bad_rows=policy, engine=engine,
            beam_pipeline_args=beam_pipeline_args)
        result = IngestResult(
            output_uri=fs.absolute(output_uri), split_names=split_names, counts=counts,
            span=int(md.get("span", 0)), version=md.get("version"),
            input_fingerprint=md.get("input_fingerprint", ""), payload_format=payload_format,
            spans=json.loads(md["spans"]) if "spans" in md else [], rows_read=rows,
            rows_written=sum(counts.values()), rows_rejected=rejected,
            config=dict(config, engine=engine, elapsed_seconds=round(time.time() - started, 3)),
            files_digest=read_metadata(output_uri).get("files_digest"),
            quarantine_file=QUARANTINE_PATH if policy.skip else None)
        recorder.complete(result)
        return result

