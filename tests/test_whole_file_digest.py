"""Workers check the files they read whole against the digests taken at span resolution
(examplegen.fs.expect_digests): a file replaced between planning and reading fails its
unit naming the file, and nothing is committed; locally and on the emulated stores.
"""

from __future__ import annotations

import gzip
import io
import json

import pytest

import examplegen.ingest as ingest_module
from examplegen import fs, protos, tfrecord, writer
from examplegen.convert import run_task
from examplegen.errors import SourceError
from examplegen.ingest import ingest
from tests.cloud_servers import cloud_servers, gcs_server, s3_server  # noqa: F401 (fixtures)
from tests.test_fs_remote import remote_env, store, stores  # noqa: F401 (fixtures)

ONE_SPLIT = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}


def _tfrecord(seed: int, compress: str = "") -> bytes:
    records = []
    for i in range(50):
        example = protos.Example()
        example.features.feature["x"].int64_list.value.append(seed * 1000 + i)
        records.append(example.SerializeToString())
    data = tfrecord.frame_records(records)
    if compress == "gzip":
        return gzip.compress(data)
    if compress == "zlib":
        import zlib

        return zlib.compress(data)
    return data


def _avro(seed: int) -> bytes:
    import fastavro

    out = io.BytesIO()
    schema = fastavro.parse_schema({"type": "record", "name": "r", "fields": [{"name": "x", "type": "long"}]})
    fastavro.writer(out, schema, [{"x": seed * 1000 + i} for i in range(50)])
    return out.getvalue()


def _csv_gz(seed: int) -> bytes:
    return gzip.compress(("x,y\n" + "".join(f"{seed * 1000 + i},{i}\n" for i in range(50))).encode())


def _jsonl(seed: int) -> bytes:
    return "".join(json.dumps({"x": seed * 1000 + i}) + "\n" for i in range(50)).encode()


def _png(seed: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 3), (seed * 40 % 256, 10, 10)).save(out, "PNG")
    return out.getvalue()


def _text(seed: int) -> bytes:
    return f"document {seed}\nsecond line\n".encode()


# format -> (file name under the input base, its bytes for a seed, source options)
FORMATS = {
    "tfrecord": ("data.tfrecord", _tfrecord, None),
    "tfrecord-gzip": ("data.tfrecord.gz", lambda seed: _tfrecord(seed, "gzip"), None),
    "tfrecord-zlib": ("data.tfrecord.z", lambda seed: _tfrecord(seed, "zlib"), None),
    "avro": ("data.avro", _avro, None),
    "csv": ("data.csv.gz", _csv_gz, None),
    "jsonl": ("data.jsonl", _jsonl, None),
    "images": ("cat/a.png", _png, {"labels": True}),
    "text": ("doc/a.txt", _text, {"labels": True}),
}


def _format(name: str) -> str:
    return name.split("-")[0]


def _ingest(input_base: str, output: str, name: str):
    _, _, options = FORMATS[name]
    return ingest(input_base, output, source_format=_format(name), record_lineage=False, workers=1,
                  num_shards=1, output_config=ONE_SPLIT, source_options=options)


@pytest.fixture
def verified(monkeypatch):
    """The paths whose digest a worker compared (every check, passed or failed)."""
    checked = []
    check = fs._DigestCheckingReader._check

    def spy(self):
        checked.append(self._path)
        return check(self)

    monkeypatch.setattr(fs._DigestCheckingReader, "_check", spy)
    return checked


