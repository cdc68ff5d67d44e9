"""Worker processes started by the command before it parses and plans
(examplegen.worker_pool, examplegen.cli.run): which command lines start them, and that a
run converts with the started pool (no second pool) and gives the same artifact."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from examplegen import cli, worker_pool
from tests.helpers import TAXI_CSV_DIR, tree_bytes


@pytest.mark.parametrize("argv, wanted", [
    (["ingest", "--input-base", "in", "--output", "out"], "cores"),
    (["--debug", "ingest", "--input-base", "in", "--output", "out"], "cores"),
    (["resplit", "--examples", "e", "--output", "out"], "cores"),
    (["ingest", "--input-base", "in", "--output", "out", "--workers", "3"], 3),
    (["ingest", "--input-base", "in", "--output", "out", "--workers=3"], 3),
    (["ingest", "--input-base", "in", "--output", "out", "--workers", "1"], 1),
    (["ingest", "--input-base", "in", "--output", "out", "--engine", "beam"], 0),
    (["ingest", "--input-base", "in", "--output", "out", "--engine=beam"], 0),
    (["ingest", "--format", "sql", "--connection", "postgresql://h/db", "--output", "out"], 0),
    (["ingest", "--help"], 0),
    (["ingest", "--workers", "many"], 0),  # the real parser reports it
    (["resolve", "--input-base", "in"], 0),
    (["versions"], 0),
    ([], 0),
])
def test_which_command_lines_start_workers_early(argv, wanted):
    expected = worker_pool.default_workers() if wanted == "cores" else wanted
    assert cli._local_workers_wanted(argv) == expected


@pytest.fixture
def counted_starts(monkeypatch):
    starts = []
    real = worker_pool.start

    def start(workers):
        starts.append(workers)
        return real(workers)

    monkeypatch.setattr(worker_pool, "start", start)
    yield starts
    worker_pool.discard()


def test_a_run_takes_the_prestarted_pool(tmp_path, monkeypatch, counted_starts):
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["examplegen", "ingest", "--input-base", TAXI_CSV_DIR, "--output", str(out),
                                      "--no-lineage", "--workers", "2"])
    assert cli.run() == 0
    assert counted_starts == [1]  # one process (this one converts too), started before parsing; no other pool
    assert worker_pool.prestarted() == 0
    reference = tmp_path / "reference"
    assert cli.main(["ingest", "--input-base", TAXI_CSV_DIR, "--output", str(reference), "--no-lineage",
                     "--workers", "1"]) == 0
    assert tree_bytes(str(out)) == tree_bytes(str(reference))


def test_a_pool_of_another_size_is_shut_down_not_used(counted_starts):
    worker_pool.prestart(2)
    pool = worker_pool._prestarted[1]
    assert worker_pool.take(3) is None
    assert worker_pool.prestarted() == 0 and pool._shutdown_thread
    worker_pool.prestart(2)
    assert worker_pool.take(2) is not None and worker_pool.take(2) is None
    assert counted_starts == [2, 2]


def test_a_small_input_converts_inline_and_discards_the_pool(tmp_path, monkeypatch, counted_starts):
    """Below 64 MiB the run converts in the launcher (faster than waiting for a worker): the
    prestarted pool is shut down, and nothing is left for a later run."""
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["examplegen", "ingest", "--input-base", TAXI_CSV_DIR, "--output", str(out),
                                      "--no-lineage"])
    assert cli.run() == 0
    assert len(counted_starts) == (1 if worker_pool.default_workers() > 1 else 0)
    assert worker_pool.prestarted() == 0


def _environment_variable(name):
    import os

    return os.environ.get(name)


def test_workers_see_the_environment_of_the_run_not_of_the_first_pool(monkeypatch):
    """The fork server is started once per process, with the environment of that moment;
    a later pool's workers still see the environment as it is when that pool starts
    (credentials or an endpoint set in a notebook between two runs)."""
    monkeypatch.setenv("EXAMPLEGEN_TEST_VALUE", "first")
    pool = worker_pool.start(2)
    try:
        assert pool.submit(_environment_variable, "EXAMPLEGEN_TEST_VALUE").result() == "first"
    finally:
        pool.shutdown()
    monkeypatch.setenv("EXAMPLEGEN_TEST_VALUE", "second")
    monkeypatch.setenv("EXAMPLEGEN_TEST_OTHER", "new")
    pool = worker_pool.start(2)
    try:
        values = [pool.submit(_environment_variable, name).result()
                  for name in ("EXAMPLEGEN_TEST_VALUE", "EXAMPLEGEN_TEST_OTHER")]
    finally:
        pool.shutdown()
    assert values == ["second", "new"]


def _memory_pool_of_worker() -> tuple[str, str]:
    import os

    import pyarrow as pa

    return pa.default_memory_pool().backend_name, os.environ.get("JE_ARROW_MALLOC_CONF", "")


def test_workers_convert_with_a_jemalloc_pool_that_keeps_freed_pages():
    """The engine's own workers keep freed pages for the next unit (examplegen.arrow_memory);
    the process that started them keeps Arrow's default pool and environment."""
    import os

    import pyarrow as pa

    own_pool = pa.default_memory_pool().backend_name
    own_conf = os.environ.get("JE_ARROW_MALLOC_CONF")
    pool = worker_pool.start(2)
    try:
        backend, conf = pool.submit(_memory_pool_of_worker).result(timeout=120)
    finally:
        pool.shutdown()
    assert (backend, conf) == ("jemalloc", "dirty_decay_ms:-1,muzzy_decay_ms:-1")  # pyarrow's Linux wheels have it
    assert pa.default_memory_pool().backend_name == own_pool
    assert os.environ.get("JE_ARROW_MALLOC_CONF") == own_conf


