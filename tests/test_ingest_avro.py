"""Avro ingestion: TFX's own taxi Avro, logical types, unions, block work units, errors."""

from __future__ import annotations

import datetime
import decimal
import os
import uuid

import fastavro
import pytest

from examplegen import ingest as ingest_module
from examplegen.errors import SourceError
from examplegen.ingest import ingest
from examplegen.sources import avro as avro_source
from tests.helpers import check_tfx_compatible, example_values, read_split, shared

TAXI = shared("external", "avro")
ONE_SPLIT = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}


def _records(path):
    with open(path, "rb") as f:
        return list(fastavro.reader(f))


def test_tfx_taxi_avro_matches_tfx_where_tfx_writes_values(tmp_path):
    path = os.path.join(TAXI, "data.avro")
    rows = _records(path)
    with open(path, "rb") as f:
        schema = fastavro.reader(f).writer_schema
    kind = {"float": "float_list", "double": "float_list", "int": "int64_list", "long": "int64_list",
            "string": "bytes_list"}
    kinds = {f["name"]: kind[[t for t in f["type"] if t != "null"][0]] for f in schema["fields"]}
    result = ingest(TAXI, str(tmp_path / "out"), source_format="avro", record_lineage=False)
    assert result.rows_read == len(rows) == 10000
    check_tfx_compatible(str(tmp_path / "out"), rows, kinds, null_free=False)
    # pickup_census_tract is null in every record: without it, most records have no null,
    # and those must be TFX's bytes, in TFX's split.
    columns = [name for name in kinds if name != "pickup_census_tract"]
    ingest(TAXI, str(tmp_path / "projected"), source_format="avro", record_lineage=False,
           source_options={"columns": columns})
    check_tfx_compatible(str(tmp_path / "projected"), [{c: row[c] for c in columns} for row in rows],
                         {c: kinds[c] for c in columns})


SCHEMA = {
    "type": "record", "name": "Trip", "namespace": "t", "fields": [
        {"name": "id", "type": "long"},
        {"name": "ok", "type": "boolean"},
        {"name": "tip", "type": ["null", "float"]},
        {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "key", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "raw", "type": {"type": "fixed", "name": "Two", "size": 2}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "num", "type": ["null", "int", "double"]},
        {"name": "place", "type": {"type": "record", "name": "Place", "fields": [
            {"name": "lat", "type": "double"}, {"name": "kind", "type": "Kind"}]}},
    ]}


def _write(path, records, schema=SCHEMA, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        fastavro.writer(f, fastavro.parse_schema(schema), records, **kw)


def _record(i):
    return {"id": i, "ok": i % 2 == 0, "tip": None if i % 3 == 0 else i / 4, "amount": decimal.Decimal(f"{i}.05"),
            "day": datetime.date(2024, 1, 1) + datetime.timedelta(days=i),
            "at": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=i),
            "key": str(uuid.UUID(int=i)), "kind": "AB"[i % 2], "raw": bytes([i % 256, 255]),
            "tags": ["x"] * (i % 3), "attrs": {"n": i}, "num": [None, i, i + 0.5][i % 3],
            "place": {"lat": 41.5, "kind": "B"}}


def test_logical_types_unions_and_nesting(tmp_path):
    _write(str(tmp_path / "in" / "a.avro"), [_record(i) for i in range(3)])
    ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="avro", record_lineage=False,
           output_config=ONE_SPLIT, source_options={"schema": {"amount": "string"}})
    got = sorted((example_values(r) for r in read_split(str(tmp_path / "out"), "all")),
                 key=lambda e: e["id"][1])
    epoch_us = 1704067200 * 1_000_000
    assert got[1] == {
        "id": ("int64_list", (1,)), "ok": ("int64_list", (0,)), "tip": ("float_list", (0.25,)),
        "amount": ("bytes_list", (b"1.05",)), "day": ("int64_list", (19724,)),
        "at": ("int64_list", (epoch_us + 1_000_000,)), "key": ("bytes_list", (str(uuid.UUID(int=1)).encode(),)),
        "kind": ("bytes_list", (b"B",)), "raw": ("bytes_list", (bytes([1, 255]),)),
        "tags": ("bytes_list", (b"x",)), "attrs.key": ("bytes_list", (b"n",)), "attrs.value": ("int64_list", (1,)),
        "num": ("float_list", (1.0,)), "place.lat": ("float_list", (41.5,)), "place.kind": ("bytes_list", (b"B",)),
    }
    assert got[0]["tip"] == ("float_list", ()) and got[0]["num"] == ("float_list", ())  # nulls: empty lists
    assert got[0]["ok"] == ("int64_list", (1,)) and got[0]["tags"] == ("bytes_list", ())


