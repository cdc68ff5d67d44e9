"""What every query source shares: spans, placeholders, connections, work units, digests.

A query source (``sql`` here; BigQuery and Trino build on the same pieces) differs from a
file source in what ``plan`` receives: instead of files, the ``ResolvedQuery`` s of one
input split (one per span, spans ascending). The engine (examplegen.query_ingest) resolves
them from the TFX configs; the source cuts each query into ``QueryUnit`` s (partitions,
streams), its ``read`` runs one unit into typed Arrow batches and returns the unit's
``ResultDigest``; ``QueryPlan.review`` adds the units' digests up per query.

TFX's semantics (QueryBasedExampleGen, tfx.components.example_gen.utils):

- the input config's split ``pattern`` is the query; several splits are several queries;
- a span is a day since 1970-01-01 (UTC). Without a range config the span is 0, as in
  TFX; ``static_range`` picks the span (beyond TFX, ``start < end`` runs the query once
  per span, spans ascending); ``rolling_range`` needs the latest span, which a query has
  no way to tell, so it is an error (TFX raises NotImplementedError);
- ``@span_begin_timestamp`` is the span's first second (integer seconds since the epoch),
  ``@span_end_timestamp`` the first second of the next day, ``@span_yyyymmdd_utc`` the
  span's date as a quoted string literal ``'20180114'``.

The placeholders are replaced by literals the engine formats from the span number (digits,
or eight digits in quotes), only where they stand as SQL tokens: never inside a string
literal, a quoted identifier or a comment, and never as the prefix of a longer name.
Nothing the user typed is ever pasted into a query other than the query itself.

Data version of a query (beyond TFX): ``ResultDigest`` is an order-independent digest of
the result: every row is serialized column by column (null flag, then fixed-width bytes
or length-prefixed bytes) and hashed with BLAKE2b-128; the row hashes are added modulo
2**128 (a sum, not XOR, so duplicate rows count). The same rows in any order and any
partitioning give the same digest; the schema (names and normalised types) and the row
count are part of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import urllib.parse
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from examplegen.config import InputConfig, RangeConfig
from examplegen.errors import ConfigError
from examplegen.lineage.store import redact_url as redact
from examplegen.sources.base import Plan, WorkUnit
from examplegen.span import span_to_date

SPAN_BEGIN_TIMESTAMP = "@span_begin_timestamp"
SPAN_END_TIMESTAMP = "@span_end_timestamp"
SPAN_YYYYMMDD_UTC = "@span_yyyymmdd_utc"
PLACEHOLDERS = (SPAN_BEGIN_TIMESTAMP, SPAN_END_TIMESTAMP, SPAN_YYYYMMDD_UTC)
PASSWORD_ENV = "EXAMPLEGEN_DB_PASSWORD"

# SQL tokens that may hold a placeholder's text without being one: string literals,
# quoted identifiers, comments. Everything else is scanned for placeholders.
_SKIPPED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|--[^\n]*|/\*.*?\*/", re.S)
_PLACEHOLDER_RE = re.compile("(?:" + "|".join(re.escape(p) for p in PLACEHOLDERS) + r")(?![A-Za-z0-9_$])")


# --------------------------------------------------------------------------- spans


def span_literals(span: int) -> dict[str, str]:
    """The SQL literal of each placeholder for ``span`` (TFX's get_query_for_span)."""
    try:
        day = span_to_date(span)
    except OverflowError:
        raise ConfigError(f"span {span} is not a calendar date (spans are days since 1970-01-01)") from None
    begin = span * 86_400
    return {SPAN_BEGIN_TIMESTAMP: str(begin), SPAN_END_TIMESTAMP: str(begin + 86_400),
            SPAN_YYYYMMDD_UTC: "'" + day.strftime("%Y%m%d").zfill(8) + "'"}


def substitute(query: str, span: int) -> str:
    """``query`` with the span placeholders replaced by their literals (see module doc)."""
    literals = span_literals(span)
    out, position = [], 0
    for skipped in _SKIPPED.finditer(query):
        out.append(_PLACEHOLDER_RE.sub(lambda m: literals[m.group(0)], query[position:skipped.start()]))
        out.append(skipped.group(0))
        position = skipped.end()
    out.append(_PLACEHOLDER_RE.sub(lambda m: literals[m.group(0)], query[position:]))
    return "".join(out)


def query_spans(range_config: Optional[RangeConfig]) -> list[int]:
    """The spans to query: 0 without a range config (TFX), the static range's spans."""
    if range_config is None:
        return [0]
    if range_config.rolling_range is not None:
        raise ConfigError("range_config.rolling_range: a query has no latest span to find (TFX's "
                          "QueryBasedExampleGen does not support it either); use static_range "
                          '{"static_range": {"start_span_number": N, "end_span_number": N}}')
    static = range_config.static_range
    return list(range(static.start_span_number, static.end_span_number + 1))


# --------------------------------------------------------------------------- connections


@dataclasses.dataclass(frozen=True)
class Connection:
    """A database URL split into what may be shown (``url``, no password) and the secret.

    ``url`` is what logs, ML Metadata, artifacts and reports see. ``password`` comes from
    the URL or from the environment (``$EXAMPLEGEN_DB_PASSWORD``, else the driver's own
    variable given as ``password_env``) and is never part of ``repr``.
    """

    url: str
    password: Optional[str] = dataclasses.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str, schemes: Sequence[str], password_env: Sequence[str] = ()) -> "Connection":
        if not isinstance(url, str) or "://" not in url:
            raise ConfigError(f"connection: expected a URL such as {schemes[0]}://user@host:port/database, "
                              f"got {redact(str(url))!r}")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in schemes:
            raise ConfigError(f"connection {redact(url)!r}: the scheme must be one of {', '.join(schemes)}")
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        if password is None:
            for name in (PASSWORD_ENV, *password_env):
                if os.environ.get(name):
                    password = os.environ[name]
                    break
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = (f"{parts.username}@" if parts.username else "") + host + (f":{parts.port}" if parts.port else "")
        shown = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        return cls(shown, password)

    def with_password(self) -> str:
        """The URL to connect with (never log it)."""
        if not self.password:
            return self.url
        parts = urllib.parse.urlsplit(self.url)
        user, _, rest = parts.netloc.rpartition("@")
        netloc = f"{user}:{urllib.parse.quote(self.password, safe='')}@{rest}"
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def hide(self, text: str) -> str:
        """``text`` (an error message) with the password and any URL password masked."""
        if self.password:
            text = text.replace(self.password, "***").replace(urllib.parse.quote(self.password, safe=""), "***")
        return redact(text)


