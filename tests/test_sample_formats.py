"""The bundled Parquet, Avro and JSON Lines samples (the same 2,000 taxi rows) ingest to the
same examples in the same splits, and those are the rows read independently with pyarrow."""

from __future__ import annotations

import os

import pyarrow.parquet as pq
import pytest

from examplegen.ingest import ingest
from tests.helpers import REPO, check_tfx_compatible, read_split

DATA = os.path.join(REPO, "examples", "data")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    for fmt in ("parquet", "avro", "jsonl"):
        result = ingest(os.path.join(DATA, f"taxi_{fmt}"), str(out / fmt), source_format=fmt, record_lineage=False)
        assert result.rows_read == 2000
    return out


@pytest.mark.parametrize("fmt", ["avro", "jsonl"])
def test_every_sample_gives_the_parquet_samples_examples(artifacts, fmt):
    for split in ("train", "eval"):
        assert read_split(str(artifacts / fmt), split) == read_split(str(artifacts / "parquet"), split)


def test_parquet_sample_is_its_rows(artifacts):
    table = pq.read_table(os.path.join(DATA, "taxi_parquet", "data.parquet"))
    kind_of = {"int64": "int64_list", "double": "float_list", "string": "bytes_list", "null": None}
    kinds = {f.name: kind_of[str(f.type)] for f in table.schema}
    check_tfx_compatible(str(artifacts / "parquet"), table.to_pylist(), kinds, null_free=False)