def test_block_units_give_the_same_examples(tmp_path, monkeypatch):
    records = [_record(i) for i in range(3000)]
    _write(str(tmp_path / "in" / "a.avro"), records, sync_interval=2000)
    whole = ingest(str(tmp_path / "in"), str(tmp_path / "whole"), source_format="avro", record_lineage=False)
    plan = avro_source.plan("s", [str(tmp_path / "in" / "a.avro")], avro_source.Options.from_dict(None), 20_000)
    units = list(plan.units)
    assert len(units) > 3
    assert [u.first_record for u in units][0] == 0 and units[-1].end == -1
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 20_000)
    blocks = ingest(str(tmp_path / "in"), str(tmp_path / "blocks"), source_format="avro", record_lineage=False)
    assert blocks.counts == whole.counts and sum(blocks.counts.values()) == 3000
    for split in ("train", "eval"):
        assert read_split(str(tmp_path / "blocks"), split) == read_split(str(tmp_path / "whole"), split)


def test_work_bytes_are_decoded_rows_not_the_compressed_file(tmp_path):
    # A deflate file of repetitive records is far smaller than its rows: the work (worker
    # and shard counts, unit sizes, progress) is counted in decoded rows, as for Parquet.
    from examplegen.sources.base import row_bytes

    path = str(tmp_path / "in" / "a.avro")
    _write(path, [_record(i % 7) for i in range(20_000)], codec="deflate", sync_interval=4000)
    options = avro_source.Options.from_dict(None)
    schema, _, _ = avro_source._header(path, options)
    work = avro_source.work_bytes(path, options)
    assert work == 20_000 * row_bytes(schema) > 10 * os.path.getsize(path)
    units = list(avro_source.plan("s", [path], options, work // 4).units)
    assert 4 <= len(units) <= 5 and sum(u.size for u in units) == work
    with open(path, "rb") as f:  # the units' first records are the blocks' own record numbers
        counts = [block.num_records for block in fastavro.block_reader(f)]
    assert {u.first_record for u in units} <= {sum(counts[:i]) for i in range(len(counts))}
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) - 100])  # a block cut short
    with pytest.raises(SourceError, match=r"a.avro: a block cannot be read: the block at byte \d+ claims"):
        avro_source.plan("s", [path], options, 1 << 20)


def test_union_of_unrelated_types_names_field(tmp_path):
    schema = {"type": "record", "name": "R", "fields": [{"name": "v", "type": ["null", "int", "string"]}]}
    _write(str(tmp_path / "in" / "a.avro"), [{"v": 1}], schema)
    with pytest.raises(SourceError, match=r"a.avro: Avro field 'v': is a union of \['int', 'string'\]"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="avro", record_lineage=False)


def test_different_schemas_name_both_files(tmp_path):
    _write(str(tmp_path / "in" / "a.avro"), [_record(0)])
    other = dict(SCHEMA, fields=SCHEMA["fields"][:2])
    _write(str(tmp_path / "in" / "b.avro"), [{"id": 1, "ok": True}], other)
    with pytest.raises(SourceError, match=r"a.avro \(first\) and .*b.avro \(second\): only the first has "
                                          r"\['tip', 'amount'"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="avro", record_lineage=False)


def test_corrupt_block_names_file_and_record(tmp_path):
    path = str(tmp_path / "in" / "a.avro")
    _write(path, [_record(i) for i in range(500)], sync_interval=1000)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2: len(data) // 2 + 40] = b"\xff" * 40
    open(path, "wb").write(bytes(data))
    with pytest.raises(SourceError, match=r"a.avro: record \d+: the Avro data cannot be read"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="avro", record_lineage=False)
    assert not os.path.exists(tmp_path / "out")
