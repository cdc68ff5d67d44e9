"""Parquet source: pyarrow reads row groups straight into typed Arrow batches.

Work units are runs of whole row groups (about half of ``chunk_bytes`` of decoded rows
each, see ``work_bytes``), so a large file is converted by several workers. Half: a unit
costs only a footer read, and smaller units even out the workers' last units and hold
less memory (1M taxi rows in row groups of 64Ki rows on 2 cores: 2.56 -> 2.48 s, peak
RSS 861 -> 757 MiB; bench/README.md). ``columns`` projects the columns to read
(top-level names); ``schema`` overrides a column's mapping (examplegen.typemap). Every
file of a split must have the same schema (after projection): a difference is an error
naming both files. A row with a value the type map rejects (a uint64 above the int64
range, a null inside a list) is a bad row, named by its 0-based row in the file; the
engine only looks for such rows after a batch fails to convert.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from examplegen import fs, typemap
from examplegen.bad_rows import RowRejects
from examplegen.errors import SourceError
from examplegen.sources.base import (Plan, TableOptions, WorkUnit, batch_locator, check_same_schema,
                                     check_schema_columns, column_types, row_bytes)

FORMAT = "parquet"
READS_URLS = True  # reads gs:// and s3:// in place (examplegen.fs)


class Options(TableOptions):
    SOURCE = FORMAT


@dataclasses.dataclass(frozen=True)
class RowGroups(WorkUnit):
    """Consecutive row groups of one file; ``first_row`` is the file row the first one starts at."""

    row_groups: tuple[int, ...]
    first_row: int

    def where(self, row: int) -> str:
        return f"{self.path}: row {self.first_row + row}"


def _open(path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(fs.open_input(path) if fs.is_remote(path) else path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file: {exc}") from None


def work_bytes(path: str, options: Options) -> int:
    """Rows times a decoded row's rough size: the work a file holds (it is compressed)."""
    pf = _open(path)
    return pf.metadata.num_rows * row_bytes(options.project(pf.schema_arrow, path))


def has_rows(path: str, options: Options) -> bool:
    return _open(path).metadata.num_rows > 0


def plan(split_name: str, files: Sequence[str], options: Options, chunk_bytes: int = 64 << 20) -> Plan:
    units: list[RowGroups] = []
    first: Optional[tuple[str, pa.Schema]] = None
    for path in files:
        pf = _open(path)
        schema = options.project(pf.schema_arrow, path)
        if first is None:
            first = (path, schema)
        else:
            check_same_schema(split_name, first, (path, schema))
        meta = pf.metadata
        width = row_bytes(schema)
        group, group_rows, start_row = [], 0, 0
        for i in range(meta.num_row_groups):
            group.append(i)
            group_rows += meta.row_group(i).num_rows
            if group_rows * width >= chunk_bytes // 2 or i == meta.num_row_groups - 1:
                units.append(RowGroups(path, group_rows * width, tuple(group), start_row))
                start_row += group_rows
                group, group_rows = [], 0
    columns = typemap.example_names(first[1])
    check_schema_columns(options.schema, columns, first[0], FORMAT)
    return Plan(units, columns=columns, info={"column_types": column_types(first[1])})


def read(unit: RowGroups, options: Options, rejects: Optional[RowRejects] = None) -> Iterator[pa.RecordBatch]:
    """The row groups' rows. Rows with a value the type map rejects are found by the
    engine, which names them through ``rejects.locate`` (file row, and the row as JSON)."""
    pf = _open(unit.path)
    row = unit.first_row
    try:
        for batch in pf.iter_batches(batch_size=options.batch_rows, row_groups=list(unit.row_groups),
                                     columns=list(options.columns) if options.columns else None,
                                     use_threads=False):
            if rejects is not None:
                rejects.flush()  # the previous batch's bad rows
                rejects.locate(batch_locator(unit.path, "row", row, batch))
            yield batch
            row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceError(f"{unit.path}: row groups {list(unit.row_groups)}: cannot be read: {exc}") from None
    finally:
        pf.close()
