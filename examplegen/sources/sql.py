"""SQL source: PostgreSQL and MySQL/MariaDB queries read into Arrow by connectorx.

``--format sql --connection postgresql://user@host:5432/db`` (or ``mysql://``); each
input split's pattern is a query (examplegen.sources.query has the span placeholders and
the result digest). The password comes from the URL, ``$EXAMPLEGEN_DB_PASSWORD``, or the
driver's own variable (``PGPASSWORD``, ``MYSQL_PWD``); it is never shown.

Work units: a query is one unit, or, with ``partition_on`` (an integer column of the
result), ``partition_num`` ranges of that column read by as many workers (the first one
also takes the rows where the column is NULL). Before reading, the launcher asks the
database for the result's columns (``LIMIT 0`` through psycopg2 / PyMySQL) to learn each
DECIMAL's declared scale, and, when partitioning, the column's minimum and maximum.

Types as connectorx delivers them, then normalised (examplegen.sources.query): large
strings, binaries and lists as the plain types; decimals (which connectorx widens to
scale 10) at the column's declared scale. PostgreSQL's ``interval`` and other types
connectorx cannot read are an error naming the query: cast them in the query (so is a
MySQL ``TIME`` outside 00:00:00-23:59:59, which connectorx reads as a time of day).

Options: ``partition_on``, ``partition_num`` (default: one per CPU core when
``partition_on`` is set), ``digest`` (default true: the order-independent result digest
that makes unchanged results CACHED; false: no digest, never CACHED), ``schema``
(per-column type overrides, examplegen.typemap), ``batch_rows``.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from typing import Iterator, Optional, Sequence

import pyarrow as pa

from examplegen import typemap
from examplegen.errors import ConfigError, SourceError
from examplegen.sources.base import Plan, check_schema_columns, options_from_dict, schema_pairs
from examplegen.sources.query import (Connection, QueryUnit, ResolvedQuery, even_ranges, normalise_batch,
                                      query_plan, read_batches)

FORMAT = "sql"
QUERY = True  # plan() takes ResolvedQuery objects, not files (examplegen.sources.query)
SCHEMES = ("postgresql", "postgres", "mysql")
PASSWORD_ENV = {"postgresql": ("PGPASSWORD",), "postgres": ("PGPASSWORD",), "mysql": ("MYSQL_PWD",)}
_QUOTE = {"postgresql": '"', "postgres": '"', "mysql": "`"}


@dataclasses.dataclass(frozen=True)
class Options:
    partition_on: Optional[str] = None  # integer column of the result to cut it by
    partition_num: int = 0  # ranges of partition_on; 0: one per CPU core
    digest: bool = True  # order-independent result digest (data version; CACHED reruns)
    schema: Optional[tuple[tuple[str, str], ...]] = None  # feature -> typemap override
    batch_rows: int = 65536  # rows per Arrow batch

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "Options":
        opts = options_from_dict(cls, d, FORMAT)
        if opts.partition_on is not None and (not isinstance(opts.partition_on, str) or not opts.partition_on):
            raise ConfigError(f"sql option partition_on: expected a column name, got {opts.partition_on!r}")
        if not isinstance(opts.partition_num, int) or isinstance(opts.partition_num, bool) or opts.partition_num < 0:
            raise ConfigError(f"sql option partition_num must be 0 (one per CPU core) or a positive integer, "
                              f"got {opts.partition_num!r}")
        if opts.partition_num and opts.partition_on is None:
            raise ConfigError("sql option partition_num needs partition_on (the integer column to cut the "
                              "result by)")
        if not isinstance(opts.digest, bool):
            raise ConfigError(f"sql option digest must be true or false, got {opts.digest!r}")
        if not isinstance(opts.batch_rows, int) or opts.batch_rows < 1:
            raise ConfigError(f"sql option batch_rows must be a positive integer, got {opts.batch_rows!r}")
        schema = schema_pairs(opts.schema, FORMAT)
        typemap.check_overrides(schema, FORMAT)
        return dataclasses.replace(opts, schema=schema)

    def to_dict(self) -> dict:
        return {"partition_on": self.partition_on, "partition_num": self.partition_num, "digest": self.digest,
                "schema": dict(self.schema) if self.schema else None, "batch_rows": self.batch_rows}

    @property
    def workers(self) -> int:
        """How many units a query is cut into (the engine's default worker count)."""
        if self.partition_on is None:
            return 1
        return self.partition_num or max(1, len(os.sched_getaffinity(0)))


def connection(url: str) -> Connection:
    """The Connection of a ``postgresql://`` or ``mysql://`` URL (password from the environment
    when the URL has none)."""
    scheme = urllib.parse.urlsplit(url).scheme if isinstance(url, str) else ""
    return Connection.parse(url, SCHEMES, PASSWORD_ENV.get(scheme, ()))


def _scheme(conn: Connection) -> str:
    return urllib.parse.urlsplit(conn.url).scheme


def _subquery(query: str) -> str:
    return query.strip().rstrip(";").strip()


class _Database:
    """A DB-API connection (psycopg2 or PyMySQL) for the launcher's metadata queries."""

    def __init__(self, conn: Connection, where: str):
        self.conn, self.where = conn, where
        parts = urllib.parse.urlsplit(conn.url)
        try:
            if _scheme(conn) == "mysql":
                import pymysql

                self.db = pymysql.connect(host=parts.hostname or "localhost", port=parts.port or 3306,
                                          user=urllib.parse.unquote(parts.username or ""),
                                          password=conn.password or "",
                                          database=urllib.parse.unquote(parts.path.lstrip("/")) or None)
            else:
                import psycopg2

                self.db = psycopg2.connect(conn.with_password().replace("postgres://", "postgresql://", 1))
        except Exception as exc:  # noqa: BLE001 - driver errors have no common base
            raise SourceError(f"{where}: cannot connect: {conn.hide(str(exc)).strip()}") from None

    def run(self, sql: str) -> tuple[list, list]:
        """(cursor description, rows) of ``sql``; a database error names the query."""
        try:
            with self.db.cursor() as cur:
                cur.execute(sql)
                return list(cur.description or []), list(cur.fetchall())
        except Exception as exc:  # noqa: BLE001
            raise SourceError(f"{self.where}: the database rejected the query: "
                              f"{self.conn.hide(str(exc)).strip()}") from None

    def close(self) -> None:
        self.db.close()


def _decimal_scales(description: list, scheme: str) -> dict[str, int]:
    """Declared scale of each DECIMAL/NUMERIC column of a cursor description."""
    if scheme == "mysql":
        from pymysql.constants import FIELD_TYPE

        decimal_codes = {FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL}
    else:
        decimal_codes = {1700}  # numeric's OID
    return {d[0]: int(d[5]) for d in description if d[1] in decimal_codes and d[5] is not None and 0 <= d[5] <= 38}


def _quote(name: str, scheme: str) -> str:
    q = _QUOTE[scheme]
    return q + name.replace(q, q + q) + q


def _units(q: ResolvedQuery, options: Options, db: _Database, columns: list[str], scales: dict) -> list[QueryUnit]:
    base = _subquery(q.query)
    extra = tuple(sorted(scales.items()))
    if options.partition_on is None:
        return [QueryUnit(q.where, 0, base, q.connection, q.index, 0, 1, extra)]
    column = options.partition_on
    if column not in columns:
        raise ConfigError(f"sql option partition_on: {column!r} is not a column of the result of "
                          f"{q.where} (columns: {columns})")
    scheme = _scheme(q.connection)
    quoted = _quote(column, scheme)
    inner = f"SELECT * FROM ({base}) AS examplegen_q"
    _, [(low, high)] = db.run(f"SELECT MIN({quoted}), MAX({quoted}) FROM ({base}) AS examplegen_q")
    if low is None:  # no rows, or only NULLs in the column
        return [QueryUnit(q.where, 0, base, q.connection, q.index, 0, 1, extra)]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        raise ConfigError(f"sql option partition_on: column {column!r} of {q.where} must be an integer "
                          f"column (its minimum is {low!r})")
    ranges = even_ranges(low, high, options.workers)
    units = []
    for k, (a, b) in enumerate(ranges):
        # a, b are integers the database returned: formatted by Python, not user text.
        condition = f"{quoted} >= {int(a)} AND {quoted} < {int(b)}"
        if k == 0:
            condition = f"({condition}) OR {quoted} IS NULL"
        units.append(QueryUnit(q.where, 0, f"{inner} WHERE {condition}", q.connection, q.index, k,
                               len(ranges), extra))
    return units


def plan(split_name: str, queries: Sequence[ResolvedQuery], options: Options, chunk_bytes: int = 0) -> Plan:
    units: list[QueryUnit] = []
    columns: Optional[list[str]] = None
    for q in queries:
        db = _Database(q.connection, q.where)
        try:
            description, _ = db.run(f"SELECT * FROM ({_subquery(q.query)}) AS examplegen_q LIMIT 0")
            names = [d[0] for d in description]
            if columns is None:
                columns = names
            elif names != columns:
                raise SourceError(f"input split {split_name!r}: the query returns other columns for span "
                                  f"{q.span} ({names}) than for span {queries[0].span} ({columns})")
            units.extend(_units(q, options, db, names, _decimal_scales(description, _scheme(q.connection))))
        finally:
            db.close()
    check_schema_columns(options.schema, columns or [], queries[0].where, FORMAT)
    return query_plan(queries, units, columns, options.digest)


def _failure(unit: QueryUnit, exc: BaseException) -> SourceError:
    """A SourceError naming the query for a connectorx error (password masked)."""
    text = str(exc).strip()
    message = unit.connection.hide(text.splitlines()[0] if text else repr(exc))
    hint = ""
    if any(sign in message for sign in ("not implemented", "not supported", "Couldn't convert")):
        hint = " (a column type connectorx cannot read: cast it in the query, e.g. to text or a number)"
    return SourceError(f"{unit.path}: the query failed: {message}{hint}")


def _batches(unit: QueryUnit, options: Options) -> Iterator[pa.RecordBatch]:
    import connectorx

    # connectorx raises RuntimeError, or a PanicException (a BaseException) for types it lacks.
    try:
        reader = connectorx.read_sql(unit.connection.with_password(), unit.sql, return_type="arrow_stream",
                                     batch_size=options.batch_rows)
        yield from reader
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # noqa: BLE001
        raise _failure(unit, exc) from None


def read(unit: QueryUnit, options: Options) -> Iterator[pa.RecordBatch]:
    scales = dict(unit.extra)
    return (yield from read_batches(unit, _batches(unit, options), options.digest,
                                    lambda batch: normalise_batch(batch, scales, lambda: unit.path)))
