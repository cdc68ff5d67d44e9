"""Issue 7, "runs that die": a run killed with SIGKILL does not stay RUNNING forever.

Its execution and its staging folder (owner.json) say which process made them; the next
run on the same store sees the process is dead (pid gone, a zombie, or reused by another
process) and marks the execution FAILED as abandoned; the next run into the same output
removes the folder. Live runs and their folders are left alone. The kills are real; the
moment is forced (the victim waits at a chosen point until it is killed).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from examplegen.ingest import ingest
from examplegen.lineage import open_store, schema
from examplegen.lineage.schema import properties
from examplegen.liveness import ALIVE, DEAD, OWNER_FILE, SELF, UNKNOWN, process_state, process_identity
from tests.helpers import TAXI_CSV_DIR, read_split
from tests.lineage_fixtures import REPO_ROOT, mysql_url, postgres_url, sqlite_url, worker_env  # noqa: F401

# `examplegen ARGV[3:]`, stopping at ARGV[2]: "commit" (inside the writer's commit: part
# files staged, nothing committed; it writes the staging folder's path to ARGV[1]) or
# "convert" (inputs recorded, no staging folder yet; it writes "-" to ARGV[1]). Then it
# waits to be killed.
_STOP_AT = """
import os, sys, time
from examplegen.cli import main
import examplegen.ingest
from examplegen.writer import ExamplesWriter

def stop(text):
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(text)
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(600)
if sys.argv[2] == "commit":
    ExamplesWriter.commit = lambda self, metadata: stop(self.staging)
else:
    examplegen.ingest.convert_files = lambda *args, **kwargs: stop("-")
sys.exit(main(sys.argv[3:]))
"""


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def _stopped_run(url, out, tmp_path, where: str) -> tuple[subprocess.Popen, str]:
    """An `examplegen ingest` process held at `where` ("commit" or "convert"), and what it
    wrote there (its staging folder, or "-")."""
    ready = tmp_path / f"ready-{where}-{os.path.basename(out)}"
    proc = subprocess.Popen(
        [sys.executable, "-c", _STOP_AT, str(ready), where, "ingest", "--input-base", TAXI_CSV_DIR,
         "--output", str(out), "--workers", "1", "--mlmd", url],
        cwd=REPO_ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ready.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before {where}:\n" + proc.stderr.read()[-3000:])
        assert time.time() < deadline, f"the run never reached {where}"
        time.sleep(0.02)
    return proc, ready.read_text()


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _executions(url) -> dict[int, pb.Execution]:
    store = open_store(url, create=False)
    return {e.id: e for e in store.mlmd.get_executions_by_type(schema.INGEST)}


def _assert_abandoned(execution, proc, by_id) -> None:
    assert execution.last_known_state == pb.Execution.FAILED
    props = properties(execution)
    assert props["error_message"] == (f"abandoned: process {proc.pid} on {socket.gethostname()} died before "
                                      f"the run finished (found by execution {by_id})")
    assert props["abandoned_by_execution_id"] == by_id and "end_time" in props


def test_owner_state_tells_self_alive_dead_reused_and_unknown():
    assert process_state(process_identity()) == SELF
    child = _sleeper()
    try:
        alive = process_identity(child.pid)
        assert process_state(alive) == ALIVE
        assert process_state({**alive, "start_ticks": alive["start_ticks"] + 1}) == DEAD  # pid reused
        assert process_state({**alive, "boot_id": "another-boot"}) == DEAD  # machine restarted
        assert process_state({**alive, "host": socket.gethostname() + "-other"}) == UNKNOWN
        assert process_state({**alive, "pid_ns": "pid:[1]"}) == UNKNOWN  # another container
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert process_state(alive) == DEAD
    finally:
        child.kill()
        child.wait()
    assert process_state(alive) == DEAD  # reaped: the pid is gone


@pytest.mark.parametrize("kind", ["sqlite", "mysql", "postgres"])
def test_run_killed_in_its_commit_is_marked_abandoned_and_its_staging_removed(kind, request, tmp_path):
    url = request.getfixturevalue(f"{kind}_url")
    out = tmp_path / "out"
    victim, dead_staging = _stopped_run(url, out, tmp_path, "commit")
    _kill(victim)
    owner = json.loads(open(os.path.join(dead_staging, OWNER_FILE)).read())
    assert owner["pid"] == victim.pid and owner["host"] == socket.gethostname()
    [killed] = _executions(url).values()
    assert killed.last_known_state == pb.Execution.RUNNING
    assert json.loads(properties(killed)["process"]) == owner

    sleeper = _sleeper()  # owns a live run's staging folder in the same output
    try:
        live_staging = out / ".staging-live"
        live_staging.mkdir()
        (live_staging / OWNER_FILE).write_text(json.dumps(process_identity(sleeper.pid)))

        result = ingest(TAXI_CSV_DIR, str(out), mlmd=url, workers=1)
        assert sum(result.counts.values()) == 10000 and not result.cached
        assert len(read_split(str(out), "train")) == result.counts["train"]
        assert not os.path.exists(dead_staging)
        assert live_staging.is_dir()  # not ours to remove
    finally:
        sleeper.kill()
        sleeper.wait()

    executions = _executions(url)
    [rerun_id] = set(executions) - {killed.id}
    _assert_abandoned(executions[killed.id], victim, rerun_id)
    assert executions[rerun_id].last_known_state == pb.Execution.COMPLETE


def test_run_killed_before_writing_is_marked_by_a_run_elsewhere_and_live_runs_are_not(sqlite_url, tmp_path):
    alive, _ = _stopped_run(sqlite_url, tmp_path / "out-alive", tmp_path, "convert")
    try:
        killed, _ = _stopped_run(sqlite_url, tmp_path / "out-killed", tmp_path, "convert")
        _kill(killed)
        [killed_id] = [i for i, e in _executions(sqlite_url).items()
                       if json.loads(properties(e)["process"])["pid"] == killed.pid]
        result = ingest(TAXI_CSV_DIR, str(tmp_path / "out-other"), mlmd=sqlite_url, workers=1)
        assert sum(result.counts.values()) == 10000
        executions = _executions(sqlite_url)
        other_id = max(executions)
        _assert_abandoned(executions[killed_id], killed, other_id)
        [alive_id] = set(executions) - {killed_id, other_id}
        assert executions[alive_id].last_known_state == pb.Execution.RUNNING  # still working
    finally:
        _kill(alive)
    ingest(TAXI_CSV_DIR, str(tmp_path / "out-last"), mlmd=sqlite_url, workers=1, force=True)
    executions = _executions(sqlite_url)
    _assert_abandoned(executions[alive_id], alive, max(executions))


def test_staging_of_a_dead_process_or_without_owner_is_removed(tmp_path):
    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, ownerless = out / ".staging-dead", out / ".staging-old"
    for folder in (stale, ownerless):
        (folder / "parts").mkdir(parents=True)
    (stale / OWNER_FILE).write_text(json.dumps({**process_identity(dead.pid), "start_ticks": 1}))
    ingest(TAXI_CSV_DIR, str(out), record_lineage=False, workers=1)
    assert sorted(os.listdir(out)) == ["Split-eval", "Split-train", "examples_metadata.json"]