# --------------------------------------------------------------------------- resolution


@dataclasses.dataclass(frozen=True)
class ResolvedQuery:
    """One query to run: an input split's pattern with its span's placeholders filled."""

    split: str
    span: int
    query: str
    connection: Connection
    index: int = 0  # position among the split's queries (spans ascending)

    @property
    def where(self) -> str:
        return f"{self.connection.url} input split {self.split!r} span {self.span}"

    def __str__(self) -> str:
        return self.where


def resolve_queries(input_config: InputConfig, range_config: Optional[RangeConfig],
                    connection: Connection) -> list[list[ResolvedQuery]]:
    """Per input split, its queries (one per span, ascending)."""
    spans = query_spans(range_config)
    out = []
    for i, split in enumerate(input_config.splits):
        if not split.pattern.strip() or split.pattern.strip() == "*":
            raise ConfigError(f"input_config.splits[{i}].pattern: a query source takes the query as the "
                              f"split's pattern, e.g. \"SELECT * FROM t\"; got {split.pattern!r}")
        out.append([ResolvedQuery(split.name, span, substitute(split.pattern, span), connection, k)
                    for k, span in enumerate(spans)])
    return out


# --------------------------------------------------------------------------- units and plans


@dataclasses.dataclass(frozen=True)
class QueryUnit(WorkUnit):
    """One piece of one query's result that one worker reads: a partition or a stream.

    ``path`` names the query for messages (connection, split, span); ``sql`` is what the
    worker runs; ``query_index`` is the query's position in the split; ``part`` the
    piece's number. ``connection`` carries the password to the worker (never shown)."""

    sql: str
    connection: Connection
    query_index: int = 0
    part: int = 0
    parts: int = 1
    extra: tuple = ()  # what else a source's read needs (stream names, decimal scales, ...)

    def where(self, row: int) -> str:
        piece = f" partition {self.part + 1} of {self.parts}" if self.parts > 1 else ""
        return f"{self.path}{piece}: row {row}"


