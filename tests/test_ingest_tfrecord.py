"""TFRecord import and re-split: TFX's split assignment, payload formats, corrupt input."""

import gzip
import os

import pytest

from examplegen.errors import ConfigError, SourceError
from examplegen.ingest import ingest, resplit
from tests import tfx_reference
from tests.helpers import read_split, read_tfrecords, shared


def _files(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder))


def test_resplit_reproduces_tfx_assignment_of_all_15000_examples(tmp_path):
    """TFX's own CsvExampleGen output, pooled and split again with the default config."""
    artifact = shared("csv_example_gen")
    result = resplit(artifact, str(tmp_path / "out"), input_splits=["train", "eval"],
                     output_config={"split_config": {"splits": [{"name": "train", "hash_buckets": 2},
                                                                {"name": "eval", "hash_buckets": 1}]}})
    assert result.counts == {"train": 9909, "eval": 5091}
    for split in ("train", "eval"):
        tfx = read_split(artifact, split)
        ours = read_split(str(tmp_path / "out"), split)
        assert sorted(ours) == sorted(tfx)


def test_import_keeps_records_and_splits_them_by_their_bytes(tmp_path):
    source = shared("external", "tfrecord")
    records = read_tfrecords(_files(source))
    result = ingest(source, str(tmp_path / "out"), source_format="tfrecord")
    expected = {"train": [], "eval": []}
    for record in records:
        expected[("train", "eval")[tfx_reference.partition(record, [2, 3])]].append(record)
    for split in ("train", "eval"):
        assert read_split(str(tmp_path / "out"), split) == expected[split]  # input order kept
    assert result.counts == {k: len(v) for k, v in expected.items()}
    assert result.payload_format == "FORMAT_TF_EXAMPLE"


def test_sequence_example_import(tmp_path):
    source = shared("external", "tfrecord_sequence")
    records = read_tfrecords(_files(source))
    result = ingest(source, str(tmp_path / "out"), source_format="tfrecord",
                    payload_format="FORMAT_TF_SEQUENCE_EXAMPLE",
                    output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}})
    assert read_split(str(tmp_path / "out"), "all") == records
    assert result.payload_format == "FORMAT_TF_SEQUENCE_EXAMPLE"
    import json

    md = json.load(open(tmp_path / "out" / "examples_metadata.json"))
    assert md["payload_format"] == "FORMAT_TF_SEQUENCE_EXAMPLE"


def _write_tfrecord(path, records, compress=True):
    from examplegen.tfrecord import frame_records

    data = frame_records(records)
    path.write_bytes(gzip.compress(data) if compress else data)


def test_uncompressed_input_is_detected_from_the_bytes(tmp_path):
    source = shared("external", "tfrecord")
    records = read_tfrecords(_files(source))[:50]
    data = tmp_path / "in"
    data.mkdir()
    _write_tfrecord(data / "plain.gz", records, compress=False)  # misleading extension
    ingest(str(data), str(tmp_path / "out"), source_format="tfrecord", record_lineage=False,
           output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}})
    assert read_split(str(tmp_path / "out"), "all") == records


def test_corrupt_crc_names_file_and_record(tmp_path):
    records = read_tfrecords(_files(shared("external", "tfrecord")))[:20]
    data = tmp_path / "in"
    data.mkdir()
    from examplegen.tfrecord import frame_records

    raw = bytearray(frame_records(records))
    offset = sum(16 + len(r) for r in records[:7])
    raw[offset + 12 + 5] ^= 0xFF  # a data byte of record 7
    (data / "bad.tfrecord").write_bytes(bytes(raw))
    with pytest.raises(SourceError, match=r"bad\.tfrecord.*record 7"):
        ingest(str(data), str(tmp_path / "out"), source_format="tfrecord", record_lineage=False)
    assert not (tmp_path / "out" / "examples_metadata.json").exists()


def test_truncated_file_names_file_and_record(tmp_path):
    records = read_tfrecords(_files(shared("external", "tfrecord")))[:10]
    data = tmp_path / "in"
    data.mkdir()
    from examplegen.tfrecord import frame_records

    raw = frame_records(records)
    (data / "cut.gz").write_bytes(gzip.compress(raw[:-40]))
    with pytest.raises(SourceError, match=r"cut\.gz.*record 9"):
        ingest(str(data), str(tmp_path / "out"), source_format="tfrecord", record_lineage=False)


