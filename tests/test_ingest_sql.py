"""The sql query source against the real PostgreSQL and MariaDB of this machine.

Every test creates its own database (tests.lineage_fixtures) and drops it afterwards.
Outputs are read back with TensorFlow and compared with the rows read independently
through psycopg2 / PyMySQL.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import json
import os
import random
import subprocess
import sys
import uuid

import pytest

from examplegen.cli import main
from examplegen.errors import ConfigError, SourceError
from examplegen.query_ingest import ingest_query
from tests.helpers import REPO, canonical, check_tfx_compatible, example_values, expected_values, read_split
from tests.lineage_fixtures import MYSQL, POSTGRES, mysql_url, postgres_url  # noqa: F401 - fixtures

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
SPLITS = ("train", "eval")


# --------------------------------------------------------------------------- helpers


def _execute(url: str, *statements, rows=None):
    """Run statements on the test database (``rows``: executemany data for the last one)."""
    name = url.rsplit("/", 1)[1]
    if url.startswith("mysql"):
        import pymysql

        conn = pymysql.connect(**MYSQL, database=name, autocommit=True)
    else:
        import psycopg2

        conn = psycopg2.connect(dbname=name, **POSTGRES)
        conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for i, statement in enumerate(statements):
                if rows is not None and i == len(statements) - 1:
                    cur.executemany(statement, rows)
                else:
                    cur.execute(statement)
            return list(cur.fetchall()) if cur.description else None
    finally:
        conn.close()


def _independent_rows(url: str, query: str) -> list[dict]:
    """The rows of ``query`` read by psycopg2 / PyMySQL, as plain Python values the way the
    README's type table maps them (the expected_values input form)."""
    name = url.rsplit("/", 1)[1]
    if url.startswith("mysql"):
        import pymysql

        conn = pymysql.connect(**MYSQL, database=name)
    else:
        import psycopg2

        conn = psycopg2.connect(dbname=name, **POSTGRES)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            names = [d[0] for d in cur.description]
            return [{n: _plain(v) for n, v in zip(names, row)} for row in cur.fetchall()]
    finally:
        conn.close()


def _plain(value):
    if value is None or isinstance(value, (int, float, str, bytes)):
        return int(value) if isinstance(value, bool) else value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        return (moment - EPOCH) // datetime.timedelta(microseconds=1)
    if isinstance(value, datetime.date):
        return (value - EPOCH.date()).days
    if isinstance(value, datetime.time):
        return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
    if isinstance(value, datetime.timedelta):
        return value // datetime.timedelta(microseconds=1)
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, dict):  # psycopg2 parses json: the engine has the text connectorx gives
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    raise AssertionError(f"no plain form for {value!r}")


def _written(out) -> collections.Counter:
    return collections.Counter(canonical(example_values(r)) for s in SPLITS for r in read_split(str(out), s))


def _expected(rows: list[dict], kinds: dict[str, str]) -> collections.Counter:
    return collections.Counter(canonical(expected_values(row, kinds)) for row in rows)


def _config(*queries: str) -> dict:
    if len(queries) == 1:
        return {"splits": [{"name": "single_split", "pattern": queries[0]}]}
    return {"splits": [{"name": f"q{i}", "pattern": q} for i, q in enumerate(queries)]}


# --------------------------------------------------------------------------- every type


_PG_TABLE = """CREATE TABLE every_type (
    id integer PRIMARY KEY, small smallint, big bigint, flag boolean, r real, d double precision,
    price numeric(12,2), txt text, name varchar(20), code char(3), raw bytea, day date,
    at timestamp, at_tz timestamptz, t time, doc jsonb, uid uuid, ints integer[], tags text[],
    sparse_int integer, sparse_text text, sparse_num numeric(8,3), sparse_ts timestamptz)"""
_PG_KINDS = dict(id="int64_list", small="int64_list", big="int64_list", flag="int64_list", r="float_list",
                 d="float_list", price="float_list", txt="bytes_list", name="bytes_list", code="bytes_list",
                 raw="bytes_list", day="int64_list", at="int64_list", at_tz="int64_list", t="int64_list",
                 doc="bytes_list", uid="bytes_list", ints="int64_list", tags="bytes_list",
                 sparse_int="int64_list", sparse_text="bytes_list", sparse_num="float_list",
                 sparse_ts="int64_list")


