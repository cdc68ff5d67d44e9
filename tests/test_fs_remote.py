"""gs:// and s3:// inputs against real protocol servers on loopback.

GCS is gcp-storage-emulator and S3 is moto's server (see tests/cloud_servers.py); the
engine talks to them with the real google-cloud-storage and boto3 clients.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tracemalloc
import uuid

import pytest

from examplegen import fs
from examplegen.digest import file_digest
from examplegen.errors import ConfigError, SourceError, SpanResolutionError
from examplegen.span import resolve_spans
from tests.cloud_servers import cloud_servers, gcs_server, s3_server  # noqa: F401 (fixtures)

SCHEMES = ["gs", "s3"]


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Store:
    """Creates buckets and objects on one server with the plain client library."""

    def __init__(self, scheme: str, endpoint: str):
        self.scheme = scheme
        if scheme == "gs":
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(
                project="test",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": endpoint},
            )
        else:
            import boto3

            self._client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name="us-east-1",
            )

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"eg-{uuid.uuid4().hex[:12]}"
        if self.scheme == "gs":
            self._client.create_bucket(name)
        else:
            self._client.create_bucket(Bucket=name)
        return name

    def put(self, bucket: str, key: str, data: bytes) -> None:
        if self.scheme == "gs":
            self._client.bucket(bucket).blob(key).upload_from_string(data)
        else:
            self._client.put_object(Bucket=bucket, Key=key, Body=data)

    def url(self, bucket: str, key: str = "") -> str:
        return f"{self.scheme}://{bucket}/{key}" if key else f"{self.scheme}://{bucket}"


@pytest.fixture
def remote_env(gcs_server, s3_server, monkeypatch):  # noqa: F811
    """Point the engine's clients at the test servers, with dummy S3 keys."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    monkeypatch.setenv("EXAMPLEGEN_S3_ENDPOINT_URL", s3_server.url)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def fresh_clients(remote_env):
    """For tests that change credentials (and then call fs.reset_clients()): the next
    test gets clients made with the normal test settings again."""
    yield
    fs.reset_clients()


@pytest.fixture(scope="session")
def stores(gcs_server, s3_server) -> dict[str, Store]:  # noqa: F811
    return {"gs": Store("gs", gcs_server.url), "s3": Store("s3", s3_server.url)}


@pytest.fixture(params=SCHEMES)
def store(request, remote_env, stores) -> Store:
    return stores[request.param]


@contextlib.contextmanager
def peak_memory():
    """Yields a function giving the peak Python memory allocated inside the block."""
    tracemalloc.start()
    peak = []
    try:
        yield lambda: peak[0]
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


def write_layout(store: Store, bucket: str, local_root, files: dict[str, bytes]) -> None:
    """The same files in the bucket and under a local directory."""
    for rel, data in files.items():
        store.put(bucket, rel, data)
        path = local_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# ---------------------------------------------------------------- span resolution

SPAN_FILES = {
    "data/span-1/train/a.csv": b"x\n1\n",
    "data/span-1/eval/a.csv": b"x\n2\n",
    "data/span-2/train/a.csv": b"x\n3\n",
    "data/span-2/train/b.csv": b"x\n4\n",
    "data/span-2/eval/a.csv": b"x\n5\n",
    "data/span-2/train/nested/c.csv": b"x\n6\n",  # `*` must not cross '/'
    "data/span-10/train/a.csv": b"x\n7\n",
    "data/span-10/train/.hidden.csv": b"x\n8\n",  # matched, like tf.io.gfile
    "data/span-10/eval/a.csv": b"x\n9\n",
    "data/span-10/eval/a.csv.bak": b"x\n10\n",
    "datax/span-99/train/a.csv": b"x\n11\n",  # outside the input base
}
SPLITS = {
    "splits": [
        {"name": "train", "pattern": "span-{SPAN}/train/*.csv"},
        {"name": "eval", "pattern": "span-{SPAN}/eval/*.csv"},
    ]
}