def test_the_pool_is_chosen_only_before_pyarrow_is_imported():
    import subprocess

    from examplegen import arrow_memory

    assert arrow_memory.retain_freed_pages() is False  # this process imported pyarrow long ago
    code = ("from examplegen import arrow_memory; import sys; first = arrow_memory.retain_freed_pages(); "
            "import pyarrow as pa; print(first, pa.default_memory_pool().backend_name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "jemalloc"]


@pytest.fixture
def many_units(tmp_path, monkeypatch):
    """The taxi CSV in ~20 units; this process is the launcher the hooks recognise."""
    from examplegen import ingest as ingest_module

    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 100_000)
    monkeypatch.setenv("EXAMPLEGEN_TEST_LAUNCHER_PID", str(os.getpid()))
    monkeypatch.setenv("EXAMPLEGEN_TEST_WORKER_DIR", str(tmp_path))
    return ingest_module


def test_two_workers_are_this_process_and_one_worker_process(tmp_path, many_units, monkeypatch):
    """workers=2: units run in this process (a thread) and in one spawned process, the
    results in unit order: the artifact is the one-process run's."""
    from examplegen.convert import run_task
    from tests import worker_hooks

    monkeypatch.setattr(many_units, "run_task", worker_hooks.note_pid_and_convert)
    many_units.ingest(TAXI_CSV_DIR, str(tmp_path / "two"), workers=2, record_lineage=False)
    pids = {int(name.split("-")[0]) for name in os.listdir(tmp_path) if name[0].isdigit()}
    assert os.getpid() in pids and len(pids) == 2
    monkeypatch.setattr(many_units, "run_task", run_task)
    many_units.ingest(TAXI_CSV_DIR, str(tmp_path / "one"), workers=1, record_lineage=False)
    assert tree_bytes(str(tmp_path / "two")) == tree_bytes(str(tmp_path / "one"))


@pytest.mark.parametrize("hook, message", [("fail_in_launcher", "failed in the launcher"),
                                           ("fail_in_worker", "failed in a worker")])
def test_a_unit_failing_in_either_place_fails_the_run_and_commits_nothing(tmp_path, many_units, monkeypatch,
                                                                          hook, message):
    from tests import worker_hooks

    monkeypatch.setattr(many_units, "run_task", getattr(worker_hooks, hook))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match=message):
        many_units.ingest(TAXI_CSV_DIR, str(out), workers=2, record_lineage=False)
    assert not (out / "examples_metadata.json").exists()
    assert not [t for t in threading.enumerate() if t.name == "examplegen-convert"]  # it was joined
