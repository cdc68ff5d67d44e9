"""TFRecord framing, writing and reading, checked against TensorFlow's own writer and reader."""

import gzip
import hashlib
import random
import re
import zlib

import numpy as np
import pyarrow as pa
import pytest

from examplegen.errors import SourceError
from examplegen.split import hash_buckets
from examplegen.tfrecord import (
    _READ_CHUNK,
    concatenated,
    frame_and_bucket,
    frame_column,
    frame_records,
    grouped_frames,
    gzip_member,
    iter_records,
    masked_crc32c,
    open_writer,
    read_frame_batches,
    read_record_batches,
)

import tensorflow as tf  # noqa: E402


def random_records(seed, count, max_size=600):
    rng = random.Random(seed)
    sizes = [0, 1, 127, 128, 16384] + [rng.randint(0, max_size) for _ in range(count - 5)]
    return [rng.randbytes(size) for size in sizes]


def tf_read(path, compression=""):
    return [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type=compression)]


def tf_write(path, records, compression=""):
    with tf.io.TFRecordWriter(str(path), options=compression or None) as writer:
        for record in records:
            writer.write(record)


def test_masked_crc32c_known_values():
    assert masked_crc32c(b"") == 0xA282EAD8  # crc32c(b"") is 0; masking adds the delta
    check = 0xE3069283  # the standard CRC-32C check value, of b"123456789"
    rotated = ((check >> 15) | (check << 17)) & 0xFFFFFFFF
    assert masked_crc32c(b"123456789") == (rotated + 0xA282EAD8) & 0xFFFFFFFF


def test_frames_are_byte_identical_to_tensorflow_writer(tmp_path):
    records = random_records(1, 300)
    tf_write(tmp_path / "tf.tfrecord", records)
    expected = (tmp_path / "tf.tfrecord").read_bytes()
    assert frame_records(records) == expected
    assert frame_records(pa.array(records, pa.binary())) == expected
    assert frame_records(pa.array(records, pa.large_binary())) == expected
    assert frame_records(pa.array(records, pa.binary()).slice(5, 20)) == frame_records(records[5:25])
    assert frame_records([]) == b""


def tfx_bucket(record, total):
    """TFX ExampleGen's hash bucket rule, spelled as TFX spells it."""
    return int(hashlib.sha256(record).hexdigest(), 16) % total


@pytest.mark.parametrize("total", [1, 3, 10, 2**31 - 1, 2**32 - 1, 2**32 + 15, 2**62 + 11])
def test_frame_and_bucket_matches_tensorflow_frames_and_tfx_buckets(tmp_path, total):
    records = random_records(9, 400)
    tf_write(tmp_path / "tf.tfrecord", records)
    expected_frames = (tmp_path / "tf.tfrecord").read_bytes()
    expected_buckets = [tfx_bucket(r, total) for r in records]
    for given in (records, pa.array(records, pa.binary()), pa.array(records, pa.large_binary()),
                  [bytearray(r) for r in records]):
        framed, buckets = frame_and_bucket(given, total)
        assert concatenated(framed).to_pybytes() == expected_frames
        assert buckets.tolist() == expected_buckets
        assert hash_buckets(given, total).tolist() == expected_buckets
    framed, buckets = frame_and_bucket(pa.array(records, pa.binary()).slice(7, 50), total)
    assert concatenated(framed).to_pybytes() == frame_records(records[7:57])
    assert buckets.tolist() == expected_buckets[7:57]
    framed, buckets = frame_and_bucket([], total)
    assert len(framed) == 0 and buckets.tolist() == []
    with pytest.raises(ValueError, match="null"):
        frame_and_bucket(pa.array([b"a", None]), total)


def test_frame_column_takes_any_bytes_like_records():
    records = random_records(10, 50)
    expected = frame_records(records)
    assert concatenated(frame_column([bytearray(r) for r in records])).to_pybytes() == expected
    assert concatenated(frame_column(pa.chunked_array([records[:20], records[20:]], pa.binary()))).to_pybytes() == expected


