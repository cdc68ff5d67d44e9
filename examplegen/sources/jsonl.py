"""JSON Lines source: one JSON object per line (``.jsonl``, ``.jsonl.gz``), read by pyarrow.

Types are inferred over the whole split, as for CSV: the launcher reads every file once
(a block of ``chunk_bytes`` at a time) with pyarrow's JSON reader and unifies the schemas (an integer field that holds a
fraction in another file becomes a float; a field missing or null in one file takes the
type of the others). Nested objects become structs (features ``parent.child``), arrays
become lists. Strings stay strings (pyarrow would turn ISO 8601 text into timestamps;
that inference is undone). ``schema`` overrides a feature's mapping (examplegen.typemap),
e.g. ``{"id": "string"}``; ``columns`` keeps only those top-level fields.

A line that is not a JSON object, or whose field has another JSON type than the same field
on an earlier line of its file (a number, then text: the first type wins), is a bad row
(examplegen.bad_rows): an error naming the file and line, or under ``bad_rows="skip"``
quarantined with the line's bytes. The inference leaves such lines out. A field whose type
differs between files of a split, or inside nested values, stays an error. Blank lines
are skipped. Work units: a file, or for a plain file larger than ``chunk_bytes``
line-aligned byte ranges; a gzip file is one unit.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import re
from typing import Iterable, Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.json as pajson

from examplegen import fs, typemap
from examplegen.bad_rows import BadRowPolicy, RowRejects
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
        try:
            with _open(self.path) as f:
                if self.start:
                    f.seek(self.start)
                return f.read() if self.end < 0 else f.read(self.end - self.start)
        except (OSError, EOFError) as exc:  # a corrupt or truncated gzip file: never a bad row
            raise SourceError(f"{self.path}: cannot read ({exc})") from None

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


_GENERIC = re.compile(r": lines \d+-: cannot be read")  # _explain found no line at fault


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
    try:
        yield from _whole_line_blocks(path, block_bytes)
    except (OSError, EOFError) as exc:  # a corrupt or truncated gzip file: never a bad row
        raise SourceError(f"{path}: cannot read ({exc})") from None


def _whole_line_blocks(path: str, block_bytes: int) -> Iterator[tuple[bytes, int]]:
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


def _arrow_kind(typ: pa.DataType) -> Optional[str]:
    """The JSON type (as _json_kind names it) a column of ``typ`` was inferred from."""
    if pa.types.is_null(typ):
        return None
    if pa.types.is_boolean(typ):
        return "a boolean"
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "a number"
    if pa.types.is_struct(typ):
        return "an object"
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return "an array"
    return "text"  # strings, and timestamps inferred from text


def _infer(path: str, data: bytes, first_line: int, kinds: dict[str, tuple[str, int]]) -> pa.Schema:
    """The types of a block's fields. Lines that are bad rows are left out of the
    inference (``read`` rejects them, or fails on the first under the default policy): a
    line that is not a JSON object, and a line whose field has another JSON type than on
    an earlier line of the file (``kinds``: field -> (JSON type, line), the first wins).
    A conflict inside nested values is an error naming the line."""
    try:
        schema = _read(path, data, first_line).schema
        conflict = any(_arrow_kind(f.type) not in (None, kinds.get(f.name, (None,))[0])
                       and f.name in kinds for f in schema)
        if not conflict:
            for f in schema:
                if _arrow_kind(f.type) is not None:
                    kinds.setdefault(f.name, (_arrow_kind(f.type), first_line))
            return schema
    except SourceError:
        pass
    kept = []
    for number, line in enumerate(io.BytesIO(data), start=first_line):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(value, dict):
            continue
        line_kinds = {key: kind for key, kind in ((k, _json_kind(v)) for k, v in value.items()) if kind}
        if any(kinds.get(key, (kind,))[0] != kind for key, kind in line_kinds.items()):
            continue
        for key, kind in line_kinds.items():
            kinds.setdefault(key, (kind, number))
        kept.append(line if line.endswith(b"\n") else line + b"\n")
    if not kept:
        return pa.schema([])
    try:
        return _read(path, b"".join(kept), first_line).schema
    except SourceError as exc:  # the top-level types agree: values inside them do not
        first = _explain(path, io.BytesIO(data), first_line, exc)  # the error a line-by-line read gives first
        if not _GENERIC.search(str(first)):
            raise first from None
        last = first_line + data.rstrip(b"\n").count(b"\n")
        raise SourceError(f"{path}: lines {first_line}-{last}: nested values of different types cannot share one "
                          "schema; a field needs one type (or a schema override)") from None


def _file_schema(path: str, block_bytes: int) -> pa.Schema:
    """The types of a file's fields, inferred over all its lines (a block at a time)."""
    kinds: dict[str, tuple[str, int]] = {}
    schemas = [_infer(path, data, line, kinds) for data, line in _blocks(path, block_bytes)]
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


