"""Parquet ingestion: TFX's own taxi Parquet, projection, row groups, schema checks."""

from __future__ import annotations

import datetime
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from examplegen import ingest as ingest_module
from examplegen.cli import main
from examplegen.errors import ConfigError, SourceError
from examplegen.ingest import ingest
from tests.helpers import check_tfx_compatible, example_values, read_split, shared

TAXI = shared("external", "parquet")


def _kinds(schema: pa.Schema) -> dict[str, str]:
    def kind(t):
        if pa.types.is_floating(t):
            return "float_list"
        if pa.types.is_integer(t):
            return "int64_list"
        return "bytes_list"

    return {f.name: kind(f.type) for f in schema}


def test_tfx_taxi_parquet_matches_tfx_where_tfx_writes_values(tmp_path):
    table = pq.read_table(os.path.join(TAXI, "data.parquet"))
    result = ingest(TAXI, str(tmp_path / "out"), source_format="parquet", record_lineage=False)
    assert result.rows_read == 10000 and sum(result.counts.values()) == 10000
    check_tfx_compatible(str(tmp_path / "out"), table.to_pylist(), _kinds(table.schema), null_free=False)
    # pickup_census_tract is null in every row: without it, 7,000+ rows have no null, and
    # those must be TFX's bytes, in TFX's split.
    columns = [c for c in table.column_names if c != "pickup_census_tract"]
    ingest(TAXI, str(tmp_path / "projected"), source_format="parquet", record_lineage=False,
           source_options={"columns": columns})
    check_tfx_compatible(str(tmp_path / "projected"), table.select(columns).to_pylist(),
                         _kinds(table.select(columns).schema))
    # Falsy values are kept: tips == 0 stays float_list [0.0].
    tips = [example_values(r)["tips"] for r in read_split(str(tmp_path / "out"), "train")]
    assert ("float_list", (0.0,)) in tips


def _write(path, table, **kw):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(table, path, **kw)


def test_row_group_units_convert_like_one_unit(tmp_path, monkeypatch):
    table = pa.table({"i": pa.array(range(5000)), "s": pa.array([str(i % 7) for i in range(5000)])})
    _write(str(tmp_path / "in" / "a.parquet"), table, row_group_size=500)
    one = ingest(str(tmp_path / "in"), str(tmp_path / "one"), source_format="parquet", record_lineage=False)
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 1)  # every row group its own unit
    from examplegen.sources import parquet

    plan = parquet.plan("s", [str(tmp_path / "in" / "a.parquet")], parquet.Options.from_dict(None), 1)
    assert [u.row_groups for u in plan.units] == [(i,) for i in range(10)]
    assert [u.first_row for u in plan.units] == list(range(0, 5000, 500))
    many = ingest(str(tmp_path / "in"), str(tmp_path / "many"), source_format="parquet", record_lineage=False,
                  workers=2)
    assert many.counts == one.counts
    for split in ("train", "eval"):
        assert read_split(str(tmp_path / "many"), split) == read_split(str(tmp_path / "one"), split)


def test_columns_projection(tmp_path):
    table = pa.table({"a": [1, 2], "b": ["x", "y"], "c": [0.5, 0.0]})
    _write(str(tmp_path / "in" / "a.parquet"), table)
    ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="parquet", record_lineage=False,
           source_options={"columns": ["c", "a"]},
           output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}})
    rows = [example_values(r) for r in read_split(str(tmp_path / "out"), "all")]
    assert sorted(map(sorted, (r.items() for r in rows))) == [
        [("a", ("int64_list", (1,))), ("c", ("float_list", (0.5,)))],
        [("a", ("int64_list", (2,))), ("c", ("float_list", (0.0,)))]]
    with pytest.raises(ConfigError, match=r"columns names \['nope'\] that .*a.parquet does not have"):
        ingest(str(tmp_path / "in"), str(tmp_path / "bad"), source_format="parquet", record_lineage=False,
               source_options={"columns": ["a", "nope"]})


def test_files_with_different_schemas_name_both_files(tmp_path):
    _write(str(tmp_path / "in" / "a.parquet"), pa.table({"a": [1], "b": ["x"]}))
    _write(str(tmp_path / "in" / "b.parquet"), pa.table({"a": [1.5], "c": ["x"]}))
    with pytest.raises(SourceError) as info:
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="parquet", record_lineage=False)
    message = str(info.value)
    assert "a.parquet (first)" in message and "b.parquet (second)" in message
    assert "only the first has ['b']" in message and "only the second has ['c']" in message
    assert "column 'a' is int64 in the first, double in the second" in message
    assert not os.path.exists(tmp_path / "out")


def test_files_with_columns_in_another_order_convert_alike(tmp_path):
    _write(str(tmp_path / "in" / "a.parquet"), pa.table({"a": [1], "b": ["x"]}))
    _write(str(tmp_path / "in" / "b.parquet"), pa.table({"b": ["y"], "a": [2]}))
    ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="parquet", record_lineage=False,
           output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}})
    assert [example_values(r) for r in read_split(str(tmp_path / "out"), "all")] == [
        {"a": ("int64_list", (1,)), "b": ("bytes_list", (b"x",))},
        {"a": ("int64_list", (2,)), "b": ("bytes_list", (b"y",))}]


