"""What a run records in MLMD, read back from real stores (SQLite, MariaDB, PostgreSQL).

Store-independent logic runs on SQLite only; MariaDB's reuse of artifacts under racing
writers is covered by test_lineage_concurrency.
"""

from __future__ import annotations

import datetime
import json
import os
import re

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from examplegen.errors import SourceError
from examplegen.lineage import Recorder, open_store, schema
from examplegen.lineage.schema import properties
from tests.lineage_fixtures import (  # noqa: F401 - fixtures
    fingerprint,
    make_result,
    mysql_url,
    postgres_url,
    sha256_digest,
    sqlite_url,
    store_url,
    write_source,
)

CONFIG = {"input_base": "/data", "input_config": {"splits": [{"name": "train", "pattern": "*.csv"}]},
          "output_config": {"split_config": {"splits": [{"name": "train", "hash_buckets": 3}]}}}


def _examples(store):
    return sorted(store.mlmd.get_artifacts_by_type(schema.EXAMPLES), key=lambda a: a.id)


def _execution(store, execution_id):
    [execution] = store.mlmd.get_executions_by_id([execution_id])
    return execution


def _events(store, execution_id, kind):
    return [e for e in store.mlmd.get_events_by_execution_ids([execution_id]) if e.type == kind]


def _parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def test_records_contexts_execution_inputs_and_live_output(store_url, tmp_path):
    store = open_store(store_url)
    sources = [write_source(tmp_path / "data" / "a.csv", b"x,y\n1,2\n", split="train", span=4, version=2),
               write_source(tmp_path / "data" / "b.csv", b"x,y\n3,4\n5,6\n", split="eval", span=4, version=2)]
    result = make_result(tmp_path / "out", sources, {"train": 2, "eval": 1}, span=4, version=2)
    with Recorder(store, config=CONFIG, engine_version="1.2.3") as rec:
        rec.record_inputs(sources)
        running = _execution(store, rec.execution_id)
        assert running.last_known_state == pb.Execution.RUNNING
        assert _examples(store) == []  # nothing LIVE before the files are committed
        rec.complete(result)

    execution = _execution(store, rec.execution_id)
    assert execution.type == "examplegen.Ingest"
    assert execution.last_known_state == pb.Execution.COMPLETE
    props = properties(execution)
    assert json.loads(props["config"]) == CONFIG
    assert props["engine_version"] == "1.2.3"
    assert (props["span"], props["version"]) == (4, 2)
    assert props["input_fingerprint"] == fingerprint(sources)
    assert (props["rows_read"], props["rows_written"], props["rows_rejected"]) == (4, 3, 1)
    assert props["pid"] == os.getpid()
    assert _parse_time(props["start_time"]) <= _parse_time(props["end_time"])

    # Contexts: KFP's type names, run context a child of the pipeline context.
    contexts = {c.type: c for c in store.mlmd.get_contexts_by_execution(rec.execution_id)}
    assert contexts[schema.PIPELINE_CONTEXT].name == "examplegen"
    assert re.fullmatch(r"examplegen-local-\d{8}T\d{6}Z-[0-9a-f]{6}", contexts[schema.RUN_CONTEXT].name)
    parents = store.mlmd.get_parent_contexts_by_context(contexts[schema.RUN_CONTEXT].id)
    assert [p.id for p in parents] == [contexts[schema.PIPELINE_CONTEXT].id]

    # Inputs: one SourceFile artifact per file with uri, size, digest, split, span, version.
    inputs = _events(store, rec.execution_id, pb.Event.INPUT)
    assert [e.path.steps[0].key for e in inputs] == ["sources", "sources"]
    artifacts = store.mlmd.get_artifacts_by_id([e.artifact_id for e in inputs])
    recorded = {a.uri: (a.type, properties(a)) for a in artifacts}
    for source in sources:
        art_type, p = recorded[source.uri]
        assert art_type == schema.SOURCE_FILE
        assert (p["digest"], p["size"], p["split"], p["span"], p["version"]) == (
            source.digest, source.size, source.split, 4, 2)

    # Output: tfx.Examples, LIVE, properties named as TFX names them.
    [output] = _events(store, rec.execution_id, pb.Event.OUTPUT)
    assert output.path.steps[0].key == "examples"
    [examples] = _examples(store)
    assert examples.id == output.artifact_id == rec.output_artifact_id
    assert examples.state == pb.Artifact.LIVE and examples.uri == str(tmp_path / "out")
    p = properties(examples)
    assert json.loads(p["split_names"]) == ["eval", "train"]
    assert (p["span"], p["version"]) == (4, 2)
    assert p["input_fingerprint"] == fingerprint(sources)
    assert (p["payload_format"], p["file_format"]) == ("FORMAT_TF_EXAMPLE", "tfrecords_gzip")
    assert json.loads(p["example_counts"]) == {"train": 2, "eval": 1}

    # Everything is attributed to the run context.
    in_run = {a.id for a in store.mlmd.get_artifacts_by_context(contexts[schema.RUN_CONTEXT].id)}
    assert in_run == {a.id for a in artifacts} | {examples.id}


