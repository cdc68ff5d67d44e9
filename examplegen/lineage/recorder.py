"""Recording one component run (an MLMD execution) and finding an earlier identical one.

Typical use by the engine (what is recorded is described in `examplegen.lineage.schema`):

    with Recorder(store, INGEST, config=effective_config) as rec:   # RUNNING
        rec.record_inputs(sources)                                   # reused SourceFile artifacts
        hit = rec.find_cached(fingerprint)                           # unless forced
        if hit:
            rec.complete_cached(hit)                                 # CACHED -> existing artifact
        else:
            ...write and commit the Examples...
            rec.complete(result)                                     # COMPLETE + LIVE output
    # an exception inside the block marks the execution FAILED with its message
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import re
import secrets
import socket
from typing import Any, Callable, Iterable, Mapping, Optional

from examplegen.errors import LineageError
from examplegen.lineage import schema
from examplegen.lineage.postgres_text import is_plain
from examplegen.lineage.schema import properties, quote_literal, set_properties
from examplegen.lineage.store import LineageStore, is_duplicate, redact_url, retry
from examplegen.liveness import DEAD, process_identity, process_state
from examplegen.result import IngestResult, SourceFile

log = logging.getLogger(__name__)

_SECRET_KEY_RE = re.compile(
    r"password|passwd|secret|token|credential|private[_-]?key|access[_-]?key|api[_-]?key", re.I
)
_MAX_ERROR_CHARS = 4000


def redact_config(value: Any) -> Any:
    """A copy of a JSON-able config with secret-looking keys and URL passwords masked."""
    if isinstance(value, Mapping):
        return {
            str(k): ("***" if _SECRET_KEY_RE.search(str(k)) and v not in (None, "") else redact_config(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact_config(v) for v in value]
    if isinstance(value, str):
        return redact_url(value)
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def generate_run_name() -> str:
    """`examplegen-local-<UTC time>-<random>`, for runs outside KFP."""
    now = datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"examplegen-local-{now}-{secrets.token_hex(3)}"


def source_external_id(uri: str, digest: str) -> str:
    """The stable id that makes one SourceFile artifact per (uri, digest)."""
    key = hashlib.sha256(f"{uri}\0{digest}".encode()).hexdigest()
    return f"{schema.SOURCE_FILE}:{key}"


def examples_files_present(uri: str, split_names: Iterable[str]) -> bool:
    """True if every Split-<name>/ folder of the Examples at `uri` holds at least one file."""
    try:
        from examplegen import fs
    except ImportError:  # pragma: no cover - fs is part of the engine
        fs = None
    try:
        for name in split_names:
            if fs is not None:
                folder = fs.join(uri, f"Split-{name}")
                if not fs.glob(fs.join(fs.escape_glob(folder), "*")):
                    return False
            else:
                folder = os.path.join(uri, f"Split-{name}")
                if not os.path.isdir(folder) or not os.listdir(folder):
                    return False
    except Exception as exc:  # noqa: BLE001 - cannot check: do not reuse
        log.info("cannot check Examples files at %s (%s): not reusing them", uri, exc)
        return False
    return True


def committed_files_match(result: IngestResult) -> bool:
    """False if the files at result.output_uri are no longer the ones recorded for it.

    The engine's writer writes `examples_metadata.json` last on every commit: when present,
    its input fingerprint and example counts must equal the artifact's. When it is missing
    while a `.staging-*` folder exists, a commit was interrupted and the splits may be half
    replaced. Examples written by other tools (neither file) are accepted.
    """
    from examplegen import fs
    from examplegen.writer import METADATA_FILE

    uri = result.output_uri
    try:
        marker = fs.join(uri, METADATA_FILE)
        if fs.exists(marker):
            with fs.open_read(marker) as f:
                on_disk = json.load(f)
            counts = on_disk.get("example_counts")
            counts = json.loads(counts) if isinstance(counts, str) else counts
            return (on_disk.get("input_fingerprint") == result.input_fingerprint
                    and {k: int(v) for k, v in (counts or {}).items()} == result.counts)
        return not fs.glob(fs.join(fs.escape_glob(uri), ".staging-*"))
    except Exception as exc:  # noqa: BLE001 - cannot check: do not reuse
        log.info("cannot check Examples metadata at %s (%s): not reusing them", uri, exc)
        return False


def _verify_files(uri: str, files_digest: Optional[str]) -> Optional[str]:
    """What is wrong with the files of the Examples at `uri` (None: they are intact)."""
    from examplegen.errors import ExampleGenError
    from examplegen.writer import verify_files

    try:
        return verify_files(uri, files_digest)
    except (OSError, ExampleGenError) as exc:
        return f"cannot check the files at {uri}: {exc}"


class Recorder:
    """Records one execution of `execution_type` in the run's contexts. See module doc."""

    def __init__(
        self,
        store: LineageStore,
        execution_type: str = schema.INGEST,
        *,
        pipeline_name: str = "examplegen",
        run_name: Optional[str] = None,
        config: Optional[Mapping[str, Any]] = None,
        engine_version: Optional[str] = None,
        display_name: Optional[str] = None,
        files_present: Callable[[str, list[str]], bool] = examples_files_present,
    ):
        from examplegen import __version__

        self.store = store
        self.execution_type = execution_type
        self.pipeline_name = pipeline_name
        self.run_name = run_name or generate_run_name()
        self.config_json = canonical_json(redact_config(dict(config or {})))
        self.config_digest = "sha256:" + hashlib.sha256(self.config_json.encode()).hexdigest()
        self.engine_version = engine_version or __version__
        self.display_name = display_name or execution_type.rsplit(".", 1)[-1].lower()
        self._files_present = files_present
        self._execution: Any = None
        self._contexts: list[Any] = []
        self._sources: dict[tuple[str, str], int] = {}  # (uri, digest) -> artifact id
        self._cached: Optional[tuple[int, int]] = None  # (execution id, artifact id) of a hit
        self.input_artifact_ids: list[int] = []
        self.output_artifact_id: Optional[int] = None

    # ------------------------------------------------------------------ state

    @property
    def execution_id(self) -> Optional[int]:
        return self._execution.id if self._execution is not None and self._execution.id else None

    @property
    def state(self) -> Optional[str]:
        """The execution's state name: RUNNING, COMPLETE, FAILED or CACHED (None before start)."""
        if self._execution is None:
            return None
        from ml_metadata.proto import metadata_store_pb2 as pb

        return pb.Execution.State.Name(self._execution.last_known_state)

    def __enter__(self) -> "Recorder":
        if self._execution is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.state == "RUNNING":
            failure = exc if exc is not None else LineageError("the run ended without recording a result")
            try:
                self.fail(failure)
            except Exception as secondary:  # noqa: BLE001 - never hide the original error
                log.warning("could not record the failure in MLMD: %s", secondary)
        return False

    # ------------------------------------------------------------------ recording

    def start(self) -> int:
        """Create the contexts (if new) and the execution in state RUNNING; return its id."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        if self._execution is not None:
            raise LineageError(f"execution {self.execution_id} was already started")
        pipeline = self.store.context(schema.PIPELINE_CONTEXT, self.pipeline_name)
        run = self.store.context(schema.RUN_CONTEXT, self.run_name)
        self.store.link_parent(run.id, pipeline.id)
        self._contexts = [pipeline, run]
        execution = pb.Execution(
            type_id=self.store.type_id("execution", self.execution_type),
            last_known_state=pb.Execution.RUNNING,
        )
        set_properties(execution, {
            "display_name": self.display_name,
            "config": self.config_json,
            "config_digest": self.config_digest,
            "engine_version": self.engine_version,
            "start_time": schema.utc_now(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "process": canonical_json(process_identity()),
        })
        self._execution = execution
        self._put([])
        self.mark_dead_runs()
        return self._execution.id

    def set_properties(self, **values: Any) -> None:
        """Set execution properties (e.g. span, version, input_fingerprint) and save them."""
        self._require_running()
        set_properties(self._execution, values)
        self._put([])

    def record_inputs(self, sources: Iterable[SourceFile]) -> list[int]:
        """Link the source files as INPUT artifacts; one artifact per (uri, digest), reused."""
        self._require_running()
        new = [s for s in sources if (s.uri, s.identity) not in self._sources]
        new = list({(s.uri, s.identity): s for s in new}.values())
        if not new:
            return []
        self._update_span_properties(new)
        ids = self._put_sources(new)
        for source, artifact_id in zip(new, ids, strict=True):
            self._sources[(source.uri, source.identity)] = artifact_id
        self.input_artifact_ids.extend(ids)
        return ids

    def _put_sources(self, sources: list[SourceFile]) -> list[int]:
        """One transaction linking `sources`; an artifact another process inserted meanwhile
        (ml-metadata's external-id reuse is not race-free on MySQL) is looked up and reused."""
        from ml_metadata import errors as mlmd_errors
        from ml_metadata.proto import metadata_store_pb2 as pb

        type_id = self.store.type_id("artifact", schema.SOURCE_FILE)
        external_ids = [source_external_id(s.uri, s.identity) for s in sources]
        attempts_left = 5
        while True:
            existing = {a.external_id: a.id for a in self._artifacts_by_external_ids(external_ids)}
            pairs = []
            for index, (source, external_id) in enumerate(zip(sources, external_ids), start=len(self._sources)):
                event = pb.Event(type=pb.Event.INPUT)
                event.path.steps.add().key = schema.SOURCES_KEY
                event.path.steps.add().index = index
                if external_id in existing:
                    event.artifact_id = existing[external_id]
                    pairs.append((None, event))
                    continue
                artifact = pb.Artifact(type_id=type_id, uri=source.uri, external_id=external_id,
                                       state=pb.Artifact.LIVE)
                set_properties(artifact, {
                    "display_name": (f"{source.split} span {source.span}" if source.query is not None
                                     else os.path.basename(source.uri.rstrip("/")) or source.uri),
                    "query": source.query,
                    "rows": source.rows,
                    "digest": source.digest,
                    "size": source.size,
                    "split": source.split,
                    "span": source.span,
                    "version": source.version,
                })
                pairs.append((artifact, event))
            try:
                return self._put(pairs)
            except mlmd_errors.StatusError as exc:
                attempts_left -= 1
                if not is_duplicate(exc) or not attempts_left:
                    raise

    def record_input_examples(self, uri: str, metadata: Optional[Mapping[str, Any]] = None) -> int:
        """Link the Examples at `uri` as INPUT (a split's input): its newest LIVE artifact, or
        a new LIVE one with `metadata` if MLMD does not know it (made outside examplegen)."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        self._require_running()
        event = pb.Event(type=pb.Event.INPUT)
        event.path.steps.add().key = schema.EXAMPLES_KEY
        found = self._live_examples(uri)
        if found is not None:
            event.artifact_id = found.id
            pair = (None, event)
        else:
            artifact = pb.Artifact(type_id=self.store.type_id("artifact", schema.EXAMPLES), uri=uri,
                                   state=pb.Artifact.LIVE)
            known = {k: v for k, v in dict(metadata or {}).items() if k != "files"}  # files_digest stands for it
            set_properties(artifact, {"display_name": schema.EXAMPLES_KEY, **known})
            pair = (artifact, event)
        [artifact_id] = self._put([pair])
        self.input_artifact_ids.append(artifact_id)
        return artifact_id

    def complete(self, result: Optional[IngestResult] = None, *,
                 output: Optional[tuple[str, str, str]] = None) -> Optional[int]:
        """Mark the execution COMPLETE; with a result, create its Examples artifact LIVE (its
        files must already be committed) and record any of result.sources not yet recorded
        as inputs. ``output`` = (artifact type, key, uri) records another kind of output
        instead (e.g. the report's system.HTML). Returns the output artifact id."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        self._require_running()
        pairs = []
        if output is not None:
            type_name, key, uri = output
            artifact = pb.Artifact(type_id=self.store.type_id("artifact", type_name), uri=uri,
                                   state=pb.Artifact.LIVE)
            set_properties(artifact, {"display_name": key})
            event = pb.Event(type=pb.Event.OUTPUT)
            event.path.steps.add().key = key
            pairs.append((artifact, event))
        if result is not None:
            if result.sources:
                self.record_inputs(result.sources)
            self._set_result_properties(result)
            artifact = pb.Artifact(type_id=self.store.type_id("artifact", schema.EXAMPLES),
                                   uri=result.output_uri, state=pb.Artifact.LIVE)
            set_properties(artifact, {"display_name": schema.EXAMPLES_KEY, **result.metadata()})
            pairs.append((artifact, self._output_event()))
        self._finish(pb.Execution.COMPLETE)
        ids = self._put(pairs)
        self.output_artifact_id = ids[0] if ids else None
        if result is not None:
            self._retire_superseded(result.output_uri, self.output_artifact_id)
        self.store.sync()
        return self.output_artifact_id

    def complete_cached(self, result: IngestResult) -> int:
        """Mark the execution CACHED, with an OUTPUT event to the reused Examples artifact (the
        one `find_cached` found, else the newest LIVE one at result.output_uri).

        If the reused artifact lives at another URI than result.output_uri (the engine copied
        its files there), the OUTPUT is a new LIVE artifact at result.output_uri with the
        same properties and `copied_from_artifact_id`; the reused artifact is left as it is."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        self._require_running()
        if self._cached is not None:
            cached_execution_id, artifact_id = self._cached
            [reused] = self.store.call("get_artifacts_by_id", [artifact_id])
        else:
            reused = self._live_examples(result.output_uri)
            if reused is None:
                raise LineageError(
                    f"cannot record a cached run: MLMD has no LIVE {schema.EXAMPLES} artifact at "
                    f"{result.output_uri}"
                )
            cached_execution_id = self._producer(reused.id)
        if result.sources:
            self.record_inputs(result.sources)
        self._set_result_properties(result)
        set_properties(self._execution, {
            "cached_execution_id": str(cached_execution_id) if cached_execution_id else None,
        })
        event = self._output_event()
        copy = None
        if reused.uri == result.output_uri:
            event.artifact_id = reused.id
        else:
            copy = pb.Artifact(type_id=reused.type_id, uri=result.output_uri, state=pb.Artifact.LIVE)
            set_properties(copy, {**properties(reused), "copied_from_artifact_id": reused.id})
        self._finish(pb.Execution.CACHED)
        [artifact_id] = self._put([(copy, event)])
        self.output_artifact_id = artifact_id
        if copy is not None:
            self._retire_superseded(result.output_uri, artifact_id)
        self.store.sync()
        return artifact_id

    def fail(self, error: BaseException | str) -> None:
        """Mark the execution FAILED with the error message (no output is made LIVE)."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        if self.state != "RUNNING":
            return
        if isinstance(error, BaseException):
            message = f"{type(error).__name__}: {error}".rstrip(": ")
        else:
            message = str(error)
        message = redact_url(message)
        if len(message) > _MAX_ERROR_CHARS:
            message = message[: _MAX_ERROR_CHARS - 15] + " ...[truncated]"
        set_properties(self._execution, {"error_message": message})
        self._finish(pb.Execution.FAILED)
        self._put([])
        self.store.sync()

    # ------------------------------------------------------------------ abandoned runs

    def mark_dead_runs(self) -> None:
        """Mark RUNNING executions (of any type) whose process on this host is gone (killed
        outright: SIGKILL, out of memory) FAILED as abandoned; called by start(). Executions
        without the "process" property (older versions) and unclear cases are left alone."""
        host = socket.gethostname()
        if not is_plain(host):
            return
        from ml_metadata.metadata_store import metadata_store as mlmd

        query = f"last_known_state = RUNNING AND custom_properties.host.string_value = {quote_literal(host)}"
        try:
            for execution in self.store.call("get_executions", list_options=mlmd.ListOptions(filter_query=query)):
                process = properties(execution).get("process")
                if execution.id == self.execution_id or not process:
                    continue
                identity = json.loads(process)
                if process_state(identity) == DEAD:
                    self._abandon(execution, identity)
        except Exception as exc:  # noqa: BLE001 - this run goes on regardless
            log.warning("could not look for runs of dead processes in MLMD: %s", redact_url(str(exc)))

    def _abandon(self, execution: Any, process: Mapping[str, Any]) -> None:
        """Mark `execution` FAILED: MLMD has no "abandoned" execution state (CANCELED would
        claim that someone stopped it); error_message says what happened."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        set_properties(execution, {
            "error_message": (f"abandoned: process {process.get('pid')} on {process.get('host')} died before "
                              f"the run finished (found by execution {self.execution_id})"),
            "abandoned_by_execution_id": self.execution_id,
            "end_time": schema.utc_now(),
        })
        execution.last_known_state = pb.Execution.FAILED
        self.store.call("put_executions", [execution])
        log.info("marked execution %s of a dead run FAILED (abandoned)", execution.id)

    # ------------------------------------------------------------------ cache lookup

    def find_cached(self, input_fingerprint: str) -> Optional[IngestResult]:
        """The result of the newest earlier COMPLETE execution of this type with the same
        config and input fingerprint whose Examples are LIVE and whose files still exist."""
        from ml_metadata.metadata_store import metadata_store as mlmd
        from ml_metadata.proto import metadata_store_pb2 as pb

        query = (
            f"type = {quote_literal(self.execution_type)} AND last_known_state = COMPLETE"
            f" AND custom_properties.config_digest.string_value = {quote_literal(self.config_digest)}"
            f" AND custom_properties.input_fingerprint.string_value = {quote_literal(input_fingerprint)}"
        )
        options = mlmd.ListOptions(filter_query=query, order_by=mlmd.OrderByField.ID, is_asc=False)
        examples_type = self.store.type_id("artifact", schema.EXAMPLES)
        for execution in self.store.call("get_executions", list_options=options):
            props = properties(execution)
            if props.get("config") != self.config_json or execution.id == self.execution_id:
                continue
            events = self.store.call("get_events_by_execution_ids", [execution.id])
            outputs = [e.artifact_id for e in events if e.type == pb.Event.OUTPUT]
            inputs = [e.artifact_id for e in events if e.type == pb.Event.INPUT]
            for artifact in self.store.call("get_artifacts_by_id", outputs):
                if artifact.type_id != examples_type or artifact.state != pb.Artifact.LIVE:
                    continue
                result = self._result_from(artifact, execution, inputs)
                if (result is None or not self._files_present(result.output_uri, result.split_names)
                        or not committed_files_match(result)):
                    continue
                problem = _verify_files(result.output_uri, result.files_digest)
                if problem is not None:
                    self._invalidate(artifact, problem)
                    continue
                self._cached = (execution.id, artifact.id)
                return result
        return None

    def _invalidate(self, artifact: Any, problem: str) -> None:
        """Mark Examples whose files no longer match their record DELETED, with the reason
        (custom property invalidated_reason), and say so: the run converts again."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        log.warning("not reusing the earlier Examples (MLMD artifact %s) at %s: %s; converting again",
                    artifact.id, artifact.uri, problem)
        artifact.state = pb.Artifact.DELETED
        set_properties(artifact, {"invalidated_reason": problem[:_MAX_ERROR_CHARS]})
        try:
            self.store.call("put_artifacts", [artifact])
        except Exception as exc:  # noqa: BLE001 - the run itself can go on
            log.warning("could not mark Examples artifact %s invalid in MLMD: %s", artifact.id,
                        redact_url(str(exc)))

    def _result_from(self, artifact: Any, execution: Any, input_ids: list[int]) -> Optional[IngestResult]:
        art, ex = properties(artifact), properties(execution)
        try:
            span = int(art.get("span", ex.get("span", 0)))
            version = art.get("version")
            sources = []
            source_type = self.store.type_id("artifact", schema.SOURCE_FILE)
            for a in self.store.call("get_artifacts_by_id", input_ids) if input_ids else []:
                if a.type_id != source_type:
                    continue
                p = properties(a)
                sources.append(SourceFile(
                    uri=a.uri, size=int(p.get("size", 0)), digest=p.get("digest", ""),
                    split=p.get("split", ""), span=int(p.get("span", 0)),
                    version=None if p.get("version") is None else int(p["version"]),
                    query=p.get("query"), rows=None if p.get("rows") is None else int(p["rows"]),
                ))
            return IngestResult(
                output_uri=artifact.uri,
                split_names=json.loads(art["split_names"]),
                counts={k: int(v) for k, v in json.loads(art.get("example_counts", "{}")).items()},
                span=span,
                version=None if version is None else int(version),
                input_fingerprint=art.get("input_fingerprint", ex.get("input_fingerprint", "")),
                payload_format=art.get("payload_format", "FORMAT_TF_EXAMPLE"),
                file_format=art.get("file_format", "tfrecords_gzip"),
                spans=[int(s) for s in json.loads(art["spans"])] if "spans" in art else [span],
                rows_read=int(ex.get("rows_read", 0)),
                rows_written=int(ex.get("rows_written", 0)),
                rows_rejected=int(ex.get("rows_rejected", 0)),
                sources=sources,
                config=json.loads(ex.get("config", "{}")),
                cached=True,
                files_digest=art.get("files_digest"),
                quarantine_file=art.get("quarantine_file"),
            )
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("ignoring Examples artifact %s with unreadable properties: %s", artifact.id, exc)
            return None

    # ------------------------------------------------------------------ helpers

    def _require_running(self) -> None:
        if self._execution is None:
            raise LineageError("call start() (or use the Recorder as a context manager) first")
        if self.state != "RUNNING":
            raise LineageError(f"execution {self.execution_id} is already {self.state}")

    def _put(self, pairs: list[tuple[Any, Any]]) -> list[int]:
        """Write the execution (and artifact/event pairs) in one transaction; return artifact ids."""

        def put():
            return self.store.mlmd.put_execution(
                self._execution, pairs, self._contexts,
                reuse_context_if_already_exist=True,
                reuse_artifact_if_already_exist_by_external_id=True,
                force_reuse_context=True,
            )

        execution_id, artifact_ids, _ = retry(put, what=f"record {self.execution_type} execution")
        self._execution.id = execution_id
        return list(artifact_ids)

    def _finish(self, state: int) -> None:
        self._execution.last_known_state = state
        set_properties(self._execution, {"end_time": schema.utc_now()})

    def _output_event(self) -> Any:
        from ml_metadata.proto import metadata_store_pb2 as pb

        event = pb.Event(type=pb.Event.OUTPUT)
        event.path.steps.add().key = schema.EXAMPLES_KEY
        return event

    def _set_result_properties(self, result: IngestResult) -> None:
        set_properties(self._execution, {
            "span": result.span,
            "version": result.version,
            "spans": json.dumps(result.spans) if len(result.spans) > 1 else None,
            "input_fingerprint": result.input_fingerprint,
            "rows_read": result.rows_read,
            "rows_written": result.rows_written,
            "rows_rejected": result.rows_rejected,
        })
        if result.config.get("files_without_rows"):  # input files left out: no rows in them
            set_properties(self._execution, {
                "files_without_rows": json.dumps(result.config["files_without_rows"], sort_keys=True)})

    def _update_span_properties(self, sources: list[SourceFile]) -> None:
        """Set span/version/spans from the inputs unless already set (complete() overrides)."""
        props = properties(self._execution)
        spans = sorted(set(json.loads(props.get("spans", "[]"))
                           + ([props["span"]] if "span" in props else [])
                           + [s.span for s in sources]))
        latest = max(spans)
        versions = [s.version for s in sources if s.span == latest and s.version is not None]
        set_properties(self._execution, {
            "span": latest,
            "version": max(versions) if versions else props.get("version"),
            "spans": json.dumps(spans) if len(spans) > 1 else None,
        })

    def _artifacts_by_external_ids(self, external_ids: list[str]) -> list[Any]:
        from ml_metadata import errors as mlmd_errors

        try:
            return self.store.call("get_artifacts_by_external_ids", external_ids)
        except mlmd_errors.NotFoundError:
            return []

    def _retire_superseded(self, uri: str, keep_id: int) -> None:
        """Mark the other LIVE Examples artifacts at `uri` DELETED: the files just committed
        there replaced theirs. A failure is logged, not raised (the run itself succeeded)."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        try:
            examples_type = self.store.type_id("artifact", schema.EXAMPLES)
            stale = [a for a in self.store.call("get_artifacts_by_uri", uri)
                     if a.type_id == examples_type and a.state == pb.Artifact.LIVE and a.id != keep_id]
            for artifact in stale:
                artifact.state = pb.Artifact.DELETED
                set_properties(artifact, {"superseded_by_artifact_id": keep_id})
            if stale:
                self.store.call("put_artifacts", stale)
        except Exception as exc:  # noqa: BLE001 - never fail a completed run over this
            log.warning("could not mark the earlier Examples at %s as replaced in MLMD: %s", uri,
                        redact_url(str(exc)))

    def _live_examples(self, uri: str) -> Any:
        from ml_metadata.proto import metadata_store_pb2 as pb

        examples_type = self.store.type_id("artifact", schema.EXAMPLES)
        live = [a for a in self.store.call("get_artifacts_by_uri", uri)
                if a.type_id == examples_type and a.state == pb.Artifact.LIVE]
        return max(live, key=lambda a: a.id) if live else None

    def _producer(self, artifact_id: int) -> Optional[int]:
        from ml_metadata.proto import metadata_store_pb2 as pb

        events = self.store.call("get_events_by_artifact_ids", [artifact_id])
        producers = [e.execution_id for e in events if e.type == pb.Event.OUTPUT]
        return min(producers) if producers else None