def _replace_before_the_unit_reads(monkeypatch, replace):
    """The hook: the file is replaced after the span was resolved and the unit planned,
    just before the worker (this process, workers=1) reads it."""
    def replacing_run_task(task):
        replace()
        return run_task(task)

    monkeypatch.setattr(ingest_module, "run_task", replacing_run_task)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_a_whole_file_unit_checks_its_file(tmp_path, monkeypatch, verified, name):
    file_name, content, _ = FORMATS[name]
    path = tmp_path / "in" / file_name
    path.parent.mkdir(parents=True)
    path.write_bytes(content(1))
    result = _ingest(str(tmp_path / "in"), str(tmp_path / "ok"), name)
    assert sum(result.counts.values()) >= 1
    assert verified == [str(path)]  # the unchanged file was checked, and passed

    verified.clear()
    _replace_before_the_unit_reads(monkeypatch, lambda: path.write_bytes(content(2)))
    out = tmp_path / "changed"
    with pytest.raises(SourceError, match=rf"^{path}: the file changed since it was resolved .*nothing was committed"):
        _ingest(str(tmp_path / "in"), str(out), name)
    assert verified == [str(path)]
    assert not out.exists()  # nothing committed, the staging folder removed


def test_a_replaced_file_leaves_an_earlier_artifact_complete(tmp_path, monkeypatch):
    path = tmp_path / "in" / "data.tfrecord"
    path.parent.mkdir()
    path.write_bytes(_tfrecord(1))
    out = str(tmp_path / "out")
    first = _ingest(str(tmp_path / "in"), out, "tfrecord")
    path.write_bytes(_tfrecord(2))
    _replace_before_the_unit_reads(monkeypatch, lambda: path.write_bytes(_tfrecord(3)))
    with pytest.raises(SourceError, match="changed since it was resolved"):
        _ingest(str(tmp_path / "in"), out, "tfrecord")
    assert writer.verify_files(out, first.files_digest) is None


def test_units_reading_part_of_a_file_are_not_checked(tmp_path, monkeypatch, verified):
    """A CSV file cut into byte ranges: no unit reads it whole, so none hashes it (and the
    ranges read as before)."""
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 200)
    path = tmp_path / "in" / "data.csv"
    path.parent.mkdir()
    path.write_text("x,y\n" + "".join(f"{i},{i}\n" for i in range(200)))
    result = ingest(str(tmp_path / "in"), str(tmp_path / "out"), record_lineage=False, workers=1,
                    num_shards=1, output_config=ONE_SPLIT)
    assert result.counts == {"all": 200} and verified == []


def test_the_reader_checks_only_a_gapless_read_to_the_end(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"0123456789" * 1000)
    right = "sha256:" + __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    wrong = "sha256:" + "0" * 64
    with fs.expect_digests({str(path): wrong}):
        with fs.open_input(str(path)) as f:  # skips ahead: cannot be checked
            f.seek(5000)
            assert len(f.read()) == 5000
        with fs.open_input(str(path)) as f:  # reads part: not checked
            assert f.read(100) == b"0123456789" * 10
        with fs.open_input(str(path)) as f:  # re-reads the start, then all
            f.read(3000)
            f.seek(10)
            with pytest.raises(SourceError, match="changed since it was resolved"):
                f.read()
    with fs.expect_digests({str(path): right}):
        with fs.open_input(str(path)) as f:
            assert f.read() == path.read_bytes()
    with fs.open_input(str(path)) as f:  # outside expect_digests: the plain file
        assert isinstance(f, io.BufferedReader) and not isinstance(f.raw, fs._DigestCheckingReader)


@pytest.mark.parametrize("name", ["tfrecord-gzip", "avro"])
def test_a_remote_whole_file_unit_checks_its_object(tmp_path, monkeypatch, verified, store, name):  # noqa: F811
    file_name, content, _ = FORMATS[name]
    bucket = store.bucket()
    store.put(bucket, f"in/{file_name}", content(1))
    url = store.url(bucket, f"in/{file_name}")
    result = _ingest(store.url(bucket, "in"), str(tmp_path / "ok"), name)
    assert result.counts == {"all": 50} and verified == [url]

    verified.clear()
    _replace_before_the_unit_reads(monkeypatch, lambda: store.put(bucket, f"in/{file_name}", content(2)))
    out = store.url(bucket, "out")
    with pytest.raises(SourceError, match=rf"^{url}: the file changed since it was resolved"):
        _ingest(store.url(bucket, "in"), out, name)
    assert verified == [url]
    assert not fs.glob(fs.join(out, "*"))  # nothing committed, no staging objects left