def test_same_file_and_digest_is_one_artifact_reused_across_runs(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    source = write_source(tmp_path / "a.csv", b"a,b\n1,2\n")
    ids = []
    for run in range(2):
        with Recorder(store, config={"run": run}, run_name=f"run-{run}") as rec:
            ids += rec.record_inputs([source, source])  # a duplicate in one call is one input
            rec.complete(make_result(tmp_path / f"out{run}", [source], {"train": 1}))
    assert len(ids) == 2 and ids[0] == ids[1]
    assert [a.uri for a in store.mlmd.get_artifacts_by_type(schema.SOURCE_FILE)] == [source.uri]
    # The same run context name used again is the same context.
    assert store.mlmd.get_context_by_type_and_name(schema.RUN_CONTEXT, "run-1") is not None
    assert len(store.mlmd.get_contexts_by_type(schema.PIPELINE_CONTEXT)) == 1


def test_changed_content_with_same_size_and_mtime_is_a_new_version(store_url, tmp_path):
    store = open_store(store_url)
    path = tmp_path / "data" / "a.csv"
    old = write_source(path, b"a,b\n1,2\n")
    stat = os.stat(path)
    with Recorder(store, config=CONFIG) as first:
        first.record_inputs([old])
        first.complete(make_result(tmp_path / "out1", [old], {"train": 1}))

    new = write_source(path, b"a,b\n7,8\n")  # same size ...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and same mtime
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert new.digest == sha256_digest(b"a,b\n7,8\n") != old.digest

    with Recorder(store, config=CONFIG) as second:
        assert second.find_cached(fingerprint([new])) is None
        [new_id] = second.record_inputs([new])
        second.complete(make_result(tmp_path / "out2", [new], {"train": 1}))
    [old_id] = first.input_artifact_ids
    assert new_id != old_id
    by_uri = store.mlmd.get_artifacts_by_uri(str(path))
    assert sorted(properties(a)["digest"] for a in by_uri) == sorted([old.digest, new.digest])
    fingerprints = [properties(a)["input_fingerprint"] for a in _examples(store)]
    assert fingerprints == [fingerprint([old]), fingerprint([new])] and fingerprints[0] != fingerprints[1]


def test_identical_config_and_inputs_reuse_the_examples_as_cached(store_url, tmp_path):
    store = open_store(store_url)
    sources = [write_source(tmp_path / "a.csv", b"1\n2\n3\n")]
    with Recorder(store, config=CONFIG) as first:
        first.record_inputs(sources)
        assert first.find_cached(fingerprint(sources)) is None
        first.complete(make_result(tmp_path / "out", sources, {"train": 2, "eval": 1}))

    with Recorder(store, config=json.loads(json.dumps(CONFIG))) as second:
        second.record_inputs(sources)
        hit = second.find_cached(fingerprint(sources))
        assert hit is not None and hit.cached
        assert (hit.output_uri, hit.split_names, hit.counts) == (str(tmp_path / "out"), ["eval", "train"],
                                                                 {"train": 2, "eval": 1})
        assert hit.input_fingerprint == fingerprint(sources)
        assert hit.sources == sources and hit.config == CONFIG
        assert (hit.rows_read, hit.rows_written, hit.rows_rejected) == (4, 3, 1)
        second.complete_cached(hit)

    execution = _execution(store, second.execution_id)
    assert execution.last_known_state == pb.Execution.CACHED
    assert properties(execution)["cached_execution_id"] == str(first.execution_id)
    [output] = _events(store, second.execution_id, pb.Event.OUTPUT)
    assert output.artifact_id == first.output_artifact_id == second.output_artifact_id
    assert len(_examples(store)) == 1  # reused, not rewritten
    run = store.mlmd.get_context_by_type_and_name(schema.RUN_CONTEXT, second.run_name)
    assert first.output_artifact_id in {a.id for a in store.mlmd.get_artifacts_by_context(run.id)}


def test_no_cache_hit_for_other_config_failed_runs_or_deleted_files(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    sources = [write_source(tmp_path / "a.csv", b"1\n")]
    fp = fingerprint(sources)
    with pytest.raises(RuntimeError):
        with Recorder(store, config=CONFIG) as failed:
            failed.record_inputs(sources)
            raise RuntimeError("disk full")
    assert Recorder(store, config=CONFIG).find_cached(fp) is None  # a FAILED run is no cache

    with Recorder(store, config=CONFIG) as done:
        done.complete(make_result(tmp_path / "out", sources, {"train": 1}))
    assert Recorder(store, config=CONFIG).find_cached(fp) is not None
    assert Recorder(store, config={**CONFIG, "input_base": "/other"}).find_cached(fp) is None
    assert Recorder(store, execution_type=schema.SPLIT, config=CONFIG).find_cached(fp) is None
    assert Recorder(store, config=CONFIG).find_cached("sha256:" + "0" * 64) is None

    for data_file in (tmp_path / "out" / "Split-train").iterdir():
        data_file.unlink()
    assert Recorder(store, config=CONFIG).find_cached(fp) is None  # files gone: rerun


def test_exception_marks_failed_with_message_and_no_live_output(store_url, tmp_path):
    store = open_store(store_url)
    sources = [write_source(tmp_path / "a.csv", b"1\n")]
    with pytest.raises(SourceError):
        with Recorder(store, config={"db": "mysql://etl:hunter2@db:3306/x"}) as rec:
            rec.record_inputs(sources)
            raise SourceError("a.csv line 3: 2 fields, expected 3 (read via mysql://etl:hunter2@db/x)")
    execution = _execution(store, rec.execution_id)
    assert execution.last_known_state == pb.Execution.FAILED
    props = properties(execution)
    assert props["error_message"].startswith("SourceError: a.csv line 3: 2 fields, expected 3")
    assert "hunter2" not in props["error_message"] and "hunter2" not in props["config"]
    assert "end_time" in props
    assert _examples(store) == []
    assert _events(store, rec.execution_id, pb.Event.OUTPUT) == []


def test_leaving_the_block_without_a_result_is_a_failure(sqlite_url):
    store = open_store(sqlite_url)
    with Recorder(store) as rec:
        pass
    execution = _execution(store, rec.execution_id)
    assert execution.last_known_state == pb.Execution.FAILED
    assert "without recording a result" in properties(execution)["error_message"]


def test_split_consumes_examples_and_produces_new_examples(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    sources = [write_source(tmp_path / "a.csv", b"1\n2\n")]
    with Recorder(store, config=CONFIG, run_name="r1") as ingest:
        ingest.complete(make_result(tmp_path / "ingested", sources, {"train": 2}))
    with Recorder(store, schema.SPLIT, config={"split": "80/20"}, run_name="r1") as split:
        input_id = split.record_input_examples(str(tmp_path / "ingested"))
        split.complete(make_result(tmp_path / "resplit", [], {"train": 8, "eval": 2}))
    assert input_id == ingest.output_artifact_id
    [consumed] = _events(store, split.execution_id, pb.Event.INPUT)
    assert (consumed.artifact_id, consumed.path.steps[0].key) == (input_id, "examples")
    [produced] = store.mlmd.get_artifacts_by_id([split.output_artifact_id])
    assert produced.type == schema.EXAMPLES and produced.state == pb.Artifact.LIVE
    assert json.loads(properties(produced)["example_counts"]) == {"train": 8, "eval": 2}
    assert _execution(store, split.execution_id).type == schema.SPLIT


def test_split_of_examples_unknown_to_mlmd_registers_them(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    with Recorder(store, schema.SPLIT) as split:
        input_id = split.record_input_examples(str(tmp_path / "tfx-made"), {"span": 7, "split_names": '["train"]'})
        split.complete()
    [registered] = store.mlmd.get_artifacts_by_id([input_id])
    assert registered.uri == str(tmp_path / "tfx-made") and registered.type == schema.EXAMPLES
    assert properties(registered)["span"] == 7


def test_resolve_span_records_span_version_and_fingerprint_without_output(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    sources = [write_source(tmp_path / "span-3" / "v2" / "a.csv", b"1\n", span=3, version=2)]
    with Recorder(store, schema.RESOLVE_SPAN, config={"pattern": "span-{SPAN}/v{VERSION}/*"}) as rec:
        rec.record_inputs(sources)
        rec.set_properties(span=3, version=2, input_fingerprint=fingerprint(sources))
        assert rec.complete() is None
    execution = _execution(store, rec.execution_id)
    assert execution.type == schema.RESOLVE_SPAN and execution.last_known_state == pb.Execution.COMPLETE
    p = properties(execution)
    assert (p["span"], p["version"], p["input_fingerprint"]) == (3, 2, fingerprint(sources))
    assert _events(store, rec.execution_id, pb.Event.OUTPUT) == []
    assert len(_events(store, rec.execution_id, pb.Event.INPUT)) == 1


def test_inputs_over_several_spans_set_latest_span_and_spans(sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    sources = [write_source(tmp_path / f"span-{s}.csv", f"{s}\n".encode(), span=s, version=s * 10) for s in (1, 3, 2)]
    with Recorder(store) as rec:
        rec.record_inputs(sources)
        p = properties(_execution(store, rec.execution_id))
        assert (p["span"], p["version"], json.loads(p["spans"])) == (3, 30, [1, 2, 3])
        rec.fail("stopped by test")


def test_recorder_misuse_is_a_clear_error(sqlite_url):
    from examplegen.errors import LineageError

    store = open_store(sqlite_url)
    rec = Recorder(store)
    with pytest.raises(LineageError, match="start"):
        rec.complete()
    rec.start()
    rec.complete()
    with pytest.raises(LineageError, match="already COMPLETE"):
        rec.complete()