@dataclasses.dataclass(frozen=True)
class UnitNote:
    """What ``read`` returns for a unit: its query and the digest of the rows it read."""

    query_index: int
    digest: Optional["ResultDigest"]
    rows: int
    nbytes: int


def query_plan(queries: Sequence[ResolvedQuery], units: list[QueryUnit], columns: Optional[Sequence[str]],
               with_digest: bool) -> Plan:
    """The Plan of a split's queries: ``review`` adds the units' digests up per query and
    leaves ``info["query_results"]`` = one dict per query (span, query, rows, digest,
    bytes), which the engine records as the query's data version."""
    plan = Plan(units, columns=columns)

    def review(notes: list) -> None:
        per_query = {q.index: [] for q in queries}
        for note in notes:
            per_query[note.query_index].append(note)
        results = []
        for q in queries:
            mine = per_query[q.index]
            digest = ResultDigest.combine([n.digest for n in mine]) if with_digest else None
            results.append({"span": q.span, "query": q.query, "rows": sum(n.rows for n in mine),
                            "bytes": sum(n.nbytes for n in mine),
                            "digest": digest.hexdigest() if digest is not None else None})
        plan.info["query_results"] = results
        return None

    plan.review = review
    return plan


def read_batches(unit: QueryUnit, batches: Iterable[pa.RecordBatch], with_digest: bool,
                 normalise: Callable[[pa.RecordBatch], pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Yields the unit's batches normalised (one schema for every unit of a query) and
    returns its UnitNote (digest over the normalised rows)."""
    digest = ResultDigest() if with_digest else None
    rows = nbytes = 0
    for batch in batches:
        batch = normalise(batch)
        if digest is not None:
            digest.update(batch)
        rows += batch.num_rows
        nbytes += batch.nbytes
        yield batch
    return UnitNote(unit.query_index, digest, rows, nbytes)


def even_ranges(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` half-open integer ranges [a, b) covering [low, high] (fewer when the span
    is small); the last one ends at high + 1."""
    parts = max(1, min(parts, high - low + 1))
    step = (high - low + 1) / parts
    bounds = [low + int(round(step * k)) for k in range(parts)] + [high + 1]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if a < b]


# --------------------------------------------------------------------------- normalisation


def normalised_type(typ: pa.DataType, decimal_scale: Optional[int] = None) -> pa.DataType:
    """The type a column is delivered as: ``large_*`` as the plain type (one type in every
    partition), a decimal at the column's declared scale when the engine widened it."""
    if pa.types.is_large_string(typ):
        return pa.string()
    if pa.types.is_large_binary(typ):
        return pa.binary()
    if pa.types.is_large_list(typ) or pa.types.is_list(typ):
        return pa.list_(normalised_type(typ.value_type))
    if pa.types.is_decimal(typ) and decimal_scale is not None and 0 <= decimal_scale < typ.scale:
        return pa.decimal128(min(38, typ.precision), decimal_scale)
    return typ


def normalise_batch(batch: pa.RecordBatch, decimal_scales: Optional[dict] = None,
                    where: Callable[[], str] = lambda: "query") -> pa.RecordBatch:
    """``batch`` with every column cast to ``normalised_type`` (decimal scales by column)."""
    scales = decimal_scales or {}
    arrays, fields = [], []
    for field, column in zip(batch.schema, batch.columns):
        target = normalised_type(field.type, scales.get(field.name))
        if target != field.type:
            try:
                column = column.cast(target)
            except pa.ArrowInvalid as exc:
                raise ConfigError(f"{where()}: column {field.name!r}: cannot be read as {target}: {exc}") from None
        arrays.append(column)
        fields.append(pa.field(field.name, target))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


# --------------------------------------------------------------------------- result digest


def _fixed_width(matrix: np.ndarray) -> pa.Array:
    n, width = matrix.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets),
                                                         pa.py_buffer(np.ascontiguousarray(matrix))])