def test_bad_value_names_file_row_and_column(tmp_path):
    values = [1] * 1500 + [2**63 + 5]
    _write(str(tmp_path / "in" / "a.parquet"), pa.table({"u": pa.array(values, pa.uint64())}), row_group_size=1000)
    with pytest.raises(SourceError, match=r"a.parquet: row 1500: column 'u': uint64 value 9223372036854775813"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="parquet", record_lineage=False)
    assert not os.path.exists(tmp_path / "out")



def test_nested_types_timestamps_and_value_split(tmp_path):
    utc = datetime.timezone.utc
    table = pa.table({
        "ts": pa.array([datetime.datetime(2024, 1, d, tzinfo=utc) for d in (1, 2, 3)], pa.timestamp("ms", tz="UTC")),
        "loc": pa.array([{"lat": 1.5, "tags": ["a"]}, {"lat": None, "tags": []}, None]),
    })
    _write(str(tmp_path / "in" / "a.parquet"), table)
    boundary = int(datetime.datetime(2024, 1, 2, tzinfo=utc).timestamp()) * 1_000_000
    result = ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="parquet", record_lineage=False,
                    output_config={"split_config": {"splits": [{"name": "old"}, {"name": "new"}],
                                                    "value_split": {"feature_name": "ts", "boundaries": [boundary]}}})
    assert result.counts == {"old": 1, "new": 2}
    (old,) = [example_values(r) for r in read_split(str(tmp_path / "out"), "old")]
    assert old == {"ts": ("int64_list", (boundary - 86400_000_000,)), "loc.lat": ("float_list", (1.5,)),
                   "loc.tags": ("bytes_list", (b"a",))}


def test_value_split_on_text_and_a_list_feature_refused(tmp_path):
    _write(str(tmp_path / "in" / "a.parquet"), pa.table({"k": ["a", "m", "z"], "l": [[1], [2], [3]]}))
    config = {"split_config": {"splits": [{"name": "low"}, {"name": "high"}],
                               "value_split": {"feature_name": "k", "boundaries": ["m"]}}}
    result = ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="parquet", record_lineage=False,
                    output_config=config)
    assert result.counts == {"low": 1, "high": 2}
    config["split_config"]["value_split"]["feature_name"] = "l"
    with pytest.raises(SourceError, match="value-split feature 'l' has a list of values per row"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out2"), source_format="parquet", record_lineage=False,
               output_config=config)


def test_cli_parquet_with_source_options(tmp_path, capsys):
    _write(str(tmp_path / "in" / "a.parquet"), pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}))
    code = main(["ingest", "--format", "parquet", "--input-base", str(tmp_path / "in"), "--output",
                 str(tmp_path / "out"), "--no-lineage", "--json", "--source-options", '{"columns": ["b"]}'])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["rows_read"] == 3
    names = {n for split in ("train", "eval") for r in read_split(str(tmp_path / "out"), split)
             for n in example_values(r)}
    assert names == {"b"}
    code = main(["ingest", "--format", "parquet", "--input-base", str(tmp_path / "in"), "--output",
                 str(tmp_path / "out2"), "--no-lineage", "--source-options", '{"colums": ["b"]}'])
    assert code == 1
    assert "parquet option 'colums' is unknown" in capsys.readouterr().err


def test_spans_fingerprint_and_reuse_work_for_parquet(tmp_path):
    for span, n in ((1, 3), (2, 5)):
        _write(str(tmp_path / "in" / f"span-{span}" / "a.parquet"), pa.table({"v": list(range(n))}))
    config = {"splits": [{"name": "all", "pattern": "span-{SPAN}/*.parquet"}]}
    first = ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="parquet", input_config=config,
                   source_options={"columns": ["v"]})
    assert (first.span, first.rows_read, first.cached) == (2, 5, False)
    again = ingest(str(tmp_path / "in"), str(tmp_path / "out2"), source_format="parquet", input_config=config,
                   source_options={"columns": ["v"]})
    assert again.cached and again.input_fingerprint == first.input_fingerprint
    other = ingest(str(tmp_path / "in"), str(tmp_path / "out3"), source_format="parquet", input_config=config,
                   source_options={"schema": {"v": "string"}})
    assert not other.cached  # other options, other conversion
    assert other.config["source_options"]["schema"] == {"v": "string"}


def test_partition_feature_keeps_a_key_in_one_split(tmp_path):
    from tests import tfx_reference

    keys = [f"k{i % 7}" for i in range(200)]
    _write(str(tmp_path / "in" / "a.parquet"), pa.table({"key": keys, "i": list(range(200))}))
    config = {"split_config": {"splits": [{"name": "train", "hash_buckets": 3}, {"name": "eval", "hash_buckets": 1}],
                               "partition_feature_name": "key"}}
    ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="parquet", record_lineage=False,
           output_config=config)
    import tensorflow as tf

    for index, split in enumerate(("train", "eval")):
        for record in read_split(str(tmp_path / "out"), split):
            feature = tf.train.Example.FromString(record).features.feature["key"]
            assert tfx_reference.partition(feature.SerializeToString(deterministic=True), [3, 4]) == index


def test_column_types_are_recorded_with_the_run(tmp_path):
    _write(str(tmp_path / "in" / "a.parquet"), pa.table({"a": [1], "s": [{"x": 1.5}]}))
    result = ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="parquet")
    assert result.config["column_types"] == {"single_split": {"a": "int64", "s": "struct<x: double>"}}
