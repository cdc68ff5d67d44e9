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


def test_empty_tfrecord_files(tmp_path, caplog):
    records = read_tfrecords(_files(shared("external", "tfrecord")))[:30]
    data = tmp_path / "in"
    data.mkdir()
    (data / "empty.tfrecord").write_bytes(b"")
    _write_tfrecord(data / "empty.gz", [])
    with pytest.raises(SourceError) as info:
        ingest(str(data), str(tmp_path / "out"), source_format="tfrecord", record_lineage=False)
    assert "input split 'single_split': no records in" in str(info.value)
    assert str(data / "empty.tfrecord") in str(info.value) and str(data / "empty.gz") in str(info.value)
    # Beside a file with records they are skipped with a warning, and recorded.
    _write_tfrecord(data / "full.gz", records)
    result = ingest(str(data), str(tmp_path / "out"), source_format="tfrecord", record_lineage=False,
                    output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}})
    assert read_split(str(tmp_path / "out"), "all") == records
    assert result.config["files_without_rows"] == {"single_split": [str(data / "empty.gz"),
                                                                     str(data / "empty.tfrecord")]}
    assert f"{data / 'empty.gz'}: no records; skipped" in caplog.text


def test_resplit_reads_empty_shard_files_of_an_artifact(tmp_path):
    records = read_tfrecords(_files(shared("external", "tfrecord")))[:3]
    data = tmp_path / "in"
    data.mkdir()
    _write_tfrecord(data / "few.gz", records)
    one = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}
    ingest(str(data), str(tmp_path / "a"), source_format="tfrecord", record_lineage=False, num_shards=5,
           output_config=one)  # at least two of the five shards are empty
    result = resplit(str(tmp_path / "a"), str(tmp_path / "b"), output_config=one, record_lineage=False)
    assert result.counts == {"all": 3} and "files_without_rows" not in result.config


@pytest.mark.parametrize("mode", ["structure", "full"])
def test_sequence_examples_imported_as_examples_are_rejected(tmp_path, mode):
    source = shared("external", "tfrecord_sequence")
    with pytest.raises(SourceError) as info:
        ingest(source, str(tmp_path / "out"), source_format="tfrecord", verify_payload=mode,
               record_lineage=False)
    message = str(info.value)
    assert "data_tfrecord-00000-of-00001.gz: record 0: " in message
    assert "fields unknown to tf.train.Example" in message and "FORMAT_TF_SEQUENCE_EXAMPLE" in message
    # Declared correctly, the same file imports.
    ingest(source, str(tmp_path / "out"), source_format="tfrecord", verify_payload=mode,
           payload_format="FORMAT_TF_SEQUENCE_EXAMPLE", record_lineage=False)


def test_unknown_fields_inside_an_example_are_rejected_when_parsed(tmp_path):
    from examplegen import protos

    example = protos.Example.FromString(read_tfrecords(_files(shared("external", "tfrecord")))[0])
    feature = next(iter(example.features.feature))
    # field 9 of a Feature (varint) does not exist: a record of some other message type
    raw = example.SerializeToString()
    bad = protos.Example()
    bad.features.feature[feature].MergeFromString(b"\x48\x01")
    data = tmp_path / "in"
    data.mkdir()
    _write_tfrecord(data / "x.gz", [raw, bad.SerializeToString()])
    with pytest.raises(SourceError, match=r"x\.gz: record 1: .*fields unknown to tf\.train\.Example"):
        ingest(str(data), str(tmp_path / "out"), source_format="tfrecord", record_lineage=False)


@pytest.mark.parametrize("mode", ["structure", "full"])
def test_valid_but_non_canonical_examples_are_accepted(tmp_path, mode):
    def field(number, payload):  # a length-delimited field
        return bytes([number << 3 | 2, len(payload)]) + payload

    unpacked = b"\x08\x01\x08\x02"  # Int64List.value 1, 2 not packed: valid, not canonical
    entry = field(1, b"a") + field(2, field(3, unpacked))
    record = field(1, field(1, entry) + field(1, entry))  # and the map key "a" twice
    assert protos_example(record).features.feature["a"].int64_list.value == [1, 2]
    data = tmp_path / "in"
    data.mkdir()
    _write_tfrecord(data / "x.gz", [record])
    result = ingest(str(data), str(tmp_path / "out"), source_format="tfrecord", verify_payload=mode,
                    record_lineage=False)
    assert sum(result.counts.values()) == 1


def protos_example(record):
    from examplegen import protos

    return protos.Example.FromString(record)
