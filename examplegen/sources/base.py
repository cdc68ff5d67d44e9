"""The types of the source contract (see examplegen.sources for the contract itself)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Iterable, Optional, Sequence

import pyarrow as pa

from examplegen.errors import ConfigError, SourceError


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    """One piece of a split's input that one worker converts: a file, a range of it, row groups.

    A source subclasses it (a frozen dataclass, so it pickles to worker processes) and adds
    what its ``read`` needs. ``size`` is in input bytes (progress and scheduling only).
    """

    path: str
    size: int

    def where(self, row: int) -> str:
        """Where the unit's ``row``-th row (0-based, counted over the unit) comes from, for
        error messages: ``"<file>: row N"`` by default; sources override it (line numbers)."""
        return f"{self.path}: row {row}"


@dataclasses.dataclass
class Plan:
    """What ``plan()`` returns for one input split (it lives in the launcher, never pickled).

    units: the work units in output order; may be a lazy iterable, consumed as workers
      free up (conversion starts with the first unit).
    columns: the feature names the examples will have, when known before reading (a split
      feature that is not one of them fails before any data is read); None: checked while
      converting.
    review: called with the return values of ``read()`` for every unit (a list, in unit
      order) after the split is converted; returning a new Plan discards the split's output
      and converts it again with that plan (CSV: a later chunk needed a wider type than the
      sample showed). None: nothing to review.
    info: facts about the split recorded in the run's config (key -> value; e.g.
      ``{"column_types": {...}}``), read after the last review.
    close: called once when the split is done, converted or failed (a query source drops
      the temporary tables it made); None: nothing to release.
    """

    units: Iterable[WorkUnit]
    columns: Optional[Sequence[str]] = None
    review: Optional[Callable[[list], Optional["Plan"]]] = None
    info: dict = dataclasses.field(default_factory=dict)
    close: Optional[Callable[[], None]] = None


@dataclasses.dataclass(frozen=True)
class Records:
    """What a records-as-read source (TFRecord import) yields instead of a typed batch: the
    serialized payloads, their TFRecord frames, and the payload format. The records are
    split and written unchanged (their frames are copied, not made again)."""

    records: Sequence[bytes]  # the serialized payload of each record (tfrecord.FrameRecords)
    frames: pa.Array  # binary: the TFRecord frame (length, CRCs, payload) of each record
    payload_format: str  # FORMAT_TF_EXAMPLE | FORMAT_TF_SEQUENCE_EXAMPLE | FORMAT_PROTO


@dataclasses.dataclass(frozen=True)
class TableOptions:
    """The options of the typed sources (Parquet, Avro, JSON Lines); a source subclasses it
    with ``SOURCE`` set to its format name (for messages)."""

    SOURCE: ClassVar[str] = "table"
    columns: Optional[tuple[str, ...]] = None  # top-level columns (fields) to read; None: all
    schema: Optional[tuple[tuple[str, str], ...]] = None  # feature -> typemap override
    batch_rows: int = 65536  # rows per batch a worker converts at once

    @classmethod
    def from_dict(cls, d: Optional[dict]):
        from examplegen import typemap

        opts = options_from_dict(cls, d, cls.SOURCE)
        schema = schema_pairs(opts.schema, cls.SOURCE)
        typemap.check_overrides(schema, cls.SOURCE)
        if not isinstance(opts.batch_rows, int) or opts.batch_rows < 1:
            raise ConfigError(f"{cls.SOURCE} option batch_rows must be a positive integer, got {opts.batch_rows!r}")
        return dataclasses.replace(opts, columns=column_list(opts.columns, cls.SOURCE), schema=schema)

    def to_dict(self) -> dict:
        return {"columns": list(self.columns) if self.columns else None,
                "schema": dict(self.schema) if self.schema else None, "batch_rows": self.batch_rows}

    def project(self, schema: pa.Schema, path: str) -> pa.Schema:
        """The schema of the columns read (``columns``), a ConfigError naming missing ones."""
        if self.columns is None:
            return pa.schema(list(schema))
        missing = [c for c in self.columns if c not in schema.names]
        if missing:
            raise ConfigError(f"{self.SOURCE} option columns names {missing} that {path} does not have "
                              f"(columns: {schema.names})")
        return pa.schema([schema.field(c) for c in self.columns])


def row_bytes(schema: pa.Schema) -> int:
    """Rough bytes of one decoded row: 8 a fixed-width value, 16 a variable-width one (the
    ``work_bytes`` scale of sources whose files are far smaller than their rows)."""
    def width(typ: pa.DataType) -> int:
        if pa.types.is_struct(typ):
            return sum(width(f.type) for f in typ)
        if pa.types.is_nested(typ):
            return 16
        try:
            return max(1, typ.bit_width // 8)
        except ValueError:  # variable width (string, binary)
            return 16

    return max(1, sum(width(f.type) for f in schema))


def row_json(values: dict) -> bytes:
    """A row as JSON text (UTF-8), for a quarantine entry of a source without row bytes
    (Parquet, Avro): values JSON has no type for are written as Python's text of them
    (bytes as ``b'...'`` literals, timestamps and dates ISO-like, decimals exactly)."""
    import json

    return json.dumps(values, default=str, ensure_ascii=False).encode("utf-8")


def batch_locator(path: str, position: str, first: int, batch: pa.RecordBatch):
    """``locate`` for RowRejects (examplegen.bad_rows) of a batch whose row i is
    ``position`` ``first + i`` of ``path``; the raw bytes are the row as JSON (row_json),
    made only when asked for (an error or a bad row)."""
    def locate(i: int) -> tuple[str, str, int, bytes]:
        return path, position, first + i, row_json(batch.slice(i, 1).to_pylist()[0])

    return locate


def options_from_dict(cls, d: Optional[dict], source: str):
    """``cls(**d)`` for an options dataclass, with unknown keys a ConfigError naming them."""
    d = dict(d or {})
    known = {f.name for f in dataclasses.fields(cls)}
    for key in d:
        if key not in known:
            raise ConfigError(f"{source} option {key!r} is unknown (known: {', '.join(sorted(known)) or 'none'})")
    return cls(**d)


def schema_pairs(schema: Any, source: str) -> Optional[tuple[tuple[str, str], ...]]:
    """A schema override given as a dict or as ``"col:type,col2:type"``, as sorted pairs."""
    if schema is None:
        return None
    if isinstance(schema, str):
        items = [item.split(":", 1) for item in schema.split(",") if item.strip()]
        if any(len(item) != 2 for item in items):
            raise ConfigError(f"{source} option schema: expected 'column:type,...', got {schema!r}")
        schema = dict(items)
    if not isinstance(schema, dict):
        raise ConfigError(f"{source} option schema: expected an object of column -> type, got {schema!r}")
    return tuple(sorted((str(k).strip(), str(v).strip()) for k, v in schema.items()))


def column_list(columns: Any, source: str) -> Optional[tuple[str, ...]]:
    """A ``columns`` option (a list, or names separated by commas) as a tuple; None: all."""
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    if columns is None:
        return None
    if not isinstance(columns, (list, tuple)) or not columns or not all(isinstance(c, str) for c in columns):
        raise ConfigError(f"{source} option columns: expected a non-empty list of column names, got {columns!r}")
    return tuple(columns)


def column_types(schema: pa.Schema) -> dict[str, str]:
    """Each column's Arrow type as text (recorded with the run, like CSV's inferred types)."""
    return {field.name: str(field.type) for field in schema}


def schema_difference(a: pa.Schema, b: pa.Schema) -> str:
    """What differs between two files' schemas (column names and types), in words; empty
    when nothing does."""
    a_types = {f.name: f.type for f in a}
    b_types = {f.name: f.type for f in b}
    parts = []
    only_a = [n for n in a_types if n not in b_types]
    only_b = [n for n in b_types if n not in a_types]
    if only_a:
        parts.append(f"only the first has {only_a}")
    if only_b:
        parts.append(f"only the second has {only_b}")
    for name, typ in a_types.items():
        if name in b_types and b_types[name] != typ:
            parts.append(f"column {name!r} is {typ} in the first, {b_types[name]} in the second")
    return "; ".join(parts)  # the same columns in another order convert the same


def check_same_schema(split_name: str, first: tuple[str, pa.Schema], other: tuple[str, pa.Schema]) -> None:
    """A SourceError naming both files and the difference when their schemas differ."""
    difference = schema_difference(first[1], other[1])
    if difference:
        raise SourceError(f"files in input split {split_name!r} have different schemas: {first[0]} (first) and "
                          f"{other[0]} (second): {difference}")


def check_schema_columns(schema: Optional[Sequence[tuple[str, str]]], columns: Sequence[str], path: str,
                         source: str) -> None:
    """A ConfigError for schema overrides naming features the data does not have."""
    unknown = sorted({column for column, _ in schema or ()} - set(columns))
    if unknown:
        raise ConfigError(f"{source} schema names column(s) {unknown} that {path} does not have "
                          f"(features: {list(columns)})")


def with_schema(opts, source: str):
    """``opts`` (an options dataclass with a ``schema`` field and optional ``digest``) checked
    and normalised: the digest flag a bool, the schema overrides as sorted pairs of a known
    type (examplegen.typemap)."""
    from examplegen import typemap

    if not isinstance(getattr(opts, "digest", True), bool):
        raise ConfigError(f"{source} option digest must be true or false, got {opts.digest!r}")
    schema = schema_pairs(opts.schema, source)
    typemap.check_overrides(schema, source)
    return dataclasses.replace(opts, schema=schema)


def options_dict(opts) -> dict:
    """An options dataclass as JSON-able dict (its schema overrides as an object)."""
    d = dataclasses.asdict(opts)
    d["schema"] = dict(opts.schema) if opts.schema else None
    return d
