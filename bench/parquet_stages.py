"""CPU time per row of each stage of the Parquet worker's hot path, in one process.

Stages, as examplegen.sources.parquet.read and examplegen.convert.run_unit run them on
each row group: read (pyarrow), features (Arrow types to the tf.Example kinds,
examplegen.typemap), example (the Example bytes from the typed columns, examplegen.encode), hash (SHA-256 for the
split and CRC32C in one pass, tfrecord.crc_and_bucket), frame+group (each split's frames
back to back, tfrecord.frames_by_key) and gzip (isal level 1). The report is the median over --repeats
passes of the process time per row, so other load skews it less. The process converts
with the pool the engine's workers use (examplegen.arrow_memory).

The last line calibrates the host with a fixed workload that does not change with the
engine's code (SHA-256 and CRC32C of 65,536 records of 420 bytes, one hashlib and one
google_crc32c call each): run it beside run_bench.py, since this VM's CPU speed varies by
up to 50% between hours (bench/README.md).

    .venv/bin/python bench/parquet_stages.py PARQUET_FILE [--repeats 3]

PARQUET_FILE: e.g. the file run_bench.py writes, <workdir>/taxi_parquet_1000000/data.parquet.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from examplegen import arrow_memory  # noqa: E402

arrow_memory.retain_freed_pages()  # the pool the engine's workers convert with

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from examplegen import tfrecord, typemap  # noqa: E402
from examplegen.convert import GZIP_LEVEL  # noqa: E402


def one_pass(pf: pq.ParquetFile) -> tuple[dict[str, float], int]:
    clock = time.process_time
    times: dict[str, float] = {}

    def tick(stage: str, start: float) -> float:
        now = clock()
        times[stage] = times.get(stage, 0.0) + now - start
        return now

    rows = 0
    for group in range(pf.num_row_groups):
        t = clock()
        batch = pf.read_row_group(group).combine_chunks().to_batches()[0]
        t = tick("read", t)
        features = typemap.batch_features(batch, str, pf.metadata.created_by or "", {})
        t = tick("features", t)
        examples = typemap.examples(features)
        t = tick("example", t)
        crcs, buckets = tfrecord.crc_and_bucket(examples, 3)  # train 2 : eval 1, as the default config
        t = tick("hash", t)
        groups = tfrecord.frames_by_key(examples, (buckets >= 2).astype(np.int64), crcs)
        t = tick("frame+group", t)
        for _, _, data in groups:
            tfrecord.gzip_member(data, GZIP_LEVEL)
        tick("gzip", t)
        rows += batch.num_rows
    return times, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parquet")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pf = pq.ParquetFile(args.parquet)
    per_stage: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        times, rows = one_pass(pf)
        for stage, seconds in times.items():
            per_stage.setdefault(stage, []).append(seconds / rows * 1e6)
    total = 0.0
    for stage, values in per_stage.items():
        median = statistics.median(values)
        total += median
        print(f"{stage:12s} {median:6.3f} µs/row")
    print(f"{'total':12s} {total:6.3f} µs/row  ({rows:,} rows, process time, median of {args.repeats})")
    print(f"{'host':12s} {host_reference():6.3f} µs/record  (fixed reference workload, median of 5)")


def host_reference() -> float:
    import hashlib

    import google_crc32c

    records = [bytes([i % 251]) * 420 for i in range(65_536)]
    values = []
    for _ in range(5):
        start = time.process_time()
        for record in records:
            hashlib.sha256(record).digest()
            google_crc32c.value(record)
        values.append((time.process_time() - start) / len(records) * 1e6)
    return statistics.median(values)


if __name__ == "__main__":
    main()