def _pg_rows(n: int, seed: int = 7) -> list[tuple]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        sparse = i % 10 == 0  # NULL-heavy columns: a value in one row of ten
        at = datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=rnd.randrange(10**8), microseconds=i)
        rows.append((
            i, rnd.choice([0, -3, 32767]), rnd.choice([0, -2**63, 2**63 - 1, 12345678901]),
            rnd.choice([True, False, None]), rnd.choice([0.0, -1.5, 3.25e10]), rnd.uniform(-1e6, 1e6),
            decimal.Decimal(rnd.randrange(-10**9, 10**9)) / 100, rnd.choice(["", "héllo ünicode", "x" * 300, None]),
            rnd.choice(["a", "", None]), rnd.choice(["abc", "   ", None]), bytes([i % 256, 0, 255]),
            datetime.date(1960, 1, 1) + datetime.timedelta(days=rnd.randrange(40000)), at,
            at.replace(tzinfo=datetime.timezone(datetime.timedelta(hours=rnd.choice([-5, 0, 2])))),
            datetime.time(rnd.randrange(24), rnd.randrange(60), rnd.randrange(60), rnd.randrange(10**6)),
            json.dumps({"k": i}), str(uuid.UUID(int=rnd.getrandbits(128))),
            [rnd.randrange(-5, 5) for _ in range(rnd.randrange(4))], rnd.choice([["a", "b"], [], None]),
            0 if sparse and i % 20 == 0 else (i if sparse else None), "s" if sparse else None,
            decimal.Decimal("1.250") if sparse else None, at.replace(tzinfo=datetime.timezone.utc) if sparse else None,
        ))
    rows.append((n,) + (None,) * 22)  # a row of nothing but NULLs
    return rows


@pytest.fixture
def pg_every_type(postgres_url):
    _execute(postgres_url, _PG_TABLE, "INSERT INTO every_type VALUES (" + ", ".join(["%s"] * 23) + ")",
             rows=_pg_rows(400))
    return postgres_url


def test_postgres_every_type_and_null_heavy_columns_read_back(pg_every_type, tmp_path):
    query = "SELECT * FROM every_type"
    result = ingest_query(pg_every_type, str(tmp_path / "out"), input_config=_config(query))
    expected = _independent_rows(pg_every_type, query)
    assert result.rows_read == len(expected) == 401
    assert _written(tmp_path / "out") == _expected(expected, _PG_KINDS)
    # Falsy values are kept and NULLs are empty lists of the column's kind.
    values = [example_values(r) for s in SPLITS for r in read_split(str(tmp_path / "out"), s)]
    assert ("int64_list", (0,)) in [v["sparse_int"] for v in values]
    assert ("int64_list", ()) in [v["sparse_int"] for v in values]
    assert ("bytes_list", (b"",)) in [v["txt"] for v in values]
    assert ("float_list", ()) in [v["sparse_num"] for v in values]


def test_postgres_partitions_give_the_same_examples_and_digest(pg_every_type, tmp_path):
    query = "SELECT * FROM every_type"
    one = ingest_query(pg_every_type, str(tmp_path / "one"), input_config=_config(query))
    four = ingest_query(pg_every_type, str(tmp_path / "four"), input_config=_config(query), workers=2,
                        source_options={"partition_on": "id", "partition_num": 4})
    assert _written(tmp_path / "one") == _written(tmp_path / "four")
    assert one.input_fingerprint == four.input_fingerprint
    assert four.config["query_results"]["single_split"][0]["rows"] == 401


def test_rows_without_nulls_are_tfx_bytes_in_tfx_splits(postgres_url, tmp_path):
    _execute(postgres_url, "CREATE TABLE t (id bigint, x double precision, s text)",
             "INSERT INTO t VALUES (%s, %s, %s)", rows=[(i, i * 0.5, f"r{i}") for i in range(300)])
    query = "SELECT id, x, s FROM t"
    ingest_query(postgres_url, str(tmp_path / "out"), input_config=_config(query))
    check_tfx_compatible(str(tmp_path / "out"), _independent_rows(postgres_url, query),
                         {"id": "int64_list", "x": "float_list", "s": "bytes_list"})