def test_resolve_spans_on_a_bucket_matches_the_same_files_on_disk(store, tmp_path):
    bucket = store.bucket()
    write_layout(store, bucket, tmp_path, SPAN_FILES)
    base = store.url(bucket, "data")

    (latest,) = resolve_spans(base + "/", SPLITS)
    (local,) = resolve_spans(str(tmp_path / "data"), SPLITS)

    assert latest.span == 10 and latest.version is None
    assert latest.input_base == base
    train, evaluation = latest.splits
    assert train.pattern == "span-10/train/*.csv"
    assert train.files == (f"{base}/span-10/train/.hidden.csv", f"{base}/span-10/train/a.csv")
    assert evaluation.files == (f"{base}/span-10/eval/a.csv",)
    assert [(s.size, s.digest) for s in latest.sources()] == [
        (4, sha(b"x\n8\n")), (4, sha(b"x\n7\n")), (4, sha(b"x\n9\n"))
    ]
    assert latest.fingerprint == local.fingerprint


def test_static_range_on_a_bucket_resolves_each_span(store, tmp_path):
    bucket = store.bucket()
    write_layout(store, bucket, tmp_path, SPAN_FILES)
    base = store.url(bucket, "data")
    range_config = {"static_range": {"start_span_number": 1, "end_span_number": 2}}

    remote = resolve_spans(base, SPLITS, range_config)
    local = resolve_spans(str(tmp_path / "data"), SPLITS, range_config)

    assert [r.span for r in remote] == [1, 2]
    assert remote[1].splits[0].files == (
        f"{base}/span-2/train/a.csv",
        f"{base}/span-2/train/b.csv",
    )
    assert [r.fingerprint for r in remote] == [r.fingerprint for r in local]


def test_version_and_width_specs_on_a_bucket(store, tmp_path):
    bucket = store.bucket()
    files = {
        "in/s01/v1/part.csv": b"a\n",
        "in/s02/v1/part.csv": b"b\n",
        "in/s02/v3/part.csv": b"c\n",
    }
    write_layout(store, bucket, tmp_path, files)

    (resolution,) = resolve_spans(
        store.url(bucket, "in"), {"splits": [{"name": "all", "pattern": "s{SPAN:2}/v{VERSION}/*"}]}
    )

    assert (resolution.span, resolution.version) == (2, 3)
    assert resolution.splits[0].files == (store.url(bucket, "in/s02/v3/part.csv"),)


# ---------------------------------------------------------------- glob


GLOB_FILES = {
    "g/a.csv": b"1",
    "g/b.csv": b"2",
    "g/.dot.csv": b"3",
    "g/ab.txt": b"4",
    "g/sub/c.csv": b"5",
    "g/sub/deeper/d.csv": b"6",
    "g/sub2/e.csv": b"7",
    "g/[x]/f.csv": b"8",
    "g2/a.csv": b"9",
}
GLOB_PATTERNS = [
    "*", "*.csv", "?.csv", "[ab].csv", "[!a]*.csv", "*/*.csv", "sub*/*", "*/*/*",
    "sub", "sub/", "nothing*", "a.csv", "**/*.csv", "s*b/c.csv",
]


def test_glob_matches_like_the_local_glob(store, tmp_path):
    bucket = store.bucket()
    write_layout(store, bucket, tmp_path, GLOB_FILES)
    remote_base, local_base = store.url(bucket, "g"), str(tmp_path / "g")

    for pattern in GLOB_PATTERNS:
        remote = [p[len(remote_base) + 1 :] for p in fs.glob(f"{remote_base}/{pattern}")]
        local = [p[len(local_base) + 1 :] for p in fs.glob(f"{local_base}/{pattern}")]
        assert remote == local, pattern
    # Spot checks, independent of the local glob.
    assert fs.glob(f"{remote_base}/*.csv") == [
        f"{remote_base}/.dot.csv", f"{remote_base}/a.csv", f"{remote_base}/b.csv"
    ]
    assert fs.glob(f"{remote_base}/sub*") == [f"{remote_base}/sub", f"{remote_base}/sub2"]
    escaped = fs.escape_glob(f"{remote_base}/[x]")
    assert fs.glob(f"{escaped}/*") == [f"{remote_base}/[x]/f.csv"]


