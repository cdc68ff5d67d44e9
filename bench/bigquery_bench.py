"""Throughput of the BigQuery source against bqemulator (REST + gRPC Storage Read API).

Builds (once, cached) the emulator's own venv ``.venv-bq`` (tests/bq_emulator.py), starts
it on free loopback ports, creates a table of N taxi-like rows (8 columns: INT64,
TIMESTAMP, FLOAT64 x2, STRING x2 of which one NULL-heavy, a nullable INT64, DATE) with a
CREATE TABLE AS SELECT over GENERATE_ARRAY, then measures:

- Storage Read alone: the source's plan (the query run into a temporary table, a read
  session of ``--streams`` streams) and every stream read into Arrow batches in this
  process, one after the other, with the result digest (what a worker does before the
  conversion);
- end to end: ``examplegen ingest --format bigquery`` of the same query into split
  Examples (train 2 / eval 1), lineage off, as a fresh process (wall time of the whole
  command, peak RSS of its process tree, as in run_bench.py).

    python bench/bigquery_bench.py                  # 1M rows
    python bench/bigquery_bench.py --rows 200000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from run_bench import EXAMPLEGEN, run  # noqa: E402

TABLE = """CREATE TABLE `test.bench.trips` AS SELECT
  g AS id,
  TIMESTAMP_ADD(TIMESTAMP '2015-01-01 00:00:00+00', INTERVAL g * 37 SECOND) AS pickup,
  MOD(g, 9973) / 100.0 AS fare,
  MOD(g * 7, 1000) / 100.0 AS tips,
  CASE MOD(g, 4) WHEN 0 THEN 'Cash' WHEN 1 THEN 'Credit Card' WHEN 2 THEN 'No Charge' ELSE 'Dispute' END
    AS payment_type,
  IF(MOD(g, 10) = 0, CONCAT('Company ', CAST(MOD(g, 97) AS STRING)), NULL) AS company,
  IF(MOD(g, 7) <> 0, MOD(g, 77), NULL) AS pickup_community_area,
  DATE_ADD(DATE '2015-01-01', INTERVAL MOD(g, 3650) DAY) AS day
FROM UNNEST(GENERATE_ARRAY(1, {rows})) AS g"""


def read_alone(options: dict, streams: int) -> tuple[float, int]:
    """Seconds and rows of the source's plan plus every stream read (with the digest)."""
    from examplegen.sources import bigquery as source
    from examplegen.sources.query import ResolvedQuery

    opts = source.Options.from_dict(dict(options, max_streams=streams))
    query = ResolvedQuery("single_split", 0, "SELECT * FROM bench.trips", source.connection("bigquery://test"))
    start = time.perf_counter()
    plan = source.plan("single_split", [query], opts)
    rows = 0
    try:
        for unit in plan.units:
            for batch in source.read(unit, opts):
                rows += batch.num_rows
    finally:
        plan.close()
    return time.perf_counter() - start, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "examplegen-bigquery-bench"))
    args = parser.parse_args()
    from tests.bq_emulator import build_venv, start

    os.makedirs(args.work, exist_ok=True)
    started = time.perf_counter()
    bin_dir = build_venv()
    print(f"emulator venv ready in {time.perf_counter() - started:.0f} s", flush=True)
    emulator = start(bin_dir, args.work)
    try:
        client = emulator.client()
        client.create_dataset("bench", exists_ok=True)
        started = time.perf_counter()
        client.query(TABLE.format(rows=int(args.rows))).result()
        print(f"created {args.rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        options = emulator.options(dataset="bench_tmp")
        seconds, rows = read_alone(options, args.streams)
        assert rows == args.rows, rows
        print(f"Storage Read alone, {args.streams} streams: {seconds:6.2f} s  {rows / seconds:10,.0f} rows/s",
              flush=True)
        config = json.dumps({"splits": [{"name": "single_split", "pattern": "SELECT * FROM bench.trips"}]})
        cmd = [*EXAMPLEGEN, "ingest", "--format", "bigquery", "--connection", "bigquery://test", "--input-config",
               config, "--source-options", json.dumps(dict(options, max_streams=args.streams)), "--workers",
               str(args.streams), "--output", os.path.join(args.work, "out"), "--no-lineage"]
        seconds, peak = run(cmd)
        print(f"end to end, {args.streams} streams/workers: {seconds:6.2f} s  {args.rows / seconds:10,.0f} rows/s  "
              f"peak RSS {peak / 2**20:,.0f} MiB (the emulator not counted)", flush=True)
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
