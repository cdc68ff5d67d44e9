"""engine="beam": the local engine's work units on Apache Beam, same artifact, verified counts.

The Beam engine runs on the DirectRunner (in this process) and on the PortableRunner
against Beam's local job service with workers in a separate worker pool process
(--environment_type=EXTERNAL), the portability layer Dataflow, Flink and Spark use. Fault
tests force each situation through the engine's own seams: the list of pipeline elements
(a unit dropped, a unit repeated) and the unit conversion (a failure, lost output).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

import examplegen.beam_engine as beam_engine
import examplegen.unit_files as unit_files
import examplegen.ingest as ingest_module
from examplegen import convert, tfrecord
from examplegen.errors import ConfigError, ExampleGenError, SourceError, VerificationError
from examplegen.ingest import ingest, resplit
from tests.cloud_servers import cloud_servers, gcs_server, s3_server, start_servers  # noqa: F401 (fixtures)
from tests.helpers import REPO, TAXI_CSV_DIR, shared, tree_bytes
from tests.test_fs_remote import remote_env, store, stores  # noqa: F401 (fixtures)

SPLITS_3 = {"split_config": {"splits": [{"name": "train", "hash_buckets": 2}, {"name": "eval", "hash_buckets": 1}]}}


@pytest.fixture
def small_units(monkeypatch):
    """The taxi CSV (1.9 MB) in ~20 work units, so units fan out and interleave."""
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 100_000)


def _ingest(output, engine="local", args=None, **kw):
    kw.setdefault("num_shards", 3)
    if engine == "beam":
        kw["beam_pipeline_args"] = args or ["--runner=DirectRunner"]
    return ingest(kw.pop("input_base", TAXI_CSV_DIR), str(output), record_lineage=False, engine=engine,
                  **({"workers": 1} if engine == "local" else {}), **kw)


def _assert_same_artifact(a, b):
    """Same files, same bytes (data files and examples_metadata.json, which lists them)."""
    assert tree_bytes(str(a)) == tree_bytes(str(b))


# ---------------------------------------------------------------- same bytes as local
def test_direct_runner_csv_is_byte_identical_to_local(tmp_path, small_units):
    local = _ingest(tmp_path / "local")
    beam = _ingest(tmp_path / "beam", "beam")
    assert beam.counts == local.counts == {"train": 6656, "eval": 3344}
    assert beam.rows_read == 10_000 and beam.config["engine"] == "beam"
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")
    assert [n for n in os.listdir(tmp_path / "beam") if n.startswith(".")] == []  # staging gone


def test_direct_runner_tfrecord_import_and_resplit_are_byte_identical(tmp_path):
    base = shared("external", "tfrecord")
    _ingest(tmp_path / "local", input_base=base, source_format="tfrecord")
    _ingest(tmp_path / "beam", "beam", input_base=base, source_format="tfrecord")
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")
    config = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 4}]}}
    resplit(str(tmp_path / "local"), str(tmp_path / "re-local"), output_config=config, record_lineage=False)
    resplit(str(tmp_path / "local"), str(tmp_path / "re-beam"), output_config=config, record_lineage=False,
            engine="beam", beam_pipeline_args=["--runner=DirectRunner"])
    _assert_same_artifact(tmp_path / "re-local", tmp_path / "re-beam")


def test_second_pass_when_a_later_unit_needs_a_wider_type(tmp_path, monkeypatch):
    """CSV sampling says INT, a later unit holds a float: the Beam engine converts the split
    again (a second pipeline) and ends with the local engine's artifact."""
    import examplegen.sources.csv as csv_mod

    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 2000)
    monkeypatch.setattr(csv_mod, "sample_types", lambda layout, options, *args, **kwargs:
                        [csv_mod.ColumnType.INT] * 2 + [csv_mod.ColumnType.STRING])
    data = tmp_path / "in"
    data.mkdir()
    rows = [f"{i},{i % 7},name{i}" for i in range(2000)] + ["2000,2.5,last"]
    (data / "d.csv").write_text("id,x,name\n" + "\n".join(rows) + "\n")
    passes = []
    real_run = beam_engine.BeamRunner.run
    monkeypatch.setattr(beam_engine.BeamRunner, "run", lambda self, tasks: passes.append(1) or real_run(self, tasks))
    _ingest(tmp_path / "local", input_base=str(data))
    _ingest(tmp_path / "beam", "beam", input_base=str(data))
    assert len(passes) == 2
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")