def test_exists_is_file_and_directory_markers(store):
    bucket = store.bucket()
    store.put(bucket, "d/file.csv", b"1")
    store.put(bucket, "marker/", b"")  # a console-made "folder"

    assert fs.exists(store.url(bucket))
    assert fs.exists(store.url(bucket, "d")) and fs.exists(store.url(bucket, "d/"))
    assert fs.exists(store.url(bucket, "d/file.csv"))
    assert not fs.exists(store.url(bucket, "d/file"))
    assert not fs.exists(store.url(bucket, "nothing"))
    assert fs.is_file(store.url(bucket, "d/file.csv"))
    assert not fs.is_file(store.url(bucket, "d"))
    assert not fs.is_file(store.url(bucket, "marker"))
    assert fs.glob(store.url(bucket, "*")) == [store.url(bucket, "d"), store.url(bucket, "marker")]
    assert fs.glob(store.url(bucket, "marker/*")) == []
    assert fs.absolute(f"{store.scheme.upper()}://{bucket}/d/") == store.url(bucket, "d")


# ---------------------------------------------------------------- reading


def test_open_read_size_and_digest_stream_the_object(store, monkeypatch):
    monkeypatch.setattr(fs, "GCS_CHUNK_SIZE", 1 << 20)  # several ranged GETs on GCS
    data = os.urandom(8 << 20)
    bucket = store.bucket()
    store.put(bucket, "big/blob.bin", data)
    url = store.url(bucket, "big/blob.bin")

    assert fs.size(url) == len(data)
    with fs.open_read(url) as stream:
        pieces = [stream.read(1000), stream.read(300_000)]
        while block := stream.read(77_777):
            pieces.append(block)
    assert pieces[0] == data[:1000]
    assert b"".join(pieces) == data
    with peak_memory() as peak:
        assert file_digest(url) == sha(data)
    assert peak() < len(data) // 2  # streamed in blocks, not read whole


