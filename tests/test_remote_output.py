"""Examples artifacts written to and read from gs:// and s3:// (the GCS emulator and moto's
S3 server, tests/cloud_servers.py): the same bytes as a local run on both engines, the
metadata object written last, a failed run never looking complete, and artifacts read
back (resplit, reuse) by the workers without a local copy.
"""

from __future__ import annotations

import os

import pytest

import examplegen.ingest as ingest_module
from examplegen import fs, report, writer
from examplegen.errors import OutputError, SourceError
from examplegen.ingest import examples_split_files, ingest, resplit
from examplegen.lineage import recorder as lineage_recorder
from tests.cloud_servers import cloud_servers, gcs_server, s3_server  # noqa: F401 (fixtures)
from tests.helpers import TAXI_CSV_DIR, tree_bytes
from tests.test_fs_remote import remote_env, store, stores  # noqa: F401 (fixtures)

SPLITS = {"split_config": {"splits": [{"name": "train", "hash_buckets": 2}, {"name": "eval", "hash_buckets": 1}]}}


@pytest.fixture
def small_units(monkeypatch):
    """The taxi CSV (1.9 MB) in ~20 work units."""
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 100_000)


def _ingest(output, engine="local", **kw):
    kw.setdefault("num_shards", 3)
    if engine == "beam":
        kw["beam_pipeline_args"] = ["--runner=DirectRunner"]
    else:
        kw.setdefault("workers", 1)
    return ingest(kw.pop("input_base", TAXI_CSV_DIR), str(output), record_lineage=False, engine=engine, **kw)


def remote_tree(url: str) -> dict[str, bytes]:
    """Every object under the prefix ``url`` (relative name -> bytes), to depth 3."""
    out = {}
    pattern = fs.escape_glob(url)
    for depth in range(1, 4):
        for path in fs.glob(fs.join(pattern, *["*"] * depth)):
            if fs.is_file(path):
                with fs.open_read(path) as f:
                    out[path[len(url) + 1:]] = f.read()
    return out


@pytest.mark.parametrize("engine,workers", [("local", 1), ("local", 2), ("beam", None)])
def test_remote_output_is_the_local_runs_bytes(tmp_path, small_units, store, engine, workers):  # noqa: F811
    """Workers (this process, two worker processes, Beam) write parts to the store."""
    url = store.url(store.bucket(), "examples/1")
    local = _ingest(tmp_path / "local")
    result = _ingest(url, engine, **({"workers": workers} if workers else {}))
    assert result.output_uri == url and result.counts == local.counts == {"train": 6656, "eval": 3344}
    # Same data files and the same metadata (which lists every file with its SHA-256).
    assert remote_tree(url) == tree_bytes(str(tmp_path / "local"))
    assert writer.is_complete(url) and writer.verify_files(url, result.files_digest) is None
    assert report.summarize(url).counts == result.counts  # the report reads it in place


def test_metadata_is_written_last_and_staging_removed(tmp_path, store, monkeypatch):  # noqa: F811
    url = store.url(store.bucket(), "out")
    written = []
    open_write = fs.open_write
    monkeypatch.setattr(fs, "open_write", lambda path: written.append(path) or open_write(path))
    _ingest(url, output_config=SPLITS)
    committed = [p[len(url) + 1:] for p in written if "/.staging-" not in p]
    assert committed[-1] == writer.METADATA_FILE
    assert sorted(committed[:-1]) == sorted(k for k in remote_tree(url) if k.startswith("Split-"))
    assert any("/.staging-" in p for p in written)  # the parts went to staging first
    assert not fs.glob(fs.join(fs.escape_glob(url), ".staging-*"))


def test_a_run_that_fails_while_committing_leaves_no_metadata(tmp_path, store, monkeypatch):  # noqa: F811
    url = store.url(store.bucket(), "out")
    _ingest(url)  # an earlier complete artifact
    assert writer.is_complete(url)
    blocks = writer._blocks

    def failing_blocks(paths, *args, **kwargs):
        yield from blocks(paths[:1], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "_blocks", failing_blocks)
    with pytest.raises(OutputError, match="partly replaced and no longer counts as complete"):
        _ingest(url, force=True)
    assert not writer.is_complete(url)
    assert not fs.glob(fs.join(fs.escape_glob(url), ".staging-*"))  # the run's staging objects removed


def test_readers_treat_a_remote_artifact_without_metadata_as_incomplete(tmp_path, store, monkeypatch):  # noqa: F811
    """A run killed during its commit: Split-* objects and its staging prefix, no metadata."""
    url = store.url(store.bucket(), "out")
    result = _ingest(url)
    open_write = fs.open_write

    def killed_at_the_metadata(path):
        if path.endswith(writer.METADATA_FILE):
            raise SystemExit("killed")
        return open_write(path)

    monkeypatch.setattr(fs, "open_write", killed_at_the_metadata)
    monkeypatch.setattr(writer.ExamplesWriter, "abort", lambda self: None)  # a killed run cleans nothing
    with pytest.raises(SystemExit):
        _ingest(url, force=True)
    assert fs.glob(fs.join(fs.escape_glob(url), "Split-*/*"))
    assert not writer.is_complete(url)
    assert fs.glob(fs.join(fs.escape_glob(url), ".staging-*"))
    with pytest.raises(SourceError, match=r"is incomplete: it has no examples_metadata\.json"):
        examples_split_files(url)
    with pytest.raises(SourceError, match="is incomplete"):
        report.summarize(url)
    with pytest.raises(SourceError, match="is incomplete"):
        resplit(url, str(tmp_path / "re"), output_config=SPLITS, record_lineage=False, workers=1)
    assert not os.path.exists(tmp_path / "re")
    # Reuse of the earlier run's lineage: the files no longer match what was recorded.
    assert lineage_recorder.committed_files_match(result) is False
    assert lineage_recorder._verify_files(url, result.files_digest) is not None


