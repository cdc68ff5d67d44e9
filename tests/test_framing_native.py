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
def test_example_column_reads_features_with_their_own_offsets(monkeypatch, n):
    """example_column over Feature arrays sliced at different offsets, one large_binary:
    the native loop reads each array's offsets and gives the numpy path's bytes."""
    from examplegen import encode

    pieces = _pieces(n, n)
    names = [f"f{k}" for k in range(len(pieces))]
    got = encode.example_column(names, pieces)
    monkeypatch.setattr(native, "framing", None)
    expected = encode.example_column(names, pieces)
    assert got.cast(pa.large_binary()).equals(expected.cast(pa.large_binary()))
    assert len(got) == n


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
        joined = encode.example_column([f.name for f in features], [f.feature for f in features])
        assert typemap.examples(features).equals(joined)
        return joined

    with_module = examples()
    monkeypatch.setattr(native, "framing", None)
    assert examples().equals(with_module)
    assert len(with_module) == batch.num_rows and batch.num_rows > 1000


def random_columns(seed: int, n: int) -> dict:
    """{name: (array, kind)}: every kind as scalars and lists, with nulls, empty lists,
    varints of every width, long strings, sliced and large arrays, null and none columns."""
    rng = np.random.default_rng(seed)
    ints = rng.integers(-2**63, 2**63 - 1, n, dtype=np.int64) >> rng.integers(0, 63, n)
    floats = rng.normal(0, 1e6, n)
    strings = [bytes(rng.integers(0, 256, rng.choice([0, 1, 5, 127, 128, 300, 17000]), dtype=np.uint8))
               for _ in range(n)]
    null = rng.random(n) < 0.2

    def lists(values, typ):
        offsets = np.concatenate([[0], np.cumsum(rng.integers(0, 4, n))])
        flat = pa.array([values[i % len(values)] for i in range(int(offsets[-1]))], typ)
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), flat, mask=pa.array(null))

    long = pa.array([b"pad"] * 5 + list(strings), pa.large_binary())
    return {
        "int": (pa.array(ints, mask=null), "int64"),
        "int8": (pa.array(ints.astype(np.int8)), "int64"),
        "bool": (pa.array(rng.random(n) < 0.5), "int64"),
        "float": (pa.array(floats, mask=null), "float"),
        "float32": (pa.array(floats.astype(np.float32)), "float"),
        "int_as_float": (pa.array(ints), "float"),
        "bytes": (pa.array(strings, pa.binary(), mask=null), "bytes"),
        "string": (pa.array([s.hex() for s in strings], pa.string()), "bytes"),
        "large": (long.slice(5, n), "bytes"),  # an array offset, 64-bit value offsets
        "int_list": (lists(ints, pa.int64()), "int64"),
        "float_list": (lists(floats, pa.float64()), "float"),
        "bytes_list": (lists(strings, pa.binary()), "bytes"),
        "all_null": (pa.nulls(n), "int64"),
        "none": (pa.array(ints), "none"),
        "k" * 200: (pa.array(ints).slice(0, n), "int64"),
    }


@pytest.mark.parametrize("missing", ["empty_list", "empty_feature"])
def test_native_encoders_give_the_numpy_paths_bytes(monkeypatch, missing):
    """feature_column, example_column and example_column_of_values: the native loops and
    the numpy/Arrow path agree column by column, on whole and sliced columns."""
    from examplegen import encode

    columns = random_columns(21, 500)
    names = list(columns)
    for start, length in ((0, 500), (37, 301), (499, 1), (0, 0)):
        part = {name: (a.slice(start, length), kind) for name, (a, kind) in columns.items()}

        def encoded():
            features = [encode.feature_column(a, kind, missing) for a, kind in part.values()]
            return (features, encode.example_column(names, features),
                    encode.example_column_of_values(names, list(part.values()), missing))

        native_features, native_joined, native_direct = encoded()
        monkeypatch.setattr(native, "framing", None)
        features, joined, direct = encoded()
        monkeypatch.undo()
        def same(a, b):  # binary or large_binary: the bytes are compared
            return a.cast(pa.large_binary()).equals(b.cast(pa.large_binary()))

        for name, got, expected in zip(names, native_features, features):
            assert same(got, expected), name
        assert same(native_joined, joined) and same(native_direct, joined) and same(direct, joined)