def test_direct_runner_multi_processing_gives_every_row(tmp_path, small_units, monkeypatch):
    """The DirectRunner mode where TFX lost rows (two worker processes): this engine's
    pipeline has no splittable DoFn, and its output is the local engine's."""
    monkeypatch.setenv("PYTHONPATH", REPO)  # the worker processes import this checkout
    _ingest(tmp_path / "local")
    beam = _ingest(tmp_path / "beam", "beam", ["--runner=DirectRunner", "--direct_num_workers=2",
                                               "--direct_running_mode=multi_processing"])
    assert sum(beam.counts.values()) == 10_000
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")


# ---------------------------------------------------------------- portable runner
def _worker_pool_stop(server) -> None:
    """SIGINT first: the pool then stops its SDK worker processes (its atexit hook)."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    server.stop()


@pytest.fixture(scope="module")
def portable_args(tmp_path_factory):
    """Beam's local job service and a worker pool (separate processes, free loopback ports);
    yields the pipeline args that run a job there with --environment_type=EXTERNAL."""
    yield from beam_services(tmp_path_factory)


def beam_services(tmp_path_factory, **environ):
    """The generator behind portable_args; ``environ``: more environment for the workers."""
    env = dict(os.environ, PYTHONPATH=REPO,  # the pool's workers import this checkout's engine
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),  # its `python`
               **environ)
    servers = start_servers({
        "job_service": lambda port: ["-m", "apache_beam.runners.portability.local_job_service_main",
                                     "--port", str(port)],
        "worker_pool": lambda port: ["-m", "apache_beam.runners.worker.worker_pool_main",
                                     "--service_port", str(port)],
    }, str(tmp_path_factory.mktemp("beam-services")), env=env)
    try:
        yield ["--runner=PortableRunner", f"--job_endpoint=localhost:{servers['job_service'].port}",
               "--environment_type=EXTERNAL", f"--environment_config=localhost:{servers['worker_pool'].port}"]
    finally:
        _worker_pool_stop(servers["worker_pool"])
        servers["job_service"].stop()


def test_portable_runner_with_external_workers_is_byte_identical(tmp_path, small_units, portable_args):
    local = _ingest(tmp_path / "local")
    beam = _ingest(tmp_path / "beam", "beam", portable_args)
    assert beam.counts == local.counts
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")


def test_portable_runner_bad_input_is_the_local_engines_error(tmp_path, portable_args):
    """A unit failing on bad input in a worker process: the launcher raises that unit's
    error (file and line), not the runner's wrapped traceback."""
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("a,b\n1,x\n2,y\nthree,z\n")
    with pytest.raises(SourceError) as local_error:
        _ingest(tmp_path / "local", input_base=str(data), csv_options={"schema": "a:int"})
    with pytest.raises(SourceError) as beam_error:
        _ingest(tmp_path / "beam", "beam", portable_args, input_base=str(data), csv_options={"schema": "a:int"})
    assert str(beam_error.value) == str(local_error.value)
    assert "d.csv" in str(beam_error.value) and "line 4" in str(beam_error.value)
    assert not os.path.exists(tmp_path / "beam")


# ---------------------------------------------------------------- faults: nothing wrong committed
def _assert_nothing_committed(output):
    assert not os.path.exists(output) or os.listdir(output) == []