def test_records_that_are_not_examples_are_rejected_with_index(tmp_path):
    records = read_tfrecords(_files(shared("external", "tfrecord")))[:1500]
    records[1200] = b"this is a line of text, not a tf.Example"
    data = tmp_path / "in"
    data.mkdir()
    _write_tfrecord(data / "mixed.gz", records)
    with pytest.raises(SourceError, match=r"mixed\.gz: record 1200: not a serialized tf\.train\.Example"):
        ingest(str(data), str(tmp_path / "out"), source_format="tfrecord", record_lineage=False)
    # FORMAT_PROTO has no schema to check against: the records pass through untouched
    result = ingest(str(data), str(tmp_path / "out"), source_format="tfrecord", payload_format="FORMAT_PROTO",
                    record_lineage=False, output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}})
    assert read_split(str(tmp_path / "out"), "all") == records
    assert result.payload_format == "FORMAT_PROTO"


def test_structure_check_accepts_every_real_example():
    import pyarrow as pa

    from examplegen.payload import structure_ok

    records = read_tfrecords(_files(shared("external", "tfrecord")))
    assert structure_ok(pa.array(records, pa.binary()), (0x0A,)).all()
    seq = read_tfrecords(_files(shared("external", "tfrecord_sequence")))
    assert structure_ok(pa.array(seq, pa.binary()), (0x0A, 0x12)).all()
    broken = [records[0][:-1], records[0] + b"\x00", b"\x0a\x05abc", b"\x12\x00", records[0][:1]]
    assert not structure_ok(pa.array(broken, pa.binary()), (0x0A,)).any()
    assert structure_ok(pa.array([b""], pa.binary()), (0x0A,)).all()  # an empty Example
    # the same check over whole TFRecord frames (header and footer skipped), as imports run it
    from examplegen.tfrecord import frame_column

    mixed = records[:3] + broken + [b""]
    expected = [True] * 3 + [False] * len(broken) + [True]
    assert structure_ok(frame_column(mixed), (0x0A,), framed=True).tolist() == expected
    assert structure_ok(frame_column(mixed).cast(pa.large_binary()), (0x0A,), framed=True).tolist() == expected


def test_partition_and_value_split_on_imported_examples(tmp_path):
    source = shared("external", "tfrecord")
    config = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 1}],
                               "partition_feature_name": "payment_type"}}
    ingest(source, str(tmp_path / "p"), source_format="tfrecord", output_config=config, record_lineage=False)
    import tensorflow as tf

    seen = {"a": set(), "b": set()}
    for split in ("a", "b"):
        for record in read_split(str(tmp_path / "p"), split):
            feature = tf.train.Example.FromString(record).features.feature["payment_type"]
            assert ("a", "b")[tfx_reference.partition(feature.SerializeToString(deterministic=True), [1, 2])] == split
            seen[split].add(feature.bytes_list.value[0])
    assert not seen["a"] & seen["b"]
    value = {"split_config": {"splits": [{"name": "early"}, {"name": "late"}],
                              "value_split": {"feature_name": "trip_start_hour", "boundaries": [12]}}}
    result = ingest(source, str(tmp_path / "v"), source_format="tfrecord", output_config=value, record_lineage=False)
    hours = [tf.train.Example.FromString(r).features.feature["trip_start_hour"].int64_list.value[0]
             for r in read_split(str(tmp_path / "v"), "late")]
    assert hours and min(hours) >= 12 and result.counts["late"] == len(hours)


def test_resplit_errors(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        resplit(str(tmp_path / "nope"), str(tmp_path / "o"), output_config={"split_config": {"splits": [
            {"name": "a", "hash_buckets": 1}]}})
    with pytest.raises(SourceError, match=r"has no split\(s\) \['test'\]"):
        resplit(shared("csv_example_gen"), str(tmp_path / "o"), input_splits=["test"],
                output_config={"split_config": {"splits": [{"name": "a", "hash_buckets": 1}]}})
    with pytest.raises(ConfigError, match="resplit needs output splits"):
        resplit(shared("csv_example_gen"), str(tmp_path / "o"), output_config={})
