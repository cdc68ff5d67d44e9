"""Trino (and Presto) source: queries run through the official ``trino`` client.

``--format trino --connection trino://user@host:8443/catalog/schema``; each input split's
pattern is a query (examplegen.sources.query: span placeholders, result digest). The
catalog and schema come from the URL path or the options ``catalog`` and ``db_schema``
(the options win).

Authentication: a password (the URL's, else ``$EXAMPLEGEN_DB_PASSWORD`` or
``$TRINO_PASSWORD``) is HTTP basic authentication; a token (the URL's ``access_token``
parameter, else ``$EXAMPLEGEN_DB_TOKEN``) is JWT (bearer) authentication. Neither is ever
shown: the recorded URL has no password and no token. With credentials the client uses
HTTPS (``verify``: true, false or a CA bundle's path), as Trino requires. Option ``auth``
``jwt`` takes the password variable's value as the JWT (the query-ingest pipeline's one
secret), ``basic`` a token as the password.

``presto://`` goes through the same path: PrestoDB's ``/v1/statement`` protocol (POST, then
``nextUri`` paging, the same ``columns``/``data``/``error`` JSON) is Trino's, but its
request headers are named ``X-Presto-*`` instead of ``X-Trino-*``: for ``presto://`` the
user, catalog, schema and source are sent under both names. What still differs: session
changes a Presto server returns (``X-Presto-Set-*``, e.g. from ``USE`` or ``SET SESSION``)
are not applied; plain queries need none.

A query is one work unit (Trino streams one result; cut a big one into several input
splits or spans). Types map from Trino's type names: boolean, tinyint..bigint, real,
double, decimal(p, s) (exact, decimal128), varchar/char/json/uuid/ipaddress as text,
varbinary, date, time(p), timestamp(p) (naive, taken as UTC), timestamp(p) with time zone
(UTC instants), array(T), map(K, V), row(name T, ...); then the shared converter
(examplegen.typemap). Other types (intervals, geometry, ...) are an error naming the column:
cast them in the query.
"""

from __future__ import annotations

import dataclasses
import decimal
import os
import re
import urllib.parse
from typing import Any, Callable, Iterator, Optional, Sequence

import pyarrow as pa

from examplegen.errors import ConfigError, SourceError
from examplegen.sources.base import Plan, check_schema_columns, options_dict, options_from_dict, with_schema
from examplegen.sources.query import Connection, QueryUnit, ResolvedQuery, query_plan, read_batches

FORMAT = "trino"
QUERY = True  # plan() takes ResolvedQuery objects, not files (examplegen.sources.query)
SCHEMES = ("trino", "presto")
PASSWORD_ENV = ("TRINO_PASSWORD",)
TOKEN_ENV = "EXAMPLEGEN_DB_TOKEN"
TOKEN_PARAMETER = "access_token"
DEFAULT_PORTS = {"http": 8080, "https": 443}


@dataclasses.dataclass(frozen=True)
class Options:
    catalog: Optional[str] = None  # default: the URL path's first part
    db_schema: Optional[str] = None  # default: the URL path's second part
    http_scheme: Optional[str] = None  # http | https; default https with credentials or port 443
    verify: Any = True  # TLS: true, false, or the path of a CA bundle
    auth: Optional[str] = None  # basic | jwt; default: basic with a password, jwt with a token
    digest: bool = True  # order-independent result digest (data version; CACHED reruns)
    schema: Optional[tuple[tuple[str, str], ...]] = None  # feature -> typemap override
    batch_rows: int = 10000  # rows per Arrow batch

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "Options":
        opts = options_from_dict(cls, d, FORMAT)
        for key in ("catalog", "db_schema"):
            value = getattr(opts, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"trino option {key}: expected a name, got {value!r}")
        if opts.http_scheme not in (None, "http", "https"):
            raise ConfigError(f"trino option http_scheme must be http or https, got {opts.http_scheme!r}")
        if opts.auth not in (None, "basic", "jwt"):
            raise ConfigError(f"trino option auth must be basic or jwt, got {opts.auth!r}")
        if not isinstance(opts.verify, (bool, str)) or opts.verify == "":
            raise ConfigError(f"trino option verify must be true, false or a CA bundle path, got {opts.verify!r}")
        if not isinstance(opts.batch_rows, int) or isinstance(opts.batch_rows, bool) or opts.batch_rows < 1:
            raise ConfigError(f"trino option batch_rows must be a positive integer, got {opts.batch_rows!r}")
        return with_schema(opts, FORMAT)

    def to_dict(self) -> dict:
        return options_dict(self)

    workers = 1  # one unit per query


@dataclasses.dataclass(frozen=True)
class TrinoConnection(Connection):
    """A Connection that may also hold a JWT (never shown, like the password)."""

    token: Optional[str] = dataclasses.field(default=None, repr=False)

    def hide(self, text: str) -> str:
        if self.token:
            text = text.replace(self.token, "***")
        return super().hide(text)