def test_native_encoders_refuse_inconsistent_columns():
    alloc = pa.allocate_buffer
    ints = np.arange(3, dtype=np.int64)
    ok = (0x1A, ints, None, None, None, 2)
    assert pa.Array.from_buffers(pa.binary(), 3, [None, *native.framing.feature_rows(ok, 3, alloc)[:2]]).to_pylist() \
        == [b"\x1a\x03\x0a\x01\x00", b"\x1a\x03\x0a\x01\x01", b"\x1a\x03\x0a\x01\x02"]
    bad = {
        "tag must be": (0x0B, ints, None, None, None, 2),
        "null_len 0 or 2": (0x1A, ints, None, None, None, 1),
        "fewer values than rows": (0x1A, ints[:2], None, None, None, 2),
        "int64 value_offsets": (0x0A, b"abc", None, None, None, 2),
        "value_offsets point outside": (0x0A, b"abc", np.array([0, 1, 4, 4, 4]), None, None, 2),
        "row_offsets must hold": (0x1A, ints, None, np.array([0, 1, 2]), None, 2),
        "row_offsets point outside": (0x1A, ints, None, np.array([0, 1, 2, 4]), None, 2),
        "one byte per row": (0x1A, ints, None, None, np.ones(2, dtype=np.uint8), 2),
    }
    for message, column in bad.items():
        with pytest.raises(ValueError, match=message):
            native.framing.feature_rows(column, 3, alloc)
        with pytest.raises(ValueError, match=message):
            native.framing.examples_of_columns([b"a"], [column], 3, alloc)
    with pytest.raises(ValueError, match="one key per column"):
        native.framing.examples_of_columns([b"a", b"b"], [ok], 3, alloc)
    with pytest.raises(TypeError, match="keys must be bytes"):
        native.framing.examples_of_columns(["a"], [ok], 3, alloc)
    with pytest.raises(ValueError, match="smaller than asked for"):
        native.framing.examples_of_columns([b"a"], [ok], 3, lambda size: pa.allocate_buffer(max(size - 1, 0)))
    with pytest.raises(ZeroDivisionError):
        native.framing.feature_rows(ok, 3, lambda size: 1 / 0)
    raw = (1, b"abcde", np.array([0, 2, 5]), None, None, 2)  # Features written as they are
    assert pa.Array.from_buffers(pa.binary(), 2, [None, *native.framing.examples_of_columns([b"k"], [raw], 2, alloc)[:2]]) \
        .to_pylist() == [b"\x0a\x09\x0a\x07\x0a\x01k\x12\x02ab", b"\x0a\x0a\x0a\x08\x0a\x01k\x12\x03cde"]
    with pytest.raises(ValueError, match="fewer values than rows"):
        native.framing.examples_of_columns([b"k"], [raw], 3, alloc)
    with pytest.raises(ValueError, match="value_offsets point outside"):
        native.framing.examples_of_columns([b"k"], [(1, b"ab", np.array([0, 2, 5]), None, None, 2)], 2, alloc)


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


def test_frame_walk_matches_the_python_walk(monkeypatch):
    """frame_starts + bad_frame_data against tfrecord's Python loop: chunks cut anywhere
    (inside a header, inside a record, on a boundary), frame offsets and the rest."""
    records = records_of(LENGTHS * 3, seed=17)
    data = tfrecord.frame_records(records)

    def walk(buf):
        starts, stop, frame_size = tfrecord._frame_starts(buf, lambda i, at: f"record {i} at {at}")
        if len(starts):
            tfrecord._check_data(buf, starts, stop, str)
        datas = [buf[a + 12:b - 4] for a, b in zip(list(starts), list(starts[1:]) + [stop])]
        return list(map(int, starts)), stop, frame_size, datas

    rng = random.Random(4)
    cuts = [0, 1, 11, 12, 15, 16, 17, len(data)] + [rng.randrange(len(data)) for _ in range(40)]
    for cut in cuts:
        buf = data[:cut]
        got = walk(buf)
        monkeypatch.setattr(native, "framing", None)
        expected = walk(buf)
        monkeypatch.undo()
        assert got == expected, cut
    assert walk(data)[3] == records and walk(data)[1] == len(data) and walk(data)[2] == 0