def _cells(column: pa.Array) -> pa.Array:
    """Each value of a column as bytes (large_binary, never null): a null flag byte, then
    the value's fixed-width bytes, or its length (8 bytes) and bytes; nested values as JSON."""
    n = len(column)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    flag = valid.astype(np.uint8).reshape(n, 1)
    typ = column.type
    if pa.types.is_dictionary(typ):
        return _cells(column.dictionary_decode())
    if pa.types.is_boolean(typ):
        typ, column = pa.uint8(), column.cast(pa.uint8())
    if pa.types.is_fixed_size_binary(typ):
        column = column.cast(pa.binary())
        typ = pa.binary()
    if pa.types.is_primitive(typ) or pa.types.is_decimal(typ):
        width = typ.bit_width // 8
        data = column.buffers()[1]
        values = np.frombuffer(data, dtype=np.uint8, count=(column.offset + n) * width)[column.offset * width:]
        values = values.reshape(n, width).copy()
        values[~valid] = 0
        return _fixed_width(np.hstack([flag, values]))
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ) \
            or pa.types.is_large_binary(typ):
        data = column.cast(pa.large_binary()).fill_null(b"")
        lengths = pc.binary_length(data).to_numpy(zero_copy_only=False).astype("<u8")
        head = np.hstack([flag, lengths.view(np.uint8).reshape(n, 8)])
        return pc.binary_join_element_wise(_fixed_width(head), data, pa.scalar(b"", pa.large_binary()))
    texts = [b"" if value is None else json.dumps(value, sort_keys=True, default=str).encode()
             for value in column.to_pylist()]
    return _cells(pa.array(texts, pa.large_binary()))


class ResultDigest:
    """Order-independent digest of a query result (see module doc); ``update`` with every
    batch, ``combine`` the digests of a query's units."""

    MODULUS = 1 << 128

    def __init__(self, total: int = 0, rows: int = 0, schema: Optional[str] = None):
        self.total = total
        self.rows = rows
        self.schema = schema

    def update(self, batch: pa.RecordBatch) -> None:
        schema = ",".join(f"{f.name}:{f.type}" for f in batch.schema)
        if self.schema is None:
            self.schema = schema
        elif self.schema != schema:
            raise ValueError(f"result schema changed from {self.schema} to {schema}")
        n = batch.num_rows
        if n == 0:
            return
        rows = pc.binary_join_element_wise(*[_cells(c) for c in batch.columns],
                                           pa.scalar(b"", pa.large_binary()))
        blake = hashlib.blake2b
        hashes = b"".join([blake(row, digest_size=16).digest() for row in rows.to_numpy(zero_copy_only=False)])
        words = np.frombuffer(hashes, dtype="<u4").reshape(n, 4).astype(np.uint64).sum(axis=0)
        self.total = (self.total + sum(int(w) << (32 * k) for k, w in enumerate(words))) % self.MODULUS
        self.rows += n

    @classmethod
    def combine(cls, digests: Sequence["ResultDigest"]) -> "ResultDigest":
        schemas = {d.schema for d in digests if d.schema is not None}
        if len(schemas) > 1:
            raise ValueError(f"the partitions of one query have different schemas: {sorted(schemas)}")
        return cls(sum(d.total for d in digests) % cls.MODULUS, sum(d.rows for d in digests),
                   schemas.pop() if schemas else None)

    def hexdigest(self) -> str:
        """``"rows-blake2b128-sum:<hex>"``: sha256 over the schema, row count and row-hash sum."""
        text = f"{self.schema or ''}\n{self.rows}\n{self.total:032x}"
        return "rows-blake2b128-sum:" + hashlib.sha256(text.encode()).hexdigest()


def query_fingerprint(records: Sequence[dict]) -> str:
    """The input fingerprint of a query run: sha256 over each query's split, span,
    connection (no password), query text, row count and result digest."""
    text = json.dumps([[r["split"], r["span"], r["connection"], r["query"], r["rows"], r["digest"]]
                       for r in records], separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
