"""Issue 3 through the engine: what `ingest`, `resplit` and the `examplegen` CLI record in
ML Metadata, read back from real stores (SQLite files and the MariaDB server).

Expected values come from the inputs the tests write (row counts, SHA-256 of the bytes,
file sizes), never from a previous run of the code.
"""

from __future__ import annotations

import datetime
import glob
import gzip
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

import examplegen
from examplegen.cli import main
from examplegen.errors import SourceError
from examplegen.ingest import ingest, resplit
from examplegen.lineage import open_store, schema
from examplegen.lineage.schema import properties
from tests.lineage_fixtures import MYSQL, REPO_ROOT, mysql_url, sqlite_url, worker_env  # noqa: F401

TAXI = REPO_ROOT / "examples" / "data" / "taxi" / "data.csv"
TWO_SPLITS = {"splits": [{"name": "train", "pattern": "span-{SPAN}/v{VERSION}/train.csv"},
                         {"name": "eval", "pattern": "span-{SPAN}/v{VERSION}/eval.csv"}]}
PLAIN_SPLITS = {"splits": [{"name": "train", "pattern": "train.csv"}, {"name": "eval", "pattern": "eval.csv"}]}
SPAN_DIRS = {"splits": [{"name": "single_split", "pattern": "span-{SPAN}/data.csv"}]}
AB_SPLIT = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 1}]}}


# --------------------------------------------------------------------------- helpers


def _taxi_rows() -> tuple[bytes, list[bytes]]:
    header, *rows = TAXI.read_bytes().splitlines()
    return header, rows


def write_taxi(path: Path, start: int, count: int, *, repeat: int = 1) -> Path:
    """A CSV of the taxi header and data rows [start, start + count), `repeat` times over."""
    header, rows = _taxi_rows()
    chosen = rows[start:start + count]
    assert len(chosen) == count
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header + b"\n")
        body = b"\n".join(chosen) + b"\n"
        for _ in range(repeat):
            f.write(body)
    return path


