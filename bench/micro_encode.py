"""Micro-benchmark of the byte layers: feature_column, example_column, frame_records, igzip,
then reading the result back with read_record_batches. Also times frame_and_bucket (frames
plus TFX hash buckets in one pass, as the hash-split path runs it) on its own.

Builds --rows taxi-like rows by repeating examples/data/taxi/data.csv and times each stage
over batches of --batch rows in one thread. Times are CPU time of this process
(time.process_time), so other load on the machine skews them less than wall time would.
Usage:
    .venv/bin/python bench/micro_encode.py [--rows 1000000] [--batch 16384] [--level 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from examplegen.encode import example_column, feature_column
from examplegen.tfrecord import frame_and_bucket, frame_records, read_record_batches

TAXI_CSV = Path(__file__).resolve().parents[1] / "examples" / "data" / "taxi" / "data.csv"


def kind_of(typ: pa.DataType) -> str:
    if pa.types.is_integer(typ):
        return "int64"
    if pa.types.is_floating(typ):
        return "float"
    if pa.types.is_null(typ):
        return "float"
    return "bytes"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=16_384)
    parser.add_argument("--level", type=int, default=1, help="igzip compression level (0-3)")
    parser.add_argument("--missing", default="empty_feature", choices=["empty_feature", "empty_list"],
                        help="how empty cells are encoded (TFX writes empty Features)")
    args = parser.parse_args()

    from isal import isal_zlib

    base = pacsv.read_csv(TAXI_CSV)
    table = pa.concat_tables([base] * (args.rows // base.num_rows + 1)).slice(0, args.rows)
    table = table.combine_chunks()
    kinds = {name: kind_of(table.schema.field(name).type) for name in table.column_names}
    batches = table.to_batches(max_chunksize=args.batch)

    times = {"feature_column": 0.0, "example_column": 0.0, "frame_records": 0.0, "igzip": 0.0}
    fused = 0.0
    out_bytes = record_bytes = 0
    tmp = Path(tempfile.mkdtemp(prefix="micro_encode_"))
    plain_file, gzip_file = open(tmp / "plain.tfrecord", "wb"), open(tmp / "gzip.tfrecord.gz", "wb")
    for batch in batches:
        t0 = time.process_time()
        features = [feature_column(batch.column(name), kinds[name], missing=args.missing)
                    for name in batch.schema.names]
        t1 = time.process_time()
        examples = example_column(batch.schema.names, features)
        t2 = time.process_time()
        framed = frame_records(examples)
        t3 = time.process_time()
        compressor = isal_zlib.compressobj(args.level, isal_zlib.DEFLATED, 31)
        compressed = compressor.compress(framed) + compressor.flush()
        t4 = time.process_time()
        frame_and_bucket(examples, 3)
        fused += time.process_time() - t4
        times["feature_column"] += t1 - t0
        times["example_column"] += t2 - t1
        times["frame_records"] += t3 - t2
        times["igzip"] += t4 - t3
        record_bytes += len(framed)
        out_bytes += len(compressed)
        plain_file.write(framed)
        gzip_file.write(compressed)  # one gzip member per batch, as the engine appends them
    plain_file.close()
    gzip_file.close()

    read_times = {}
    for label, path in (("read plain", plain_file.name), ("read gzip", gzip_file.name)):
        t0 = time.process_time()
        count = sum(len(records) for records in read_record_batches(path))
        read_times[label] = time.process_time() - t0
        assert count == table.num_rows, (label, count)
        os.unlink(path)
    os.rmdir(tmp)

    rows = table.num_rows
    print(f"cpu: {cpu_model()}, nproc={os.cpu_count()}, load average: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"rows={rows}, batch={args.batch}, igzip level={args.level}, missing={args.missing}")
    print(f"framed bytes/row={record_bytes / rows:.1f}, gzip ratio={out_bytes / record_bytes:.3f}")
    for stage, seconds in times.items():
        print(f"{stage:>15}: {rows / seconds:>12,.0f} rows/s  ({seconds:.3f} s)")
    encode_frame = times["feature_column"] + times["example_column"] + times["frame_records"]
    print(f"{'encode+frame':>15}: {rows / encode_frame:>12,.0f} rows/s  ({encode_frame:.3f} s)")
    total = encode_frame + times["igzip"]
    print(f"{'all four':>15}: {rows / total:>12,.0f} rows/s  ({total:.3f} s)")
    print(f"{'frame+bucket':>15}: {rows / fused:>12,.0f} rows/s  ({fused:.3f} s)  (frame_and_bucket, 3 buckets)")
    for stage, seconds in read_times.items():
        print(f"{stage:>15}: {rows / seconds:>12,.0f} records/s  ({seconds:.3f} s)")


if __name__ == "__main__":
    main()
