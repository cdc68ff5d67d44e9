"""CPU time per record of each stage of the TFRecord import worker (convert.run_unit with sources.tfrecord),
in one process, on one TFRecord file.

Stages as the worker runs them on each batch of 65,536 records:
  read   tfrecord.read_frame_batches: decompress, walk frames, check both CRCs, frames as read
  check  payload.check (structure check; the frames' bytes, no conversion)
  hash   tfrecord.frame_buckets (sha256 of each frame's payload, TFX's bucket rule)
  group  tfrecord.grouped_frames (each (split, shard)'s frames back to back)
  gzip   tfrecord.gzip_member per group
With --old, the flow before frames were reused: read_record_batches, pa.array of the
records, payload.check, tfrecord.frame_and_bucket (sha256 + crc32c + framing again),
group and gzip. "decompress" alone (igzip read of the whole file) is shown for reference.

The report is the median over --repeats passes of process_time per record (the machine is
shared, so wall time is noisier). Default input: the train split of bench/run_bench.py's
1M-row CSV run.

    .venv/bin/python bench/import_stages.py [--file F] [--repeats 5] [--splits 2] [--old]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from examplegen import payload, tfrecord  # noqa: E402
from examplegen.split import SplitPlan, split_of_buckets  # noqa: E402

DEFAULT_FILE = os.path.join(os.path.dirname(__file__), "out", "examples_csv_1000000", "Split-train",
                            "data_tfrecord-00000-of-00001.gz")
BATCH = 65536


def one_pass(path: str, plan: SplitPlan, old: bool) -> tuple[dict[str, float], int]:
    times: dict[str, float] = {}
    clock = time.process_time

    def tick(stage: str, start: float) -> float:
        now = clock()
        times[stage] = times.get(stage, 0.0) + now - start
        return now

    rows = 0
    t = clock()
    reader = tfrecord.read_record_batches(path, BATCH) if old else tfrecord.read_frame_batches(path, BATCH)
    for batch in reader:
        if old:
            records = batch
            array = pa.array(records, pa.binary())
            t = tick("read", t)
            payload.check(records, "FORMAT_TF_EXAMPLE", "structure", path, rows, array)
            t = tick("check", t)
            frames, buckets = tfrecord.frame_and_bucket(records, plan.cumulative_buckets[-1])
            split_index = split_of_buckets(buckets, plan)
            t = tick("hash+frame", t)
        else:
            records, frames = batch
            t = tick("read", t)
            payload.check(records, "FORMAT_TF_EXAMPLE", "structure", path, rows, frames=frames)
            t = tick("check", t)
            split_index = split_of_buckets(tfrecord.frame_buckets(frames, plan.cumulative_buckets[-1]), plan)
            t = tick("hash", t)
        groups = tfrecord.grouped_frames(frames, split_index)
        t = tick("group", t)
        for _, _, data in groups:
            tfrecord.gzip_member(data, 1)
        t = tick("gzip", t)
        rows += len(records)
    return times, rows


def decompress_seconds(path: str) -> float:
    from isal import igzip

    start = time.process_time()
    with igzip.open(path, "rb") as f:
        while f.read(1 << 22):
            pass
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=DEFAULT_FILE)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--splits", type=int, default=2, help="hash splits (buckets 2:1 for 2, else equal)")
    parser.add_argument("--old", action="store_true", help="the flow that framed records again")
    args = parser.parse_args()
    if not os.path.exists(args.file):
        raise SystemExit(f"{args.file} not found; run bench/run_bench.py --rows 1000000 first")
    buckets = (2, 1) if args.splits == 2 else (1,) * args.splits
    plan = SplitPlan(names=tuple(f"s{i}" for i in range(args.splits)), mode="hash",
                     cumulative_buckets=tuple(np.cumsum(buckets).tolist()))
    passes, rows = [], 0
    for _ in range(args.repeats):
        times, rows = one_pass(args.file, plan, args.old)
        passes.append(times)
    decompress = statistics.median(decompress_seconds(args.file) for _ in range(args.repeats))
    print(f"{args.file}: {rows:,} records, {'old' if args.old else 'new'} flow, "
          f"median of {args.repeats} passes, CPU µs per record")
    total = 0.0
    for stage in passes[0]:
        value = statistics.median(p[stage] for p in passes) / rows * 1e6
        total += value
        print(f"  {stage:>10}: {value:6.3f}")
    print(f"  {'total':>10}: {total:6.3f}   (= {1e6 / total:,.0f} records/s on one core)")
    print(f"  {'decompress':>10}: {decompress / rows * 1e6:6.3f}   (part of read)")


if __name__ == "__main__":
    main()