def sha256_of(path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def count_records(split_dir: Path) -> int:
    """Records in the gzip TFRecord files of a split (read independently of the engine)."""
    total = 0
    for name in sorted(glob.glob(str(split_dir / "*.gz"))):
        with gzip.open(name, "rb") as f:
            while header := f.read(12):
                (length,) = struct.unpack("<Q", header[:8])
                assert len(f.read(length + 4)) == length + 4, f"truncated record in {name}"
                total += 1
    return total


def files_state(root: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, mtime_ns, size) of every file under root: unchanged iff nothing was rewritten."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            out[str(path.relative_to(root))] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def store_of(url):
    return open_store(url, create=False).mlmd


def state(execution) -> str:
    return pb.Execution.State.Name(execution.last_known_state)


def executions(mlmd, type_name=schema.INGEST):
    return sorted(mlmd.get_executions_by_type(type_name), key=lambda e: e.id)


def events(mlmd, execution_id, kind):
    return [e for e in mlmd.get_events_by_execution_ids([execution_id]) if e.type == kind]


def output_id(mlmd, execution_id) -> int:
    [event] = events(mlmd, execution_id, pb.Event.OUTPUT)
    return event.artifact_id


def input_ids(mlmd, execution_id) -> set[int]:
    return {e.artifact_id for e in events(mlmd, execution_id, pb.Event.INPUT)}


def artifact(mlmd, artifact_id):
    [found] = mlmd.get_artifacts_by_id([artifact_id])
    return found


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_process(*argv: str, **kwargs) -> subprocess.Popen:
    """`examplegen ARGV` in a new process (python -m examplegen.cli)."""
    return subprocess.Popen([sys.executable, "-m", "examplegen.cli", *argv], cwd=REPO_ROOT, env=worker_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def short(digest: str) -> str:
    return digest[: len("sha256:") + 16] + "…"


# --------------------------------------------------------------------------- one ingest


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_ingest_records_contexts_execution_sources_and_live_examples(kind, request, tmp_path):
    url = request.getfixturevalue(f"{kind}_url")
    data, out = tmp_path / "data", tmp_path / "out"
    for version, first_row in ((1, 500), (2, 0)):  # version 2 is the latest: only it is read
        write_taxi(data / "span-3" / f"v{version}" / "train.csv", first_row, 120)
        write_taxi(data / "span-3" / f"v{version}" / "eval.csv", 200, 40)
    result = ingest(str(data), str(out), input_config=TWO_SPLITS, mlmd=url, pipeline_name="taxi",
                    run_name="run-1")
    mlmd = store_of(url)

    [execution] = executions(mlmd)
    assert state(execution) == "COMPLETE"
    p = properties(execution)
    config = json.loads(p["config"])
    assert (config["input_base"], config["input_config"], config["source_format"]) == (
        str(data), TWO_SPLITS, "csv")
    assert (p["span"], p["version"], p["engine_version"]) == (3, 2, examplegen.__version__)
    assert (p["rows_read"], p["rows_written"], p["rows_rejected"]) == (160, 160, 0)
    assert p["start_time"] <= p["end_time"]

    # Contexts: KFP's type names, the run a child of the pipeline.
    contexts = {c.type: c for c in mlmd.get_contexts_by_execution(execution.id)}
    pipeline, run = contexts[schema.PIPELINE_CONTEXT], contexts[schema.RUN_CONTEXT]
    assert (pipeline.name, run.name) == ("taxi", "run-1")
    assert [c.id for c in mlmd.get_parent_contexts_by_context(run.id)] == [pipeline.id]

    # One SourceFile per file read, with the digest of its bytes, size, span, version, split.
    inputs = events(mlmd, execution.id, pb.Event.INPUT)
    assert {e.path.steps[0].key for e in inputs} == {"sources"}
    sources = {a.uri: a for a in mlmd.get_artifacts_by_id([e.artifact_id for e in inputs])}
    expected = {str(data / "span-3" / "v2" / "train.csv"): "train", str(data / "span-3" / "v2" / "eval.csv"): "eval"}
    assert set(sources) == set(expected)
    for uri, split in expected.items():
        source = sources[uri]
        sp = properties(source)
        assert source.type == schema.SOURCE_FILE and source.state == pb.Artifact.LIVE
        assert (sp["digest"], sp["size"]) == (sha256_of(uri), os.path.getsize(uri))
        assert (sp["span"], sp["version"], sp["split"]) == (3, 2, split)
    assert len(mlmd.get_artifacts_by_type(schema.SOURCE_FILE)) == 2  # the v1 files were not read

    # The Examples: LIVE, TFX's property names, counts equal to what the files hold.
    [output] = events(mlmd, execution.id, pb.Event.OUTPUT)
    [examples] = mlmd.get_artifacts_by_type(schema.EXAMPLES)
    assert (output.artifact_id, output.path.steps[0].key) == (examples.id, "examples")
    assert (examples.state, examples.uri) == (pb.Artifact.LIVE, str(out))
    ep = properties(examples)
    assert json.loads(ep["split_names"]) == ["train", "eval"]
    assert (ep["span"], ep["version"]) == (3, 2)
    assert (ep["payload_format"], ep["file_format"]) == ("FORMAT_TF_EXAMPLE", "tfrecords_gzip")
    assert json.loads(ep["example_counts"]) == {"train": 120, "eval": 40}
    assert {s: count_records(out / f"Split-{s}") for s in ("train", "eval")} == {"train": 120, "eval": 40}
    on_disk = json.loads((out / "examples_metadata.json").read_text())
    assert ep["input_fingerprint"] == p["input_fingerprint"] == result.input_fingerprint == on_disk["input_fingerprint"]
    assert ep["input_fingerprint"].startswith("sha256:")

    # The run context holds the execution and every artifact it touched.
    assert [e.id for e in mlmd.get_executions_by_context(run.id)] == [execution.id]
    assert {a.id for a in mlmd.get_artifacts_by_context(run.id)} == {a.id for a in sources.values()} | {examples.id}


# --------------------------------------------------------------------------- caching and data versions


def test_identical_rerun_is_cached_without_rewriting_and_force_converts_again(sqlite_url, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    csv = write_taxi(data / "data.csv", 0, 300)
    first = ingest(str(data), str(out), mlmd=sqlite_url)
    assert not first.cached
    before = files_state(out)

    # A new mtime alone is not new data: the fingerprint is built from the content.
    later = time.time() + 3600
    os.utime(csv, (later, later))
    code, stdout, _ = run_cli(capsys, "ingest", "--input-base", str(data), "--output", str(out),
                              "--mlmd", sqlite_url, "--json")
    assert code == 0
    rerun = json.loads(stdout)
    assert rerun["cached"] is True and rerun["counts"] == first.counts
    assert rerun["input_fingerprint"] == first.input_fingerprint
    assert files_state(out) == before  # same inodes and mtimes: nothing rewritten

    mlmd = store_of(sqlite_url)
    done, cached = executions(mlmd)
    assert (state(done), state(cached)) == ("COMPLETE", "CACHED")
    assert properties(cached)["cached_execution_id"] == str(done.id)
    assert properties(cached)["input_fingerprint"] == first.input_fingerprint
    assert output_id(mlmd, cached.id) == output_id(mlmd, done.id)  # the same Examples artifact
    assert input_ids(mlmd, cached.id) == input_ids(mlmd, done.id)  # the same SourceFile artifact
    assert len(mlmd.get_artifacts_by_type(schema.EXAMPLES)) == 1
    assert len(mlmd.get_artifacts_by_type(schema.SOURCE_FILE)) == 1

    forced = ingest(str(data), str(out), mlmd=sqlite_url, force=True)
    assert not forced.cached and forced.counts == first.counts
    after = files_state(out)
    assert set(after) == set(before) and all(after[f][:2] != before[f][:2] for f in after)  # rewritten
    *_, third = executions(mlmd)
    assert state(third) == "COMPLETE" and "cached_execution_id" not in properties(third)
    old, new = artifact(mlmd, output_id(mlmd, done.id)), artifact(mlmd, output_id(mlmd, third.id))
    assert new.id != old.id and new.uri == old.uri == str(out)
    assert new.state == pb.Artifact.LIVE
    # The old artifact's files were replaced: it is no longer LIVE, and no later run reuses it.
    assert old.state == pb.Artifact.DELETED and properties(old)["superseded_by_artifact_id"] == new.id

    again = ingest(str(data), str(out), mlmd=sqlite_url)
    assert again.cached
    *_, fourth = executions(mlmd)
    assert state(fourth) == "CACHED" and output_id(mlmd, fourth.id) == new.id
    assert properties(fourth)["cached_execution_id"] == str(third.id)


def test_cached_run_into_another_output_copies_the_files_and_records_the_copy(sqlite_url, tmp_path, capsys):
    data = tmp_path / "data"
    write_taxi(data / "data.csv", 0, 200)
    first = ingest(str(data), str(tmp_path / "out1"), mlmd=sqlite_url)
    second = ingest(str(data), str(tmp_path / "out2"), mlmd=sqlite_url)
    assert second.cached and second.output_uri == str(tmp_path / "out2") and second.counts == first.counts
    for split in first.split_names:
        names = sorted(os.listdir(tmp_path / "out1" / f"Split-{split}"))
        assert names == sorted(os.listdir(tmp_path / "out2" / f"Split-{split}"))
        for name in names:
            assert ((tmp_path / "out1" / f"Split-{split}" / name).read_bytes()
                    == (tmp_path / "out2" / f"Split-{split}" / name).read_bytes())

    mlmd = store_of(sqlite_url)
    done, cached = executions(mlmd)
    assert (state(done), state(cached)) == ("COMPLETE", "CACHED")
    assert properties(cached)["cached_execution_id"] == str(done.id)
    original, copy = artifact(mlmd, output_id(mlmd, done.id)), artifact(mlmd, output_id(mlmd, cached.id))
    assert (original.uri, copy.uri) == (str(tmp_path / "out1"), str(tmp_path / "out2"))
    assert original.state == copy.state == pb.Artifact.LIVE
    copied = properties(copy)
    assert copied.pop("copied_from_artifact_id") == original.id
    assert copied == properties(original)

    # Its lineage leads to the source file through the CACHED execution.
    code, stdout, _ = run_cli(capsys, "lineage", str(tmp_path / "out2"), "--mlmd", sqlite_url, "--json")
    assert code == 0
    [match] = json.loads(stdout)["matches"]
    [producer] = match["upstream"]["executions"]
    assert (producer["id"], producer["state"]) == (cached.id, "CACHED")
    assert [(a["uri"], a["properties"]["digest"]) for a in match["upstream"]["artifacts"]] == [
        (str(data / "data.csv"), sha256_of(data / "data.csv"))]


def test_output_replaced_by_another_config_is_not_reused(sqlite_url, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    write_taxi(data / "data.csv", 0, 300)
    first = ingest(str(data), str(out), mlmd=sqlite_url)  # train 2 : eval 1 hash buckets
    even = {"split_config": {"splits": [{"name": "train", "hash_buckets": 1}, {"name": "eval", "hash_buckets": 1}]}}
    other = ingest(str(data), str(out), output_config=even, mlmd=sqlite_url)  # same data and split names
    assert not other.cached and other.counts != first.counts
    assert {s: count_records(out / f"Split-{s}") for s in ("train", "eval")} == other.counts

    again = ingest(str(data), str(out), mlmd=sqlite_url)  # the first config again: its files are gone
    assert not again.cached and again.counts == first.counts
    assert {s: count_records(out / f"Split-{s}") for s in ("train", "eval")} == first.counts
    mlmd = store_of(sqlite_url)
    assert [state(e) for e in executions(mlmd)] == ["COMPLETE", "COMPLETE", "COMPLETE"]
    examples = sorted(mlmd.get_artifacts_by_type(schema.EXAMPLES), key=lambda a: a.id)
    assert [a.state for a in examples] == [pb.Artifact.DELETED, pb.Artifact.DELETED, pb.Artifact.LIVE]
    assert [properties(a).get("superseded_by_artifact_id") for a in examples] == [
        examples[1].id, examples[2].id, None]


def test_interrupted_commit_is_not_reused(sqlite_url, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    write_taxi(data / "data.csv", 0, 100)
    ingest(str(data), str(out), mlmd=sqlite_url)
    # What a run killed in the middle of committing into `out` leaves: no metadata file, a
    # staging folder, and splits that may be half replaced.
    (out / "examples_metadata.json").unlink()
    (out / ".staging-0123456789ab").mkdir()
    again = ingest(str(data), str(out), mlmd=sqlite_url)
    assert not again.cached and (out / "examples_metadata.json").exists()
    assert [state(e) for e in executions(store_of(sqlite_url))] == ["COMPLETE", "COMPLETE"]


def test_changed_content_with_same_size_and_mtime_is_a_new_data_version(sqlite_url, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    train = write_taxi(data / "train.csv", 0, 200)
    evaluation = write_taxi(data / "eval.csv", 300, 50)
    first = ingest(str(data), str(out), input_config=PLAIN_SPLITS, mlmd=sqlite_url)
    old_digest = sha256_of(train)

    stat = train.stat()
    content = bytearray(train.read_bytes())
    assert content[-4:] == b"0.0\n"  # the last row's tips
    content[-2:-1] = b"7"
    train.write_bytes(bytes(content))
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (train.stat().st_size, train.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    new_digest = sha256_of(train)
    assert new_digest != old_digest

    second = ingest(str(data), str(out), input_config=PLAIN_SPLITS, mlmd=sqlite_url)
    assert not second.cached and second.input_fingerprint != first.input_fingerprint

    mlmd = store_of(sqlite_url)
    done, redone = executions(mlmd)
    assert (state(done), state(redone)) == ("COMPLETE", "COMPLETE")
    train_versions = {properties(a)["digest"]: a.id for a in mlmd.get_artifacts_by_uri(str(train))}
    assert set(train_versions) == {old_digest, new_digest}
    [eval_artifact] = mlmd.get_artifacts_by_uri(str(evaluation))  # unchanged: one artifact, reused
    assert input_ids(mlmd, done.id) == {train_versions[old_digest], eval_artifact.id}
    assert input_ids(mlmd, redone.id) == {train_versions[new_digest], eval_artifact.id}
    old, new = artifact(mlmd, output_id(mlmd, done.id)), artifact(mlmd, output_id(mlmd, redone.id))
    assert properties(new)["input_fingerprint"] == second.input_fingerprint != properties(old)["input_fingerprint"]
    assert (old.state, new.state) == (pb.Artifact.DELETED, pb.Artifact.LIVE)  # same output folder

    code, stdout, _ = run_cli(capsys, "versions", "--input-base", str(data), "--mlmd", sqlite_url, "--json")
    assert code == 0
    versions = json.loads(stdout)["versions"]
    assert [{f["uri"]: f["digest"] for f in v["files"]} for v in versions] == [
        {str(train): old_digest, str(evaluation): sha256_of(evaluation)},
        {str(train): new_digest, str(evaluation): sha256_of(evaluation)}]
    assert [v["input_fingerprints"] for v in versions] == [[first.input_fingerprint], [second.input_fingerprint]]


# --------------------------------------------------------------------------- resplit and lineage


def test_resplit_is_recorded_and_lineage_walks_upstream_and_downstream(sqlite_url, tmp_path, capsys):
    data, out, resplit_out = tmp_path / "data", tmp_path / "out", tmp_path / "resplit"
    csv = write_taxi(data / "data.csv", 0, 300)
    ingested = ingest(str(data), str(out), mlmd=sqlite_url)
    result = resplit(str(out), str(resplit_out), output_config=AB_SPLIT, mlmd=sqlite_url)
    assert sum(result.counts.values()) == 300

    mlmd = store_of(sqlite_url)
    [ingest_run] = executions(mlmd)
    [split_run] = executions(mlmd, schema.SPLIT)
    assert state(split_run) == "COMPLETE"
    assert json.loads(properties(split_run)["config"])["output_config"] == AB_SPLIT
    [consumed] = events(mlmd, split_run.id, pb.Event.INPUT)
    assert (consumed.artifact_id, consumed.path.steps[0].key) == (output_id(mlmd, ingest_run.id), "examples")
    produced = artifact(mlmd, output_id(mlmd, split_run.id))
    assert (produced.type, produced.uri, produced.state) == (schema.EXAMPLES, str(resplit_out), pb.Artifact.LIVE)
    counts = json.loads(properties(produced)["example_counts"])
    assert counts == {s: count_records(resplit_out / f"Split-{s}") for s in ("a", "b")} and sum(counts.values()) == 300
    assert properties(produced)["input_fingerprint"] == ingested.input_fingerprint

    # Upstream of the re-split output: the Split, the Ingest it read from, the source file.
    code, stdout, _ = run_cli(capsys, "lineage", str(resplit_out), "--mlmd", sqlite_url, "--json")
    assert code == 0
    [match] = json.loads(stdout)["matches"]
    assert match["artifact"]["id"] == produced.id
    upstream = match["upstream"]
    assert [(e["id"], e["type"], e["state"]) for e in upstream["executions"]] == [
        (split_run.id, schema.SPLIT, "COMPLETE"), (ingest_run.id, schema.INGEST, "COMPLETE")]
    assert upstream["executions"][1]["config"]["input_base"] == str(data)
    assert [(a["type"], a["uri"]) for a in upstream["artifacts"]] == [
        (schema.EXAMPLES, str(out)), (schema.SOURCE_FILE, str(csv))]
    assert upstream["artifacts"][1]["properties"]["digest"] == sha256_of(csv)
    assert match["downstream"]["executions"] == []
    code, by_id, _ = run_cli(capsys, "lineage", str(produced.id), "--mlmd", sqlite_url, "--json")
    assert code == 0 and json.loads(by_id)["matches"] == [match]  # an MLMD id names it too

    code, text, _ = run_cli(capsys, "lineage", str(resplit_out), "--mlmd", sqlite_url)
    assert code == 0
    up, down = text.split("Downstream (consumed it):")
    assert text.startswith(f"Artifact #{produced.id} tfx.Examples LIVE  {resplit_out}")
    assert f"execution #{split_run.id} examplegen.Split COMPLETE" in up
    assert f"execution #{ingest_run.id} examplegen.Ingest COMPLETE" in up
    [source_line] = [line for line in up.splitlines() if str(csv) in line]
    assert source_line.split()[:2] == ["in", f"#{upstream['artifacts'][1]['id']}"]
    assert f"examplegen.SourceFile LIVE  {csv}  {short(sha256_of(csv))}" in source_line
    assert down.strip() == "(none)"

    # Downstream of the first output: the Split execution and what it produced.
    code, stdout, _ = run_cli(capsys, "lineage", str(out), "--mlmd", sqlite_url, "--json")
    assert code == 0
    [match] = json.loads(stdout)["matches"]
    assert [e["id"] for e in match["upstream"]["executions"]] == [ingest_run.id]
    assert [(e["id"], e["type"]) for e in match["downstream"]["executions"]] == [(split_run.id, schema.SPLIT)]
    assert [a["uri"] for a in match["downstream"]["artifacts"]] == [str(resplit_out)]
    code, text, _ = run_cli(capsys, "lineage", str(out), "--mlmd", sqlite_url)
    down = text.split("Downstream (consumed it):")[1]
    assert f"execution #{split_run.id} examplegen.Split COMPLETE" in down
    assert f"out #{produced.id} tfx.Examples LIVE  {resplit_out}" in down

    # Downstream of the source file: the Ingest, then the Split through its Examples.
    code, stdout, _ = run_cli(capsys, "lineage", str(csv), "--mlmd", sqlite_url, "--json")
    [match] = json.loads(stdout)["matches"]
    assert [e["type"] for e in match["downstream"]["executions"]] == [schema.INGEST, schema.SPLIT]


def test_versions_lists_each_span_with_digests_dates_and_examples(sqlite_url, tmp_path, capsys):
    data = tmp_path / "data"
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    span1 = write_taxi(data / "span-1" / "data.csv", 0, 60)
    common = ["--input-base", str(data), "--input-config", json.dumps(SPAN_DIRS), "--mlmd", sqlite_url]
    code, stdout, _ = run_cli(capsys, "ingest", *common, "--output", str(tmp_path / "out1"), "--json")
    assert code == 0
    first = json.loads(stdout)
    span2 = write_taxi(data / "span-2" / "data.csv", 1000, 90)  # a new span arrives
    code, stdout, _ = run_cli(capsys, "ingest", *common, "--output", str(tmp_path / "out2"), "--json")
    assert code == 0
    second = json.loads(stdout)
    assert (first["span"], second["span"]) == (1, 2)

    code, stdout, _ = run_cli(capsys, "versions", *common, "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["input_base"] == str(data)
    versions = report["versions"]
    assert [(v["span"], v["version"]) for v in versions] == [(1, None), (2, None)]
    ended = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    for version, path, run, rows, out in ((versions[0], span1, first, 60, "out1"),
                                          (versions[1], span2, second, 90, "out2")):
        assert [(f["uri"], f["digest"], f["size"], f["split"]) for f in version["files"]] == [
            (str(path), sha256_of(path), path.stat().st_size, "single_split")]
        assert version["input_fingerprints"] == [run["input_fingerprint"]]
        for key in ("first_seen", "last_seen"):
            seen = datetime.datetime.strptime(version[key], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=datetime.timezone.utc)
            assert started <= seen <= ended
        assert [(r["type"], r["state"]) for r in version["runs"]] == [(schema.INGEST, "COMPLETE")]
        [examples] = version["examples"]
        assert (examples["uri"], examples["state"]) == (str(tmp_path / out), "LIVE")
        assert examples["split_names"] == ["train", "eval"]
        assert examples["example_counts"] == run["counts"] and sum(run["counts"].values()) == rows

    code, text, _ = run_cli(capsys, "versions", *common)
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == f"Data versions under {data}  (MLMD store {sqlite_url})"
    rows = [line.split() for line in lines if line[:1].isdigit()]
    assert [(r[0], r[1], r[4], r[5]) for r in rows] == [("1", "-", "1", "1"), ("2", "-", "1", "1")]
    assert [r[2] for r in rows] == [v["first_seen"] for v in versions]
    for version, path, out in ((versions[0], span1, "out1"), (versions[1], span2, "out2")):
        [file_line] = [line for line in lines if line.strip().startswith("file") and str(path) in line]
        assert short(sha256_of(path)) in file_line
        [examples_line] = [line for line in lines if line.strip().startswith("examples") and
                           line.endswith(str(tmp_path / out))]
        assert examples_line.split()[1:3] == [f"#{version['examples'][0]['artifact_id']}", "LIVE"]


# --------------------------------------------------------------------------- failures


def test_failed_ingest_is_recorded_failed_and_the_next_good_run_works(sqlite_url, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    csv = write_taxi(data / "data.csv", 0, 50)
    good = csv.read_bytes()
    with open(csv, "ab") as f:  # line 52 (the header is line 1) has 2 fields instead of 18
        f.write(b"1,2\n" + b"\n".join(_taxi_rows()[1][50:60]) + b"\n")
    code, _, err = run_cli(capsys, "ingest", "--input-base", str(data), "--output", str(out), "--mlmd", sqlite_url)
    assert code == 1
    assert f"{csv}: line 52: expected 18 fields, got 2" in err

    mlmd = store_of(sqlite_url)
    [failed] = executions(mlmd)
    assert state(failed) == "FAILED"
    p = properties(failed)
    assert p["error_message"].startswith(f"SourceError: {csv}: line 52: expected 18 fields, got 2")
    assert p["start_time"] <= p["end_time"]
    assert mlmd.get_artifacts_by_type(schema.EXAMPLES) == [] and events(mlmd, failed.id, pb.Event.OUTPUT) == []
    [read] = mlmd.get_artifacts_by_id(list(input_ids(mlmd, failed.id)))
    assert (read.uri, properties(read)["digest"]) == (str(csv), sha256_of(csv))
    assert not (out / "examples_metadata.json").exists() and not list(out.glob("Split-*"))

    with pytest.raises(SourceError, match="line 52"):  # the same bad data fails again (no cache)
        ingest(str(data), str(out), mlmd=sqlite_url)
    csv.write_bytes(good)
    result = ingest(str(data), str(out), mlmd=sqlite_url)
    assert not result.cached and sum(result.counts.values()) == 50
    *failures, done = executions(mlmd)
    assert [state(e) for e in failures] == ["FAILED", "FAILED"] and state(done) == "COMPLETE"
    [examples] = mlmd.get_artifacts_by_type(schema.EXAMPLES)
    assert examples.state == pb.Artifact.LIVE and output_id(mlmd, done.id) == examples.id


@pytest.fixture
def mysql_user():
    """A MariaDB database and a user with a password that may use it; both dropped after."""
    import pymysql

    tag = uuid.uuid4().hex[:10]
    db, user, password = f"eg_cred_{tag}", f"eg_u_{tag}", f"secret-{tag}"
    conn = pymysql.connect(**MYSQL, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}`")
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT ALL ON `{db}`.* TO '{user}'@'%'")
        yield db, user, password
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()


def _everything_in(db: str) -> str:
    """Every row of every table of the MLMD database, as text."""
    import pymysql

    conn = pymysql.connect(**MYSQL, database=db)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            tables = [t for (t,) in cur.fetchall()]
            assert {"Artifact", "Execution", "Context", "ExecutionProperty"} <= set(tables)
            text = []
            for table in tables:
                cur.execute(f"SELECT * FROM `{table}`")
                text.extend(repr(row) for row in cur.fetchall())
    finally:
        conn.close()
    return "\n".join(text)


def test_mysql_credentials_never_reach_mlmd_logs_or_output(mysql_user, tmp_path, capfd):
    db, user, password = mysql_user
    url = f"mysql://{user}:{password}@127.0.0.1:3306/{db}"
    data, out = tmp_path / "data", tmp_path / "out"
    write_taxi(data / "data.csv", 0, 100)
    proc = cli_process("ingest", "--input-base", str(data), "--output", str(out), "--mlmd", url)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    texts = [stdout, stderr]

    assert main(["ingest", "--input-base", str(data), "--output", str(out), "--mlmd", url, "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["cached"] is True
    (data / "data.csv").write_bytes(b"a,b\n1\n")  # a failure: its message is recorded
    assert main(["ingest", "--input-base", str(data), "--output", str(out), "--mlmd", url]) == 1
    for argv in (["lineage", str(out)], ["versions", "--input-base", str(data)]):
        assert main([*argv, "--mlmd", url]) == 0
        assert main([*argv, "--mlmd", url, "--json"]) == 0
    assert main(["lineage", str(out), "--mlmd", f"mysql://{user}:{password}x@127.0.0.1:3306/{db}"]) == 1
    captured = capfd.readouterr()
    texts += [captured.out, captured.err]
    assert f"{user}:***@127.0.0.1:3306/{db}" in captured.out + captured.err  # the store is named, redacted

    mlmd = store_of(url)
    assert [state(e) for e in executions(mlmd)] == ["COMPLETE", "CACHED", "FAILED"]
    for node in [*mlmd.get_executions(), *mlmd.get_artifacts(), *mlmd.get_contexts()]:
        texts.append(str(node))  # names, URIs, properties and custom properties
    texts.append(_everything_in(db))
    texts += [p.read_text(errors="replace") for p in out.rglob("*") if p.is_file() and p.suffix != ".gz"]
    for text in texts:
        assert "secret" not in text and password not in text


@pytest.mark.parametrize("case", ["wrong-password", "unreachable-port", "missing-sqlite-folder"])
def test_bad_store_fails_before_any_data_is_read(case, mysql_user, tmp_path, capsys, monkeypatch):
    db, user, password = mysql_user
    url, message = {
        "wrong-password": (f"mysql://{user}:not-{password}@127.0.0.1:3306/{db}", f"access denied for user '{user}'"),
        "unreachable-port": (f"mysql://{user}:{password}@127.0.0.1:1/{db}", "cannot connect"),
        "missing-sqlite-folder": (f"sqlite:///{tmp_path / 'nowhere' / 'mlmd.sqlite'}", "does not exist"),
    }[case]
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    (data / "data.csv").write_bytes(b"a,b\n1,2\n3\n")  # reading it would fail differently
    touched = []
    import examplegen.ingest as ingest_module
    import examplegen.span as span_module

    for module, name in ((ingest_module, "resolve_spans"), (ingest_module, "convert_files"),
                         (span_module, "file_digest")):
        original = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=original, _n=name, **k: (touched.append(_n), _f(*a, **k))[1])

    code, stdout, err = run_cli(capsys, "ingest", "--input-base", str(data), "--output", str(out), "--mlmd", url)
    assert code == 1 and stdout == ""
    assert err.startswith("examplegen ingest: error: ") and message in err
    assert "MLMD" in err or "store" in err
    assert "fields" not in err and "secret" not in err  # no data read; no password shown
    assert touched == []  # no input was resolved, hashed or converted
    assert not out.exists()


# --------------------------------------------------------------------------- processes

# `examplegen ARGV[3:]` once every party has imported everything and reached the barrier
# folder ARGV[1]; then each holds, right after its execution is recorded RUNNING in the
# store, until every party's is: the runs overlap by construction, not by scheduling luck.
_TOGETHER = """
import os, sys, time
from examplegen.cli import main
import examplegen.ingest, examplegen.lineage.store
from examplegen.lineage.recorder import Recorder
from ml_metadata.metadata_store import metadata_store
barrier, parties = sys.argv[1], int(sys.argv[2])

def wait_for_all(folder):
    os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, str(os.getpid())), "w").close()
    deadline = time.time() + 60
    while len(os.listdir(folder)) < parties and time.time() < deadline:
        time.sleep(0.005)

started = Recorder.start
def start_then_wait(self):
    execution_id = started(self)
    wait_for_all(os.path.join(barrier, "running"))
    return execution_id
Recorder.start = start_then_wait
wait_for_all(os.path.join(barrier, "imported"))
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_two_ingest_processes_into_one_store_at_once_both_succeed(kind, request, tmp_path):
    url = request.getfixturevalue(f"{kind}_url")  # new and empty: they also race to create it
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    names = ("p1", "p2")
    inputs = {name: write_taxi(tmp_path / name / "data.csv", 0 if name == "p1" else 5000, 5000, repeat=6)
              for name in names}
    procs = {name: subprocess.Popen(
        [sys.executable, "-c", _TOGETHER, str(barrier), "2", "ingest", "--input-base", str(tmp_path / name),
         "--output", str(tmp_path / f"out-{name}"), "--run-name", f"run-{name}", "--workers", "1",
         "--mlmd", url], cwd=REPO_ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for name in names}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name} failed:\n{err[-3000:]}"

    mlmd = store_of(url)
    runs = executions(mlmd)
    assert [state(e) for e in runs] == ["COMPLETE", "COMPLETE"]
    by_run = {}
    for execution in runs:
        [run] = [c for c in mlmd.get_contexts_by_execution(execution.id) if c.type == schema.RUN_CONTEXT]
        by_run[run.name] = execution
    assert set(by_run) == {"run-p1", "run-p2"}
    first, second = (properties(by_run[f"run-{n}"]) for n in names)
    assert first["start_time"] < second["end_time"] and second["start_time"] < first["end_time"]  # overlapped
    assert len(os.listdir(barrier / "running")) == 2  # both held RUNNING at once
    for name in names:
        execution = by_run[f"run-{name}"]
        [source] = mlmd.get_artifacts_by_id(list(input_ids(mlmd, execution.id)))
        assert (source.uri, properties(source)["digest"]) == (str(inputs[name]), sha256_of(inputs[name]))
        examples = artifact(mlmd, output_id(mlmd, execution.id))
        assert (examples.uri, examples.state) == (str(tmp_path / f"out-{name}"), pb.Artifact.LIVE)
        counts = json.loads(properties(examples)["example_counts"])
        assert sum(counts.values()) == 30000 == properties(execution)["rows_written"]
        assert counts == {s: count_records(tmp_path / f"out-{name}" / f"Split-{s}") for s in counts}
    assert len(mlmd.get_artifacts_by_type(schema.SOURCE_FILE)) == 2
    assert len(mlmd.get_artifacts_by_type(schema.EXAMPLES)) == 2
    [pipeline] = mlmd.get_contexts_by_type(schema.PIPELINE_CONTEXT)
    for run in mlmd.get_contexts_by_type(schema.RUN_CONTEXT):
        assert [p.id for p in mlmd.get_parent_contexts_by_context(run.id)] == [pipeline.id]


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_ingest_killed_mid_way_leaves_no_complete_execution_and_no_live_output(kind, request, tmp_path):
    url = request.getfixturevalue(f"{kind}_url")
    data, out = tmp_path / "data", tmp_path / "out"
    big = write_taxi(data / "data.csv", 0, 10000, repeat=40)  # 400,000 rows, ~55 MB
    proc = cli_process("ingest", "--input-base", str(data), "--output", str(out), "--workers", "1",
                       "--mlmd", url)
    deadline = time.time() + 60
    while not glob.glob(str(out / ".staging-*" / "parts" / "*")):
        if proc.poll() is not None:
            pytest.fail(f"ingest ended (exit {proc.returncode}) before it was killed:\n{proc.stderr.read()[-3000:]}")
        assert time.time() < deadline, "no part files appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    mlmd = store_of(url)
    [killed] = executions(mlmd)
    assert state(killed) == "RUNNING"  # not COMPLETE (nobody was left to say otherwise)
    assert "end_time" not in properties(killed)
    assert mlmd.get_artifacts_by_type(schema.EXAMPLES) == [] and events(mlmd, killed.id, pb.Event.OUTPUT) == []
    [source] = mlmd.get_artifacts_by_type(schema.SOURCE_FILE)
    assert properties(source)["digest"] == sha256_of(big)
    assert not (out / "examples_metadata.json").exists() and not list(out.glob("Split-*"))

    result = ingest(str(data), str(out), mlmd=url, workers=1)  # the same run again
    assert not result.cached and sum(result.counts.values()) == 400000
    killed_again, done = executions(mlmd)
    assert killed_again.id == killed.id and state(killed_again) == "FAILED"  # its staging told it died
    assert properties(killed_again)["error_message"].startswith(f"abandoned: process {proc.pid} ")
    assert properties(killed_again)["abandoned_by_execution_id"] == done.id
    assert state(done) == "COMPLETE" and input_ids(mlmd, done.id) == {source.id}
    [examples] = mlmd.get_artifacts_by_type(schema.EXAMPLES)
    assert examples.state == pb.Artifact.LIVE and output_id(mlmd, done.id) == examples.id
    assert json.loads(properties(examples)["example_counts"]) == result.counts
    assert sorted(os.listdir(out)) == ["Split-eval", "Split-train", "examples_metadata.json"]  # staging cleared


def test_input_files_without_rows_are_recorded(tmp_path, sqlite_url):
    url = sqlite_url
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("x\n1\n2\n")
    (tmp_path / "in" / "b.csv").write_text("x\n")
    ingest(str(tmp_path / "in"), str(tmp_path / "out"), mlmd=url)
    [execution] = executions(store_of(url))
    assert json.loads(properties(execution)["files_without_rows"]) == {
        "single_split": [str(tmp_path / "in" / "b.csv")]}