def test_grouped_frames_keep_each_groups_order():
    records = random_records(11, 300)
    framed = frame_column(records)
    key = np.array([(i * 7) % 5 for i in range(len(records))])
    key[::11] = 9
    groups = grouped_frames(framed, key)
    assert [k for k, _, _ in groups] == sorted(set(key.tolist()))
    for k, count, data in groups:
        members = [r for r, g in zip(records, key) if g == k]
        assert count == len(members)
        assert data.to_pybytes() == frame_records(members)
    one = grouped_frames(framed, np.full(len(records), 4))
    assert [(k, c) for k, c, _ in one] == [(4, len(records))]
    assert one[0][2].to_pybytes() == frame_records(records)
    assert grouped_frames(frame_column([]), np.zeros(0)) == []
    with pytest.raises(ValueError, match="keys"):
        grouped_frames(framed, key[:3])


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_written_files_are_read_by_tensorflow(tmp_path, compression):
    records = random_records(2, 500)
    path = tmp_path / "out.tfrecord"
    with open_writer(path, compression=compression) as writer:
        writer.write(frame_records(records[:200]))
        writer.write(frame_records(pa.array(records[200:], pa.binary())))
    raw = path.read_bytes()
    assert raw.startswith(b"\x1f\x8b") == (compression == "gzip")
    assert tf_read(path, "GZIP" if compression else "") == records
    assert list(iter_records(path)) == records


def test_concatenated_gzip_members_are_one_stream_for_tensorflow(tmp_path):
    records = random_records(3, 400)
    path = tmp_path / "members.tfrecord.gz"
    with open(path, "wb") as out:
        for start in range(0, 400, 100):
            out.write(gzip_member(frame_records(records[start:start + 100])))
    assert tf_read(path, "GZIP") == records
    assert list(iter_records(path)) == records


@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_reads_files_written_by_tensorflow(tmp_path, compression):
    records = random_records(4, 300)
    path = tmp_path / "tf.data"  # no telling extension: the format is detected from content
    tf_write(path, records, compression)
    assert list(iter_records(path)) == records
    batches = list(read_record_batches(path, batch_size=64))
    assert [len(b) for b in batches[:-1]] == [64] * (len(batches) - 1)
    assert [r for batch in batches for r in batch] == records


def test_reads_across_chunk_boundaries_and_huge_records(tmp_path):
    records = random_records(5, 6000, max_size=700) + [b"h" * (3 << 20), b"tail"]
    path = tmp_path / "big.tfrecord"
    path.write_bytes(frame_records(records))
    assert path.stat().st_size > 4 << 20  # several 1 MiB read chunks
    assert list(iter_records(path)) == records


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_frame_batches_hold_the_frames_as_read(tmp_path, compression):
    # records spanning 4 MiB read chunks and a batch size that cuts chunks mid-way
    records = random_records(11, 9000, max_size=900) + [b"h" * (5 << 20), b"tail"]
    path = tmp_path / "frames.data"
    tf_write(path, records, compression)
    batches = list(read_frame_batches(path, batch_size=1000))
    assert [len(b.records) for b in batches] == [1000] * 9 + [2]
    assert [r for b in batches for r in b.records] == records
    for batch in batches:
        assert len(batch.frames) == len(batch.records)
        # TF wrote these frames; they must equal both the file's bytes and a fresh framing
        assert batch.frames.equals(frame_column(batch.records))
    plain = b"".join(concatenated(b.frames).to_pybytes() for b in batches)
    assert plain == frame_records(records)


def test_frame_batches_check_crcs(tmp_path):
    records = random_records(12, 3000)
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(frame_records(records))
    offset = len(frame_records(records[:2500]))
    corrupt(path, offset + 14)  # data of record 2500
    with pytest.raises(SourceError, match=rf"bad\.tfrecord: record 2500 \(byte offset {offset}\): data CRC"):
        list(read_frame_batches(path, batch_size=1000))
    path.write_bytes(frame_records(records))
    corrupt(path, offset + 3)  # length of record 2500
    with pytest.raises(SourceError, match=rf"record 2500 \(byte offset {offset}\): length CRC"):
        list(read_frame_batches(path, batch_size=1000))