def _line_problem(line: bytes, schema: pa.Schema, exc: Exception) -> str:
    """Why a line cannot be read with the split's schema, in words."""
    try:
        value = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        return f"not valid JSON: {err}"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}"
    for key, item in value.items():
        if key in schema.names:
            kind, expected = _json_kind(item), _arrow_kind(schema.field(key).type)
            if kind and expected and kind != expected:
                return (f"field {key!r} is {kind} here but {expected} in the split's other lines "
                        f"({schema.field(key).type}); a field needs one type")
    return f"does not match the split's types: {exc}"


def _parses(lines: Sequence[bytes], schema: pa.Schema) -> Optional[Exception]:
    """None when the lines parse with ``schema``, else the error."""
    try:
        pajson.read_json(pa.BufferReader(b"".join(lines)), read_options=pajson.ReadOptions(use_threads=False),
                         parse_options=pajson.ParseOptions(explicit_schema=schema,
                                                           unexpected_field_behavior="ignore"))
        return None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        return exc


def _bad_lines(lines: Sequence[bytes], schema: pa.Schema) -> list[tuple[int, str]]:
    """(index, reason) of the lines that do not parse with ``schema``: halves of a failing
    range are parsed again, so k bad lines cost about k * log(lines) parses."""
    bad, stack = [], [(0, len(lines))]
    while stack:
        start, end = stack.pop()
        exc = _parses(lines[start:end], schema) if end > start else None
        if exc is None:
            continue
        if end - start == 1:
            bad.append((start, _line_problem(lines[start], schema, exc)))
            continue
        middle = (start + end) // 2
        stack += [(middle, end), (start, middle)]
    return sorted(bad)


def _numbered_lines(data: bytes, first_line: int) -> list[tuple[int, bytes]]:
    """(number, bytes with the line break) of the lines that are not blank."""
    return [(number, line) for number, line in enumerate(io.BytesIO(data), start=first_line) if line.strip()]


def read(unit: LineRange, options: Options, rejects: Optional[RowRejects] = None) -> Iterator[pa.RecordBatch]:
    """The unit's lines as batches with the split's types. A line that is not a JSON
    object, or whose value contradicts the split's types, goes to ``rejects`` (the file,
    the line number, the line's bytes); under the default policy the first fails. The
    engine finds values the schema override rejects through ``rejects.locate``."""
    rejects = rejects if rejects is not None else RowRejects(BadRowPolicy())
    data = unit.data()
    if not data.strip():
        return
    schema = unit.arrow_schema
    lines: Optional[list[tuple[int, bytes]]] = None  # the rows' (number, bytes), once needed
    pending: list[tuple[int, str, bytes]] = []  # bad lines (number, reason, bytes) not yet rejected
    try:
        table = _read(unit.path, data, unit.first_line, schema)
    except SourceError as exc:
        lines = _numbered_lines(data, unit.first_line)
        if not rejects.policy.skip and not _GENERIC.search(str(exc)):
            raise  # names the line (and the earlier one a field's type came from)
        bad = _bad_lines([line for _, line in lines], schema)
        if not bad:
            raise
        if not rejects.policy.skip:
            i, reason = bad[0]
            rejects.reject(unit.path, "line", lines[i][0], reason, lines[i][1])  # raises
        skipped = {i for i, _ in bad}
        pending = [(lines[i][0], reason, lines[i][1]) for i, reason in bad]
        lines = [entry for i, entry in enumerate(lines) if i not in skipped]
        if not lines:
            for number, reason, raw in pending:
                rejects.reject(unit.path, "line", number, reason, raw)
            return
        table = _read(unit.path, b"".join(line if line.endswith(b"\n") else line + b"\n" for _, line in lines),
                      lines[0][0], schema)
    # Columns in the split's order (the reader orders them as they appear).
    table = table.select(schema.names)
    row = 0
    for batch in table.to_batches(max_chunksize=options.batch_rows):
        rejects.flush()
        # The bad lines before this batch's last row join the rows the engine rejects from
        # it, so that the quarantine is in line order.
        end = lines[row + batch.num_rows][0] if pending and row + batch.num_rows < len(lines) else None
        while pending and (end is None or pending[0][0] < end):
            number, reason, raw = pending.pop(0)
            rejects.reject(unit.path, "line", number, reason, raw)

        def locate(i: int, _offset=row) -> tuple[str, str, int, bytes]:
            nonlocal lines
            if lines is None:
                lines = _numbered_lines(data, unit.first_line)
            number, line = lines[_offset + i]
            return unit.path, "line", number, line

        rejects.locate(locate)
        yield batch
        row += batch.num_rows