_MY_TABLE = """CREATE TABLE every_type (
    id int PRIMARY KEY, tiny tinyint, small smallint, big bigint, ubig bigint unsigned, flag boolean,
    f float, d double, price decimal(12,2), txt text, name varchar(20), code char(3), raw blob,
    vb varbinary(8), day date, at datetime(6), ts timestamp(3) NULL, t time, doc json, e enum('a','b'),
    y year, sparse_int int, sparse_text text, sparse_num decimal(8,3))"""
_MY_KINDS = dict(id="int64_list", tiny="int64_list", small="int64_list", big="int64_list", ubig="int64_list",
                 flag="int64_list", f="float_list", d="float_list", price="float_list", txt="bytes_list",
                 name="bytes_list", code="bytes_list", raw="bytes_list", vb="bytes_list", day="int64_list",
                 at="int64_list", ts="int64_list", t="int64_list", doc="bytes_list", e="bytes_list",
                 y="int64_list", sparse_int="int64_list", sparse_text="bytes_list", sparse_num="float_list")


def _my_rows(n: int) -> list[tuple]:
    rnd = random.Random(11)
    rows = []
    for i in range(n):
        sparse = i % 10 == 0
        at = datetime.datetime(2021, 6, 1) + datetime.timedelta(seconds=rnd.randrange(10**7), microseconds=i)
        rows.append((
            i, rnd.choice([0, -128, 127]), rnd.choice([0, 300]), rnd.choice([0, -2**63, 2**63 - 1]),
            rnd.choice([0, 2**63 - 1]), rnd.choice([True, False, None]), rnd.choice([0.0, 1.5, -2.25]),
            rnd.uniform(-1e9, 1e9), decimal.Decimal(rnd.randrange(-10**9, 10**9)) / 100,
            rnd.choice(["", "héllo", None]), rnd.choice(["a", ""]), rnd.choice(["abc", None]), bytes([i % 256, 0]),
            bytes([1, 2, 3]), datetime.date(2000, 1, 1) + datetime.timedelta(days=rnd.randrange(9000)), at,
            at.replace(microsecond=(i % 1000) * 1000), datetime.timedelta(hours=rnd.randrange(24), seconds=i),
            json.dumps({"k": i}, separators=(",", ":")), rnd.choice(["a", "b", None]), rnd.choice([1999, 2024]),
            (0 if i % 20 == 0 else i) if sparse else None, "s" if sparse else None,
            decimal.Decimal("-0.125") if sparse else None,
        ))
    rows.append((n,) + (None,) * 23)
    return rows


def test_mariadb_every_type_and_null_heavy_columns_read_back(mysql_url, tmp_path):
    _execute(mysql_url, _MY_TABLE, "INSERT INTO every_type VALUES (" + ", ".join(["%s"] * 24) + ")",
             rows=_my_rows(300))
    query = "SELECT * FROM every_type"
    one = ingest_query(mysql_url, str(tmp_path / "out"), input_config=_config(query))
    expected = _independent_rows(mysql_url, query)
    assert one.rows_read == len(expected) == 301
    assert _written(tmp_path / "out") == _expected(expected, _MY_KINDS)
    parts = ingest_query(mysql_url, str(tmp_path / "parts"), input_config=_config(query), workers=2,
                         source_options={"partition_on": "id", "partition_num": 3})
    assert _written(tmp_path / "parts") == _written(tmp_path / "out")
    assert parts.input_fingerprint == one.input_fingerprint


def test_decimal_scale_is_the_declared_one(postgres_url, mysql_url, tmp_path):
    for url in (postgres_url, mysql_url):
        _execute(url, "CREATE TABLE m (id int, price numeric(10,2))", "INSERT INTO m VALUES (%s, %s)",
                 rows=[(1, decimal.Decimal("12.30")), (2, None)])
        out = tmp_path / url.split(":")[0]
        ingest_query(url, str(out), input_config=_config("SELECT id, price FROM m"),
                     source_options={"schema": {"price": "string"}},
                     output_config={"split_config": {"splits": [{"name": "train", "hash_buckets": 1}]}})
        prices = sorted(example_values(r)["price"] for r in read_split(str(out), "train"))
        assert prices == [("bytes_list", ()), ("bytes_list", (b"12.30",))], url


# --------------------------------------------------------------------------- spans


