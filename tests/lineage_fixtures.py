"""Shared fixtures and helpers for the lineage tests (real SQLite, MariaDB, PostgreSQL).

Test modules import the fixtures they use: `from tests.lineage_fixtures import sqlite_url`.
Run as `python -m tests.lineage_fixtures worker ...` it is the child process of the
concurrency and kill tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Optional

import pytest

from examplegen.result import IngestResult, SourceFile

REPO_ROOT = Path(__file__).resolve().parents[1]
MYSQL = dict(host="127.0.0.1", port=3306, user="root", password="")
POSTGRES = dict(host="127.0.0.1", port=5432, user="postgres")


# --------------------------------------------------------------------------- data helpers


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_source(path: Path, data: bytes, split: str = "train", span: int = 0,
                 version: Optional[int] = None) -> SourceFile:
    """Write `data` to `path` and describe it as span.py would (digest of the bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return SourceFile(uri=str(path), size=len(data), digest=sha256_digest(data), split=split,
                      span=span, version=version)


def fingerprint(sources: list[SourceFile]) -> str:
    """A content fingerprint of the inputs (the tests' stand-in for span.py's)."""
    lines = sorted(f"{s.split}\0{s.uri}\0{s.digest}" for s in sources)
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def write_examples(out: Path, counts: dict[str, int]) -> None:
    """Lay out an Examples directory: Split-<name>/ with one data file each."""
    for name in counts:
        folder = out / f"Split-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "data_tfrecord-00000-of-00001.gz").write_bytes(b"\x1f\x8b placeholder")


def make_result(out: Path, sources: list[SourceFile], counts: dict[str, int],
                config: Optional[dict] = None, span: int = 0, version: Optional[int] = None) -> IngestResult:
    write_examples(out, counts)
    total = sum(counts.values())
    return IngestResult(
        output_uri=str(out), split_names=sorted(counts), counts=dict(counts), span=span,
        version=version, input_fingerprint=fingerprint(sources), payload_format="FORMAT_TF_EXAMPLE",
        spans=[span], rows_read=total + 1, rows_written=total, rows_rejected=1,
        sources=list(sources), config=dict(config or {}),
    )


# --------------------------------------------------------------------------- stores


def _pymysql():
    import pymysql

    return pymysql.connect(**MYSQL, autocommit=True)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlmd.sqlite'}"


@pytest.fixture
def mysql_url():
    """A fresh MariaDB database for this test, dropped afterwards."""
    name = "eg_test_" + uuid.uuid4().hex[:12]
    conn = _pymysql()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield f"mysql://root@127.0.0.1:3306/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    import psycopg2

    name = "eg_test_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(dbname="postgres", **POSTGRES)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(params=["sqlite", "mysql", "postgresql"])
def store_url(request, tmp_path) -> str:
    """Each kind of real store in turn."""
    return request.getfixturevalue({"sqlite": "sqlite_url", "mysql": "mysql_url",
                                    "postgresql": "postgres_url"}[request.param])


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.lineage_fixtures", *args]


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --------------------------------------------------------------------------- worker process


def _worker(argv: list[str]) -> int:
    """Record `--runs` ingestion runs; with --hold, stop after recording inputs and sleep."""
    from examplegen.lineage import Recorder, open_store

    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--data", required=True, help="directory with shared.csv")
    parser.add_argument("--name", required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--hold", help="write this file once inputs are recorded, then sleep")
    parser.add_argument("--parties", type=int, default=1, help="workers to wait for after opening")
    args = parser.parse_args(argv)
    time.sleep(max(0.0, args.start_at - time.time()))  # open together with the other workers
    data = Path(args.data)
    shared = SourceFile(str(data / "shared.csv"), 11, sha256_digest(b"shared data"), "train")
    store = open_store(args.url)
    (data / f"opened-{args.name}").touch()  # barrier: record only once every worker is ready
    deadline = time.time() + 30
    while len(list(data.glob("opened-*"))) < args.parties and time.time() < deadline:
        time.sleep(0.005)
    for i in range(args.runs):
        own = write_source(data / f"{args.name}-{i}.csv", f"{args.name} {i}".encode())
        sources = [shared, own]
        config = {"worker": args.name, "run": i}
        with Recorder(store, config=config, run_name=f"{args.name}-run-{i}") as rec:
            rec.record_inputs(sources)
            if args.hold:
                Path(args.hold + ".tmp").write_text(json.dumps({"execution_id": rec.execution_id}))
                os.replace(args.hold + ".tmp", args.hold)
                time.sleep(120)
            result = make_result(data / "out" / f"{args.name}-{i}", sources, {"train": 3, "eval": 1},
                                 config=config)
            rec.complete(result)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.exit(_worker(sys.argv[2:]))
    sys.exit(f"usage: {sys.argv[0]} worker URL --data DIR --name NAME [--runs N] [--hold FILE]")
