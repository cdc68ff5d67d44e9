"""Issue 7 item 2: a cached run verifies what it reuses.

Every commit lists each data file (path, size, SHA-256) in examples_metadata.json and the
list's digest on the MLMD Examples artifact. Reuse checks them; on a mismatch the old
artifact is marked DELETED with the reason, and the data is converted again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from examplegen.ingest import ingest
from examplegen.lineage import open_store, schema
from examplegen.lineage.schema import properties
from examplegen.writer import files_digest, verify_files
from tests.helpers import TAXI_CSV_DIR, read_split
from tests.lineage_fixtures import sqlite_url  # noqa: F401 - fixture

SPLITS = ("train", "eval")


def _records(out) -> dict[str, list[bytes]]:
    return {split: sorted(read_split(str(out), split)) for split in SPLITS}


def _examples(url):
    store = open_store(url, create=False)
    return sorted(store.mlmd.get_artifacts_by_type(schema.EXAMPLES), key=lambda a: a.id)


def _largest_file(out):
    files = [os.path.join(out, f"Split-{s}", n) for s in SPLITS for n in os.listdir(out / f"Split-{s}")]
    return max(files, key=os.path.getsize)


def test_commit_records_every_file_with_size_and_sha256(sqlite_url, tmp_path):
    out = tmp_path / "out"
    result = ingest(TAXI_CSV_DIR, str(out), mlmd=sqlite_url, num_shards=2)
    metadata = json.loads((out / "examples_metadata.json").read_text())
    on_disk = sorted(f"Split-{s}/{n}" for s in SPLITS for n in os.listdir(out / f"Split-{s}"))
    assert sorted(f["path"] for f in metadata["files"]) == on_disk and len(on_disk) == 4
    for entry in metadata["files"]:
        data = (out / entry["path"]).read_bytes()
        assert (entry["size"], entry["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert metadata["files_digest"] == files_digest(metadata["files"]) == result.files_digest
    [examples] = _examples(sqlite_url)
    assert properties(examples)["files_digest"] == result.files_digest
    assert verify_files(str(out), result.files_digest) is None


def _damage_truncate(path):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 3])
    return "bytes"


def _damage_flip_one_byte(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0x01  # same size
    with open(path, "wb") as f:
        f.write(bytes(data))
    return "was modified"


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_flip_one_byte], ids=["truncated", "one-byte"])
def test_damaged_file_is_not_reused_old_artifact_is_marked_and_data_converted_again(
        damage, sqlite_url, tmp_path, caplog):
    out = tmp_path / "out"
    first = ingest(TAXI_CSV_DIR, str(out), mlmd=sqlite_url)
    expected = _records(out)
    assert sum(len(r) for r in expected.values()) == 10000
    bad = _largest_file(out)
    said = damage(bad)

    with caplog.at_level(logging.WARNING):
        again = ingest(TAXI_CSV_DIR, str(out), mlmd=sqlite_url)
    assert not again.cached and again.counts == first.counts
    assert _records(out) == expected  # complete and correct, read by TensorFlow
    assert verify_files(str(out), again.files_digest) is None
    [warning] = [r.getMessage() for r in caplog.records if "not reusing" in r.getMessage()]
    assert bad in warning and said in warning and "converting again" in warning

    old, new = _examples(sqlite_url)
    assert old.state == pb.Artifact.DELETED
    reason = properties(old)["invalidated_reason"]
    assert bad in reason and said in reason
    assert new.state == pb.Artifact.LIVE and new.uri == str(out)
    assert ingest(TAXI_CSV_DIR, str(out), mlmd=sqlite_url).cached  # the repaired artifact is reused


def test_extra_file_or_edited_file_list_is_not_reused(sqlite_url, tmp_path):
    out = tmp_path / "out"
    ingest(TAXI_CSV_DIR, str(out), mlmd=sqlite_url)
    stray = out / "Split-train" / "data_tfrecord-00099-of-00100.gz"
    stray.write_bytes(open(_largest_file(out), "rb").read())  # would double the records read
    assert not ingest(TAXI_CSV_DIR, str(out), mlmd=sqlite_url).cached
    assert not stray.exists()

    metadata = json.loads((out / "examples_metadata.json").read_text())
    metadata["files"] = metadata["files"][:-1]  # hides a file from the check
    metadata["files_digest"] = files_digest(metadata["files"])
    (out / "examples_metadata.json").write_text(json.dumps(metadata))
    assert not ingest(TAXI_CSV_DIR, str(out), mlmd=sqlite_url).cached
    reasons = [properties(a).get("invalidated_reason", "") for a in _examples(sqlite_url)]
    assert "is not one of the artifact's files" in reasons[0]
    assert "does not list the files recorded in ML Metadata" in reasons[1]
    assert [a.state for a in _examples(sqlite_url)] == [pb.Artifact.DELETED] * 2 + [pb.Artifact.LIVE]


def test_reuse_into_another_output_verifies_the_source_first(sqlite_url, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    ingest(TAXI_CSV_DIR, str(first), mlmd=sqlite_url)
    expected = _records(first)
    _damage_flip_one_byte(_largest_file(first))
    result = ingest(TAXI_CSV_DIR, str(second), mlmd=sqlite_url)
    assert not result.cached and _records(second) == expected
    assert [a.state for a in _examples(sqlite_url)] == [pb.Artifact.DELETED, pb.Artifact.LIVE]
