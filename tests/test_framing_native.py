"""examplegen._framing, the native loop behind tfrecord.frame_and_bucket / frame_column:
it is built here (CI would otherwise measure and ship the slower fallback unnoticed), it
agrees with hashlib and google_crc32c record by record, and the pure-Python fallback gives
the same frames and buckets."""

import hashlib
import random

import google_crc32c
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from examplegen import native, tfrecord
from examplegen.split import hash_buckets

LENGTHS = [0, 1, 7, 8, 9, 15, 16, 17, 55, 56, 63, 64, 65, 119, 120, 447, 4096, 70_001]


def records_of(lengths, seed=5):
    rng = random.Random(seed)
    return [rng.randbytes(n) for n in lengths]


def test_the_native_module_is_built():
    assert native.framing is not None, "examplegen._framing was not built: run `pip install -e .` with gcc and OpenSSL headers"
    assert native.framing.CRC32C_IMPLEMENTATION in ("sse4.2", "table")


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_digests_and_crcs_match_hashlib_and_google_crc32c(kind):
    records = records_of(LENGTHS * 3)
    array = pa.array(records, kind)
    width = 8 if kind == pa.large_binary() else 4
    for start, count in [(0, len(records)), (5, 20), (len(records), 0), (17, 1)]:
        sliced = array.slice(start, count)
        _, offsets, data = sliced.buffers()
        digests, crcs = native.framing.digests_and_crcs(offsets, data, width, sliced.offset, count, True)
        part = records[start:start + count]
        assert digests == b"".join(hashlib.sha256(r).digest() for r in part)
        assert np.frombuffer(crcs, dtype=np.uint32).tolist() == [google_crc32c.value(r) for r in part]
        no_digests, same_crcs = native.framing.digests_and_crcs(offsets, data, width, sliced.offset, count, False)
        assert no_digests == b"" and same_crcs == crcs


def test_both_crc32c_paths_match_google_crc32c():
    for record in records_of(LENGTHS, seed=9) + [b"123456789"]:
        assert native.framing.crc32c(record) == google_crc32c.value(record)
        assert native.framing.crc32c_table(record) == google_crc32c.value(record)


def test_offsets_outside_the_buffers_are_refused():
    array = pa.array([b"abc", b"defgh"])
    _, offsets, data = array.buffers()
    with pytest.raises(ValueError, match="offsets buffer too short"):
        native.framing.digests_and_crcs(offsets, data, 4, 0, 3, True)
    with pytest.raises(ValueError, match="offsets buffer too short"):
        native.framing.digests_and_crcs(offsets, data, 3, 0, 1, True)
    with pytest.raises(ValueError, match="outside the data buffer"):
        native.framing.digests_and_crcs(offsets, data[:4], 4, 0, 2, True)
    bad = np.array([0, 5, 2], dtype=np.int32)  # decreasing offsets
    with pytest.raises(ValueError, match="outside the data buffer"):
        native.framing.digests_and_crcs(bad, data, 4, 0, 2, True)


@pytest.mark.parametrize("total", [3, 10, 2**32 - 1])
def test_the_fallback_gives_the_native_frames_and_buckets(monkeypatch, total):
    records = records_of(LENGTHS * 2, seed=11)
    inputs = [records, pa.array(records, pa.binary()), pa.array(records, pa.large_binary()),
              pa.array(records, pa.binary()).slice(3, 20)]
    with_module = [tfrecord.frame_and_bucket(given, total) for given in inputs]
    columns = [tfrecord.frame_column(given) for given in inputs]
    monkeypatch.setattr(native, "framing", None)
    for given, (framed, buckets), column in zip(inputs, with_module, columns):
        fallback_framed, fallback_buckets = tfrecord.frame_and_bucket(given, total)
        assert fallback_framed.equals(framed)
        assert fallback_buckets.tolist() == buckets.tolist() == hash_buckets(given, total).tolist()
        assert tfrecord.frame_column(given).equals(column)


