"""Avro source: fastavro decodes the records, which become typed Arrow batches.

The Arrow schema comes from the file's writer schema: boolean -> bool, int -> int32,
long -> int64, float -> float32, double -> float64, bytes -> binary, string -> string,
fixed -> fixed_size_binary, enum -> string (the symbol), array -> list, map -> map<string, V>,
record -> struct (its fields become ``parent.child`` features), a union of null and one
type -> that type, nullable. Other unions: a union of numbers only (int, long, float,
double, with or without null) is the widest of them (long, or double when a float or
double is in it); any other union is an error naming the field, as Arrow columns have one
type. Logical types: decimal -> decimal128/256 (a float feature, or its exact text with
the schema override ``string``), uuid -> string, date -> date32, time-millis/micros ->
time32/time64, timestamp-millis/micros (UTC) and local-timestamp-millis/micros (taken as
UTC) -> timestamp; see examplegen.typemap for the features they give.

``columns`` reads only those top-level fields (a reader schema: the others are skipped).
Work units: a file, or for a file of more than ``chunk_bytes`` runs of its blocks (between
sync markers), found by reading the block headers in the launcher. Sizes are in decoded
bytes (``work_bytes``: records times a row's rough size, as for Parquet), not the file's
compressed size.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, Iterator, Optional, Sequence

import pyarrow as pa

from examplegen import fs, typemap
from examplegen.bad_rows import BadRowPolicy, RowRejects
from examplegen.errors import SourceError
from examplegen.sources.base import (Plan, TableOptions, WorkUnit, batch_locator, check_same_schema,
                                     check_schema_columns, column_types, row_bytes, row_json)

FORMAT = "avro"
READS_URLS = True  # reads gs:// and s3:// in place (examplegen.fs)

_PRIMITIVES = {"null": pa.null(), "boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(),
               "float": pa.float32(), "double": pa.float64(), "bytes": pa.binary(), "string": pa.string()}
_NUMBERS = ("int", "long", "float", "double")


class Options(TableOptions):
    SOURCE = FORMAT


@dataclasses.dataclass(frozen=True)
class AvroBlocks(WorkUnit):
    """The blocks of one file from byte ``start`` up to ``end`` (-1: the whole file)."""

    start: int
    end: int
    first_record: int  # file record number of the unit's first record
    arrow_schema: pa.Schema  # of the fields read
    reader_schema: Optional[dict]  # None: the writer's; else with the fields projected
    has_uuid: bool  # uuid values (fastavro gives uuid.UUID objects) become their text

    def where(self, row: int) -> str:
        return f"{self.path}: record {self.first_record + row}"


# --------------------------------------------------------------------------- schema
class _Schema:
    """Avro writer schema -> Arrow schema, with named types resolved."""

    def __init__(self, path: str):
        self.path = path
        self.named: dict[str, pa.DataType] = {}
        self.has_uuid = False

    def fail(self, field: str, message: str) -> SourceError:
        return SourceError(f"{self.path}: Avro field {field!r}: {message}")

    def arrow(self, schema: Any, field: str, namespace: str = "") -> pa.DataType:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _PRIMITIVES[schema]
            for name in (schema, f"{namespace}.{schema}"):
                if name in self.named:
                    return self.named[name]
            raise self.fail(field, f"refers to type {schema!r}, which is not defined before it "
                                   "(recursive types have no tabular form)")
        if isinstance(schema, list):
            return self.union(schema, field, namespace)
        if not isinstance(schema, dict):
            raise self.fail(field, f"unexpected schema {schema!r}")
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if logical:
            typ = self.logical(schema, logical)
            if typ is not None:
                return typ
        if kind == "record" or kind == "error":
            namespace = schema.get("namespace", namespace)
            fields = [pa.field(f["name"], self.arrow(f["type"], f"{field}.{f['name']}" if field else f["name"],
                                                     namespace)) for f in schema["fields"]]
            return self.define(schema, namespace, pa.struct(fields))
        if kind == "enum":
            return self.define(schema, namespace, pa.string())
        if kind == "fixed":
            return self.define(schema, namespace, pa.binary(int(schema["size"])))
        if kind == "array":
            return pa.list_(self.arrow(schema["items"], field, namespace))
        if kind == "map":
            return pa.map_(pa.string(), self.arrow(schema["values"], field, namespace))
        return self.arrow(kind, field, namespace)

    def define(self, schema: dict, namespace: str, typ: pa.DataType) -> pa.DataType:
        name = schema.get("name", "")
        self.named[name] = typ
        if "." not in name and schema.get("namespace", namespace):
            self.named[f"{schema.get('namespace', namespace)}.{name}"] = typ
        return typ

    def logical(self, schema: dict, logical: str) -> Optional[pa.DataType]:
        kind = schema.get("type")
        if logical == "decimal" and kind in ("bytes", "fixed"):
            precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
            if kind == "fixed":
                self.define(schema, "", pa.binary(int(schema["size"])))
            return pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        if logical == "uuid" and kind == "string":
            self.has_uuid = True
            return pa.string()
        simple = {("date", "int"): pa.date32(), ("time-millis", "int"): pa.time32("ms"),
                  ("time-micros", "long"): pa.time64("us"),
                  ("timestamp-millis", "long"): pa.timestamp("ms", tz="UTC"),
                  ("timestamp-micros", "long"): pa.timestamp("us", tz="UTC"),
                  ("local-timestamp-millis", "long"): pa.timestamp("ms"),
                  ("local-timestamp-micros", "long"): pa.timestamp("us")}
        return simple.get((logical, kind))  # an unknown logical type: its underlying type

    def union(self, branches: list, field: str, namespace: str) -> pa.DataType:
        others = [b for b in branches if b != "null"]
        if len(others) == 1:
            return self.arrow(others[0], field, namespace)
        if not others:
            return pa.null()
        if all(b in _NUMBERS for b in others):
            return pa.float64() if any(b in ("float", "double") for b in others) else pa.int64()
        raise self.fail(field, f"is a union of {others}; only a union of null and one type (nullable) or "
                               "of numbers has one Arrow type (write such a field as one type, or as a "
                               "record with a field per branch)")


def _header(path: str, options: Options) -> tuple[pa.Schema, Optional[dict], bool]:
    """The Arrow schema of the fields read, the reader schema to read them with, whether
    there are uuids."""
    import fastavro

    try:
        with fs.open_input(path) as f:
            writer_schema = fastavro.reader(f).writer_schema
    except Exception as exc:  # fastavro raises ValueError, EOFError, ... for a non-Avro file
        raise SourceError(f"{path}: not a readable Avro file: {exc}") from None
    converter = _Schema(path)
    top = converter.arrow(writer_schema, "")
    if not pa.types.is_struct(top):
        raise SourceError(f"{path}: the Avro schema is {writer_schema!r}, not a record; "
                          "each record must be a row")
    schema = options.project(pa.schema(list(top)), path)
    reader_schema = None
    if options.columns:
        by_name = {f["name"]: f for f in writer_schema["fields"]}
        reader_schema = dict(writer_schema, fields=[by_name[c] for c in options.columns])
    return schema, reader_schema, converter.has_uuid


def _uuid_text(value: Any) -> Any:
    """The value with every uuid.UUID in it (at any depth) replaced by its text."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _uuid_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_uuid_text(v) for v in value]
    return value