def test_plain_file_whose_first_bytes_look_like_gzip(tmp_path):
    # a first record of 0x8b1f bytes begins the file with the gzip magic 1f 8b
    records = [b"q" * 0x8B1F, b"second"]
    path = tmp_path / "looks_gzip.tfrecord"
    path.write_bytes(frame_records(records))
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert list(iter_records(path)) == records


def test_empty_files_have_no_records(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert list(iter_records(tmp_path / "empty")) == []
    (tmp_path / "empty.gz").write_bytes(gzip.compress(b""))
    assert list(iter_records(tmp_path / "empty.gz")) == []


def corrupt(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_bad_data_crc_names_file_record_and_offset(tmp_path):
    records = [b"a" * 10, b"b" * 20, b"c" * 30, b"d" * 5]
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(frame_records(records))
    record2 = 16 + 10 + 16 + 20  # frame overhead is 16 bytes
    corrupt(path, record2 + 12 + 3)  # a byte of record 2's data
    with pytest.raises(SourceError, match=rf"bad\.tfrecord: record 2 \(byte offset {record2}\): data CRC"):
        list(iter_records(path))
    # TF agrees the file is corrupt
    with pytest.raises(tf.errors.DataLossError):
        tf_read(path)


def test_bad_length_crc_names_record(tmp_path):
    records = [b"a" * 10, b"b" * 20, b"c" * 30]
    path = tmp_path / "badlen.tfrecord"
    path.write_bytes(frame_records(records))
    corrupt(path, 26 + 16 + 20)  # first byte of record 2's length
    with pytest.raises(SourceError, match=r"record 2 \(byte offset 62\): length CRC mismatch"):
        list(iter_records(path))


def test_not_a_tfrecord_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a TFRecord file at all\n")
    with pytest.raises(SourceError, match=r"notes\.txt: record 0 \(byte offset 0\)"):
        list(iter_records(path))


@pytest.mark.parametrize("cut", [5, 12 + 4])  # inside the header; inside the data
def test_truncated_plain_file(tmp_path, cut):
    records = [b"x" * 40, b"y" * 40]
    framed = frame_records(records)
    path = tmp_path / "cut.tfrecord"
    path.write_bytes(framed[:56 + cut])
    with pytest.raises(SourceError, match=r"cut\.tfrecord: record 1 \(byte offset 56\): truncated record"):
        list(iter_records(path))


def test_truncated_gzip_file(tmp_path):
    records = random_records(6, 2000)
    path = tmp_path / "cut.tfrecord.gz"
    whole = gzip_member(frame_records(records))
    path.write_bytes(whole[: len(whole) // 2])
    available = zlib.decompressobj(31).decompress(whole[: len(whole) // 2])
    complete = 0  # records wholly inside the part that survived
    while len(frame_records(records[:complete + 1])) <= len(available):
        complete += 1
    read = []
    pattern = r"cut\.tfrecord\.gz: record (\d+) .*gzip stream is truncated"
    with pytest.raises(SourceError, match=pattern) as err:
        for batch in read_record_batches(path, batch_size=10):
            read.extend(batch)
    assert read == records[:len(read)]
    failed_at = int(re.search(r"record (\d+)", str(err.value)).group(1))
    assert len(read) <= failed_at <= complete


def test_truncated_zlib_file(tmp_path):
    path = tmp_path / "cut.zlib"
    whole = zlib.compress(frame_records(random_records(7, 500)))
    path.write_bytes(whole[:-10])
    with pytest.raises(SourceError, match=r"cut\.zlib"):
        list(iter_records(path))


def test_reading_is_lazy(tmp_path):
    records = random_records(8, 30000)
    path = tmp_path / "lazy.tfrecord"
    path.write_bytes(frame_records(records))
    assert path.stat().st_size > 2 * _READ_CHUNK  # the corruption is chunks away
    corrupt(path, path.stat().st_size - 1)  # last record's data crc
    reader = read_record_batches(path, batch_size=100)
    assert next(reader) == records[:100]  # the corruption at the end is not reached yet
    with pytest.raises(SourceError, match="record 29999"):
        list(reader)


def test_writer_options(tmp_path):
    with pytest.raises(ValueError, match="compression"):
        open_writer(tmp_path / "x", compression="snappy")
    with pytest.raises(ValueError, match="level"):
        open_writer(tmp_path / "x", level=9)