def test_s3_endpoint_from_aws_endpoint_url(
    remote_env, stores, s3_server, monkeypatch  # noqa: F811
):
    s3 = stores["s3"]
    bucket = s3.bucket()
    s3.put(bucket, "k.csv", b"abc")
    monkeypatch.delenv("EXAMPLEGEN_S3_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.url)

    assert fs.size(f"s3://{bucket}/k.csv") == 3


# ---------------------------------------------------------------- localize


def test_localize_downloads_once_and_reuses_the_copy(store, tmp_path, monkeypatch):
    data = os.urandom(8 << 20)
    bucket = store.bucket()
    store.put(bucket, "in/part-0.csv.gz", data)
    store.put(bucket, "in/other/part-0.csv.gz", b"small")
    url = store.url(bucket, "in/part-0.csv.gz")
    other = store.url(bucket, "in/other/part-0.csv.gz")
    local_file = tmp_path / "local.csv"
    local_file.write_bytes(b"local")
    cache = str(tmp_path / "cache")

    with peak_memory() as peak:
        mapping = fs.localize([url, other, str(local_file), f"file://{local_file}", url], cache)
    assert peak() < len(data) // 2  # streamed to disk, not held in memory

    assert mapping[str(local_file)] == str(local_file)
    assert mapping[f"file://{local_file}"] == str(local_file)
    assert mapping[url] != mapping[other]  # same base name, different objects
    assert mapping[url].startswith(cache) and mapping[url].endswith("part-0.csv.gz")
    with open(mapping[url], "rb") as copy:
        assert copy.read() == data
    with open(mapping[other], "rb") as copy:
        assert copy.read() == b"small"
    assert sorted(os.listdir(cache)) == sorted(os.path.basename(mapping[u]) for u in (url, other))

    def no_download(*args):
        raise AssertionError("downloaded again")

    with monkeypatch.context() as patch:
        patch.setattr(fs, "_download", no_download)
        again = fs.localize([url, other], cache, {url: sha(data), other: sha(b"small")})
    assert again == {url: mapping[url], other: mapping[other]}


def test_localize_replaces_a_stale_copy(store, tmp_path):
    bucket = store.bucket()
    store.put(bucket, "f.csv", b"new content")
    url = store.url(bucket, "f.csv")
    cache = str(tmp_path / "cache")
    path = fs.localize([url], cache)[url]

    with open(path, "wb") as stale:  # truncated earlier download: wrong size
        stale.write(b"new")
    assert open(fs.localize([url], cache)[url], "rb").read() == b"new content"

    with open(path, "wb") as stale:  # same size, other bytes: caught by the digest
        stale.write(b"old content")
    assert open(fs.localize([url], cache, {url: sha(b"new content")})[url], "rb").read() == (
        b"new content"
    )


def test_localize_rejects_an_object_that_changed_after_its_digest(store, tmp_path):
    bucket = store.bucket()
    store.put(bucket, "f.csv", b"version 1")
    url = store.url(bucket, "f.csv")
    digest = file_digest(url)
    store.put(bucket, "f.csv", b"version 2")
    cache = tmp_path / "cache"

    with pytest.raises(SourceError, match=r"f\.csv: the object changed after its digest"):
        fs.localize([url], str(cache), {url: digest})
    assert os.listdir(cache) == []  # no partial or wrong file left behind


# ---------------------------------------------------------------- errors


def test_missing_bucket_is_a_clear_error(store):
    missing = f"eg-missing-{uuid.uuid4().hex[:8]}"
    base = store.url(missing, "data")

    expected = rf"^{store.scheme}://{missing}/data: bucket '{missing}' does not exist"
    with pytest.raises(SourceError, match=expected):
        resolve_spans(base, SPLITS)
    with pytest.raises(SourceError, match=f"bucket '{missing}' does not exist"):
        fs.size(store.url(missing, "x.csv"))
    with pytest.raises(SourceError, match=f"bucket '{missing}' does not exist"):
        fs.glob(store.url(missing, "*"))


def test_missing_prefix_and_object_are_clear_errors(store):
    bucket = store.bucket()
    store.put(bucket, "data/span-1/train/a.csv", b"1")
    missing = store.url(bucket, "dat")  # a prefix of "data", but no "dat/" directory

    with pytest.raises(SpanResolutionError, match=rf"input base '{missing}' does not exist"):
        resolve_spans(missing, SPLITS)
    no_eval = r"no file matches pattern 'span-\{SPAN\}/eval/\*\.csv'"
    with pytest.raises(SpanResolutionError, match=no_eval):
        resolve_spans(store.url(bucket, "data"), SPLITS)
    with pytest.raises(SourceError, match=rf"^{store.url(bucket, 'nope.csv')}: no such object$"):
        file_digest(store.url(bucket, "nope.csv"))
    with pytest.raises(SourceError, match="no such object"):
        fs.open_read(store.url(bucket, "nope.csv"))


def test_s3_without_credentials_is_a_config_error(fresh_clients, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASECRETLOOKINGKEY")  # partial credentials
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    fs.reset_clients()

    with pytest.raises(ConfigError, match=r"^s3://bucket/data: no usable AWS credentials") as info:
        fs.exists("s3://bucket/data")
    assert "AKIASECRETLOOKINGKEY" not in str(info.value)


def test_gcs_without_credentials_is_a_config_error(fresh_clients, monkeypatch, tmp_path):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))
    fs.reset_clients()

    with pytest.raises(ConfigError, match=r"^gs://bucket/data/\*: no Google Cloud credentials"):
        fs.glob("gs://bucket/data/*")


