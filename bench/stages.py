"""CPU time per row of each stage of the CSV worker's hot path, in one process.

Stages, as examplegen.sources.csv.read and examplegen.convert.run_unit run them on each batch: parse (Arrow CSV),
convert (fast_convert), examples (encode.example_column_of_values), hash+frame
(tfrecord.frame_and_bucket: sha256 and TFX's bucket rule, crc32c and the frames, in one pass),
group (tfrecord.grouped_frames: each (split, shard)'s frames back to back) and gzip (isal).
With --separate, the older flow: hash (split.assign_hash), frame (tfrecord.frame_column)
and take (one take per (split, shard)); it also runs on a checkout without the fused API.

The input is a CSV of --rows taxi rows (examples/data/taxi/data.csv repeated). Each of
--repeats passes runs every stage over all batches; the report is the median over passes
of the CPU time (time.process_time) per row, so other load on the machine skews it less.

    .venv/bin/python bench/stages.py [--rows 120000] [--repeats 5] [--splits 3] [--shards 1] [--separate]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from examplegen import encode, tfrecord  # noqa: E402
from examplegen.sources import csv as csv_source  # noqa: E402
from examplegen.split import SplitPlan, assign_hash  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "examples", "data", "taxi", "data.csv")


def make_csv(path: str, rows: int) -> None:
    with open(SAMPLE, "rb") as f:
        header = f.readline()
        body = [line for line in f.read().split(b"\n") if line]
    with open(path, "wb") as out:
        out.write(header)
        full, rest = divmod(rows, len(body))
        out.write((b"\n".join(body) + b"\n") * full)
        if rest:
            out.write(b"\n".join(body[:rest]) + b"\n")


def one_pass(layout, options, size, types, plan, shards, fused) -> tuple[dict[str, float], int]:
    times: dict[str, float] = {}
    clock = time.process_time

    def tick(stage: str, start: float) -> float:
        now = clock()
        times[stage] = times.get(stage, 0.0) + now - start
        return now

    rows = 0
    t = clock()
    for batch in csv_source.read_chunk(layout, options, layout.data_offset, size, 2):
        t = tick("parse", t)
        converted = [csv_source.fast_convert(c, csv_source.ColumnType(k)) for c, k in zip(batch.columns, types)]
        t = tick("convert", t)
        examples = encode.example_column_of_values(list(layout.column_names), converted)
        t = tick("examples", t)
        n = len(examples)
        if fused:
            framed, buckets = tfrecord.frame_and_bucket(examples, plan.cumulative_buckets[-1])
            split_index = np.searchsorted(np.asarray(plan.cumulative_buckets), buckets, side="right")
            t = tick("hash+frame", t)
            key = split_index.astype(np.int64) * shards + np.arange(rows, rows + n) % shards
            parts = [data for _, _, data in tfrecord.grouped_frames(framed, key)]
            t = tick("group", t)
        else:
            split_index = assign_hash(examples, plan)
            t = tick("hash", t)
            framed = tfrecord.frame_column(examples)
            t = tick("frame", t)
            key = split_index.astype(np.int64) * shards + np.arange(rows, rows + n) % shards
            order = np.argsort(key, kind="stable")
            bounds = np.flatnonzero(np.diff(key[order])) + 1
            parts = [tfrecord.concatenated(framed.take(pa.array(g))) for g in np.split(order, bounds)]
            t = tick("take", t)
        for part in parts:
            tfrecord.gzip_member(part, 1)
        t = tick("gzip", t)
        rows += n
    return times, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=120_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--splits", type=int, default=3, help="hash splits of one bucket each")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--separate", action="store_true",
                        help="hash, frame and take as separate stages (the flow before frame_and_bucket)")
    parser.add_argument("--csv", help="an existing taxi-like CSV instead of a generated one")
    args = parser.parse_args()

    tmp = None
    path = args.csv
    if path is None:
        tmp = tempfile.mkdtemp(prefix="stages_")
        path = os.path.join(tmp, "data.csv")
        make_csv(path, args.rows)
    options = csv_source.CsvOptions()
    layout = csv_source.read_layout(path, options)
    types = csv_source.sample_types(layout, options)
    size = os.path.getsize(path)
    plan = SplitPlan(names=tuple(f"s{i}" for i in range(args.splits)), mode="hash",
                     cumulative_buckets=tuple(range(1, args.splits + 1)))
    passes = []
    for _ in range(args.repeats):
        times, rows = one_pass(layout, options, size, types, plan, args.shards, not args.separate)
        passes.append(times)
    if tmp:
        os.unlink(path)
        os.rmdir(tmp)
    print(f"rows={rows}, passes={args.repeats}, splits={args.splits}, shards={args.shards}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    total = 0.0
    for stage in passes[0]:
        us = statistics.median(p[stage] for p in passes) * 1e6 / rows
        total += us
        print(f"{stage:>15}: {us:6.2f} us/row")
    print(f"{'total':>15}: {total:6.2f} us/row -> {1e6 / total:,.0f} rows/s/core")


if __name__ == "__main__":
    main()