def _blocks(path: str) -> list[tuple[int, int, int]]:
    """(offset, records, bytes) of every block of the file, from the block headers alone
    (each block's record count and length; the data is skipped, never decompressed)."""
    import fastavro
    from fastavro.io.binary_decoder import BinaryDecoder

    size = fs.size(path)
    blocks = []
    with fs.open_input(path) as f:
        fastavro.reader(f)  # reads the header, up to the first block
        decoder = BinaryDecoder(f)
        while True:
            offset = f.tell()
            if offset >= size:
                break
            count, length = decoder.read_long(), decoder.read_long()
            if count < 0 or length < 0 or offset + length + 16 > size:
                raise ValueError(f"the block at byte {offset} claims {count} records in {length} bytes, "
                                 f"past the end of the file ({size} bytes)")
            f.seek(length + 16, 1)  # the data and the sync marker
            blocks.append((offset, count, f.tell() - offset))
    return blocks


def _file_blocks(path: str) -> list[tuple[int, int, int]]:
    try:
        return _blocks(path)
    except SourceError:
        raise
    except Exception as exc:  # fastavro: not Avro; a short file
        raise SourceError(f"{path}: a block cannot be read: {exc}") from None


def _block_runs(blocks: list[tuple[int, int, int]], record_bytes: int,
                chunk_bytes: int) -> list[tuple[int, int, int, int]]:
    """(start, end, first record, work bytes) of runs of whole blocks of about chunk_bytes
    of decoded rows each (end -1: to the end of the file)."""
    runs, start, size = [], 0, 0
    record = first = 0
    for i, (offset, count, _) in enumerate(blocks):
        if size == 0:
            start, first = offset, record
        size += count * record_bytes
        record += count
        if size >= chunk_bytes or i == len(blocks) - 1:
            runs.append((start, blocks[i + 1][0] if i + 1 < len(blocks) else -1, first, size))
            size = 0
    return runs


