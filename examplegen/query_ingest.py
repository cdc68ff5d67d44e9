"""Ingestion of query results (query sources: ``sql``; see examplegen.sources.query).

The same engine as files (examplegen.ingest: work units in worker processes, the shared
conversion, splits, writer, lineage), with queries instead of files:

1. the input config's split patterns are the queries; the range config picks the
   span(s) (TFX: span 0 without one); placeholders are filled per span;
2. the source plans each query into work units (partitions) and reads them, digesting
   the rows as it goes (one pass: the result is read once);
3. each query is recorded in ML Metadata as an input (``examplegen.SourceFile`` with the
   connection URL without password as its URI, the query text, span, row count and the
   result digest); the input fingerprint is built from them;
4. when an earlier run with the same config recorded the same fingerprint, the execution
   is CACHED and points at that run's Examples (the result still had to be read to know
   it is unchanged); with ``digest`` off every run is a new version.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from typing import Any, Optional

from examplegen import sources, worker_pool
from examplegen.bad_rows import BadRowPolicy
from examplegen.config import effective_output_config, load_object
from examplegen.errors import ConfigError
from examplegen.ingest import (_InputSplitFiles, _is_query_format, _load_configs, _open_recorder,
                               check_run_options, convert_files)
from examplegen.output_lock import lock_output
from examplegen.result import IngestResult, SourceFile
from examplegen.sources.query import query_fingerprint, resolve_queries


def ingest_query(connection: str, output_uri: str, *, source_format: str = "sql", input_config: Any = None,
                 output_config: Any = None, range_config: Any = None, source_options: Any = None,
                 num_shards: int = 0, workers: int = 0, mlmd: Optional[str] = None, record_lineage: bool = True,
                 pipeline_name: str = "examplegen", run_name: Optional[str] = None, force: bool = False,
                 progress: bool = False, lock_timeout: float = 0, bad_rows: str = "fail",
                 max_bad_rows: Optional[int] = None, max_bad_ratio: Optional[float] = None) -> IngestResult:
    """Runs the input config's queries on ``connection`` into an Examples artifact.

    ``connection``: e.g. ``postgresql://user@host:5432/db`` or ``mysql://user@host/db``; a
    password in it or in ``$EXAMPLEGEN_DB_PASSWORD`` is used and never recorded.
    ``source_options``: the source's options (dict, JSON text or .json path), e.g.
    ``{"partition_on": "id", "partition_num": 4}``, ``{"digest": false}``. Another run
    holding ``output_uri`` is an error at once, or after up to ``lock_timeout`` seconds.
    ``bad_rows``: only "fail" (the first bad row fails the run); a query filters its rows itself.
    """
    if not _is_query_format(source_format):
        raise ConfigError(f"format {source_format!r} reads files (use --input-base); a connection applies to "
                          "query formats (sql, bigquery, trino)")
    check_run_options(num_shards, workers, lock_timeout)
    if BadRowPolicy.create(bad_rows, max_bad_rows, max_bad_ratio).skip:
        raise ConfigError("bad_rows='skip' (--bad-rows skip) applies to file formats only: a query's rows are "
                          "not quarantined, the first bad one fails the run. Leave bad rows out in the query "
                          "itself (a WHERE clause)")
    in_cfg, out_cfg, range_cfg = _load_configs(input_config, output_config, range_config)
    source = sources.get(source_format)
    opts = source.Options.from_dict(load_object(source_options, "source_options"))
    conn = source.connection(connection)
    queries = resolve_queries(in_cfg, range_cfg, conn)
    config = {
        "source_format": source_format,
        "connection": conn.url,
        "input_config": in_cfg.to_dict(),
        "output_config": effective_output_config(in_cfg, out_cfg).to_dict(),
        "range_config": range_cfg.to_dict() if range_cfg else None,
        "source_options": opts.to_dict(),
        "num_shards": num_shards,
    }
    spans = [q.span for q in queries[0]]
    recorder = _open_recorder(mlmd, record_lineage, "examplegen.Ingest", pipeline_name, run_name, config)
    started = time.time()
    inputs: list[SourceFile] = []
    fingerprint = ""
    with lock_output(output_uri, lock_timeout), recorder:
        def metadata(extras: dict) -> dict:
            nonlocal fingerprint
            results = extras.get("query_results", {})
            for split_queries in queries:
                for q, r in zip(split_queries, results[split_queries[0].split]):
                    inputs.append(SourceFile(uri=conn.url, size=r["bytes"], digest=r["digest"] or "none",
                                             split=q.split, span=q.span, query=q.query, rows=r["rows"]))
            fingerprint = _fingerprint(inputs, opts.digest)
            md = {"span": spans[-1], "input_fingerprint": fingerprint}
            if len(spans) > 1:
                md["spans"] = json.dumps(spans)
            return md

        if not workers:
            workers = min(opts.workers, worker_pool.default_workers()) if opts.workers > 1 else 1
        split_names, counts, rows, num_shards, extras, _ = convert_files(
            [_InputSplitFiles(qs[0].split, qs) for qs in queries], output_uri, source_format=source_format,
            input_config=in_cfg, output_config=out_cfg, source_options=opts, num_shards=num_shards or 1,
            workers=workers, progress=progress, metadata=metadata, total_bytes=0)
        recorder.record_inputs(inputs)
        if not force and opts.digest:
            cached = recorder.find_cached(fingerprint)
            if cached is not None:
                # The files just written hold the same rows (same fingerprint and config).
                result = dataclasses.replace(cached, output_uri=os.path.abspath(output_uri), cached=True)
                recorder.complete_cached(result)
                return result
        result = IngestResult(
            output_uri=os.path.abspath(output_uri), split_names=split_names, counts=counts, span=spans[-1],
            version=None, input_fingerprint=fingerprint, payload_format="FORMAT_TF_EXAMPLE", spans=spans,
            rows_read=rows, rows_written=sum(counts.values()), rows_rejected=0, sources=inputs,
            config=dict(config, **extras, elapsed_seconds=round(time.time() - started, 3)))
        recorder.complete(result)
        return result


def _fingerprint(inputs: list[SourceFile], with_digest: bool) -> str:
    """The input fingerprint from the queries' data versions; without digests a fresh one
    per run, so such a run is never CACHED."""
    if not with_digest:
        return "undigested:" + uuid.uuid4().hex
    return query_fingerprint([{"split": s.split, "span": s.span, "connection": s.uri, "query": s.query,
                               "rows": s.rows, "digest": s.digest} for s in inputs])