def _pieces(seed: int, n: int) -> list[pa.Array]:
    rng = random.Random(seed)
    pieces = []
    for k in range(7):
        values = [rng.randbytes(rng.choice([0, 1, 3, 8, 40, 300])) for _ in range(n + 9)]
        array = pa.array(values, pa.large_binary() if k == 3 else pa.binary())
        pieces.append(array.slice(k % 4, n))  # the arrays' own offsets differ
    return pieces


@pytest.mark.parametrize("n", [0, 1, 257])
def test_join_rows_matches_arrows_binary_join(n):
    from examplegen import encode

    pieces = _pieces(n, n)
    joined = encode._join(*pieces)
    expected = pc.binary_join_element_wise(*[p.cast(pa.large_binary()) for p in pieces],
                                           pa.scalar(b"", pa.large_binary()))
    assert joined.type == pa.large_binary() and joined.equals(expected)
    small = [p.cast(pa.binary()) for p in pieces]
    assert encode._join(*small).type == pa.binary()
    assert encode._join(*small).equals(pc.binary_join_element_wise(*small, b""))


def test_join_with_nulls_takes_arrows_kernel():
    from examplegen import encode

    a, b = pa.array([b"x", None, b"z"]), pa.array([b"1", b"2", b"3"])
    assert encode._join(a, b).to_pylist() == [b"x1", None, b"z3"]


def test_join_rows_refuses_buffers_that_do_not_fit():
    a = pa.array([b"ab", b"cde"])
    piece = (a.buffers()[1], a.buffers()[2], 4, 0)
    out_offsets, out_data = pa.allocate_buffer(12), pa.allocate_buffer(5)
    native.framing.join_rows([piece], 2, out_offsets, out_data, 4)
    assert pa.Array.from_buffers(pa.binary(), 2, [None, out_offsets, out_data]).to_pylist() == [b"ab", b"cde"]
    with pytest.raises(ValueError, match="longer than the output data buffer"):
        native.framing.join_rows([piece], 2, out_offsets, pa.allocate_buffer(4), 4)
    with pytest.raises(ValueError, match="shorter than the output data buffer"):
        native.framing.join_rows([piece], 2, out_offsets, pa.allocate_buffer(6), 4)
    with pytest.raises(ValueError, match="output offsets buffer too short"):
        native.framing.join_rows([piece], 2, pa.allocate_buffer(8), out_data, 4)
    with pytest.raises(ValueError, match="too short for start and count"):
        native.framing.join_rows([piece], 3, pa.allocate_buffer(16), out_data, 4)
    with pytest.raises(ValueError, match="outside its data buffer"):
        native.framing.join_rows([(piece[0], b"ab", 4, 0)], 2, out_offsets, out_data, 4)


def test_examples_are_the_same_bytes_without_the_module(monkeypatch):
    """Taxi Parquet rows (nulls included) through typemap and encode: native and fallback."""
    import os

    import pyarrow.parquet as pq

    from examplegen import encode, typemap
    from tests.helpers import REPO

    table = pq.read_table(os.path.join(REPO, "examples", "data", "taxi_parquet", "data.parquet"))
    batch = table.combine_chunks().to_batches()[0]

    def examples():
        features = typemap.batch_features(batch, str, "", {})
        return encode.example_column([f.name for f in features], [f.feature for f in features])

    with_module = examples()
    monkeypatch.setattr(native, "framing", None)
    assert examples().equals(with_module)
    assert len(with_module) == batch.num_rows and batch.num_rows > 1000


