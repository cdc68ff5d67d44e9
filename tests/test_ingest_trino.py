"""The trino query source with the official ``trino`` client, unmodified, against a
stand-in of Trino's HTTP protocol (tests/trino_standin.py: no Trino server can be
installed here). What the stand-in shows: the protocol (POST, nextUri paging, Trino's
error JSON, headers, TLS, basic and JWT authentication) and Trino's type names and wire
values; what it cannot show: Trino's SQL itself (SQLite runs the queries).
"""

from __future__ import annotations

import collections
import datetime
import decimal
import json
import os
import sqlite3
import subprocess
import sys
import uuid

import pyarrow as pa
import pytest

from examplegen.errors import ConfigError, SourceError
from examplegen.query_ingest import ingest_query
from examplegen.sources import trino as trino_source
from tests.helpers import (REPO, canonical, example_values, expected_values, plain_values, read_split,
                           run_query_pipeline, tree_bytes)
from tests.trino_standin import TrinoStandIn

UTC = datetime.timezone.utc
COLUMNS = [("id", "bigint"), ("small", "integer"), ("amount", "decimal(10,2)"), ("ratio", "double"),
           ("ok", "boolean"), ("name", "varchar"), ("code", "char(3)"), ("raw", "varbinary"), ("day", "date"),
           ("at", "timestamp(6) with time zone"), ("local", "timestamp(3)"), ("doc", "json"),
           ("tags", "array(bigint)"), ("pair", "row(a bigint, b varchar)"), ("counts", "map(varchar, bigint)"),
           ("nanos", "timestamp(9)")]
KINDS = {"id": "int64_list", "small": "int64_list", "amount": "float_list", "ratio": "float_list",
         "ok": "int64_list", "name": "bytes_list", "code": "bytes_list", "raw": "bytes_list", "day": "int64_list",
         "at": "int64_list", "local": "int64_list", "doc": "bytes_list", "tags": "int64_list",
         "pair.a": "int64_list", "pair.b": "bytes_list", "counts.key": "bytes_list", "counts.value": "int64_list",
         "nanos": "int64_list"}


