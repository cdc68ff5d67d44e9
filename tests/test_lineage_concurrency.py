"""Several processes recording into one store, and a run killed half-way (real subprocesses)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from examplegen.lineage import open_store, schema
from examplegen.lineage.schema import properties
from tests.lineage_fixtures import (  # noqa: F401 - fixtures
    REPO_ROOT,
    mysql_url,
    postgres_url,
    sqlite_url,
    worker_command,
    worker_env,
)


def _start_worker(url, data, name, *extra):
    return subprocess.Popen(
        worker_command("worker", url, "--data", str(data), "--name", name, *extra),
        cwd=REPO_ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{err[-3000:]}"


@pytest.fixture
def data_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "shared.csv").write_bytes(b"shared data")
    return data


@pytest.mark.parametrize("kind", ["sqlite", "mysql", "postgres"])
def test_two_processes_recording_at_once_both_succeed_and_lose_nothing(kind, request, data_dir):
    url = request.getfixturevalue(f"{kind}_url")  # a new, empty store: they also race to create it
    runs = 8
    start_at = str(time.time() + 1.2)
    workers = [_start_worker(url, data_dir, name, "--runs", str(runs), "--start-at", start_at, "--parties", "2")
               for name in ("w1", "w2")]
    for proc in workers:
        _finish(proc)

    store = open_store(url, create=False)
    executions = store.mlmd.get_executions_by_type(schema.INGEST)
    assert len(executions) == 2 * runs, [properties(e)["config"] for e in executions]
    assert {pb.Execution.State.Name(e.last_known_state) for e in executions} == {"COMPLETE"}
    configs = sorted((c["worker"], c["run"]) for c in (json.loads(properties(e)["config"]) for e in executions))
    assert configs == sorted((w, i) for w in ("w1", "w2") for i in range(runs))
    assert sorted(p.name for p in data_dir.glob("opened-*")) == ["opened-w1", "opened-w2"]  # the barrier
    if kind != "sqlite":  # SQLite admits one writer at a time (the other waits); servers interleave
        spans = {}  # worker -> (first start, last end)
        for e in executions:
            p = properties(e)
            worker = json.loads(p["config"])["worker"]
            first, last = spans.get(worker, (p["start_time"], p["end_time"]))
            spans[worker] = (min(first, p["start_time"]), max(last, p["end_time"]))
        assert spans["w1"][0] < spans["w2"][1] and spans["w2"][0] < spans["w1"][1], spans

    sources = store.mlmd.get_artifacts_by_type(schema.SOURCE_FILE)
    uris = sorted(a.uri for a in sources)
    assert uris.count(str(data_dir / "shared.csv")) == 1  # one artifact despite 8 racing writers
    assert len(uris) == 1 + 2 * runs
    [shared] = [a for a in sources if a.uri.endswith("shared.csv")]
    consumers = [e for e in store.mlmd.get_events_by_artifact_ids([shared.id]) if e.type == pb.Event.INPUT]
    assert len(consumers) == 2 * runs

    examples = store.mlmd.get_artifacts_by_type(schema.EXAMPLES)
    assert len(examples) == 2 * runs and all(a.state == pb.Artifact.LIVE for a in examples)
    events = store.mlmd.get_events_by_execution_ids([e.id for e in executions])
    assert sum(e.type == pb.Event.OUTPUT for e in events) == 2 * runs
    assert sum(e.type == pb.Event.INPUT for e in events) == 2 * 2 * runs

    [pipeline] = store.mlmd.get_contexts_by_type(schema.PIPELINE_CONTEXT)
    run_contexts = store.mlmd.get_contexts_by_type(schema.RUN_CONTEXT)
    assert len(run_contexts) == 2 * runs
    for ctx in run_contexts:
        assert [p.id for p in store.mlmd.get_parent_contexts_by_context(ctx.id)] == [pipeline.id]


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_killed_run_has_no_live_output_next_run_succeeds_and_marks_it_abandoned(kind, request, data_dir, tmp_path):
    url = request.getfixturevalue(f"{kind}_url")
    ready = tmp_path / "ready.json"
    victim = _start_worker(url, data_dir, "victim", "--hold", str(ready))
    deadline = time.time() + 30
    while not ready.exists():
        if victim.poll() is not None:
            pytest.fail("worker exited early:\n" + victim.stderr.read()[-3000:])
        assert time.time() < deadline, "worker never reached the middle of its run"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    killed_id = json.loads(ready.read_text())["execution_id"]

    store = open_store(url, create=False)
    [killed] = store.mlmd.get_executions_by_id([killed_id])
    assert killed.last_known_state == pb.Execution.RUNNING  # not COMPLETE
    assert "end_time" not in properties(killed)
    assert store.mlmd.get_artifacts_by_type(schema.EXAMPLES) == []  # no LIVE output
    assert len(store.mlmd.get_artifacts_by_type(schema.SOURCE_FILE)) == 2  # its inputs were recorded

    _finish(_start_worker(url, data_dir, "victim"))  # the same run again
    executions = {e.id: e for e in store.mlmd.get_executions_by_type(schema.INGEST)}
    assert len(executions) == 2
    [rerun_id] = set(executions) - {killed_id}
    assert executions[rerun_id].last_known_state == pb.Execution.COMPLETE
    assert executions[killed_id].last_known_state == pb.Execution.FAILED  # its process is gone
    assert properties(executions[killed_id])["abandoned_by_execution_id"] == rerun_id
    [examples] = store.mlmd.get_artifacts_by_type(schema.EXAMPLES)
    assert examples.state == pb.Artifact.LIVE
    producers = [e.execution_id for e in store.mlmd.get_events_by_artifact_ids([examples.id])]
    assert producers == [rerun_id]
    assert len(store.mlmd.get_artifacts_by_type(schema.SOURCE_FILE)) == 2  # inputs reused
