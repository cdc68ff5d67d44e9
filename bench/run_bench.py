"""Throughput and peak memory of `examplegen ingest`: CSV, TFRecord import, Parquet.

Generates taxi CSVs of N rows (the 10,000 data rows of examples/data/taxi/data.csv
repeated), then runs, each as a fresh process (as a user would):

- csv:      examplegen ingest --format csv      (CSV -> split gzip TFRecords)
- tfrecord: examplegen ingest --format tfrecord (the CSV run's output, pooled -> re-split)
- parquet:  examplegen ingest --format parquet  (the same rows as one Parquet file, typed as
            pyarrow's CSV reader types them, row groups of 64Ki rows, snappy)

and reports rows/s (wall clock, whole command including start-up, until its process
exits, as a shell's `time` reports) and the peak resident
memory of the whole process tree (the main process plus its workers, sampled every 20 ms
from /proc). Lineage recording is off so that only the data path is timed. The package's bytecode is
compiled first, as an installed package has it (pip compiles at install; this machine sets
PYTHONDONTWRITEBYTECODE=1, so an editable checkout would compile every module again in
each process, ~0.13 s of CPU in the command and in each worker).

With ``--engines local beam`` (the default) the csv run is repeated with ``--engine beam``
for each ``--beam-args`` (Beam pipeline options); each such run must give the local run's
artifact (same files digest) and exactly N examples, or the benchmark fails.

    python bench/run_bench.py                  # 100k and 1M rows, 3 repeats, median
    python bench/run_bench.py --rows 10000000 --repeats 1
    python bench/run_bench.py --sources parquet --rows 1000000 10000000 --repeats 1
    python bench/run_bench.py --sources csv --rows 1000000 --repeats 1 --engines local beam
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SAMPLE = os.path.join(REPO, "examples", "data", "taxi", "data.csv")
EXAMPLEGEN = [sys.executable, "-m", "examplegen.cli"]
# Beam runs: the DirectRunner in the launcher process, and with two worker processes (safe
# for this engine's pipeline, which has no splittable DoFn, and verified; see README).
BEAM_ARGS = ["--runner=DirectRunner",
             "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"]


def make_csv(path: str, rows: int) -> None:
    with open(SAMPLE, "rb") as f:
        header = f.readline()
        body = [line for line in f.read().split(b"\n") if line]
    block = b"\n".join(body) + b"\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(header)
        full, rest = divmod(rows, len(body))
        for _ in range(full):
            out.write(block)
        if rest:
            out.write(b"\n".join(body[:rest]) + b"\n")


def make_parquet(path: str, rows: int, row_group: int = 65536) -> None:
    """The taxi rows repeated to ``rows`` rows, written one row group at a time."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    sample = pacsv.read_csv(SAMPLE)
    sample = sample.cast(pa.schema([f.with_type(pa.float64()) if pa.types.is_null(f.type) else f
                                    for f in sample.schema]))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    repeated = pa.concat_tables([sample] * -(-row_group // len(sample)))
    with pq.ParquetWriter(path, sample.schema) as writer:
        written = 0
        while written < rows:
            n = min(row_group, rows - written)
            writer.write_table(repeated.slice(0, n), row_group_size=row_group)
            written += n


def _tree_rss(pid: int) -> int:
    """Resident bytes of pid and all its descendants, found through each thread's
    /proc/PID/task/TID/children (a pool's processes are started by one of its threads):
    ~0.1 ms a sample, where scanning every /proc entry took ~4 ms, which every 20 ms was
    ~8% of this 2-core machine taken from the command being timed."""
    page = os.sysconf("SC_PAGE_SIZE")
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * page
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    stack.extend(int(child) for child in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds until the command's process exits (what a shell's `time` reports; a
    helper it leaves, such as multiprocessing's resource tracker, may take ~0.1 s longer
    to go, holding stderr open) and peak tree RSS (bytes)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        peak = 0
        done = threading.Event()

        def sample():
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        elapsed = time.perf_counter() - start
        done.set()
        sampler.join()
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode()}")
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=os.path.join(REPO, "bench", "out"))
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--sources", nargs="+", default=["csv", "tfrecord", "parquet"],
                        choices=["csv", "tfrecord", "parquet"], help="which runs (tfrecord needs csv)")
    parser.add_argument("--engines", nargs="+", default=["local", "beam"], choices=["local", "beam"],
                        help="engines of the csv run (beam: once per --beam-args)")
    parser.add_argument("--beam-args", nargs="+", default=BEAM_ARGS,
                        help="Beam pipeline options of each beam run, one string each")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "examplegen")], check=True)
    results = []
    for rows in args.rows:
        data = os.path.join(args.workdir, f"taxi_{rows}", "data.csv")
        if {"csv", "tfrecord"} & set(args.sources) and not os.path.exists(data):
            make_csv(data, rows)
        parquet = os.path.join(args.workdir, f"taxi_parquet_{rows}", "data.parquet")
        if "parquet" in args.sources and not os.path.exists(parquet):
            make_parquet(parquet, rows)
        csv_out = os.path.join(args.workdir, f"examples_csv_{rows}")
        tfr_out = os.path.join(args.workdir, f"examples_tfrecord_{rows}")
        pq_out = os.path.join(args.workdir, f"examples_parquet_{rows}")
        beam_runs = [(f"csv/beam{i}", EXAMPLEGEN + [
            "ingest", "--input-base", os.path.dirname(data), "--output", f"{csv_out}_beam{i}", "--no-lineage",
            "--engine", "beam", f"--beam-pipeline-args={beam_args}"]) for i, beam_args in enumerate(args.beam_args)]
        runs = (
            ("csv", EXAMPLEGEN + ["ingest", "--input-base", os.path.dirname(data), "--output", csv_out,
                                  "--no-lineage"]),
            ("tfrecord", EXAMPLEGEN + ["ingest", "--format", "tfrecord", "--input-base", csv_out,
                                       "--input-config", '{"splits": [{"name": "all", "pattern": "Split-*/*"}]}',
                                       "--output", tfr_out, "--no-lineage"]),
            ("parquet", EXAMPLEGEN + ["ingest", "--format", "parquet", "--input-base", os.path.dirname(parquet),
                                      "--output", pq_out, "--no-lineage"]),
            *(beam_runs if "beam" in args.engines and "csv" in args.sources else ()),
        )
        for kind, cmd in runs:
            if kind.split("/")[0] not in args.sources or (kind == "csv" and "local" not in args.engines):
                continue
            times, peaks = [], []
            for _ in range(args.repeats):
                seconds, peak = run(cmd)
                times.append(seconds)
                peaks.append(peak)
            median = statistics.median(times)
            row = {"source": kind, "rows": rows, "seconds_median": round(median, 3),
                   "seconds_all": [round(t, 3) for t in times], "rows_per_s": round(rows / median),
                   "peak_rss_mb": round(max(peaks) / 2**20)}
            if kind.startswith("csv/beam"):
                row["beam_pipeline_args"] = args.beam_args[int(kind[len("csv/beam"):])]
                row["same_artifact_as_local"] = _check_beam_output(cmd[cmd.index("--output") + 1], csv_out, rows)
            results.append(row)
            print(f"{kind:8s} {rows:>10,} rows  {median:7.2f} s  {rows / median:>10,.0f} rows/s  "
                  f"peak RSS {max(peaks) / 2**20:,.0f} MiB  (runs: {', '.join(f'{t:.2f}' for t in times)})"
                  + (f"  same artifact as local: {row['same_artifact_as_local']}" if "beam_pipeline_args" in row else ""),
                  flush=True)
        shutil.rmtree(tfr_out, ignore_errors=True)
        shutil.rmtree(pq_out, ignore_errors=True)
        for _, cmd in beam_runs:
            shutil.rmtree(cmd[cmd.index("--output") + 1], ignore_errors=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "machine": platform.machine(),
               "cpu": _cpu_model()}
    print(json.dumps(machine))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": results}, f, indent=2)


def _check_beam_output(beam_out: str, local_out: str, rows: int) -> bool:
    """Exactly ``rows`` examples (else the benchmark fails); whether the files are the local run's."""
    with open(os.path.join(beam_out, "examples_metadata.json")) as f:
        beam = json.load(f)
    written = sum(json.loads(beam["example_counts"]).values())
    if written != rows:
        raise SystemExit(f"{beam_out}: {written:,} examples, expected {rows:,}")
    if not os.path.exists(os.path.join(local_out, "examples_metadata.json")):
        return False
    with open(os.path.join(local_out, "examples_metadata.json")) as f:
        return json.load(f)["files_digest"] == beam["files_digest"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
