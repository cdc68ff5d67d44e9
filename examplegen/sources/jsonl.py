"""JSON Lines source: one JSON object per line (``.jsonl``, ``.jsonl.gz``), read by pyarrow.

Types are inferred over the whole split, as for CSV: the launcher reads every file once
(a block of ``chunk_bytes`` at a time) with pyarrow's JSON reader and unifies the schemas (an integer field that holds a
fraction in another file becomes a float; a field missing or null in one file takes the
type of the others). Nested objects become structs (features ``parent.child``), arrays
become lists. Strings stay strings (pyarrow would turn ISO 8601 text into timestamps;
that inference is undone). ``schema`` overrides a feature's mapping (examplegen.typemap),
e.g. ``{"id": "string"}``; ``columns`` keeps only those top-level fields.

A line that is not a JSON object, or whose field has another JSON type than the same field
on an earlier line (a number, then text), is an error naming the file and line. Blank
lines are skipped. Work units: a file, or for a plain file larger than ``chunk_bytes``
line-aligned byte ranges; a gzip file is one unit.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
from typing import Iterable, Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.json as pajson

from examplegen import fs, typemap
from examplegen.errors import SourceError
from examplegen.sources.base import (Plan, TableOptions, WorkUnit, check_schema_columns, column_types,
                                     schema_difference)
from examplegen.sources.csv import is_gzip_file

FORMAT = "jsonl"
READS_URLS = True  # reads gs:// and s3:// in place (examplegen.fs)
class Options(TableOptions):
    SOURCE = FORMAT


@dataclasses.dataclass(frozen=True)
class LineRange(WorkUnit):
    """Lines of one file: bytes ``start`` to ``end`` (-1: to the end), from line ``first_line``."""

    start: int
    end: int
    first_line: int
    arrow_schema: pa.Schema  # the split's schema

    def data(self) -> bytes:
        with _open(self.path) as f:
            if self.start:
                f.seek(self.start)
            return f.read() if self.end < 0 else f.read(self.end - self.start)

    def where(self, row: int) -> str:
        seen = 0
        for number, line in enumerate(io.BytesIO(self.data()), start=self.first_line):
            if line.strip():
                if seen == row:
                    return f"{self.path}: line {number}"
                seen += 1
        return f"{self.path}: line {self.first_line}+"


def _open(path: str):
    return fs.open_gzip(path, gzip.GzipFile) if is_gzip_file(path) else fs.open_input(path)


def _no_timestamps(typ: pa.DataType) -> pa.DataType:
    """The type with every timestamp (pyarrow's inference from ISO 8601 text) made a string."""
    if pa.types.is_timestamp(typ):
        return pa.string()
    if pa.types.is_struct(typ):
        return pa.struct([f.with_type(_no_timestamps(f.type)) for f in typ])
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return pa.list_(typ.value_field.with_type(_no_timestamps(typ.value_type)))
    return typ


def _explain(path: str, lines: Iterable[bytes], first_line: int, exc: Exception) -> SourceError:
    """Names the line at fault by reading the lines with Python's json module."""
    kinds: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return SourceError(f"{path}: line {number}: not valid JSON: {err}")
        if not isinstance(value, dict):
            return SourceError(f"{path}: line {number}: expected a JSON object, got {type(value).__name__}")
        for key, item in value.items():
            kind = _json_kind(item)
            if kind is None:
                continue
            earlier = kinds.setdefault(key, (kind, number))
            if earlier[0] != kind:
                return SourceError(f"{path}: line {number}: field {key!r} is {kind} here but {earlier[0]} on "
                                   f"line {earlier[1]}; a field needs one type (or a schema override)")
    return SourceError(f"{path}: lines {first_line}-: cannot be read as JSON Lines: {exc}")


def _json_kind(value) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    return "an object" if isinstance(value, dict) else "an array"


def _read(path: str, data: bytes, first_line: int, schema: Optional[pa.Schema] = None) -> pa.Table:
    """The lines as a table: types inferred, or ``schema``'s (other fields ignored)."""
    if not data.strip():  # an empty file (or only blank lines): no rows
        return (schema or pa.schema([])).empty_table()
    parse = (pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
             if schema is not None else pajson.ParseOptions())
    try:
        return pajson.read_json(pa.BufferReader(data), read_options=pajson.ReadOptions(use_threads=False),
                                parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise _explain(path, io.BytesIO(data), first_line, exc) from None


def _ranges(path: str, chunk_bytes: int) -> list[tuple[int, int, int]]:
    """(start, end, first line) of line-aligned byte ranges of about chunk_bytes (end -1: to
    the end of the file)."""
    size = fs.size(path)
    out, start, line = [], 0, 1
    with fs.open_input(path) as f:
        while start < size:
            f.seek(start + chunk_bytes)
            f.readline()
            end = f.tell()
            if end >= size:
                out.append((start, -1, line))
                break
            f.seek(start)
            out.append((start, end, line))
            line += f.read(end - start).count(b"\n")
            start = end
    return out


def _blocks(path: str, block_bytes: int) -> Iterator[tuple[bytes, int]]:
    """(whole lines, number of the first) of about block_bytes each, gzip decompressed."""
    with _open(path) as f:
        line, rest = 1, b""
        while True:
            data = f.read(block_bytes)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n") + 1
            block, rest = data[:cut], data[cut:]
            if block:
                yield block, line
                line += block.count(b"\n")
        if rest.strip():
            yield rest, line


def _file_schema(path: str, block_bytes: int) -> pa.Schema:
    """The types of a file's fields, inferred over all its lines (a block at a time)."""
    schemas = [_read(path, data, line).schema for data, line in _blocks(path, block_bytes)]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        with _open(path) as f:
            raise _explain(path, f, 1, exc) from None


def has_rows(path: str, options: Options) -> bool:
    """Whether a line of the file is not blank."""
    with _open(path) as f:
        return any(line.strip() for line in f)


def plan(split_name: str, files: Sequence[str], options: Options, chunk_bytes: int = 64 << 20) -> Plan:
    schemas = [(path, _file_schema(path, chunk_bytes)) for path in files]
    try:
        schema = pa.unify_schemas([s for _, s in schemas], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        first = schemas[0]
        for other in schemas[1:]:
            try:
                pa.unify_schemas([first[1], other[1]], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise SourceError(f"files in input split {split_name!r} have fields of different JSON types: "
                                  f"{first[0]} (first) and {other[0]} (second): "
                                  f"{schema_difference(first[1], other[1])}") from None
        raise SourceError(f"files in input split {split_name!r} cannot share one schema: {exc}") from None
    schema = options.project(pa.schema([f.with_type(_no_timestamps(f.type)) for f in schema]), files[0])
    units = []
    for path in files:
        if is_gzip_file(path) or fs.size(path) <= chunk_bytes:
            units.append(LineRange(path, fs.size(path), 0, -1, 1, schema))
            continue
        for start, end, line in _ranges(path, chunk_bytes):
            size = (end if end >= 0 else fs.size(path)) - start
            units.append(LineRange(path, size, start, end, line, schema))
    columns = typemap.example_names(schema)
    check_schema_columns(options.schema, columns, files[0], FORMAT)
    return Plan(units, columns=columns, info={"column_types": column_types(schema)})


def read(unit: LineRange, options: Options) -> Iterator[pa.RecordBatch]:
    table = _read(unit.path, unit.data(), unit.first_line, unit.arrow_schema)
    # Columns in the split's order (the reader orders them as they appear).
    table = table.select(unit.arrow_schema.names)
    yield from table.to_batches(max_chunksize=options.batch_rows)