def test_a_planned_unit_that_never_runs_fails_the_run(tmp_path, small_units, monkeypatch):
    monkeypatch.setattr(beam_engine, "pipeline_elements", lambda n: [i for i in range(n) if i != 3])
    with pytest.raises(VerificationError, match=r"work unit 3 of input split 0 \(.*data.csv: line \d+.*\) never "
                                                r"completed; nothing was committed"):
        _ingest(tmp_path / "beam", "beam")
    _assert_nothing_committed(tmp_path / "beam")


def test_a_unit_run_twice_counts_once(tmp_path, small_units, monkeypatch):
    """A retried (or speculatively duplicated) unit: its part files are overwritten with the
    same bytes and its two results deduplicated by unit id."""
    monkeypatch.setattr(beam_engine, "pipeline_elements", lambda n: list(range(n)) + [2, 5, 5])
    _ingest(tmp_path / "local")
    beam = _ingest(tmp_path / "beam", "beam")
    assert sum(beam.counts.values()) == 10_000
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")


def test_a_retry_after_a_failed_attempt_leaves_no_trace(tmp_path, small_units, monkeypatch):
    """An attempt that dies after writing part of its output (in its attempt folder), then
    the retry: the partial output is never published. Forced by running unit 4 twice, the
    first run writing a part file and dying."""
    monkeypatch.setattr(beam_engine, "pipeline_elements", lambda n: [4] + list(range(n)))
    real_run_unit = unit_files.run_unit
    died = tmp_path / "died"  # a file: the pipeline may run a pickled copy of this function

    def dies_once(task):
        if task.chunk == 4 and not died.exists():
            died.touch()
            # a part file no complete attempt writes: were it published, the run would fail
            with open(os.path.join(task.parts_dir, convert.part_file_name(0, 4, 7, 0)), "wb") as f:
                f.write(tfrecord.gzip_member(tfrecord.frame_records([b"partial"])))
            raise _AttemptDied
        return real_run_unit(task)

    monkeypatch.setattr(unit_files, "run_unit", dies_once)
    monkeypatch.setattr(unit_files, "convert_unit", _survive_attempt_death(unit_files.convert_unit))
    _ingest(tmp_path / "local")
    _ingest(tmp_path / "beam", "beam")
    assert died.exists()
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")


class _AttemptDied(Exception):
    """Stands for a worker killed mid-unit."""


def _survive_attempt_death(convert_unit):
    """The worker's view of a killed attempt: it is gone, the runner goes on (a runner
    that retries runs the unit again; here the unit's second element is that retry)."""
    def wrapper(task, pass_dir):
        try:
            return convert_unit(task, pass_dir)
        except _AttemptDied:
            return None
    return wrapper


def test_a_unit_whose_output_goes_missing_fails_the_run(tmp_path, small_units, monkeypatch):
    real = unit_files.convert_unit

    def loses_a_part(task, pass_dir):
        result = real(task, pass_dir)
        if task.chunk == 6:
            os.remove(os.path.join(task.parts_dir, sorted(result.parts)[0]))
        return result

    monkeypatch.setattr(unit_files, "convert_unit", loses_a_part)
    with pytest.raises(VerificationError, match=r"work unit 6 .* wrote part file 000-0000006-0000-0000\d\.gz "
                                                r"\(\d+ records\), which is missing"):
        _ingest(tmp_path / "beam", "beam")
    _assert_nothing_committed(tmp_path / "beam")


def test_a_dofn_that_fails_once_fails_the_run_on_the_direct_runner(tmp_path, small_units, monkeypatch):
    """The DirectRunner does not retry a failed bundle (Dataflow does, up to 4 times): the
    run fails with the unit's error, an earlier artifact stays as it was, and the next run
    succeeds."""
    _ingest(tmp_path / "out")
    before = tree_bytes(str(tmp_path / "out"))
    real_run_unit = unit_files.run_unit
    failed = tmp_path / "failed"  # a file: the pipeline may run a pickled copy of this function

    def fails_once(task):
        if task.chunk == 2 and not failed.exists():
            failed.touch()
            raise RuntimeError("worker lost its disk")
        return real_run_unit(task)

    monkeypatch.setattr(unit_files, "run_unit", fails_once)
    with pytest.raises(ExampleGenError, match=r"the Beam pipeline failed on DirectRunner; nothing was committed: "
                                              r".*worker lost its disk"):
        _ingest(tmp_path / "out", "beam", num_shards=2)
    assert tree_bytes(str(tmp_path / "out")) == before
    _ingest(tmp_path / "out", "beam", num_shards=2)
    assert tree_bytes(str(tmp_path / "out")) != before  # two shards now, committed