def test_s3_unreachable_endpoint_and_unknown_profile(fresh_clients, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("EXAMPLEGEN_S3_ENDPOINT_URL", closed)
    with pytest.raises(SourceError, match=rf"^s3://b/data: cannot reach S3 at {closed} "):
        resolve_spans("s3://b/data", SPLITS)

    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    fs.reset_clients()
    with pytest.raises(ConfigError, match=r"^s3://b/k\.csv: .*no-such-profile.*check AWS_PROFILE"):
        fs.size("s3://b/k.csv")


def test_access_denied_and_rejected_credentials_messages():
    """Errors the test servers cannot produce, as the client libraries raise them."""
    from botocore.exceptions import ClientError
    from google.api_core import exceptions as api_errors

    s3, gcs = fs._BACKENDS["s3"], fs._BACKENDS["gs"]
    url = "s3://b/k.csv"
    not_found = SourceError(f"{url}: no such object")
    denied = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetObject"
    )
    rejected = ClientError({"Error": {"Code": "InvalidAccessKeyId", "Message": "x"}}, "GetObject")

    assert str(s3._error(denied, url, not_found)) == (
        f"{url}: access denied (AccessDenied: Access Denied)"
    )
    assert isinstance(s3._error(rejected, url, not_found), ConfigError)
    forbidden = api_errors.Forbidden("someone@example.com does not have storage.objects.get access")
    message = str(gcs._error(forbidden, "gs://b/k.csv", not_found))
    assert message.startswith("gs://b/k.csv: access denied (403: someone@example.com does not")
    assert s3._error(ValueError("a bug"), url, not_found) is None  # not translated


def test_unsupported_scheme_and_bucketless_urls():
    with pytest.raises(ConfigError, match=r"'hdfs://' is not supported"):
        fs.glob("hdfs://namenode/data/*")
    with pytest.raises(ConfigError, match=r"gs:///x: no bucket name"):
        fs.exists("gs:///x")


# ---------------------------------------------------------------- ingestion from a bucket


def test_ingest_from_bucket_matches_local_ingest_and_records_remote_uris(store, tmp_path):
    from examplegen.ingest import ingest
    from examplegen.lineage import open_store
    from tests.helpers import TAXI_CSV_DIR, tree_bytes

    bucket = store.bucket()
    data = open(os.path.join(TAXI_CSV_DIR, "data.csv"), "rb").read()
    write_layout(store, bucket, tmp_path / "local", {"taxi/data.csv": data})
    mlmd = f"sqlite:///{tmp_path}/lineage.sqlite"
    remote = ingest(store.url(bucket, "taxi"), str(tmp_path / "remote_out"), mlmd=mlmd)
    local = ingest(str(tmp_path / "local" / "taxi"), str(tmp_path / "local_out"), record_lineage=False)
    assert remote.counts == local.counts and remote.input_fingerprint == local.input_fingerprint
    remote_files = {k: v for k, v in tree_bytes(str(tmp_path / "remote_out")).items() if k.startswith("Split-")}
    local_files = {k: v for k, v in tree_bytes(str(tmp_path / "local_out")).items() if k.startswith("Split-")}
    assert remote_files == local_files
    assert [s.uri for s in remote.sources] == [store.url(bucket, "taxi/data.csv")]
    lineage_store = open_store(mlmd)
    uris = [a.uri for a in lineage_store.mlmd.get_artifacts_by_type("examplegen.SourceFile")]
    assert uris == [store.url(bucket, "taxi/data.csv")]


def test_object_keys_with_dot_dot_parts_are_refused(remote_env, stores):
    # S3 keeps '..' in a key literally (the GCS emulator refuses such keys; GCS allows them).
    store = stores["s3"]
    bucket = store.bucket()
    store.put(bucket, "data/a/x.csv", b"x\n1\n")
    store.put(bucket, "data/../secret.csv", b"x\n2\n")  # object stores keep '..' literally
    with pytest.raises(SpanResolutionError) as info:
        resolve_spans(store.url(bucket, "data"), {"splits": [{"name": "t", "pattern": "*/*"}]})
    assert "data/../secret.csv" in str(info.value) and "outside the input base" in str(info.value)
    with pytest.raises(ConfigError):
        resolve_spans(store.url(bucket, "data/a"), {"splits": [{"name": "t", "pattern": "../../*"}]})