def test_span_placeholders_select_the_span_with_tfx_values(postgres_url, tmp_path):
    _execute(postgres_url, "CREATE TABLE ev (id int, ts bigint, day text)",
             "INSERT INTO ev VALUES (%s, %s, %s)",
             rows=[(i, 1515888000 + i * 3600, "20180114" if i < 24 else "20180115") for i in range(48)])
    query = ("SELECT id, ts, '@span_yyyymmdd_utc' AS literal, day FROM ev -- @span_end_timestamp\n"
             "WHERE ts >= @span_begin_timestamp AND ts < @span_end_timestamp AND day = @span_yyyymmdd_utc")
    one = ingest_query(postgres_url, str(tmp_path / "one"), input_config=_config(query),
                       range_config={"static_range": {"start_span_number": 17545, "end_span_number": 17545}})
    assert one.span == 17545 and one.rows_read == 24
    recorded = one.config["query_results"]["single_split"][0]["query"]
    assert "ts >= 1515888000 AND ts < 1515974400 AND day = '20180114'" in recorded
    assert "'@span_yyyymmdd_utc' AS literal" in recorded and "-- @span_end_timestamp" in recorded
    both = ingest_query(postgres_url, str(tmp_path / "both"), input_config=_config(query),
                        range_config={"static_range": {"start_span_number": 17545, "end_span_number": 17546}})
    assert both.spans == [17545, 17546] and both.rows_read == 48
    assert [s.span for s in both.sources] == [17545, 17546]
    # TFX: without a range config the span is 0 (1970-01-01): no row.
    zero = ingest_query(postgres_url, str(tmp_path / "zero"), input_config=_config(query))
    assert zero.span == 0 and zero.rows_read == 0
    with pytest.raises(ConfigError, match="rolling_range.*static_range"):
        ingest_query(postgres_url, str(tmp_path / "x"), input_config=_config(query),
                     range_config={"rolling_range": {"num_spans": 1}})


def test_placeholders_are_replaced_only_as_sql_tokens_and_connections_hide_the_password(monkeypatch):
    from examplegen.sources.query import Connection, substitute

    query = ("SELECT @span_begin_timestamp_x, \"@span_end_timestamp\", `@span_yyyymmdd_utc`, 'it''s @span_end_timestamp' "
             "/* @span_begin_timestamp */ WHERE a >= @span_begin_timestamp AND d = @span_yyyymmdd_utc")
    assert substitute(query, 1) == (
        "SELECT @span_begin_timestamp_x, \"@span_end_timestamp\", `@span_yyyymmdd_utc`, 'it''s @span_end_timestamp' "
        "/* @span_begin_timestamp */ WHERE a >= 86400 AND d = '19700102'")
    conn = Connection.parse("mysql://etl:s3cr%40t@db.example:3306/sales?charset=utf8", ("mysql",))
    assert conn.url == "mysql://etl@db.example:3306/sales?charset=utf8" and conn.password == "s3cr@t"
    assert "s3cr" not in repr(conn) and conn.with_password() == "mysql://etl:s3cr%40t@db.example:3306/sales?charset=utf8"
    assert conn.hide("failed for s3cr@t and mysql://etl:s3cr%40t@db") == "failed for *** and mysql://etl:***@db"
    monkeypatch.setenv("EXAMPLEGEN_DB_PASSWORD", "from-env")
    assert Connection.parse("mysql://etl@db/sales", ("mysql",)).password == "from-env"


def test_several_splits_are_several_queries(postgres_url, tmp_path):
    _execute(postgres_url, "CREATE TABLE t (id int)", "INSERT INTO t VALUES (%s)", rows=[(i,) for i in range(10)])
    result = ingest_query(postgres_url, str(tmp_path / "out"),
                          input_config=_config("SELECT id FROM t WHERE id < 7", "SELECT id FROM t WHERE id >= 7"))
    assert result.split_names == ["q0", "q1"] and result.counts == {"q0": 7, "q1": 3}
    assert [s.query for s in result.sources] == ["SELECT id FROM t WHERE id < 7", "SELECT id FROM t WHERE id >= 7"]


# --------------------------------------------------------------------------- data versions


def _sources_in_mlmd(mlmd: str) -> list[dict]:
    from examplegen.lineage import open_store
    from examplegen.lineage.schema import properties

    store = open_store(mlmd)
    return [dict(properties(a), uri=a.uri) for a in store.call("get_artifacts_by_type", "examplegen.SourceFile")]


