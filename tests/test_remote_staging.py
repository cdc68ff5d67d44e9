"""Staging prefixes on gs:// and s3:// (the GCS emulator and moto's S3 server): the run's
owner.json heartbeat, and the next run into the same output removing the prefix of a run
that is over (dead owner, stopped heartbeat) while leaving a live run's alone.

No test waits for the clock: killed runs are made by writing their owner.json with an old
heartbeat or a dead pid.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

import examplegen.ingest as ingest_module
from examplegen import fs, liveness, writer
from examplegen.errors import ConfigError, OutputError
from examplegen.ingest import ingest
from tests.cloud_servers import cloud_servers, gcs_server, s3_server  # noqa: F401 (fixtures)
from tests.test_fs_remote import fresh_clients, remote_env, store, stores  # noqa: F401 (fixtures)
from tests.test_remote_output import remote_tree

ONE_SPLIT = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}
PART = "parts/000-0000000-0000-00000.gz"


@pytest.fixture
def csv_dir(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "data.csv").write_text("x,y\n" + "".join(f"{i},{i * 2}\n" for i in range(100)))
    return str(folder)


def _ingest(csv_dir, output, **kw):
    return ingest(csv_dir, output, record_lineage=False, workers=1, num_shards=1, output_config=ONE_SPLIT, **kw)


def _other_host(heartbeat: float) -> dict:
    """The owner.json of a run on another host (its pid cannot be checked from here)."""
    return dict(liveness.process_identity(), host="another-host", heartbeat=heartbeat, heartbeat_seconds=60)


def _dead_process() -> dict:
    """The owner.json of a run on this host whose process has ended (a fresh heartbeat:
    the dead pid alone decides)."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                           text=True, check=True)
    me = liveness.process_identity()
    return dict(me, pid=int(ended.stdout), heartbeat=time.time(), heartbeat_seconds=60)


def _stage(store, bucket, output_key: str, name: str, owner) -> str:  # noqa: F811
    """A staging prefix as a run leaves it: owner.json (unless None) and a part file."""
    if owner is not None:
        store.put(bucket, f"{output_key}/{name}/owner.json", json.dumps(owner).encode())
    store.put(bucket, f"{output_key}/{name}/{PART}", b"not gzip")
    return store.url(bucket, f"{output_key}/{name}")


def _staging_prefixes(url: str) -> list[str]:
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.glob(fs.join(fs.escape_glob(url), ".staging-*")))


@pytest.mark.parametrize("owner", ["stale heartbeat", "dead process"])
def test_a_killed_runs_staging_prefix_is_removed_by_the_next_run(tmp_path, store, csv_dir, owner):  # noqa: F811
    bucket = store.bucket()
    url = store.url(bucket, "out")
    record = _other_host(time.time() - 3600) if owner == "stale heartbeat" else _dead_process()
    _stage(store, bucket, "out", ".staging-killed00000", record)
    local = _ingest(csv_dir, str(tmp_path / "local"))
    result = _ingest(csv_dir, url)
    assert _staging_prefixes(url) == []  # the killed run's prefix, and this run's own, are gone
    assert result.counts == local.counts == {"all": 100}
    assert writer.verify_files(url, result.files_digest) is None
    assert {k: v for k, v in remote_tree(url).items() if k.startswith("Split-")} == {
        f"Split-all/{n}": open(tmp_path / "local" / "Split-all" / n, "rb").read()
        for n in fs.listdir(str(tmp_path / "local" / "Split-all"))}


@pytest.mark.parametrize("owner", ["fresh heartbeat", "live process", "no owner.json"])
def test_a_live_runs_staging_prefix_is_kept_and_the_run_succeeds(store, csv_dir, owner):  # noqa: F811
    """A fresh heartbeat (another host), a live process on this host (here: this one, its
    heartbeat long stopped), or no owner.json (an older version's run): left alone."""
    bucket = store.bucket()
    url = store.url(bucket, "out")
    record = {"fresh heartbeat": _other_host(time.time()),
              "live process": dict(liveness.process_identity(), heartbeat=time.time() - 3600),
              "no owner.json": None}[owner]
    prefix = _stage(store, bucket, "out", ".staging-alive0000000", record)
    before = remote_tree(prefix)
    result = _ingest(csv_dir, url)
    assert result.counts == {"all": 100} and writer.verify_files(url, result.files_digest) is None
    assert _staging_prefixes(url) == [".staging-alive0000000"]
    assert remote_tree(prefix) == before  # not touched


def test_the_limit_is_configurable(store, csv_dir, monkeypatch):  # noqa: F811
    bucket = store.bucket()
    url = store.url(bucket, "out")
    _stage(store, bucket, "out", ".staging-tenminutes00", _other_host(time.time() - 600))
    _ingest(csv_dir, url)  # 10 minutes: within the default limit (15)
    assert _staging_prefixes(url) == [".staging-tenminutes00"]
    monkeypatch.setenv(liveness.STALE_ENV, "300")
    _ingest(csv_dir, url, force=True)
    assert _staging_prefixes(url) == []


@pytest.mark.parametrize("value", ["soon", "0", "-5", "119", "inf", "nan"])
def test_a_bad_limit_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv(liveness.STALE_ENV, value)
    with pytest.raises(ConfigError, match=rf"^{liveness.STALE_ENV}=.*at least 120"):
        liveness.stale_after()


