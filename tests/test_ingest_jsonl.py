"""JSON Lines ingestion: types over the split, nesting, gzip, ranges, errors naming lines."""

from __future__ import annotations

import gzip
import json
import os

import pyarrow.parquet as pq
import pytest

from examplegen import ingest as ingest_module
from examplegen.errors import SourceError
from examplegen.ingest import ingest
from tests.helpers import canonical, example_values, expected_values, read_split, shared

ONE_SPLIT = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}


def _write(path, lines, compress=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


def test_taxi_rows_as_json_lines_plain_and_gzip_in_ranges(tmp_path, monkeypatch):
    rows = pq.read_table(shared("external", "parquet", "data.parquet")).to_pylist()[:3000]
    lines = [json.dumps(row) for row in rows]
    _write(str(tmp_path / "in" / "a.jsonl"), lines[:2000])
    _write(str(tmp_path / "in" / "b.jsonl.gz"), lines[2000:], compress=True)
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 50_000)  # a.jsonl in several ranges
    result = ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", record_lineage=False,
                    output_config=ONE_SPLIT)
    assert result.rows_read == 3000
    # Read independently: every line with json; a field is float when any line has a fraction.
    parsed = [json.loads(line) for line in lines]
    kinds = {}
    for row in parsed:
        for name, value in row.items():
            if isinstance(value, str):
                kinds[name] = "bytes_list"
            elif isinstance(value, float):
                kinds[name] = "float_list"
            elif isinstance(value, int) and kinds.get(name) != "float_list":
                kinds[name] = "int64_list"
    kinds = {name: kinds.get(name, "float_list") for name in parsed[0]}
    kinds["pickup_census_tract"] = None  # null on every line: an empty Feature()
    got = sorted(canonical(example_values(r)) for r in read_split(str(tmp_path / "out"), "all"))
    assert got == sorted(canonical(expected_values(row, kinds)) for row in parsed)


def test_nested_objects_and_types_over_the_split(tmp_path):
    _write(str(tmp_path / "in" / "a.jsonl"), ['{"n": 1, "o": {"x": [1, 2], "y": "2020-01-01"}}', "",
                                              '{"n": 0, "o": null, "flag": false}'])
    _write(str(tmp_path / "in" / "b.jsonl"), ['{"n": 2.5, "extra": ""}'])
    _write(str(tmp_path / "in" / "c.jsonl"), [""])  # blank: no rows, no error
    ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", record_lineage=False,
           output_config=ONE_SPLIT)
    got = sorted((example_values(r) for r in read_split(str(tmp_path / "out"), "all")), key=lambda e: e["n"])
    assert got[0] == {"n": ("float_list", (0.0,)), "o.x": ("int64_list", ()), "o.y": ("bytes_list", ()),
                      "flag": ("int64_list", (0,)), "extra": ("bytes_list", ())}
    assert got[1]["o.x"] == ("int64_list", (1, 2)) and got[1]["o.y"] == ("bytes_list", (b"2020-01-01",))
    assert got[2]["n"] == ("float_list", (2.5,)) and got[2]["extra"] == ("bytes_list", (b"",))


def test_bad_line_is_named(tmp_path):
    _write(str(tmp_path / "in" / "a.jsonl"), ['{"a": 1}', "", '{"a": 2', '{"a": 3}'])
    with pytest.raises(SourceError, match=r"a.jsonl: line 3: not valid JSON"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", record_lineage=False)


def test_field_changing_type_is_named(tmp_path):
    _write(str(tmp_path / "in" / "a.jsonl"), ['{"a": 1}', '{"a": 2}', '{"a": "x"}'])
    with pytest.raises(SourceError, match=r"a.jsonl: line 3: field 'a' is text here but a number on line 1"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", record_lineage=False)


def test_not_an_object_is_named(tmp_path):
    _write(str(tmp_path / "in" / "a.jsonl"), ['{"a": 1}', "[1, 2]"])
    with pytest.raises(SourceError, match=r"a.jsonl: line 2: expected a JSON object, got list"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", record_lineage=False)


def test_files_with_conflicting_types_name_both(tmp_path):
    _write(str(tmp_path / "in" / "a.jsonl"), ['{"a": 1}'])
    _write(str(tmp_path / "in" / "b.jsonl"), ['{"a": "x"}'])
    with pytest.raises(SourceError, match=r"a.jsonl \(first\) and .*b.jsonl \(second\): column 'a' is int64 in "
                                          r"the first, string in the second"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", record_lineage=False)


def test_types_are_inferred_over_every_block_of_a_file(tmp_path, monkeypatch):
    lines = [json.dumps({"v": i, "pad": "x" * 40}) for i in range(300)] + [json.dumps({"v": 0.5, "pad": ""})]
    _write(str(tmp_path / "in" / "a.jsonl"), lines)
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 2000)  # the fraction is in the last block only
    ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", record_lineage=False,
           output_config=ONE_SPLIT)
    values = sorted(example_values(r)["v"] for r in read_split(str(tmp_path / "out"), "all"))
    assert values[0] == ("float_list", (0.0,)) and ("float_list", (0.5,)) in values
    lines.append(json.dumps({"v": "text"}))
    _write(str(tmp_path / "in" / "a.jsonl"), lines)
    with pytest.raises(SourceError, match=r"a.jsonl: line 302: field 'v' is text here but a number on line \d+"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out2"), source_format="jsonl", record_lineage=False)


def test_override_error_names_the_line_in_a_later_range(tmp_path, monkeypatch):
    lines = [json.dumps({"id": str(i), "pad": "x" * 50}) for i in range(400)]
    lines[300] = json.dumps({"id": "oops", "pad": ""})
    lines.insert(10, "")  # a blank line before: line numbers count it
    _write(str(tmp_path / "in" / "a.jsonl"), lines)
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 5000)
    with pytest.raises(SourceError, match=r"a.jsonl: line 302: column 'id': value 'oops' is not an integer"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", record_lineage=False,
               source_options={"schema": {"id": "int"}})


def test_columns_keeps_only_those_fields(tmp_path):
    _write(str(tmp_path / "in" / "a.jsonl"), ['{"a": 1, "b": "x", "c": {"d": 2}}', '{"a": 2, "c": null}'])
    ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", record_lineage=False,
           output_config=ONE_SPLIT, source_options={"columns": ["c", "a"]})
    got = sorted((example_values(r) for r in read_split(str(tmp_path / "out"), "all")), key=lambda e: e["a"])
    assert got == [{"a": ("int64_list", (1,)), "c.d": ("int64_list", (2,))},
                   {"a": ("int64_list", (2,)), "c.d": ("int64_list", ())}]