@pytest.mark.parametrize("kind", [pa.binary(), pa.large_binary()])
def test_frames_by_key_are_the_grouped_frames_of_tensorflow_framing(monkeypatch, kind):
    """One native pass (frames written in key order) = framing every record, then grouping;
    and each group is the TFRecord file TensorFlow would write for those records."""
    records = records_of(LENGTHS * 4, seed=13)
    array = pa.array(records + [b"tail"], kind).slice(0, len(records))
    rng = np.random.default_rng(3)
    for key in (rng.integers(0, 5, len(records)), np.full(len(records), 7), np.arange(len(records))[::-1] % 3):
        expected = tfrecord.grouped_frames(tfrecord.frame_column(records), key)
        crcs, _ = tfrecord.crc_and_bucket(array, 10)
        for got in (tfrecord.frames_by_key(array, key), tfrecord.frames_by_key(array, key, crcs)):
            assert [(k, c, b.to_pybytes()) for k, c, b in got] == [(k, c, b.to_pybytes()) for k, c, b in expected]
        for k, count, data in expected:
            assert data.to_pybytes() == tfrecord.frame_records([r for r, kk in zip(records, key) if kk == k])
        monkeypatch.setattr(native, "framing", None)
        fallback = tfrecord.frames_by_key(array, key, crcs)
        monkeypatch.undo()
        assert [(k, c, b.to_pybytes()) for k, c, b in fallback] == [(k, c, b.to_pybytes()) for k, c, b in expected]
    assert tfrecord.frames_by_key(pa.array([], kind), np.zeros(0, dtype=np.int64)) == []
    with pytest.raises(ValueError, match="3 keys for 2 records"):
        tfrecord.frames_by_key([b"a", b"b"], np.zeros(3))


def test_frame_rows_refuses_inconsistent_arguments():
    array = pa.array([b"ab", b"cde"])
    _, offsets, data = array.buffers()
    crcs = np.zeros(2, dtype=np.uint32)
    out = pa.allocate_buffer(2 + 3 + 32)
    native.framing.frame_rows(offsets, data, 4, 0, 2, crcs, np.array([1, 0]), out)
    with pytest.raises(ValueError, match="outside 0..count-1"):
        native.framing.frame_rows(offsets, data, 4, 0, 2, crcs, np.array([0, 2]), out)
    with pytest.raises(ValueError, match="longer than the output buffer"):
        native.framing.frame_rows(offsets, data, 4, 0, 2, crcs, np.array([1, 0]), pa.allocate_buffer(36))
    with pytest.raises(ValueError, match="shorter than the output buffer"):
        native.framing.frame_rows(offsets, data, 4, 0, 2, crcs, np.array([1, 0]), pa.allocate_buffer(38))
    with pytest.raises(ValueError, match="crcs or order shorter"):
        native.framing.frame_rows(offsets, data, 4, 0, 2, crcs[:1], np.array([1, 0]), out)


def test_leading_bytes_match_numpys_mask_compaction(monkeypatch):
    from examplegen import encode

    rng = np.random.default_rng(8)
    for width in (1, 8, 12):
        matrix = rng.integers(0, 256, (300, width), dtype=np.uint8)
        row_len = rng.integers(0, width + 1, 300)
        got = encode._leading_bytes(matrix, row_len)
        assert bytes(got) == matrix[np.arange(width) < row_len[:, None]].tobytes()
    monkeypatch.setattr(native, "framing", None)
    assert bytes(encode._leading_bytes(matrix, row_len)) == bytes(got)


def test_leading_bytes_refuses_inconsistent_arguments():
    matrix = np.zeros((3, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="outside 0..width"):
        native.framing.leading_bytes(matrix, 4, np.array([1, 5, 0]), pa.allocate_buffer(6))
    with pytest.raises(ValueError, match="not row_len's rows"):
        native.framing.leading_bytes(matrix, 3, np.array([1, 1, 1]), pa.allocate_buffer(3))
    with pytest.raises(ValueError, match="shorter than the output buffer"):
        native.framing.leading_bytes(matrix, 4, np.array([1, 1, 1]), pa.allocate_buffer(4))
    with pytest.raises(ValueError, match="longer than the output buffer"):
        native.framing.leading_bytes(matrix, 4, np.array([1, 1, 1]), pa.allocate_buffer(2))


@pytest.mark.slow
def test_the_encoding_and_framing_tests_pass_without_the_module():
    """EXAMPLEGEN_NO_NATIVE=1: every Example and frame test again on the numpy/Arrow path
    (the result a machine without a compiler gets)."""
    import os
    import subprocess
    import sys

    from tests.helpers import REPO

    env = dict(os.environ, EXAMPLEGEN_NO_NATIVE="1")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_encode.py", "tests/test_tfrecord.py", "tests/test_typemap.py",
                           "-k", "not the_native_module_is_built"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout
    check = subprocess.run([sys.executable, "-c", "from examplegen import native; print(native.framing)"],
                           cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "None"