@pytest.mark.parametrize("where", ["length", "length_crc", "data", "data_crc"])
def test_frame_walk_names_the_corrupt_frame_as_the_python_walk(monkeypatch, where):
    records = records_of([5, 300, 0, 70, 9], seed=2)
    data = bytearray(tfrecord.frame_records(records))
    third = 16 + 5 + 16 + 300  # the third frame (index 2) starts here; its data is empty
    fourth = third + 16
    at = {"length": third, "length_crc": third + 9, "data": fourth + 12 + 3, "data_crc": fourth + 12 + 70 + 1}[where]
    data[at] ^= 0x40
    buf = bytes(data)

    def error():
        with pytest.raises(tfrecord.SourceError) as info:
            starts, stop, _ = tfrecord._frame_starts(buf, lambda i, offset: f"record {i} (byte offset {offset})")
            tfrecord._check_data(buf, starts, stop, lambda i, offset: f"record {i} (byte offset {offset})")
        return str(info.value)

    got = error()
    monkeypatch.setattr(native, "framing", None)
    assert got == error()
    if where.startswith("length"):
        assert got == f"record 2 (byte offset {third}): length CRC mismatch, the file is corrupt or not a TFRecord file"
    else:
        assert got == f"record 3 (byte offset {fourth}): data CRC mismatch, the file is corrupt"


def test_sha256_digests_and_the_buckets_of_records(monkeypatch):
    records = records_of(LENGTHS * 2, seed=9)
    assert native.framing.sha256_digests(records) == b"".join(hashlib.sha256(r).digest() for r in records)
    assert native.framing.sha256_digests([]) == b""
    with pytest.raises(TypeError, match="records must be bytes"):
        native.framing.sha256_digests([b"a", bytearray(b"b")])
    got = hash_buckets(records, 10)
    mixed = hash_buckets([bytearray(r) for r in records], 10)  # not all bytes: hashlib
    monkeypatch.setattr(native, "framing", None)
    expected = hash_buckets(records, 10)
    assert got.tolist() == expected.tolist() == mixed.tolist()
    assert got.tolist() == [int(hashlib.sha256(r).hexdigest(), 16) % 10 for r in records]


def test_frame_records_and_their_buckets(monkeypatch):
    """FrameRecords reads each payload out of its frame; frame_buckets hashes the payloads
    in place and gives TFX's buckets of the records, with and without the module."""
    records = records_of(LENGTHS * 2, seed=23)
    frames = tfrecord.frame_column(records)
    for array in (frames, frames.slice(3, 20), frames.cast(pa.large_binary()).slice(1)):
        expected = records[3:23] if len(array) == 20 else records[len(records) - len(array):]
        view = tfrecord.FrameRecords(array)
        assert len(view) == len(expected) and list(view) == expected
        assert [view[i] for i in range(len(view))] == expected and view[-1] == expected[-1]
        assert view[2:5] == expected[2:5]
        got = tfrecord.frame_buckets(array, 7)
        monkeypatch.setattr(native, "framing", None)
        fallback = tfrecord.frame_buckets(array, 7)
        monkeypatch.undo()
        assert got.tolist() == fallback.tolist() == hash_buckets(expected, 7).tolist()
    with pytest.raises(IndexError):
        tfrecord.FrameRecords(frames)[len(records)]
    _, offsets, data = pa.array([b"x" * 15]).buffers()
    with pytest.raises(ValueError, match="shorter than 16 bytes"):
        native.framing.frame_digests(offsets, data, 4, 0, 1)
    with pytest.raises(ValueError, match="too short for start and count"):
        native.framing.frame_digests(offsets, data, 4, 0, 2)


def test_frame_batches_hold_the_records_of_their_frames(tmp_path):
    """read_frame_batches across 4 MiB read chunks: each batch's records are its frames'
    payloads, and read_record_batches gives the same records."""
    records = records_of([70_001, 5, 4096] * 80, seed=31)  # ~5.9 MB: batches span chunks
    path = tmp_path / "data.tfrecord"
    path.write_bytes(tfrecord.frame_records(records))
    batches = list(tfrecord.read_frame_batches(path, 100))
    assert [len(b.records) for b in batches] == [100, 100, 40]
    assert [r for b in batches for r in b.records] == records
    for batch in batches:
        assert batch.frames.equals(tfrecord.frame_column(list(batch.records)))
    assert [r for batch in tfrecord.read_record_batches(path, 100) for r in batch] == records