def test_rerun_is_cached_and_a_changed_table_a_new_version(postgres_url, tmp_path):
    mlmd = f"sqlite:///{tmp_path}/mlmd.sqlite"
    _execute(postgres_url, "CREATE TABLE t (id int, v text)", "INSERT INTO t VALUES (%s, %s)",
             rows=[(i, f"v{i}") for i in range(50)])
    config = _config("SELECT id, v FROM t")
    first = ingest_query(postgres_url, str(tmp_path / "a"), input_config=config, mlmd=mlmd)
    again = ingest_query(postgres_url, str(tmp_path / "a"), input_config=config, mlmd=mlmd)
    assert not first.cached and again.cached and again.input_fingerprint == first.input_fingerprint
    # Row order does not matter: the same rows physically reordered are the same version.
    _execute(postgres_url, "CREATE TABLE t2 AS SELECT * FROM t ORDER BY id DESC", "DROP TABLE t",
             "ALTER TABLE t2 RENAME TO t")
    assert ingest_query(postgres_url, str(tmp_path / "a"), input_config=config, mlmd=mlmd).cached
    _execute(postgres_url, "UPDATE t SET v = 'changed' WHERE id = 3")
    changed = ingest_query(postgres_url, str(tmp_path / "a"), input_config=config, mlmd=mlmd)
    assert not changed.cached and changed.input_fingerprint != first.input_fingerprint
    recorded = _sources_in_mlmd(mlmd)
    assert len(recorded) == 2  # one input artifact per data version
    for source in recorded:
        assert source["uri"] == postgres_url and source["query"] == "SELECT id, v FROM t"
        assert source["rows"] == 50 and source["span"] == 0 and source["digest"].startswith("rows-blake2b128-sum:")
    assert {s["digest"] for s in recorded} == {first.sources[0].digest, changed.sources[0].digest}
    # Without the digest a run is never CACHED.
    opts = {"digest": False}
    plain = [ingest_query(postgres_url, str(tmp_path / "b"), input_config=config, mlmd=mlmd, source_options=opts)
             for _ in range(2)]
    assert not any(r.cached for r in plain) and plain[0].input_fingerprint != plain[1].input_fingerprint


def test_result_digest_is_order_and_partition_free_and_sees_every_change():
    import pyarrow as pa

    from examplegen.sources.query import ResultDigest

    table = pa.table({"i": pa.array([1, 0, None, 1], pa.int64()), "s": pa.array(["a", "", None, "a"]),
                      "d": pa.array([decimal.Decimal("1.50"), None, decimal.Decimal("0"), decimal.Decimal("1.50")],
                                    pa.decimal128(10, 2))})

    def digest(*tables):
        parts = []
        for t in tables:
            d = ResultDigest()
            for batch in t.to_batches(max_chunksize=1):
                d.update(batch)
            parts.append(d)
        return ResultDigest.combine(parts).hexdigest()

    base = digest(table)
    assert digest(table.take([3, 2, 1, 0])) == base
    assert digest(table.slice(0, 1), table.slice(1, 3)) == base
    assert digest(table.slice(0, 3)) != base  # a duplicate row counts
    for column, values in (("i", [1, None, None, 1]), ("s", ["a", None, None, "a"]), ("i", [1, 0, 0, 1])):
        changed = table.set_column(table.column_names.index(column), column,
                                   pa.array(values, table.schema.field(column).type))
        assert digest(changed) != base, (column, values)


# --------------------------------------------------------------------------- credentials


