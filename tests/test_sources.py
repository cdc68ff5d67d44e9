"""What every typed source shares: a file of another format is named, options are checked."""

from __future__ import annotations

import os

import pytest

from examplegen.errors import ConfigError, SourceError
from examplegen.ingest import ingest


@pytest.mark.parametrize("fmt,message", [("parquet", "not a readable Parquet file"),
                                         ("avro", "not a readable Avro file"),
                                         ("jsonl", "line 1: not valid JSON")])
def test_a_file_of_another_format_is_named(tmp_path, fmt, message):
    os.makedirs(tmp_path / "in")
    (tmp_path / "in" / f"a.{fmt}").write_text("hello, world\n")
    with pytest.raises(SourceError, match=rf"a.{fmt}: {message}"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format=fmt, record_lineage=False)
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("fmt", ["parquet", "avro", "jsonl"])
@pytest.mark.parametrize("options,message", [
    ({"batch_rows": 0}, "option batch_rows must be a positive integer"),
    ({"columns": []}, "option columns: expected a non-empty list"),
    ({"schema": {"a": "decimal"}}, "schema: column 'a' has type 'decimal'; use one of int"),
    ({"schema": "a"}, "option schema: expected 'column:type,...'"),
    ({"delimiter": ";"}, "option 'delimiter' is unknown"),
])
def test_options_are_checked_before_reading(tmp_path, fmt, options, message):
    with pytest.raises(ConfigError, match=rf"{fmt} {message}"):
        ingest(str(tmp_path / "nothing"), str(tmp_path / "out"), source_format=fmt, source_options=options,
               record_lineage=False)


def _write_rows(path, fmt, rows):
    import json

    import fastavro
    import pyarrow as pa
    import pyarrow.parquet as pq

    if fmt == "parquet":
        pq.write_table(pa.table({"a": pa.array(rows, pa.int64())}), path)
    elif fmt == "avro":
        with open(path, "wb") as f:
            fastavro.writer(f, fastavro.parse_schema({"type": "record", "name": "R", "fields": [
                {"name": "a", "type": "long"}]}), [{"a": v} for v in rows])
    else:
        with open(path, "w") as f:
            f.write("".join(json.dumps({"a": v}) + "\n" for v in rows) or "\n")


@pytest.mark.parametrize("fmt", ["parquet", "avro", "jsonl"])
def test_files_without_rows_are_left_out_and_a_split_of_them_is_an_error(tmp_path, fmt):
    os.makedirs(tmp_path / "in")
    _write_rows(str(tmp_path / "in" / f"a.{fmt}"), fmt, [])
    with pytest.raises(SourceError, match=rf"input split 'single_split': no rows in .*a.{fmt}"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format=fmt, record_lineage=False)
    _write_rows(str(tmp_path / "in" / f"b.{fmt}"), fmt, [1, 2])
    result = ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format=fmt, record_lineage=False)
    assert result.rows_read == 2
    assert result.config["files_without_rows"] == {"single_split": [str(tmp_path / "in" / f"a.{fmt}")]}