def test_resplit_reads_a_remote_artifact_without_a_local_copy(tmp_path, store, monkeypatch):  # noqa: F811
    """The workers stream the TFRecord shards from the store: nothing lands in TMPDIR or the
    input cache, and the output is the resplit of the local artifact, byte for byte."""
    url = store.url(store.bucket(), "in")
    _ingest(tmp_path / "local")
    _ingest(url)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setenv("EXAMPLEGEN_INPUT_CACHE", str(scratch / "cache"))
    resplit(str(tmp_path / "local"), str(tmp_path / "re-local"), output_config=SPLITS, record_lineage=False,
            workers=1, num_shards=2)
    resplit(url, str(tmp_path / "re-remote"), output_config=SPLITS, record_lineage=False, workers=1, num_shards=2)
    local, remote = tree_bytes(str(tmp_path / "re-local")), tree_bytes(str(tmp_path / "re-remote"))
    assert {k: v for k, v in remote.items() if k.startswith("Split-")} == {
        k: v for k, v in local.items() if k.startswith("Split-")}
    assert tree_bytes(str(scratch)) == {}


def test_reuse_copies_an_earlier_artifact_to_a_remote_output(tmp_path, store):  # noqa: F811
    """An identical earlier run (ML Metadata) is copied to the new remote output, verified."""
    mlmd = f"sqlite:///{tmp_path}/mlmd.sqlite"
    first = ingest(TAXI_CSV_DIR, str(tmp_path / "first"), mlmd=mlmd, num_shards=2, workers=1)
    url = store.url(store.bucket(), "copy")
    second = ingest(TAXI_CSV_DIR, url, mlmd=mlmd, num_shards=2, workers=1)
    assert second.cached and second.output_uri == url and second.counts == first.counts
    assert remote_tree(url) == tree_bytes(str(tmp_path / "first"))


def test_remote_output_prefix_holding_other_objects_is_refused(store):  # noqa: F811
    bucket = store.bucket()
    store.put(bucket, "data/notes.txt", b"not an artifact")
    with pytest.raises(OutputError, match="is not empty and holds no Examples artifact .*notes.txt"):
        _ingest(store.url(bucket, "data"))
    assert [k for k in remote_tree(store.url(bucket, "data"))] == ["notes.txt"]


def test_cli_writes_to_a_remote_output(tmp_path, store):  # noqa: F811
    from examplegen.cli import main

    url = store.url(store.bucket(), "cli")
    _ingest(tmp_path / "local", num_shards=2)
    assert main(["ingest", "--input-base", TAXI_CSV_DIR, "--output", url, "--num-shards", "2", "--workers", "1",
                 "--no-lineage"]) == 0
    assert remote_tree(url) == tree_bytes(str(tmp_path / "local"))


class _Artifact:
    def __init__(self, path, uri=""):
        self.path, self.uri, self.metadata = str(path), uri, {}


def test_components_with_engine_beam_write_the_artifact_uri_directly(tmp_path, store):  # noqa: F811
    """Beam workers cannot see the task's disk or Cloud Storage mount: with engine "beam" the
    components write the artifact's gs:// / s3:// URI itself (and read it for a resplit)."""
    from kfp_examplegen.components import functions

    bucket = store.bucket()
    _ingest(tmp_path / "local", num_shards=0)
    examples = _Artifact(tmp_path / "mounted", store.url(bucket, "run/examples"))
    functions.csv_example_gen(examples, input_base=TAXI_CSV_DIR, engine="beam", mlmd=f"sqlite:///{tmp_path}/m.db",
                              beam_pipeline_args=["--runner=DirectRunner"])
    assert remote_tree(examples.uri) == tree_bytes(str(tmp_path / "local"))
    assert not os.path.exists(examples.path)
    resplit_out = _Artifact(tmp_path / "mounted-resplit", store.url(bucket, "run/resplit"))
    functions.split_examples(examples, resplit_out, output_config=SPLITS, engine="beam",
                             mlmd=f"sqlite:///{tmp_path}/m.db")
    assert writer.is_complete(resplit_out.uri) and not os.path.exists(resplit_out.path)


def test_a_commit_refuses_when_another_run_committed_meanwhile(tmp_path, store, monkeypatch):  # noqa: F811
    """No lock on object stores: a run whose output prefix got another run's artifact while
    it converted fails at its commit and leaves that artifact as it is."""
    url = store.url(store.bucket(), "shared")
    _ingest(url, num_shards=1)
    check_units = ingest_module.check_units
    other = {}

    def another_run_commits_first(*args):
        if not other:
            other["result"] = True
            monkeypatch.setattr(ingest_module, "check_units", check_units)
            other["result"] = _ingest(url, num_shards=2, force=True)
        return check_units(*args)

    monkeypatch.setattr(ingest_module, "check_units", another_run_commits_first)
    with pytest.raises(OutputError, match="another run committed an Examples artifact to .* while this one ran"):
        _ingest(url, num_shards=3, force=True)
    assert writer.verify_files(url, other["result"].files_digest) is None
    assert writer.read_metadata(url)["num_shards"] == 2


def test_a_missing_output_bucket_is_one_clear_error(store):  # noqa: F811
    url = f"{store.scheme}://no-such-bucket-{store.bucket()}/out"
    with pytest.raises(OutputError, match=rf"^cannot write the Examples artifact: {url}: bucket .* does not exist"):
        _ingest(url)