@pytest.fixture
def mysql_user(mysql_url):
    """A MariaDB user with a distinctive password who may read the test database."""
    import pymysql

    db = mysql_url.rsplit("/", 1)[1]
    user, password = f"eg_sql_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}-zebra"
    conn = pymysql.connect(**MYSQL, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
        cur.execute(f"GRANT ALL ON `{db}`.* TO '{user}'@'%'")
    try:
        yield db, user, password
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        conn.close()


def _everything_under(root) -> bytes:
    data = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                data.append(f.read())
    return b"\n".join(data)


def test_password_never_reaches_logs_mlmd_artifacts_or_errors(mysql_url, mysql_user, tmp_path, monkeypatch):
    db, user, password = mysql_user
    _execute(mysql_url, "CREATE TABLE t (id int, v varchar(10))", "INSERT INTO t VALUES (%s, %s)",
             rows=[(i, "x") for i in range(20)])
    work = tmp_path / "work"
    work.mkdir()
    mlmd = f"sqlite:///{work}/mlmd.sqlite"
    env = {**os.environ, "EXAMPLEGEN_MLMD": mlmd, "PYTHONPATH": REPO}
    config = json.dumps(_config("SELECT id, v FROM t"))
    base = [sys.executable, "-m", "examplegen.cli", "ingest", "--format", "sql", "--input-config", config]
    logs = []
    # The password in the URL; then from the environment; then a wrong one (an error).
    runs = [([f"--connection=mysql://{user}:{password}@127.0.0.1:3306/{db}"], env, 0),
            ([f"--connection=mysql://{user}@127.0.0.1:3306/{db}"], {**env, "EXAMPLEGEN_DB_PASSWORD": password}, 0),
            ([f"--connection=mysql://{user}:{password}x@127.0.0.1:3306/{db}"], env, 1)]
    for k, (extra, run_env, code) in enumerate(runs):
        proc = subprocess.run([*base, *extra, "--output", str(work / f"out{k}"), "--json"], env=run_env,
                              capture_output=True, text=True, timeout=120, cwd=work)
        assert proc.returncode == code, proc.stderr
        logs.append(proc.stdout + proc.stderr)
    assert json.loads(logs[1])["cached"] is True  # same data through the other way of passing the password
    assert "Access denied" in logs[2] and f"mysql://{user}@127.0.0.1:3306/{db} input split" in logs[2]
    # The report of the KFP pipeline reads the same records; everything written is here.
    written = _everything_under(work) + "\n".join(logs).encode()
    assert b"examplegen.SourceFile" in written and f"mysql://{user}@127.0.0.1:3306/{db}".encode() in written
    assert password.encode() not in written


# --------------------------------------------------------------------------- errors and CLI


def test_errors_name_the_query_and_what_to_do(postgres_url, tmp_path):
    _execute(postgres_url, "CREATE TABLE t (id int, label text, gap interval)",
             "INSERT INTO t VALUES (%s, %s, %s)", rows=[(1, "a", "1 day")])
    out = str(tmp_path / "out")
    with pytest.raises(SourceError, match=r"input split 'single_split' span 0.*rejected the query.*no_such"):
        ingest_query(postgres_url, out, input_config=_config("SELECT * FROM no_such"))
    with pytest.raises(SourceError, match=r"input split 'single_split'.*interval.*cast it in the query"):
        ingest_query(postgres_url, out, input_config=_config("SELECT gap FROM t"))
    with pytest.raises(ConfigError, match=r"partition_on: column 'label'.*integer"):
        ingest_query(postgres_url, out, input_config=_config("SELECT * FROM t"),
                     source_options={"partition_on": "label"})
    with pytest.raises(ConfigError, match=r"partition_on: 'nope' is not a column"):
        ingest_query(postgres_url, out, input_config=_config("SELECT id FROM t"),
                     source_options={"partition_on": "nope"})
    with pytest.raises(ConfigError, match=r"pattern: a query source takes the query"):
        ingest_query(postgres_url, out)
    with pytest.raises(ConfigError, match=r"format 'csv' reads files"):
        ingest_query(postgres_url, out, source_format="csv", input_config=_config("SELECT 1"))
    with pytest.raises(ConfigError, match=r"scheme must be one of"):
        ingest_query("sqlite:///x.db", out, input_config=_config("SELECT 1"))
    assert not os.path.exists(out)  # nothing that looks like an artifact


def test_partitions_keep_the_rows_whose_partition_column_is_null(mysql_url, tmp_path):
    _execute(mysql_url, "CREATE TABLE t (k int NULL, v int)", "INSERT INTO t VALUES (%s, %s)",
             rows=[(None if i % 4 == 0 else i, i) for i in range(40)])
    result = ingest_query(mysql_url, str(tmp_path / "out"), input_config=_config("SELECT k, v FROM t"),
                          source_options={"partition_on": "k", "partition_num": 3}, workers=1)
    assert result.rows_read == 40
    values = sorted(example_values(r)["v"][1][0] for s in SPLITS for r in read_split(str(tmp_path / "out"), s))
    assert values == list(range(40))


def test_file_ingest_of_a_query_format_is_refused(tmp_path):
    from examplegen.ingest import ingest

    with pytest.raises(ConfigError, match="runs queries: give the database with --connection"):
        ingest(str(tmp_path), str(tmp_path / "out"), source_format="sql")


def test_cli_ingests_a_query(postgres_url, tmp_path, capsys):
    _execute(postgres_url, "CREATE TABLE t (id int, v double precision)", "INSERT INTO t VALUES (%s, %s)",
             rows=[(i, i / 4) for i in range(30)])
    argv = ["ingest", "--format", "sql", "--connection", postgres_url, "--output", str(tmp_path / "out"),
            "--input-config", json.dumps(_config("SELECT id, v FROM t;")),
            "--source-options", '{"partition_on": "id", "partition_num": 2}', "--workers", "1", "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows_read"] == 30 and sum(printed["counts"].values()) == 30 and printed["span"] == 0
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["cached"] is True
    assert main(["ingest", "--format", "sql", "--output", str(tmp_path / "x")]) == 1
    assert "--input-base (files) or --connection" in capsys.readouterr().err


# --------------------------------------------------------------------------- KFP pipeline


@pytest.mark.slow
def test_query_pipeline_runs_query_examples_report_with_the_password_from_the_environment(
        postgres_url, tmp_path, monkeypatch, capsys):
    import re

    _execute(postgres_url, "CREATE TABLE t (id int, x double precision, s text)", "INSERT INTO t VALUES (%s, %s, %s)",
             rows=[(i, i / 8, None if i % 3 else f"s{i}") for i in range(120)])
    password = f"Kube-secret-{uuid.uuid4().hex}"  # PostgreSQL here trusts 127.0.0.1: any password works
    monkeypatch.setenv("EXAMPLEGEN_DB_PASSWORD", password)  # what the Kubernetes secret sets
    monkeypatch.delenv("EXAMPLEGEN_MLMD", raising=False)
    root = tmp_path / "root"
    query = "SELECT id, x, s FROM t"
    params = ["--param", f"connection={postgres_url}", "--param", f"input_config={json.dumps(_config(query))}"]
    assert main(["run", "query_ingest", "--pipeline-root", str(root), *params]) == 0
    printed = capsys.readouterr().out
    examples = re.search(r"query-example-gen/examples \(system.Dataset\): (\S+)", printed).group(1)
    report = re.search(r"^report: (.+)$", printed, re.M).group(1)
    assert _written(examples) == _expected(_independent_rows(postgres_url, query),
                                           {"id": "int64_list", "x": "float_list", "s": "bytes_list"})
    with open(report, encoding="utf-8") as f:
        html = f.read()
    assert postgres_url in html and query in html and "rows-blake2b128-sum:" in html
    # The second run finds the same data version: its ingest step is CACHED.
    assert main(["run", "query_ingest", "--pipeline-root", str(root), *params]) == 0
    from examplegen.lineage import open_store
    from examplegen.lineage.schema import properties

    store = open_store(f"sqlite:///{root}/mlmd.sqlite")
    ingests = store.call("get_executions_by_type", "examplegen.Ingest")
    assert [e.last_known_state for e in ingests] == [3, 5]  # COMPLETE, then CACHED
    assert properties(ingests[1])["input_fingerprint"] == properties(ingests[0])["input_fingerprint"]
    assert password.encode() not in _everything_under(root) + capsys.readouterr().out.encode()
    # A password in the connection parameter is refused before anything runs.
    with_password = postgres_url.replace("postgres@", f"postgres:{password}@")
    assert main(["run", "query_ingest", "--pipeline-root", str(tmp_path / "r2"), "--param",
                 f"connection={with_password}", *params[2:]]) == 1
    shown = capsys.readouterr()
    assert "holds a password" in shown.err and password not in shown.out + shown.err
    assert not (tmp_path / "r2").exists() or not any((tmp_path / "r2").iterdir())


def test_query_component_refuses_a_password_in_its_connection_parameter():
    from kfp_examplegen.components import _common

    url = "postgresql://etl:Hunter2-zebra@db.example:5432/sales"
    with pytest.raises(ConfigError, match="holds a password.*EXAMPLEGEN_DB_PASSWORD") as error:
        _common.connection_without_password(url)
    assert "Hunter2-zebra" not in str(error.value) and "etl:***@db.example" in str(error.value)
    assert _common.connection_without_password(" postgresql://etl@db.example/sales ") == \
        "postgresql://etl@db.example/sales"
    with pytest.raises(ConfigError, match="required"):
        _common.connection_without_password("")