def test_local_engine_verifies_the_same_way(tmp_path, small_units, monkeypatch):
    """The check is the launcher's, whichever engine ran the units: a part file that holds
    fewer records than its unit reported fails a local run too."""
    real = ingest_module.run_task

    def truncates_a_part(task):
        result = real(task)
        if task.chunk == 1:
            name = sorted(result.parts)[0]
            with open(os.path.join(task.parts_dir, name), "wb") as f:
                f.write(tfrecord.gzip_member(tfrecord.frame_records([b"one record"])))
        return result

    monkeypatch.setattr(ingest_module, "run_task", truncates_a_part)
    with pytest.raises(VerificationError, match=r"work unit 1 .* wrote part file 000-0000001-\S+ \([\d,]+ "
                                                r"records, .*\), the file now holds [\d,]+ bytes instead of "
                                                r"[\d,]+; nothing was committed"):
        _ingest(tmp_path / "out")
    _assert_nothing_committed(tmp_path / "out")


# ---------------------------------------------------------------- options
def test_engine_arguments_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="engine 'spark' is unknown; use one of local, beam"):
        ingest(TAXI_CSV_DIR, str(tmp_path / "o"), record_lineage=False, engine="spark")
    with pytest.raises(ConfigError, match="beam_pipeline_args apply to engine='beam' only"):
        ingest(TAXI_CSV_DIR, str(tmp_path / "o"), record_lineage=False, beam_pipeline_args=["--runner=X"])
    with pytest.raises(ConfigError, match="must be a list of arguments"):
        ingest(TAXI_CSV_DIR, str(tmp_path / "o"), record_lineage=False, engine="beam",
               beam_pipeline_args="--runner=DirectRunner")
    assert not os.path.exists(tmp_path / "o")


def test_without_beam_installed_engine_beam_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam -> ImportError
    with pytest.raises(ConfigError, match=r"engine='beam' needs Apache Beam, which is not installed here: "
                                          r"pip install 'kfp-examplegen\[beam\]' \(apache-beam\[gcp\]==2.66.0"):
        _ingest(tmp_path / "o", "beam")
    _assert_nothing_committed(tmp_path / "o")