def connection(url: str) -> TrinoConnection:
    """The connection of a ``trino://`` or ``presto://`` URL, secrets taken out of it."""
    token = None
    if isinstance(url, str) and "://" in url:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        token = next((v for k, v in query if k == TOKEN_PARAMETER), None)
        rest = urllib.parse.urlencode([(k, v) for k, v in query if k != TOKEN_PARAMETER])
        url = urllib.parse.urlunsplit(parts._replace(query=rest))
    conn = Connection.parse(url, SCHEMES, PASSWORD_ENV)
    parts = urllib.parse.urlsplit(conn.url)
    if parts.query:
        raise ConfigError(f"connection {conn.url!r}: unknown URL parameter(s) {parts.query!r} (only "
                          f"{TOKEN_PARAMETER}; catalog and schema are the URL path or options)")
    if not parts.username:
        raise ConfigError(f"connection {conn.url!r}: Trino needs a user, e.g. trino://user@host:8080/catalog/schema")
    token = token or os.environ.get(TOKEN_ENV) or None
    if token and conn.password:
        raise ConfigError(f"connection {conn.url!r}: both a password and a token ({TOKEN_PARAMETER} or "
                          f"${TOKEN_ENV}) are set; give one")
    return TrinoConnection(conn.url, conn.password, token)


# --------------------------------------------------------------------------- types


def _split_top(text: str) -> list[str]:
    """``text`` cut at the commas outside parentheses and double quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == ",":
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


_FIELD = re.compile(r'^(?:"((?:[^"]|"")*)"|([A-Za-z_][\w$]*))\s+(.+)$', re.S)
_SIMPLE = {"boolean": pa.bool_(), "tinyint": pa.int8(), "smallint": pa.int16(), "integer": pa.int32(),
           "int": pa.int32(), "bigint": pa.int64(), "real": pa.float32(), "double": pa.float64(),
           "varchar": pa.string(), "char": pa.string(), "json": pa.string(), "uuid": pa.string(),
           "ipaddress": pa.string(), "varbinary": pa.binary(), "date": pa.date32()}


def arrow_type(type_name: str) -> pa.DataType:
    """The Arrow type of a Trino type name (``array(row(a bigint, "b c" varchar))``); a
    ValueError for a type with no mapping."""
    text = type_name.strip()
    head, _, rest = text.partition("(")
    head = head.strip().lower()
    args = _split_top(rest[:rest.rindex(")")]) if rest else []
    suffix = rest[rest.rindex(")") + 1:].strip().lower() if rest else ""
    if head in _SIMPLE and not suffix:
        return _SIMPLE[head]
    if head == "decimal":
        precision, scale = (int(a) for a in (args + ["0"])[:2]) if args else (38, 0)
        return pa.decimal128(precision, scale)
    if text.lower().startswith("timestamp"):
        zoned = text.lower().endswith("with time zone")
        return pa.timestamp("us", tz="UTC" if zoned else None)
    if head == "time" and "with time zone" not in text.lower():
        return pa.time64("us")
    if head == "array":
        return pa.list_(arrow_type(args[0]))
    if head == "map":
        return pa.map_(arrow_type(args[0]), arrow_type(args[1]))
    if head == "row":
        fields = []
        for k, arg in enumerate(args):
            match = _FIELD.match(arg)
            name = (match.group(1).replace('""', '"') if match.group(1) is not None else match.group(2)) \
                if match else f"field{k}"
            fields.append(pa.field(name, arrow_type(match.group(3) if match else arg)))
        return pa.struct(fields)
    raise ValueError(f"Trino type {type_name!r} has no mapping")


def _converter(typ: pa.DataType) -> Optional[Callable[[Any], Any]]:
    """What turns the client's Python value into one pyarrow takes for ``typ`` (None: as is)."""
    if pa.types.is_struct(typ):
        children = [(f.name, _converter(f.type)) for f in typ]
        return lambda v: None if v is None else {name: (c(x) if c else x) for (name, c), x in zip(children, v)}
    if pa.types.is_list(typ):
        item = _converter(typ.value_type)
        return None if item is None else (lambda v: None if v is None else [item(x) for x in v])
    if pa.types.is_map(typ):
        key, value = _converter(typ.key_type), _converter(typ.item_type)
        return lambda v: None if v is None else [(key(k) if key else k, value(x) if value else x)
                                                 for k, x in v.items()]
    if pa.types.is_string(typ):
        return lambda v: None if v is None else str(v)  # uuid and ipaddress values as text
    return None


def _column_types(description: list, where: str) -> list[tuple[str, pa.DataType]]:
    out = []
    for column in description:
        name, type_name = column[0], column[1]
        try:
            out.append((name, arrow_type(type_name)))
        except (ValueError, IndexError):
            raise ConfigError(f"{where}: column {name!r} has Trino type {type_name!r}, which has no mapping to "
                              f"a feature; cast it in the query (e.g. CAST({name} AS varchar))") from None
    return out


