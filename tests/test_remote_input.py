"""gs:// and s3:// inputs read in place by the workers that convert them (the GCS emulator
and moto's S3 server): no local copy of any input, the local run's bytes, and an object
replaced during the run fails it before anything is committed.
"""

from __future__ import annotations

import os

import pytest

import examplegen.ingest as ingest_module
from examplegen import fs, writer
from examplegen.errors import SourceError
from examplegen.ingest import ingest
from tests.cloud_servers import cloud_servers, gcs_server, s3_server  # noqa: F401 (fixtures)
from tests.test_beam_engine import beam_services
from tests.helpers import REPO, tree_bytes
from tests.test_fs_remote import remote_env, store, stores  # noqa: F401 (fixtures)

DATA = os.path.join(REPO, "examples", "data")
FORMATS = {"csv": "taxi", "parquet": "taxi_parquet", "jsonl": "taxi_jsonl", "avro": "taxi_avro",
           "tfrecord": "taxi_tfrecord"}


@pytest.fixture
def no_local_copies(tmp_path, monkeypatch):
    """TMPDIR and the input cache point at an empty folder the test checks afterwards: no
    file there may be as large as the smallest input (58 KB; Beam's PortableRunner leaves a
    list of its dependencies there, a few KB)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setenv("EXAMPLEGEN_INPUT_CACHE", str(scratch / "cache"))
    monkeypatch.setattr("tempfile.tempdir", None)  # TMPDIR is read again
    yield scratch
    assert not os.path.exists(scratch / "cache")
    assert {name: len(data) for name, data in tree_bytes(str(scratch)).items() if len(data) >= 32 << 10} == {}


def _upload(store, folder: str) -> str:  # noqa: F811
    bucket = store.bucket()
    for name in os.listdir(os.path.join(DATA, folder)):
        with open(os.path.join(DATA, folder, name), "rb") as f:
            store.put(bucket, f"in/{name}", f.read())
    return store.url(bucket, "in")


def _ingest(input_base, output, engine="local", **kw):
    if engine == "beam":
        kw["beam_pipeline_args"] = ["--runner=DirectRunner"]
    else:
        kw["workers"] = 1
    return ingest(input_base, str(output), record_lineage=False, num_shards=2, engine=engine, **kw)


@pytest.mark.parametrize("source_format", sorted(FORMATS))
def test_each_format_is_read_in_place_with_the_local_bytes(tmp_path, store, source_format, no_local_copies,
                                                          monkeypatch):  # noqa: F811
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 20_000)  # CSV, JSONL: several ranges per file
    url = _upload(store, FORMATS[source_format])
    local = _ingest(os.path.join(DATA, FORMATS[source_format]), tmp_path / "local", source_format=source_format)
    remote = _ingest(url, tmp_path / "remote", source_format=source_format)
    assert remote.counts == local.counts and sum(local.counts.values()) >= 2000
    split_files = {k: v for k, v in tree_bytes(str(tmp_path / "local")).items() if k.startswith("Split-")}
    assert {k: v for k, v in tree_bytes(str(tmp_path / "remote")).items() if k.startswith("Split-")} == split_files


def test_beam_workers_read_ranges_in_place_and_write_remote_output(tmp_path, store, no_local_copies,
                                                                  monkeypatch):  # noqa: F811
    """Input and output on the store, as on Dataflow: the launcher's disk holds neither."""
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 100_000)
    url = _upload(store, "taxi")
    _ingest(os.path.join(DATA, "taxi"), tmp_path / "local")
    out = url.replace("/in", "/out")
    _ingest(url, out, "beam")
    local = tree_bytes(str(tmp_path / "local"))
    for name, data in local.items():
        if name.startswith("Split-"):
            with fs.open_read(fs.join(out, name)) as f:
                assert f.read() == data, name


def test_an_input_replaced_during_the_run_fails_it_before_the_commit(tmp_path, store, monkeypatch):  # noqa: F811
    url = _upload(store, "taxi")
    bucket = url.split("/")[2]
    check_units = ingest_module.check_units

    def replace_input_then_check(*args):
        with open(os.path.join(DATA, "taxi", "data.csv"), "rb") as f:  # same size, one digit changed
            data = f.read()
        store.put(bucket, "in/data.csv", data[:-3] + (b"1" if data[-3:-2] != b"1" else b"2") + data[-2:])
        return check_units(*args)

    monkeypatch.setattr(ingest_module, "check_units", replace_input_then_check)
    with pytest.raises(SourceError, match=r"data\.csv: the object was replaced while it was being converted"):
        _ingest(url, tmp_path / "out")
    assert not writer.is_complete(str(tmp_path / "out"))


@pytest.fixture(scope="module")
def remote_workers(tmp_path_factory, gcs_server, s3_server):  # noqa: F811
    """Beam's job service and a worker pool in their own processes and working folder, told
    only how to reach the stores (as Dataflow workers are): the pipeline args for them."""
    yield from beam_services(tmp_path_factory, STORAGE_EMULATOR_HOST=gcs_server.url,
                             EXAMPLEGEN_S3_ENDPOINT_URL=s3_server.url, AWS_ACCESS_KEY_ID="testing",
                             AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                             AWS_EC2_METADATA_DISABLED="true")


def test_portable_runner_workers_in_another_process_read_and_write_the_store(
        tmp_path, store, no_local_copies, remote_workers, monkeypatch):  # noqa: F811
    """The Dataflow situation: input and output on the store, workers in separate processes."""
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 200_000)
    url = _upload(store, "taxi")
    local = _ingest(os.path.join(DATA, "taxi"), tmp_path / "local")
    out = url.replace("/in", "/out")
    result = ingest(url, out, record_lineage=False, num_shards=2, engine="beam", beam_pipeline_args=remote_workers)
    assert result.counts == local.counts
    for name, data in tree_bytes(str(tmp_path / "local")).items():
        with fs.open_read(fs.join(out, name)) as f:
            assert f.read() == data, name