def test_local_engine_never_imports_beam(tmp_path):
    code = ("import sys; from examplegen.ingest import ingest; "
            f"ingest({TAXI_CSV_DIR!r}, {str(tmp_path / 'o')!r}, record_lineage=False, workers=1); "
            "import examplegen.cli; examplegen.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith('apache_beam')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=REPO))
    assert out.stdout.strip() == "[]"


def test_cli_engine_beam(tmp_path, small_units):
    from examplegen.cli import main

    _ingest(tmp_path / "local")
    assert main(["ingest", "--input-base", TAXI_CSV_DIR, "--output", str(tmp_path / "beam"), "--no-lineage",
                 "--num-shards", "3", "--engine", "beam",
                 "--beam-pipeline-args=--runner=DirectRunner --direct_num_workers=1"]) == 0
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")


# ---------------------------------------------------------------- components
class _Artifact:
    def __init__(self, path):
        self.path, self.metadata = str(path), {}


def test_components_pass_engine_and_beam_pipeline_args_through(tmp_path, small_units):
    from kfp_examplegen.components import functions

    _ingest(tmp_path / "local", num_shards=0)
    beam = _Artifact(tmp_path / "beam")
    functions.csv_example_gen(beam, input_base=TAXI_CSV_DIR, engine="beam", mlmd="sqlite:///" + str(tmp_path / "m.db"),
                              beam_pipeline_args=["--runner=DirectRunner", "--direct_num_workers=1"])
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")
    resplit_out = _Artifact(tmp_path / "resplit")
    with pytest.raises(ConfigError, match="engine: beam_pipeline_args apply to engine='beam' only"):
        functions.split_examples(beam, resplit_out, output_config=SPLITS_3, engine="local",
                                 beam_pipeline_args="--runner=DirectRunner", mlmd="sqlite:///" + str(tmp_path / "m.db"))


def test_engine_parameters():
    from kfp_examplegen.components import _common

    assert _common.engine_arguments("", []) == {"engine": "local", "beam_pipeline_args": []}
    assert _common.engine_arguments("beam", "--runner=DataflowRunner --labels='a=1 b'") == {
        "engine": "beam", "beam_pipeline_args": ["--runner=DataflowRunner", "--labels=a=1 b"]}
    assert _common.engine_arguments("beam", '["--runner=FlinkRunner", "--flink_master=host:8081"]') == {
        "engine": "beam", "beam_pipeline_args": ["--runner=FlinkRunner", "--flink_master=host:8081"]}
    with pytest.raises(ConfigError, match="beam_pipeline_args: No closing quotation"):
        _common.engine_arguments("beam", "--labels='a")
    with pytest.raises(ConfigError, match="engine 'ray' is unknown; use one of local, beam"):
        _common.engine_arguments("ray", [])


def test_workers_that_cannot_see_the_staging_folder_say_so(tmp_path, monkeypatch):
    """Forced by removing the units file before the pipeline starts (a worker on another
    machine, without the launcher's disk, sees the same)."""
    import glob

    def elements_after_losing_units(n):
        for path in glob.glob(str(tmp_path / "o" / ".staging-*" / "beam-0" / "units.pkl")):
            os.remove(path)
        return list(range(n))

    monkeypatch.setattr(beam_engine, "pipeline_elements", elements_after_losing_units)
    with pytest.raises(ExampleGenError, match=r"units.pkl is not visible on this worker \(.*\): engine='beam' "
                                              r"needs the output folder and the input files on storage"):
        _ingest(tmp_path / "o", "beam")
    _assert_nothing_committed(tmp_path / "o")


def test_direct_runner_parquet_row_group_units_are_byte_identical(tmp_path, monkeypatch):
    """TFX's taxi Parquet rewritten in row groups of 1,000 rows: ten units."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 1)  # every row group its own unit
    base = tmp_path / "in"
    base.mkdir()
    pq.write_table(pq.read_table(shared("external", "parquet", "data.parquet")), base / "data.parquet",
                   row_group_size=1000)
    _ingest(tmp_path / "local", input_base=str(base), source_format="parquet")
    _ingest(tmp_path / "beam", "beam", input_base=str(base), source_format="parquet")
    _assert_same_artifact(tmp_path / "local", tmp_path / "beam")


def test_inputs_on_gcs_and_s3_servers_give_the_local_bytes(tmp_path, small_units, store):  # noqa: F811
    """Remote inputs (the GCS emulator, moto's S3): the workers read their byte ranges from
    the store and convert them; the examples are the local engine's."""
    bucket = store.bucket()
    with open(os.path.join(TAXI_CSV_DIR, "data.csv"), "rb") as f:
        store.put(bucket, "taxi/data.csv", f.read())
    _ingest(tmp_path / "local")
    _ingest(tmp_path / "beam", "beam", input_base=store.url(bucket, "taxi"))
    local, beam = tree_bytes(str(tmp_path / "local")), tree_bytes(str(tmp_path / "beam"))
    assert {k: v for k, v in beam.items() if k.startswith("Split-")} == {
        k: v for k, v in local.items() if k.startswith("Split-")}
