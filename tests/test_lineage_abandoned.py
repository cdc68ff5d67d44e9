"""Issue 7, "runs that die": a run killed with SIGKILL does not stay RUNNING forever.

Its staging folder says which process and execution made it (owner.json); the next run
into the same output finds it, sees the process is dead (pid gone, a zombie, or reused by
another process), removes the folder and marks the execution FAILED as abandoned. A live
run's folder is left alone. The kills are real; the moment is forced (the victim waits
inside its commit until it is killed).
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
from examplegen.staging_owner import ALIVE, DEAD, OWNER_FILE, SELF, UNKNOWN, owner_state, process_identity
from tests.helpers import TAXI_CSV_DIR, read_split
from tests.lineage_fixtures import REPO_ROOT, mysql_url, postgres_url, sqlite_url, worker_env  # noqa: F401

# `examplegen ARGV[2:]`, stopping inside the writer's commit (part files staged, nothing
# committed): it writes the staging folder's path to ARGV[1] and waits to be killed.
_STOP_IN_COMMIT = """
import os, sys, time
from examplegen.cli import main
from examplegen.writer import ExamplesWriter

def commit(self, metadata):
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(self.staging)
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(600)
ExamplesWriter.commit = commit
sys.exit(main(sys.argv[2:]))
"""


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])


def _wait_for(path, proc) -> None:
    deadline = time.time() + 120
    while not os.path.exists(path):
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before it reached its commit:\n"
                        + proc.stderr.read()[-3000:])
        assert time.time() < deadline, "the run never reached its commit"
        time.sleep(0.02)


def test_owner_state_tells_self_alive_dead_reused_and_unknown():
    assert owner_state(process_identity()) == SELF
    child = _sleeper()
    try:
        alive = process_identity(child.pid)
        assert owner_state(alive) == ALIVE
        assert owner_state({**alive, "start_ticks": alive["start_ticks"] + 1}) == DEAD  # pid reused
        assert owner_state({**alive, "boot_id": "another-boot"}) == DEAD  # machine restarted
        assert owner_state({**alive, "host": socket.gethostname() + "-other"}) == UNKNOWN
        assert owner_state({**alive, "pid_ns": "pid:[1]"}) == UNKNOWN  # another container
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert owner_state(alive) == DEAD
    finally:
        child.kill()
        child.wait()
    assert owner_state(alive) == DEAD  # reaped: the pid is gone


@pytest.mark.parametrize("kind", ["sqlite", "mysql", "postgres"])
def test_killed_run_is_marked_abandoned_and_its_staging_removed_by_the_next_run(kind, request, tmp_path):
    url = request.getfixturevalue(f"{kind}_url")
    out, ready = tmp_path / "out", tmp_path / "staging-path"
    victim = subprocess.Popen(
        [sys.executable, "-c", _STOP_IN_COMMIT, str(ready), "ingest", "--input-base", TAXI_CSV_DIR,
         "--output", str(out), "--workers", "1", "--mlmd", url],
        cwd=REPO_ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(ready, victim)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    dead_staging = ready.read_text()
    owner = json.loads(open(os.path.join(dead_staging, OWNER_FILE)).read())
    assert owner["pid"] == victim.pid and owner["host"] == socket.gethostname()

    store = open_store(url, create=False)
    [killed] = store.mlmd.get_executions_by_type(schema.INGEST)
    assert killed.last_known_state == pb.Execution.RUNNING and owner["execution_id"] == killed.id

    # A live run's staging folder in the same output (this test's sleeper owns it).
    sleeper = _sleeper()
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

    executions = {e.id: e for e in store.mlmd.get_executions_by_type(schema.INGEST)}
    [rerun_id] = set(executions) - {killed.id}
    abandoned = executions[killed.id]
    assert abandoned.last_known_state == pb.Execution.FAILED
    props = properties(abandoned)
    assert props["error_message"].startswith(f"abandoned: process {victim.pid} on {socket.gethostname()} died")
    assert dead_staging in props["error_message"] and "end_time" in props
    assert props["abandoned_by_execution_id"] == rerun_id
    assert executions[rerun_id].last_known_state == pb.Execution.COMPLETE


def test_staging_of_a_run_in_another_store_is_removed_without_touching_that_store(sqlite_url, tmp_path):
    out = tmp_path / "out"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out / ".staging-other"
    stale.mkdir(parents=True)
    other_store = f"sqlite:///{tmp_path / 'other.sqlite'}"
    (stale / OWNER_FILE).write_text(json.dumps({**process_identity(dead.pid), "start_ticks": 1,
                                                "store": other_store, "execution_id": 1}))
    ingest(TAXI_CSV_DIR, str(out), mlmd=sqlite_url, workers=1)
    assert not stale.exists() and not os.path.exists(tmp_path / "other.sqlite")
    [execution] = open_store(sqlite_url).mlmd.get_executions_by_type(schema.INGEST)
    assert execution.last_known_state == pb.Execution.COMPLETE  # execution 1 here is this run