def _to_batch(rows: list, columns: list[tuple[str, pa.DataType]], converters: list, unit: QueryUnit,
              first_row: int) -> pa.RecordBatch:
    arrays = []
    for k, ((name, typ), convert) in enumerate(zip(columns, converters)):
        values = [row[k] for row in rows]
        try:
            arrays.append(pa.array([convert(v) for v in values] if convert else values, typ))
        except (pa.ArrowException, decimal.InvalidOperation, TypeError, ValueError) as exc:
            raise SourceError(f"{unit.where(first_row)}: column {name!r}: a value does not fit {typ}: {exc}") \
                from None
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([pa.field(n, t) for n, t in columns]))


# --------------------------------------------------------------------------- client


def _query(conn: TrinoConnection, options: Options, sql: str):
    """A ``trino.client.TrinoQuery`` for ``sql`` (the client's public layer under its DB-API:
    its ``columns`` are Trino's own column records, which PrestoDB's timestamps without
    precision do not break as the DB-API's ``cursor.description`` does)."""
    from trino.auth import BasicAuthentication, JWTAuthentication
    from trino.client import ClientSession, TrinoQuery, TrinoRequest

    parts = urllib.parse.urlsplit(conn.url)
    path = [urllib.parse.unquote(p) for p in parts.path.split("/") if p]
    catalog = options.catalog or (path[0] if path else None)
    schema = options.db_schema or (path[1] if len(path) > 1 else None)
    user = urllib.parse.unquote(parts.username or "")
    secret = conn.password or conn.token
    kind = options.auth or ("basic" if conn.password else "jwt")
    auth = None if not secret else BasicAuthentication(user, secret) if kind == "basic" else JWTAuthentication(secret)
    scheme = options.http_scheme or ("https" if auth is not None or parts.port == 443 else "http")
    headers = None
    if parts.scheme == "presto":
        headers = {"X-Presto-User": user, "X-Presto-Source": "examplegen"}
        headers.update({k: v for k, v in (("X-Presto-Catalog", catalog), ("X-Presto-Schema", schema)) if v})
    session = ClientSession(user=user, catalog=catalog, schema=schema, source="examplegen", headers=headers)
    request = TrinoRequest(parts.hostname, parts.port or DEFAULT_PORTS[scheme], session,
                           http_session=_http_session(options.verify), http_scheme=scheme,
                           auth=auth)
    return TrinoQuery(request, sql)


def _http_session(verify):
    """A requests session whose ``verify`` (a CA bundle path, or False) is not overridden by
    ``$REQUESTS_CA_BUNDLE`` / ``$CURL_CA_BUNDLE`` (requests lets those win over a session's)."""
    import requests

    class Session(requests.Session):
        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if self.verify is not True:
                settings["verify"] = self.verify
            return settings

    session = Session()
    session.verify = verify
    return session


def _failure(conn: TrinoConnection, where: str, exc: BaseException) -> SourceError:
    message = getattr(exc, "message", None) or str(exc)
    name = getattr(exc, "error_name", None)
    text = f"{name}: {message}" if name and name not in message else message
    return SourceError(f"{where}: the query failed: {conn.hide(text.strip().splitlines()[0] if text.strip() else repr(exc))}")


def plan(split_name: str, queries: Sequence[ResolvedQuery], options: Options, chunk_bytes: int = 0) -> Plan:
    units = [QueryUnit(q.where, 0, q.query.strip().rstrip(";").strip(), q.connection, q.index) for q in queries]
    return query_plan(queries, units, None, options.digest)


def _batches(unit: QueryUnit, options: Options) -> Iterator[pa.RecordBatch]:
    import trino

    conn = unit.connection
    try:
        query = _query(conn, options, unit.sql)
        result = query.execute()
        columns = _column_types([(c["name"], c["type"]) for c in query.columns or []], unit.path)
        check_schema_columns(options.schema, [n for n, _ in columns], unit.path, FORMAT)
        converters = [_converter(t) for _, t in columns]
        done, rows = 0, []
        for row in result:
            rows.append(row)
            if len(rows) == options.batch_rows:
                yield _to_batch(rows, columns, converters, unit, done)
                done, rows = done + len(rows), []
        if rows or done == 0:
            yield _to_batch(rows, columns, converters, unit, done)
    except (trino.exceptions.TrinoQueryError, trino.exceptions.HttpError, trino.exceptions.TrinoExternalError,
            OSError) as exc:
        raise _failure(conn, unit.path, exc) from None
    except Exception as exc:  # noqa: BLE001 - the requests/urllib3 layer raises its own kinds
        if type(exc).__module__.split(".")[0] in ("requests", "urllib3", "trino"):
            raise _failure(conn, unit.path, exc) from None
        raise


def read(unit: QueryUnit, options: Options) -> Iterator[pa.RecordBatch]:
    return (yield from read_batches(unit, _batches(unit, options), options.digest, lambda batch: batch))