def _rows(n: int) -> list[tuple]:
    zeros = (0, 0, decimal.Decimal("0.00"), 0.0, False, "", "000", b"", datetime.date(1970, 1, 1),
             datetime.datetime(1970, 1, 1, tzinfo=UTC), datetime.datetime(1970, 1, 1), "0", [0], (0, ""), {"": 0},
             datetime.datetime(1970, 1, 1))
    nulls = (1,) + (None,) * 11 + ([], None, None, None)
    rows = [zeros, nulls]
    for i in range(2, n):
        rows.append((i, -i, decimal.Decimal(i * 101).scaleb(-2), i / 7, i % 2 == 0, f"név {i}", f"c{i % 10:02d}",
                     bytes([i % 256, 0, 255]), datetime.date(2024, 1, 1) + datetime.timedelta(days=i),
                     datetime.datetime(2024, 3, 1, 12, 0, 0, i, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
                     datetime.datetime(2023, 1, 1, 0, 0, i % 60, 123000), json.dumps({"i": i}),
                     list(range(i % 4)), (i, f"b{i}") if i % 3 else None, {f"k{j}": j * i for j in range(i % 3)},
                     datetime.datetime(2022, 2, 2, 2, 2, 2, i * 1001)))
    return rows


def _as_dict(row: tuple) -> dict:
    out = dict(zip([c for c, _ in COLUMNS], row))
    pair = out.pop("pair")
    out["pair"] = {"a": pair[0], "b": pair[1]} if pair is not None else {"a": None, "b": None}
    counts = out.pop("counts") or {}
    out["counts"] = {"key": list(counts), "value": list(counts.values())}  # a map: key and value lists
    return out


@pytest.fixture
def standin(tmp_path):
    password = f"Tr1no-{uuid.uuid4().hex}-okapi"
    server = TrinoStandIn({"t": (COLUMNS, _rows(50))}, user="alice", password=password, cert_dir=str(tmp_path))
    server.secret = password
    try:
        yield server
    finally:
        server.stop()


def _config(query: str) -> dict:
    return {"splits": [{"name": "single_split", "pattern": query}]}


def _examples(artifact: str) -> collections.Counter:
    return collections.Counter(canonical(example_values(r)) for split in ("train", "eval")
                               for r in read_split(artifact, split))


def test_every_type_and_null_heavy_columns_over_many_pages_with_basic_auth(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("EXAMPLEGEN_DB_PASSWORD", standin.secret)
    url = f"trino://alice@127.0.0.1:{standin.port}/hive/web"
    result = ingest_query(url, str(tmp_path / "out"), source_format="trino", input_config=_config("SELECT * FROM t"),
                          source_options={"verify": standin.ca_path})
    assert result.rows_written == 50
    assert _examples(str(tmp_path / "out")) == collections.Counter(
        canonical(expected_values(plain_values(_as_dict(r)), KINDS)) for r in _rows(50))
    gets = [r for r in standin.requests if r[0] == "GET"]
    assert len(gets) == 8  # 50 rows in pages of 7, each fetched through nextUri
    assert {r[2]["X-Trino-Catalog"] for r in standin.requests} == {"hive"}
    assert {r[2]["X-Trino-Schema"] for r in standin.requests} == {"web"}
    assert all(r[2]["Authorization"].startswith("Basic ") for r in standin.requests)
    values = {example_values(r)["id"][1][0]: example_values(r) for s in ("train", "eval")
              for r in read_split(str(tmp_path / "out"), s)}
    assert values[0]["ok"] == ("int64_list", (0,)) and values[0]["name"] == ("bytes_list", (b"",))
    assert values[0]["amount"] == ("float_list", (0.0,)) and values[0]["at"] == ("int64_list", (0,))
    assert values[1]["amount"] == ("float_list", ()) and values[1]["pair.a"] == ("int64_list", ())
    assert values[1]["raw"] == ("bytes_list", ()) and values[1]["tags"] == ("int64_list", ())
    # timestamp(6) with time zone at +02:00 is the UTC instant
    assert values[2]["at"] == ("int64_list", (int(datetime.datetime(2024, 3, 1, 10, 0, 0, 2, tzinfo=UTC)
                                                   .timestamp() * 10**6),))
    # options name the catalog and schema over the URL path
    ingest_query(url, str(tmp_path / "again"), source_format="trino", input_config=_config("SELECT id FROM t"),
                 source_options={"verify": standin.ca_path, "catalog": "iceberg", "db_schema": "prod"})
    assert standin.requests[-1][2]["X-Trino-Catalog"] == "iceberg"
    assert standin.requests[-1][2]["X-Trino-Schema"] == "prod"


def test_jwt_from_the_url_or_the_environment_and_errors_in_trinos_form(tmp_path, monkeypatch):
    token = f"eyJ-{uuid.uuid4().hex}-tok"
    server = TrinoStandIn({"t": ([("id", "bigint")], [(i,) for i in range(10)])}, user="bob", token=token,
                          cert_dir=str(tmp_path))
    try:
        opts = {"verify": server.ca_path}
        base = f"trino://bob@127.0.0.1:{server.port}/memory/default"
        done = ingest_query(f"{base}?access_token={token}", str(tmp_path / "a"), source_format="trino",
                            input_config=_config("SELECT * FROM t"), source_options=opts)
        assert done.rows_written == 10 and done.sources[0].uri == base  # the token is not in the recorded URL
        assert server.requests[-1][2]["Authorization"] == f"Bearer {token}"
        # The pipeline's one secret (EXAMPLEGEN_DB_PASSWORD) holding a JWT: auth "jwt".
        monkeypatch.setenv("EXAMPLEGEN_DB_PASSWORD", token)
        assert ingest_query(base, str(tmp_path / "p"), source_format="trino", source_options=dict(opts, auth="jwt"),
                            input_config=_config("SELECT * FROM t")).rows_written == 10
        assert server.requests[-1][2]["Authorization"] == f"Bearer {token}"
        empty = ingest_query(base, str(tmp_path / "e"), source_format="trino", source_options=dict(opts, auth="jwt"),
                             input_config=_config("SELECT * FROM t WHERE id < 0"))
        assert empty.rows_written == 0 and empty.sources[0].rows == 0
        monkeypatch.delenv("EXAMPLEGEN_DB_PASSWORD")
        monkeypatch.setenv("EXAMPLEGEN_DB_TOKEN", token)
        assert ingest_query(base, str(tmp_path / "b"), source_format="trino", input_config=_config("SELECT * FROM t"),
                            source_options=opts).rows_written == 10
        with pytest.raises(SourceError, match=r"span 0: the query failed: TABLE_NOT_FOUND: line 1:1: no such "
                                              r"table: nope") as error:
            ingest_query(base, str(tmp_path / "c"), source_format="trino", input_config=_config("SELECT * FROM nope"),
                         source_options=opts)
        assert token not in str(error.value) and not (tmp_path / "c").exists()
        monkeypatch.setenv("EXAMPLEGEN_DB_TOKEN", token + "x")
        with pytest.raises(SourceError, match="401") as error:
            ingest_query(base, str(tmp_path / "d"), source_format="trino", input_config=_config("SELECT * FROM t"),
                         source_options=opts)
        assert token not in str(error.value)
    finally:
        server.stop()
    with pytest.raises(ConfigError, match="needs a user"):
        trino_source.connection("trino://127.0.0.1:8080/hive")
    with pytest.raises(ConfigError, match="both a password and a token"):
        trino_source.connection("trino://u:p@127.0.0.1:8080/hive?access_token=t")


def test_rerun_is_cached_and_a_changed_table_a_new_version(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("EXAMPLEGEN_DB_PASSWORD", standin.secret)
    url = f"trino://alice@127.0.0.1:{standin.port}/hive/web"
    args = dict(source_format="trino", input_config=_config("SELECT id, amount, tags FROM t"),
                source_options={"verify": standin.ca_path}, mlmd=f"sqlite:///{tmp_path}/mlmd.sqlite")
    first = ingest_query(url, str(tmp_path / "a"), **args)
    again = ingest_query(url, str(tmp_path / "a"), **args)
    assert not first.cached and again.cached and again.input_fingerprint == first.input_fingerprint
    standin.load("t", COLUMNS, list(reversed(_rows(50))))  # same rows, another order: same version
    assert ingest_query(url, str(tmp_path / "a"), **args).cached
    changed_rows = _rows(50)
    changed_rows[7] = changed_rows[7][:2] + (decimal.Decimal("1.23"),) + changed_rows[7][3:]
    standin.load("t", COLUMNS, changed_rows)
    changed = ingest_query(url, str(tmp_path / "a"), **args)
    assert not changed.cached and changed.input_fingerprint != first.input_fingerprint
    assert changed.sources[0].rows == 50 and changed.sources[0].digest != first.sources[0].digest


def test_span_placeholders_are_filled(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("EXAMPLEGEN_DB_PASSWORD", standin.secret)
    day = 19000
    standin.load("events", [("id", "bigint"), ("epoch", "bigint")],
                 [(i, (day - 1) * 86400 + i * 21600) for i in range(12)])  # four a day, from the day before
    query = ("SELECT id, @span_yyyymmdd_utc AS yyyymmdd FROM events WHERE epoch >= @span_begin_timestamp "
             "AND epoch < @span_end_timestamp")
    result = ingest_query(f"trino://alice@127.0.0.1:{standin.port}/hive/web", str(tmp_path / "out"),
                          source_format="trino", input_config=_config(query),
                          range_config={"static_range": {"start_span_number": day, "end_span_number": day}},
                          source_options={"verify": standin.ca_path})
    values = [example_values(r) for s in ("train", "eval") for r in read_split(str(tmp_path / "out"), s)]
    assert sorted(v["id"][1][0] for v in values) == [4, 5, 6, 7]
    assert {v["yyyymmdd"] for v in values} == {("bytes_list", (b"20220108",))} and result.span == day


def test_presto_urls_speak_the_same_protocol_with_presto_headers(tmp_path, monkeypatch):
    password = f"Pr3sto-{uuid.uuid4().hex}"
    rows = [(1, datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)), (2, None)]
    server = TrinoStandIn({"t": ([("id", "bigint"), ("at", "timestamp(3) with time zone")], rows)}, user="carol",
                          password=password, presto=True, cert_dir=str(tmp_path))
    try:
        monkeypatch.setenv("EXAMPLEGEN_DB_PASSWORD", password)
        result = ingest_query(f"presto://carol@127.0.0.1:{server.port}/hive/web", str(tmp_path / "out"),
                              source_format="trino", input_config=_config("SELECT * FROM t"),
                              source_options={"verify": server.ca_path})
        assert result.rows_written == 2
        headers = server.requests[0][2]
        assert headers["X-Presto-User"] == "carol" and headers["X-Presto-Catalog"] == "hive"
        assert headers["X-Presto-Schema"] == "web"
        at = sorted(example_values(r)["at"] for s in ("train", "eval") for r in read_split(str(tmp_path / "out"), s))
        assert at == [("int64_list", ()), ("int64_list", (1704164645000000,))]
    finally:
        server.stop()


def test_trino_type_names_map_to_arrow_and_others_are_a_clear_error():
    assert trino_source.arrow_type("timestamp(6) with time zone") == pa.timestamp("us", tz="UTC")
    assert trino_source.arrow_type("timestamp(3)") == pa.timestamp("us")
    assert trino_source.arrow_type("decimal(10,2)") == pa.decimal128(10, 2)
    assert trino_source.arrow_type("array(bigint)") == pa.list_(pa.int64())
    assert trino_source.arrow_type("varchar(20)") == pa.string() and trino_source.arrow_type("real") == pa.float32()
    assert trino_source.arrow_type('row("a b" array(double), c row(d varbinary))') == pa.struct(
        [("a b", pa.list_(pa.float64())), ("c", pa.struct([("d", pa.binary())]))])
    assert trino_source.arrow_type("map(varchar, bigint)") == pa.map_(pa.string(), pa.int64())
    with pytest.raises(ConfigError, match=r"column 'span' has Trino type 'interval day to second'.*CAST\(span"):
        trino_source._column_types([("span", "interval day to second")], "q")


def _everything_under(root) -> bytes:
    return b"\n".join(tree_bytes(str(root)).values())


def test_password_and_token_never_reach_logs_mlmd_artifacts_or_errors(standin, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    mlmd = work / "mlmd.sqlite"
    env = {**os.environ, "EXAMPLEGEN_MLMD": f"sqlite:///{mlmd}", "PYTHONPATH": REPO}
    env.pop("EXAMPLEGEN_DB_PASSWORD", None)
    token = f"jwt-{uuid.uuid4().hex}-lynx"
    host = f"alice@127.0.0.1:{standin.port}/hive/web"
    base = [sys.executable, "-m", "examplegen.cli", "ingest", "--format", "trino", "--input-config",
            json.dumps(_config("SELECT * FROM t")), "--source-options", json.dumps({"verify": standin.ca_path})]
    runs = [(f"trino://alice:{standin.secret}@{host.split('@')[1]}", env, 0),
            (f"trino://{host}", {**env, "EXAMPLEGEN_DB_PASSWORD": standin.secret}, 0),
            (f"trino://alice:{standin.secret}x@{host.split('@')[1]}", env, 1),
            (f"trino://{host}?access_token={token}", env, 1)]  # the stand-in wants the password: 401
    logs = []
    for k, (url, run_env, code) in enumerate(runs):
        proc = subprocess.run([*base, "--connection", url, "--output", str(work / f"out{k}"), "--json"],
                              env=run_env, capture_output=True, text=True, timeout=300, cwd=work)
        assert proc.returncode == code, proc.stderr
        logs.append(proc.stdout + proc.stderr)
    assert json.loads(logs[1])["cached"] is True
    assert "401" in logs[2] and f"trino://{host} input split" in logs[2]
    written = _everything_under(work) + "\n".join(logs).encode()
    assert b"examplegen.SourceFile" in written and f"trino://{host}".encode() in written
    assert standin.secret.encode() not in written and token.encode() not in written
    # The lineage store holds the runs (not only files that happen to lack the secret).
    with sqlite3.connect(mlmd) as db:
        assert db.execute("SELECT COUNT(*) FROM Execution").fetchone()[0] >= 2


def test_query_pipeline_runs_trino_with_the_password_from_the_environment(standin, tmp_path, monkeypatch, capsys):
    from examplegen.cli import main

    monkeypatch.setenv("EXAMPLEGEN_DB_PASSWORD", standin.secret)  # what the Kubernetes secret sets
    monkeypatch.delenv("EXAMPLEGEN_MLMD", raising=False)
    root = tmp_path / "root"
    url = f"trino://alice@127.0.0.1:{standin.port}/hive/web"
    params = ["--param", f"connection={url}", "--param", "source_format=trino", "--param",
              f"input_config={json.dumps(_config('SELECT id, amount, at, pair FROM t'))}", "--param",
              f"source_options={json.dumps({'verify': standin.ca_path})}"]
    examples, report = run_query_pipeline(root, params, capsys)
    assert sum(1 for s in ("train", "eval") for _ in read_split(examples, s)) == 50
    with open(report, encoding="utf-8") as f:
        html = f.read()
    assert url in html and "SELECT id, amount, at, pair FROM t" in html and "rows-blake2b128-sum:" in html
    run_query_pipeline(root, params, capsys)  # CACHED
    assert standin.secret.encode() not in _everything_under(root) + capsys.readouterr().out.encode()
    token = f"tok-{uuid.uuid4().hex}"
    assert main(["run", "query_ingest", "--pipeline-root", str(tmp_path / "r2"), "--param",
                 f"connection={url}?access_token={token}", *params[2:]]) == 1
    shown = capsys.readouterr()
    assert "holds a password or token" in shown.err and token not in shown.out + shown.err
