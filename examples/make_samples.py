"""Regenerate the Parquet, Avro and JSON Lines samples from the taxi CSV sample.

    python examples/make_samples.py

Each holds the first ROWS rows of examples/data/taxi/data.csv, typed as pyarrow's CSV
reader infers them (int64, double, string; an empty cell is null):
examples/data/taxi_parquet/data.parquet (row groups of 500 rows),
examples/data/taxi_avro/data.avro (``null|T`` unions, deflate) and
examples/data/taxi_jsonl/data.jsonl.gz. Each file is under 100 kB.
"""

from __future__ import annotations

import gzip
import json
import os

import fastavro
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROWS = 2000
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
_AVRO_TYPES = {pa.int64(): "long", pa.float64(): "double", pa.string(): "string"}


def main() -> None:
    table = pacsv.read_csv(os.path.join(DATA, "taxi", "data.csv")).slice(0, ROWS)
    for name in ("taxi_parquet", "taxi_avro", "taxi_jsonl"):
        os.makedirs(os.path.join(DATA, name), exist_ok=True)
    pq.write_table(table, os.path.join(DATA, "taxi_parquet", "data.parquet"), row_group_size=500)
    schema = {"type": "record", "name": "TaxiTrip", "fields": [
        {"name": f.name, "type": "null" if pa.types.is_null(f.type) else ["null", _AVRO_TYPES[f.type]]}
        for f in table.schema]}
    rows = table.to_pylist()
    with open(os.path.join(DATA, "taxi_avro", "data.avro"), "wb") as f:
        fastavro.writer(f, fastavro.parse_schema(schema), rows, codec="deflate")
    with gzip.open(os.path.join(DATA, "taxi_jsonl", "data.jsonl.gz"), "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    for name in ("taxi_parquet", "taxi_avro", "taxi_jsonl"):
        for file in os.listdir(os.path.join(DATA, name)):
            path = os.path.join(DATA, name, file)
            print(f"{path}: {os.path.getsize(path):,} bytes")


if __name__ == "__main__":
    main()
