"""Throughput and peak memory of `examplegen ingest --format sql` from PostgreSQL.

Creates a database `examplegen_bench` on the local PostgreSQL (127.0.0.1:5432, user
postgres) with a table of N taxi-like rows (10 columns: bigint, timestamptz, numeric(8,2),
double, real, text, a NULL-heavy text, a nullable int, ...; primary key id, vacuumed), then runs, each as a fresh
process, `examplegen ingest --format sql` of `SELECT * FROM trips` into split Examples
(train 2 / eval 1) with lineage off:

- one unit: the whole query read by one connectorx stream, converted in one process;
- partitioned: ``partition_on id``, 4 partitions, 2 worker processes;
- partitioned, ``digest: false``: the same without the result digest (its cost).

Figures as in run_bench.py: wall time of the whole command, peak RSS of the process tree.
Then the digest alone: µs per row of ResultDigest.update over the table's Arrow batches.

    python bench/query_bench.py                  # 1M rows, each variant once
    python bench/query_bench.py --rows 100000 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from run_bench import EXAMPLEGEN, run  # noqa: E402

DATABASE = "examplegen_bench"
URL = f"postgresql://postgres@127.0.0.1:5432/{DATABASE}"
TABLE = """CREATE TABLE trips AS SELECT
    g::bigint AS id,
    timestamptz '2015-01-01 00:00:00+00' + (g * interval '37 seconds') AS pickup,
    round((g % 9973) / 100.0, 2)::numeric(8,2) AS fare,
    ((g * 7) % 1000) / 100.0::double precision AS tips,
    ((g % 313) / 10.0)::real AS trip_miles,
    (ARRAY['Cash', 'Credit Card', 'No Charge', 'Dispute'])[1 + g % 4] AS payment_type,
    CASE WHEN g % 10 = 0 THEN 'Company ' || (g % 97) END AS company,
    CASE WHEN g % 7 <> 0 THEN (g % 77)::int END AS pickup_community_area,
    41.8 + (g % 1000) / 10000.0::double precision AS dropoff_latitude,
    (g % 3600)::int AS trip_seconds
FROM generate_series(1, {rows}) AS g"""


def _connect(database: str):
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)
    conn.autocommit = True
    return conn


def create(rows: int) -> None:
    conn = _connect("postgres")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE}")
    conn.close()
    conn = _connect(DATABASE)
    with conn.cursor() as cur:
        cur.execute(TABLE.format(rows=int(rows)))
        # As a table in use is: an index on the partition column (each partition is a range
        # query on it) and hint bits set (the first scan of a fresh table writes every page).
        cur.execute("ALTER TABLE trips ADD PRIMARY KEY (id)")
        cur.execute("VACUUM (FREEZE, ANALYZE) trips")
    conn.close()


def drop() -> None:
    conn = _connect("postgres")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    conn.close()


def digest_cost() -> tuple[float, int]:
    """(µs per row of ResultDigest.update, rows) over the table read as the source reads it."""
    import connectorx

    from examplegen.sources.query import ResultDigest, normalise_batch

    batches = [normalise_batch(b) for b in connectorx.read_sql(URL, "SELECT * FROM trips",
                                                               return_type="arrow_stream", batch_size=65536)]
    digest = ResultDigest()
    start = time.process_time()
    for batch in batches:
        digest.update(batch)
    return (time.process_time() - start) / max(digest.rows, 1) * 1e6, digest.rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", default="/tmp/examplegen-query-bench")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    print(f"creating {args.rows:,} rows in {URL} ...", flush=True)
    create(args.rows)
    config = json.dumps({"splits": [{"name": "single_split", "pattern": "SELECT * FROM trips"}]})
    variants = [
        ("one unit", {}, 1),
        ("partition_on id, 4 parts", {"partition_on": "id", "partition_num": 4}, 2),
        ("partitioned, digest off", {"partition_on": "id", "partition_num": 4, "digest": False}, 2),
    ]
    results = []
    try:
        for name, options, workers in variants:
            out = os.path.join(args.work, name.split(",")[0].replace(" ", "_"))
            cmd = [*EXAMPLEGEN, "ingest", "--format", "sql", "--connection", URL, "--input-config", config,
                   "--source-options", json.dumps(options), "--workers", str(workers), "--output", out,
                   "--no-lineage"]
            seconds, peak = run(cmd)
            results.append((name, seconds, peak))
            print(f"{name:28s} {seconds:6.2f} s  {args.rows / seconds:10,.0f} rows/s  "
                  f"peak RSS {peak / 2**20:,.0f} MiB", flush=True)
        per_row, rows = digest_cost()
        print(f"result digest alone: {per_row:.2f} µs/row ({rows:,} rows, one core)")
    finally:
        if not args.keep:
            drop()


if __name__ == "__main__":
    main()