def test_the_run_keeps_a_heartbeat_in_its_owner_json_and_stops_it(store, csv_dir, monkeypatch):  # noqa: F811
    url = store.url(store.bucket(), "out")
    seen = {}
    check_units = ingest_module.check_units

    def look(*args):
        (name,) = _staging_prefixes(url)
        seen["owner"] = liveness.read_owner(fs.join(url, name))
        seen["heartbeats"] = [t for t in threading.enumerate()
                              if t.name == "examplegen-heartbeat" and t not in earlier]
        return check_units(*args)

    # (heartbeats of runs that an earlier test killed, leaving their abort out, are older)
    earlier = set(threading.enumerate())
    monkeypatch.setattr(ingest_module, "check_units", look)
    started = time.time()
    _ingest(csv_dir, url)
    owner = seen["owner"]
    assert owner["pid"] == liveness.process_identity()["pid"] and owner["heartbeat_seconds"] == 60
    assert started - 1 <= owner["heartbeat"] <= time.time()
    assert liveness.remote_staging_verdict(owner, time.time(), liveness.stale_after()) is None
    assert len(seen["heartbeats"]) == 1 and not seen["heartbeats"][0].is_alive()  # stopped at the commit
    assert _staging_prefixes(url) == []


def test_a_run_whose_staging_prefix_was_removed_refuses_to_commit(store, csv_dir, monkeypatch):  # noqa: F811
    """Another run judged this one's heartbeat stopped (a stalled host) and removed its
    staging prefix: the commit refuses, and an earlier artifact stays complete."""
    url = store.url(store.bucket(), "out")
    first = _ingest(csv_dir, url)

    def removed_by_another_run(versions):
        for name in _staging_prefixes(url):
            fs.remove_tree(fs.join(url, name))

    monkeypatch.setattr(ingest_module, "_check_unchanged", removed_by_another_run)
    with pytest.raises(OutputError, match=r"the staging prefix .* of this run was removed while it ran"):
        _ingest(csv_dir, url, force=True)
    assert writer.verify_files(url, first.files_digest) is None


def test_the_heartbeat_thread_rewrites_owner_json_until_stopped(tmp_path):
    """The clock is injected (1, 2, 3, ...); the test waits for beats, not for time."""
    path = str(tmp_path / "owner.json")
    ticks = iter(range(1, 1_000_000))
    heartbeat = liveness.Heartbeat(path, interval=0.001, clock=lambda: next(ticks))
    heartbeat.start()
    try:
        assert json.load(open(path))["heartbeat"] >= 1
        deadline = time.monotonic() + 60
        while json.load(open(path))["heartbeat"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert json.load(open(path))["heartbeat"] >= 3  # rewritten by the thread
    finally:
        heartbeat.stop()
    assert not heartbeat.running
    last = open(path).read()
    heartbeat.beat()  # after stop: nothing is written any more
    assert open(path).read() == last


@pytest.mark.parametrize("owner,keep", [
    ({"pid": 1, "host": "elsewhere", "heartbeat": 1000.0}, False),
    ({"pid": 1, "host": "elsewhere", "heartbeat": 1000.0 + 100}, True),
    ({"pid": 1, "host": "elsewhere", "heartbeat": 5000.0}, True),  # ahead of our clock: fresh
    ({"pid": 1, "host": "elsewhere"}, True),  # no heartbeat: cannot be judged
    ({"pid": 1, "host": "elsewhere", "heartbeat": True}, True),
    (None, True),
])
def test_remote_staging_verdict(owner, keep):
    assert (liveness.remote_staging_verdict(owner, now=2000.0, limit=900.0) is None) == keep


# ------------------------------------------------------------------ Arrow's S3 region


def _bucket_in(stores, region: str) -> str:  # noqa: F811
    name = f"eg-{region}-{time.time_ns() % 10**9}"
    stores["s3"]._client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return name


def test_arrow_writes_to_an_s3_bucket_with_the_buckets_own_region(fresh_clients, stores, csv_dir,  # noqa: F811
                                                                 monkeypatch):
    """AWS_REGION names another region (as on a machine in us-east-1 writing to a bucket in
    eu-west-1): Arrow's client gets the bucket's region, found with HeadBucket."""
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    bucket = _bucket_in(stores, "eu-west-1")
    url = f"s3://{bucket}/out"
    assert fs._arrow(url)[0].region == "eu-west-1"
    assert fs._arrow("s3://" + stores["s3"].bucket())[0].region == "us-east-1"
    result = _ingest(csv_dir, url)
    assert result.counts == {"all": 100} and writer.verify_files(url, result.files_digest) is None


def test_s3_region_from_an_error_answer_then_the_environment(fresh_clients, stores, monkeypatch):  # noqa: F811
    """AWS sends x-amz-bucket-region with a 403 or 301 too; where no answer names a region
    (a missing bucket here), AWS_REGION, then AWS_DEFAULT_REGION, then Arrow's default."""
    from botocore.stub import Stubber

    endpoint = fs._BACKENDS["s3"]._endpoint()
    client = fs._s3_client(endpoint)
    with Stubber(client) as stub:
        stub.add_client_error("head_bucket", "403", "Forbidden", 403, expected_params={"Bucket": "locked"},
                              response_meta={"HTTPHeaders": {"x-amz-bucket-region": "eu-central-1"}})
        assert fs._s3_region(endpoint, "locked") == "eu-central-1"
        stub.assert_no_pending_responses()
    assert fs._s3_region(endpoint, "locked") == "eu-central-1"  # found once, kept
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert fs._s3_region(endpoint, "no-such-bucket-here") == "ap-south-1"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert fs._s3_region(endpoint, "no-such-bucket-here") == "sa-east-1"
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert fs._s3_region(endpoint, "no-such-bucket-here") == ""
