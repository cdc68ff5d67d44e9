"""Parquet source: pyarrow reads row groups straight into typed Arrow batches.

Work units are runs of whole row groups (about ``chunk_bytes`` of the file each), so a
large file is converted by several workers. ``columns`` projects the columns to read
(top-level names); ``schema`` overrides a column's mapping (examplegen.typemap). Every
file of a split must have the same schema (after projection): a difference is an error
naming both files.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from examplegen import typemap
from examplegen.errors import ConfigError, SourceError
from examplegen.sources.base import (Plan, WorkUnit, check_same_schema, check_schema_columns,
                                     options_from_dict, schema_pairs)

FORMAT = "parquet"


@dataclasses.dataclass(frozen=True)
class Options:
    columns: Optional[tuple[str, ...]] = None  # top-level columns to read; None: all
    schema: Optional[tuple[tuple[str, str], ...]] = None  # feature -> typemap override
    batch_rows: int = 65536  # rows per batch a worker converts at once

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "Options":
        opts = options_from_dict(cls, d, FORMAT)
        columns = opts.columns
        if isinstance(columns, str):
            columns = [c.strip() for c in columns.split(",") if c.strip()]
        if columns is not None:
            if not isinstance(columns, (list, tuple)) or not columns or not all(isinstance(c, str) for c in columns):
                raise ConfigError(f"parquet option columns: expected a non-empty list of column names, got {columns!r}")
            columns = tuple(columns)
        schema = schema_pairs(opts.schema, FORMAT)
        typemap.check_overrides(schema, FORMAT)
        if not isinstance(opts.batch_rows, int) or opts.batch_rows < 1:
            raise ConfigError(f"parquet option batch_rows must be a positive integer, got {opts.batch_rows!r}")
        return dataclasses.replace(opts, columns=columns, schema=schema)

    def to_dict(self) -> dict:
        return {"columns": list(self.columns) if self.columns else None,
                "schema": dict(self.schema) if self.schema else None, "batch_rows": self.batch_rows}


@dataclasses.dataclass(frozen=True)
class RowGroups(WorkUnit):
    """Consecutive row groups of one file; ``first_row`` is the file row the first one starts at."""

    row_groups: tuple[int, ...]
    first_row: int

    def where(self, row: int) -> str:
        return f"{self.path}: row {self.first_row + row}"


def _open(path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file: {exc}") from None


def _projected_schema(pf: pq.ParquetFile, path: str, options: Options) -> pa.Schema:
    schema = pf.schema_arrow
    if options.columns is None:
        return pa.schema(list(schema), metadata=None)
    missing = [c for c in options.columns if c not in schema.names]
    if missing:
        raise ConfigError(f"parquet option columns names {missing} that {path} does not have "
                          f"(columns: {schema.names})")
    return pa.schema([schema.field(c) for c in options.columns])


def plan(split_name: str, files: Sequence[str], options: Options, chunk_bytes: int = 64 << 20) -> Plan:
    units: list[RowGroups] = []
    first: Optional[tuple[str, pa.Schema]] = None
    for path in files:
        pf = _open(path)
        schema = _projected_schema(pf, path, options)
        if first is None:
            first = (path, schema)
        else:
            check_same_schema(split_name, first, (path, schema))
        meta = pf.metadata
        file_size = os.path.getsize(path)
        total_rows = max(1, meta.num_rows)
        group, group_bytes, start_row, row = [], 0, 0, 0
        for i in range(meta.num_row_groups):
            rg = meta.row_group(i)
            if not group:
                start_row = row
            group.append(i)
            group_bytes += rg.total_byte_size
            row += rg.num_rows
            if group_bytes >= chunk_bytes or i == meta.num_row_groups - 1:
                share = sum(meta.row_group(g).num_rows for g in group) / total_rows
                units.append(RowGroups(path, int(file_size * share), tuple(group), start_row))
                group, group_bytes = [], 0
    columns = typemap.example_names(first[1])
    check_schema_columns(options.schema, columns, first[0], FORMAT)
    return Plan(units, columns=columns)


def read(unit: RowGroups, options: Options) -> Iterator[pa.RecordBatch]:
    pf = _open(unit.path)
    try:
        yield from pf.iter_batches(batch_size=options.batch_rows, row_groups=list(unit.row_groups),
                                   columns=list(options.columns) if options.columns else None,
                                   use_threads=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{unit.path}: row groups {list(unit.row_groups)}: cannot be read: {exc}") from None
    finally:
        pf.close()