def work_bytes(path: str, options: Options) -> int:
    """Records times a decoded row's rough size (examplegen.sources.base.row_bytes), as
    for Parquet: an Avro file is binary and usually compressed (deflate, snappy, ...), so
    its size says little about the work; the record counts come from the block headers."""
    schema, _, _ = _header(path, options)
    return sum(count for _, count, _ in _file_blocks(path)) * row_bytes(schema)


def has_rows(path: str, options: Options) -> bool:
    """Whether a block of the file holds a record."""
    _header(path, options)  # a file that is not Avro is named here
    return any(count for _, count, _ in _file_blocks(path))


def plan(split_name: str, files: Sequence[str], options: Options, chunk_bytes: int = 64 << 20) -> Plan:
    units: list[AvroBlocks] = []
    first: Optional[tuple[str, pa.Schema]] = None
    for path in files:
        arrow_schema, reader_schema, has_uuid = _header(path, options)
        if first is None:
            first = (path, arrow_schema)
        else:
            check_same_schema(split_name, first, (path, arrow_schema))
        runs = _block_runs(_file_blocks(path), row_bytes(arrow_schema), chunk_bytes)
        if len(runs) <= 1:
            size = runs[0][3] if runs else 0
            units.append(AvroBlocks(path, size, 0, -1, 0, arrow_schema, reader_schema, has_uuid))
            continue
        units.extend(AvroBlocks(path, run_bytes, start, end, first_record, arrow_schema, reader_schema, has_uuid)
                     for start, end, first_record, run_bytes in runs)
    columns = typemap.example_names(first[1])
    check_schema_columns(options.schema, columns, first[0], FORMAT)
    return Plan(units, columns=columns, info={"column_types": column_types(first[1])})


def _batch(records: list[dict], unit: AvroBlocks, first: int, rejects: RowRejects) -> Optional[pa.RecordBatch]:
    """The records (the unit's ``first``-th on) as a batch; a record Arrow cannot take goes
    to ``rejects`` (None: every record was rejected)."""
    if unit.has_uuid:
        records = [_uuid_text(r) for r in records]
    try:
        batch = pa.RecordBatch.from_pylist(records, schema=unit.arrow_schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        bad = []
        for i, record in enumerate(records):  # name the records
            try:
                pa.RecordBatch.from_pylist([record], schema=unit.arrow_schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as one:
                rejects.reject(unit.path, "record", unit.first_record + first + i, str(one), row_json(record))
                bad.append(i)
        if not bad:
            raise SourceError(f"{unit.path}: {exc}") from None
        keep = set(range(len(records))) - set(bad)
        if not keep:
            return None
        batch = pa.RecordBatch.from_pylist([records[i] for i in sorted(keep)], schema=unit.arrow_schema)
        numbers = [unit.first_record + first + i for i in sorted(keep)]
        rejects.locate(lambda i: (unit.path, "record", numbers[i], row_json(batch.slice(i, 1).to_pylist()[0])))
        return batch
    rejects.locate(batch_locator(unit.path, "record", unit.first_record + first, batch))
    return batch


def read(unit: AvroBlocks, options: Options, rejects: Optional[RowRejects] = None) -> Iterator[pa.RecordBatch]:
    """The unit's records. A record whose values Arrow cannot take, or with a value the
    type map rejects (found by the engine through ``rejects.locate``), is a bad row: the
    file, its record number and the record as JSON go to ``rejects``. A block that cannot
    be read (corrupt data, a bad sync marker, a short file) is fatal."""
    import fastavro

    rejects = rejects if rejects is not None else RowRejects(BadRowPolicy())
    rows = 0
    records: list[dict] = []
    with fs.open_input(unit.path) as f:
        try:
            reader = fastavro.block_reader(f, reader_schema=unit.reader_schema)
            if unit.start:
                f.seek(unit.start)
            for block in reader:
                if unit.end >= 0 and block.offset >= unit.end:
                    break
                records.extend(block)
                if len(records) >= options.batch_rows:
                    rejects.flush()  # the previous batch's bad records
                    batch = _batch(records, unit, rows, rejects)
                    rows += len(records)
                    records = []
                    if batch is not None:
                        yield batch
        except SourceError:
            raise
        except Exception as exc:  # fastavro: a corrupt block, a bad sync marker, a short file
            raise SourceError(f"{unit.where(rows + len(records))}: the Avro data cannot be read "
                              f"({type(exc).__name__}: {exc})") from None
    if records:
        rejects.flush()
        batch = _batch(records, unit, rows, rejects)
        if batch is not None:
            yield batch
