"""examplegen._framing, the native loop behind tfrecord.frame_and_bucket / frame_column:
it is built here (CI would otherwise measure and ship the slower fallback unnoticed), it
agrees with hashlib and google_crc32c record by record, and the pure-Python fallback gives
the same frames and buckets."""

import hashlib
import random

import google_crc32c
import numpy as np
import pyarrow as pa
import pytest

from examplegen import tfrecord
from examplegen.split import hash_buckets

LENGTHS = [0, 1, 7, 8, 9, 15, 16, 17, 55, 56, 63, 64, 65, 119, 120, 447, 4096, 70_001]


def records_of(lengths, seed=5):
    rng = random.Random(seed)
    return [rng.randbytes(n) for n in lengths]


def test_the_native_module_is_built():
    assert tfrecord._framing is not None, "examplegen._framing was not built: run `pip install -e .` with gcc and OpenSSL headers"
    assert tfrecord._framing.CRC32C_IMPLEMENTATION in ("sse4.2", "table")


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_digests_and_crcs_match_hashlib_and_google_crc32c(kind):
    records = records_of(LENGTHS * 3)
    array = pa.array(records, kind)
    width = 8 if kind == pa.large_binary() else 4
    for start, count in [(0, len(records)), (5, 20), (len(records), 0), (17, 1)]:
        sliced = array.slice(start, count)
        _, offsets, data = sliced.buffers()
        digests, crcs = tfrecord._framing.digests_and_crcs(offsets, data, width, sliced.offset, count, True)
        part = records[start:start + count]
        assert digests == b"".join(hashlib.sha256(r).digest() for r in part)
        assert np.frombuffer(crcs, dtype=np.uint32).tolist() == [google_crc32c.value(r) for r in part]
        no_digests, same_crcs = tfrecord._framing.digests_and_crcs(offsets, data, width, sliced.offset, count, False)
        assert no_digests == b"" and same_crcs == crcs


def test_both_crc32c_paths_match_google_crc32c():
    for record in records_of(LENGTHS, seed=9) + [b"123456789"]:
        assert tfrecord._framing.crc32c(record) == google_crc32c.value(record)
        assert tfrecord._framing.crc32c_table(record) == google_crc32c.value(record)


def test_offsets_outside_the_buffers_are_refused():
    array = pa.array([b"abc", b"defgh"])
    _, offsets, data = array.buffers()
    with pytest.raises(ValueError, match="offsets buffer too short"):
        tfrecord._framing.digests_and_crcs(offsets, data, 4, 0, 3, True)
    with pytest.raises(ValueError, match="offsets buffer too short"):
        tfrecord._framing.digests_and_crcs(offsets, data, 3, 0, 1, True)
    with pytest.raises(ValueError, match="outside the data buffer"):
        tfrecord._framing.digests_and_crcs(offsets, data[:4], 4, 0, 2, True)
    bad = np.array([0, 5, 2], dtype=np.int32)  # decreasing offsets
    with pytest.raises(ValueError, match="outside the data buffer"):
        tfrecord._framing.digests_and_crcs(bad, data, 4, 0, 2, True)


@pytest.mark.parametrize("total", [3, 10, 2**32 - 1])
def test_the_fallback_gives_the_native_frames_and_buckets(monkeypatch, total):
    records = records_of(LENGTHS * 2, seed=11)
    inputs = [records, pa.array(records, pa.binary()), pa.array(records, pa.large_binary()),
              pa.array(records, pa.binary()).slice(3, 20)]
    native = [tfrecord.frame_and_bucket(given, total) for given in inputs]
    native_columns = [tfrecord.frame_column(given) for given in inputs]
    monkeypatch.setattr(tfrecord, "_framing", None)
    for given, (framed, buckets), column in zip(inputs, native, native_columns):
        fallback_framed, fallback_buckets = tfrecord.frame_and_bucket(given, total)
        assert fallback_framed.equals(framed)
        assert fallback_buckets.tolist() == buckets.tolist() == hash_buckets(given, total).tolist()
        assert tfrecord.frame_column(given).equals(column)
