"""CSV source: RFC 4180 parsing with Arrow, TFX CsvExampleGen's type inference and conversion.

TFX semantics reproduced exactly (tfx_bsl csv_decoder + csv_example_gen executor):
- a cell is UNKNOWN when empty; INT when Python's ``int()`` accepts its bytes and the value
  fits int64 (a larger integer makes it STRING); else FLOAT when ``float()`` accepts it;
  else STRING. A column's type is the maximum over the split (UNKNOWN < INT < FLOAT < STRING).
- INT -> int64_list, FLOAT -> float_list (the double rounded to float32), STRING ->
  bytes_list of the cell's UTF-8 bytes; an empty cell gives an empty list of the column's
  type; an all-empty (UNKNOWN) column gives an empty ``Feature()``.

Speed: cells are checked with vectorised regular expressions; only cells outside the
common shapes (``+4``, `` 12 ``, ``1_000``, ``nan``, 19-digit integers, ...) go through
Python's ``int()``/``float()`` one by one, so the result is Python's exactly.

Beyond TFX: delimiter, quote character, encoding, header-less files, gzip input and a
schema override (column -> int/float/string) that replaces inference.
"""

from __future__ import annotations

import codecs
import contextlib
import copy
import csv as pycsv
import dataclasses
import enum
import io
import sys
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from examplegen import fs
from examplegen.bad_rows import BadRowPolicy, RowRejects, keep_mask
from examplegen.errors import ConfigError, SourceError
from examplegen.sources.base import Plan, WorkUnit

FORMAT = "csv"
READS_URLS = True  # reads gs:// and s3:// in place (examplegen.fs)

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"

# Shapes that Arrow parses exactly as Python does (checked by tests against Python).
_FAST_INT = r"^-?[0-9]{1,18}$"
_FAST_FLOAT = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


class ColumnType(enum.IntEnum):
    UNKNOWN = 0
    INT = 1
    FLOAT = 2
    STRING = 3


_SCHEMA_NAMES = {"int": ColumnType.INT, "float": ColumnType.FLOAT, "string": ColumnType.STRING,
                 "bytes": ColumnType.STRING, "int64": ColumnType.INT, "float32": ColumnType.FLOAT}


@dataclasses.dataclass(frozen=True)
class CsvOptions:
    """How to read CSV files. Defaults are TFX's (comma, double quote, UTF-8, header line)."""

    delimiter: str = ","
    quote_char: Optional[str] = '"'  # None: no quoting at all
    encoding: str = "utf-8"
    header: bool = True
    column_names: Optional[tuple[str, ...]] = None  # required when header is False
    schema: Optional[tuple[tuple[str, str], ...]] = None  # column -> int|float|string

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> "CsvOptions":
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(f"csv option {key!r} is unknown (known: {', '.join(sorted(known))})")
        if d.get("column_names") is not None:
            names = d["column_names"]
            if isinstance(names, str):
                names = [n.strip() for n in names.split(",")]
            d["column_names"] = tuple(names)
        if d.get("schema") is not None:
            schema = d["schema"]
            if isinstance(schema, str):
                schema = dict(item.split(":", 1) for item in schema.split(",") if item)
            d["schema"] = tuple(sorted((str(k).strip(), str(v).strip()) for k, v in dict(schema).items()))
        opts = cls(**d)
        opts.validate()
        return opts

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["column_names"] = list(self.column_names) if self.column_names else None
        d["schema"] = dict(self.schema) if self.schema else None
        return d

    def validate(self) -> None:
        if not isinstance(self.delimiter, str) or len(self.delimiter) != 1:
            raise ConfigError(f"csv option delimiter must be one character, got {self.delimiter!r}")
        if self.delimiter in "\r\n":
            raise ConfigError("csv option delimiter cannot be a line break")
        if self.quote_char is not None:
            if not isinstance(self.quote_char, str) or len(self.quote_char) != 1:
                raise ConfigError(f"csv option quote_char must be one character, got {self.quote_char!r}")
            if self.quote_char == self.delimiter:
                raise ConfigError("csv options quote_char and delimiter must differ")
        try:
            "x".encode(self.encoding)
        except LookupError:
            raise ConfigError(f"csv option encoding {self.encoding!r} is not a known encoding") from None
        if not self.header and not self.column_names:
            raise ConfigError("csv option header=false needs column_names")
        if self.column_names is not None and len(set(self.column_names)) != len(self.column_names):
            raise ConfigError(f"csv option column_names has duplicates: {list(self.column_names)}")
        for column, type_name in self.schema or ():
            if type_name.lower() not in _SCHEMA_NAMES:
                raise ConfigError(
                    f"csv schema: column {column!r} has type {type_name!r}; use int, float or string")

    def schema_types(self) -> dict[str, ColumnType]:
        """The schema override as column types (these columns are not inferred)."""
        return {c: _SCHEMA_NAMES[t.lower()] for c, t in (self.schema or ())}

    @property
    def is_utf8(self) -> bool:
        return self.encoding.lower().replace("_", "-") in ("utf-8", "utf8")

    def quote_byte(self) -> Optional[int]:
        if self.quote_char is None:
            return None
        return ord(self.quote_char.encode(self.encoding)[:1] or b"\0")


# ---------------------------------------------------------------------------------------
# File layout: header, and row-aligned byte ranges (chunks) that workers parse in parallel.


def is_gzip_file(path: str) -> bool:
    with fs.open_input(path) as f:
        return f.read(2) == _GZIP_MAGIC


class _GzipReader(io.RawIOBase):
    """A gzip file's decompressed bytes; a truncated or corrupt file is a SourceError
    naming it."""

    def __init__(self, path: str):
        self._path = path
        self._file = fs.open_gzip(path)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        from isal import isal_zlib

        try:
            data = self._file.read(size)
        except (EOFError, OSError, isal_zlib.error) as exc:
            raise SourceError(f"{self._path}: the gzip data is truncated or corrupt ({exc}); "
                              "the file must be copied again") from None
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def _open_stream(path: str):
    """A binary stream of the file's (decompressed) bytes."""
    if is_gzip_file(path):
        return io.BufferedReader(_GzipReader(path), 1 << 20)
    return fs.open_input(path)


def _record_end(data: bytes, quote: Optional[int], start: int = 0) -> int:
    """Index just past the first line break at which quotes are balanced (-1 if none).

    A line break outside quotes ends a record: with RFC 4180 quoting (quotes enclose a
    field, doubled inside it) the count of quote characters before it is even. This is
    the rule TFX's own multi-line CSV reader uses.
    """
    pos = start
    parity = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return -1
        if quote is not None:
            parity = (parity + data.count(bytes([quote]), pos, nl)) & 1
        if parity == 0:
            return nl + 1
        pos = nl + 1


@dataclasses.dataclass(frozen=True)
class CsvLayout:
    """What a worker needs to parse one file: column names and where data starts."""

    path: str
    column_names: tuple[str, ...]
    data_offset: int  # bytes (of the decompressed stream) before the first data record
    header_lines: int  # line breaks before data (for line numbers in errors)
    gzip: bool
    has_rows: bool = True  # False: nothing but line breaks after the header (or an empty file)


def read_layout(path: str, options: CsvOptions) -> CsvLayout:
    """Reads the header of ``path`` (or takes the configured names)."""
    gz = is_gzip_file(path)
    with _open_stream(path) as f:
        head = f.read(1 << 20)
        while True:
            offset = len(_BOM) if head.startswith(_BOM) else 0
            if options.header:  # blank lines before the header are skipped, as Arrow does
                offset = len(head) - len(head[offset:].lstrip(b"\r\n"))
            end = _record_end(head, options.quote_byte(), offset) if options.header else offset
            if end >= 0 or not options.header:
                break
            more = f.read(1 << 20)
            if not more:
                end = len(head)
                break
            head += more
        has_rows = _has_data(f, head[end if options.header else offset:])
    if not options.header:
        return CsvLayout(path, tuple(options.column_names), offset, 0, gz, has_rows)
    if not has_rows and not head[offset:].strip(b"\r\n"):
        return CsvLayout(path, (), offset, 0, gz, has_rows=False)  # an empty file
    header_line = 1 + head.count(b"\n", 0, offset)
    where = f"{path}: line {header_line}"
    if end == offset or not head[offset:end].strip():
        raise SourceError(f"{where}: the file has no header line (is it empty?)")
    header_text = _decode(head[offset:end], options, path, 1)
    try:
        rows = list(pycsv.reader(io.StringIO(header_text, newline=""), strict=True, **_pycsv_dialect(options)))
    except pycsv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise SourceError(f"{where}: a quoted field opened in the header is never closed") from None
        raise SourceError(f"{where}: the header is not valid CSV ({exc}): {header_text[:120]!r}") from None
    if len(rows) > 1:  # a quote inside an unquoted name made the header look longer
        raise SourceError(f"{where}: the header holds a line break outside quotes: {header_text[:120]!r}")
    names = tuple(rows[0]) if rows else ()
    if not names or any(n == "" for n in names):
        raise SourceError(f"{where}: the header has an empty column name: {header_text.strip()!r}")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise SourceError(f"{where}: the header repeats column name(s) {dup}")
    if options.column_names and tuple(options.column_names) != names:
        raise SourceError(
            f"{where}: the header {list(names)} differs from column_names {list(options.column_names)}")
    return CsvLayout(path, names, end, head.count(b"\n", 0, end), gz, has_rows)


def _has_data(stream, rest: bytes) -> bool:
    """Whether ``rest`` and what follows it in ``stream`` hold more than line breaks."""
    while True:
        if rest.strip(b"\r\n"):
            return True
        rest = stream.read(1 << 16)
        if not rest:
            return False


def plan_chunks(layout: CsvLayout, options: CsvOptions, chunk_bytes: int) -> list[tuple[int, int, int]]:
    """Row-aligned byte ranges ``(start, end, first_line)`` covering the file's data.

    A gzip file is one range (it cannot be split); ``end`` is then -1.
    """
    return list(iter_chunks(layout, options, chunk_bytes))


def iter_chunks(layout: CsvLayout, options: CsvOptions, chunk_bytes: int) -> Iterator[tuple[int, int, int]]:
    """plan_chunks, one range at a time (the file is scanned as the ranges are taken)."""
    if layout.gzip:
        yield (layout.data_offset, -1, layout.header_lines + 1)
        return

    size = fs.size(layout.path)
    quote = options.quote_byte()
    start, line = layout.data_offset, layout.header_lines + 1
    with fs.open_input(layout.path) as f:
        parity = 0  # quote parity between `start` and the read position
        while start < size:
            target = start + chunk_bytes
            if target >= size:
                yield (start, size, line)
                break
            # Scan from `start` for the first record boundary at or after `target`.
            f.seek(start)
            block = f.read(target - start)
            parity = block.count(bytes([quote])) & 1 if quote is not None else 0
            newlines = block.count(b"\n")
            pos = target
            end = -1
            while end < 0:
                f.seek(pos)
                piece = f.read(1 << 16)
                if not piece:
                    end = size
                    break
                i = 0
                while True:
                    nl = piece.find(b"\n", i)
                    if nl < 0:
                        if quote is not None:
                            parity ^= piece.count(bytes([quote]), i) & 1
                        newlines += piece.count(b"\n", i)
                        break
                    if quote is not None:
                        parity ^= piece.count(bytes([quote]), i, nl) & 1
                    newlines += 1
                    if parity == 0:
                        end = pos + nl + 1
                        break
                    i = nl + 1
                pos += len(piece)
            yield (start, end, line)
            line += newlines
            start = end


def _pycsv_dialect(options: CsvOptions) -> dict:
    if options.quote_char is None:
        return {"delimiter": options.delimiter, "quoting": pycsv.QUOTE_NONE}
    return {"delimiter": options.delimiter, "quotechar": options.quote_char}


def _decode(data: bytes, options: CsvOptions, path: str, line: int) -> str:
    try:
        return data.decode(options.encoding)
    except UnicodeDecodeError as exc:
        bad_line = line + data.count(b"\n", 0, exc.start)
        raise SourceError(
            f"{path}: line {bad_line}: bytes are not valid {options.encoding}: {exc.reason}") from None


# ---------------------------------------------------------------------------------------
# Parsing a chunk into string columns.
#
# A range is parsed by Arrow in record-aligned blocks of about ``batch_bytes``. A block
# Arrow parses without complaint costs nothing more. When Arrow reports rows with the
# wrong number of fields, or fails (bytes not valid in the encoding), the block's records
# are located with Python's csv module, records that do not decode are taken out, the rest
# is parsed again, and every bad row goes to the work unit's RowRejects with its line and
# raw bytes (under the fail policy the first one raises; see examplegen.bad_rows).

_MAX_BLOCK = 256 << 20  # a gzip block grows to this without a record end before Arrow sees it


class _Block:
    """Bytes that Arrow parsed in one call, and where each of their rows is in the file."""

    def __init__(self, path: str, data: bytes, first_line: int, options: CsvOptions, num_rows: int,
                 records: Optional[list[tuple[int, int, int]]] = None):
        self.path = path
        self.data = data
        self.first_line = first_line
        self.options = options
        self.num_rows = num_rows
        self._records = records  # (line, start, end) per parsed row; found when first asked

    def record(self, row: int) -> tuple[int, int, int]:
        if self._records is None:
            records = _locate_records(self.data, self.options, self.first_line, self.num_rows)
            if len(records) != self.num_rows:
                raise _rows_disagree(self.path, self.data, self.first_line, self.num_rows, len(records))
            self._records = records
        return self._records[row]


def _rows_disagree(path: str, data: bytes, first_line: int, arrow_rows: int, python_rows: int) -> SourceError:
    last = first_line + data.count(b"\n")
    return SourceError(
        f"{path}: lines {first_line}-{last}: cannot tell which line each row starts on: Arrow reads "
        f"{arrow_rows} rows there, Python's csv module {python_rows} (a quote character inside an unquoted "
        f"field?); quote such fields, or pass quote_char none")


@dataclasses.dataclass
class CsvBatch:
    """String columns of some rows (an empty cell is null), and where each row is."""

    batch: pa.RecordBatch
    block: _Block
    offset: int  # the block's row index of the batch's first row

    def line(self, i: int) -> int:
        """The file line where row ``i`` begins."""
        return self.block.record(self.offset + i)[0]

    def raw(self, i: int) -> bytes:
        """Row ``i``'s bytes as in the file (its line break included)."""
        _, start, end = self.block.record(self.offset + i)
        return self.block.data[start:end]


def read_chunk(layout: CsvLayout, options: CsvOptions, start: int, end: int, first_line: int,
               batch_bytes: int = 8 << 20, rejects: Optional[RowRejects] = None) -> Iterator[pa.RecordBatch]:
    """Yields record batches of string columns (an empty cell is null) for one range."""
    for rows in read_rows(layout, options, start, end, first_line, batch_bytes, rejects):
        yield rows.batch


def read_rows(layout: CsvLayout, options: CsvOptions, start: int, end: int, first_line: int,
              batch_bytes: int = 8 << 20, rejects: Optional[RowRejects] = None) -> Iterator[CsvBatch]:
    """Yields the rows of one range in batches of about ``batch_bytes``. Bad rows go to
    ``rejects`` (default: the fail policy, so the first one raises SourceError naming file
    and line).

    Always a SourceError naming the file and line: a record larger than ``batch_bytes`` and
    a quoted field that is never closed (Arrow would read the rest of the file into it)."""
    rejects = rejects if rejects is not None else RowRejects(BadRowPolicy())
    names = list(layout.column_names)
    invalid: list = []
    read_opts = pacsv.ReadOptions(column_names=names, use_threads=False, block_size=batch_bytes,
                                  encoding=options.encoding)
    parse_opts = pacsv.ParseOptions(
        delimiter=options.delimiter,
        quote_char=options.quote_char if options.quote_char is not None else False,
        newlines_in_values=options.quote_char is not None,
        ignore_empty_lines=True,
    )
    # Only for text known to decode: pyarrow decodes each bad row's text for the handler.
    skip_opts = copy.copy(parse_opts)
    skip_opts.invalid_row_handler = lambda row: invalid.append(row) or "skip"
    convert_opts = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, null_values=[""], strings_can_be_null=True,
        quoted_strings_can_be_null=True, check_utf8=True)

    def parse(data: bytes, how: pacsv.ParseOptions) -> pa.Table:
        invalid.clear()
        return pacsv.read_csv(pa.py_buffer(data), read_options=read_opts, parse_options=how,
                              convert_options=convert_opts)

    def explain(exc: Exception) -> SourceError:
        return _explain_parse_error(layout, options, start, end, first_line, exc, batch_bytes)

    def rows_of(data: bytes, line: int) -> tuple[pa.Table, _Block]:
        try:
            table = parse(data, parse_opts)
            return table, _Block(layout.path, data, line, options, table.num_rows)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:  # a bad row, or not row-level
            error = exc
        if not rejects.policy.skip:  # fail: the first bad row of the range, explained
            raise explain(error) from None
        # Skip: take out the rows that do not decode, let Arrow skip ragged rows, and find
        # each bad row's line and bytes.
        problems, good = [], None
        try:
            data.decode(options.encoding)
            text = data
        except UnicodeDecodeError:
            try:
                records = _locate_records(data, options, line)
            except pycsv.Error:
                raise explain(error) from None
            good = []
            for at, s, e in records:
                try:
                    data[s:e].decode(options.encoding)
                except UnicodeDecodeError as exc:
                    problems.append((at + data.count(b"\n", s, s + exc.start),
                                     f"bytes are not valid {options.encoding}: {exc.reason}", data[s:e]))
                    continue
                good.append((at, s, e))
            text = b"".join(data[s:e] for _, s, e in good)
        try:
            table = parse(text, skip_opts)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:  # not row-level
            raise explain(exc) from None
        arrow_rows = table.num_rows + len(invalid)
        if good is None:
            try:
                good = _locate_records(data, options, line, arrow_rows)
            except pycsv.Error:
                raise explain(error) from None
        ragged = set()
        for row in invalid:
            if row.number is None or not 1 <= row.number <= len(good):
                raise _rows_disagree(layout.path, data, line, arrow_rows, len(good))
            at, s, e = good[row.number - 1]
            last = at + data.count(b"\n", s, e - 1)
            spans = f" (this record spans lines {at:,} to {last:,}: check the quotes in it)" if last > at else ""
            problems.append((at, f"expected {row.expected_columns} fields, got {row.actual_columns}: "
                                 f"{row.text[:120]!r}{spans}", data[s:e]))
            ragged.add(row.number - 1)
        kept = [record for i, record in enumerate(good) if i not in ragged]
        if len(kept) != table.num_rows:
            raise _rows_disagree(layout.path, data, line, arrow_rows, len(good))
        for at, reason, raw in sorted(problems, key=lambda p: p[0]):
            rejects.reject(layout.path, "line", at, reason, raw)
        return table, _Block(layout.path, data, line, options, table.num_rows, kept)

    data, batch = b"", None
    for data, line in _range_blocks(layout, options, start, end, first_line, batch_bytes):
        # The caller has handled the previous block's rows: its bad rows are written in line order.
        rejects.flush()
        table, block = rows_of(data, line)
        offset = 0
        for batch in table.to_batches():
            if batch.num_rows:
                yield CsvBatch(batch, block, offset)
            offset += batch.num_rows
    if batch is not None and _may_end_inside_quotes(data, batch, options):
        found = _unclosed_quote_line(layout, options, start, end, first_line)
        if found is not None:
            raise _unclosed_quote_error(layout.path, *found)


def _range_blocks(layout: CsvLayout, options: CsvOptions, start: int, end: int, first_line: int,
                  batch_bytes: int) -> Iterator[tuple[bytes, int]]:
    """(bytes, first line) of the range in pieces Arrow parses at once: the whole range of a
    plain file (its ends are record boundaries); a gzip file's records in blocks."""
    if not layout.gzip:
        with fs.open_input(layout.path) as f:
            f.seek(start)
            yield f.read(end - start), first_line
        return
    with _open_stream(layout.path) as stream:
        stream.read(start)
        line = first_line
        for data in _record_blocks(stream, options.quote_byte(), batch_bytes):
            yield data, line
            line += data.count(b"\n")


def _record_blocks(stream, quote: Optional[int], block_bytes: int) -> Iterator[bytes]:
    """Blocks of about ``block_bytes`` from ``stream``, each ending at a record boundary
    (a line break with balanced quotes), but the last."""
    pending = b""
    while True:
        piece = stream.read(block_bytes)
        if not piece:
            if pending:
                yield pending
            return
        data = pending + piece if pending else piece
        cut = _last_record_end(data, quote)
        if cut == 0 and len(data) < _MAX_BLOCK:
            pending = data
            continue
        cut = cut or len(data)
        yield data[:cut]
        pending = data[cut:]


def _last_record_end(data: bytes, quote: Optional[int]) -> int:
    """Index just past the last line break of ``data`` with balanced quotes before it; 0 if none."""
    if quote is None:
        return data.rfind(b"\n") + 1
    q = bytes([quote])
    parity = data.count(q) & 1
    end = len(data)
    while True:
        nl = data.rfind(b"\n", 0, end)
        if nl < 0:
            return 0
        parity ^= data.count(q, nl, end) & 1
        if parity == 0:
            return nl + 1
        end = nl


def _locate_records(block: bytes, options: CsvOptions, first_line: int,
                    arrow_rows: Optional[int] = None) -> list[tuple[int, int, int]]:
    """(line, start, end) of each non-empty record of ``block``. ``arrow_rows``: how many
    rows Arrow found there; when the quote-parity rule finds as many, its (fast) answer is
    taken, else Python's csv module splits the block (slow, but Arrow's rules)."""
    if arrow_rows is not None:
        records = _records_by_parity(block, options.quote_byte(), first_line)
        if len(records) == arrow_rows:
            return records
    return _records_by_csv_module(block, options, first_line)


def _records_by_parity(block: bytes, quote: Optional[int], first_line: int) -> list[tuple[int, int, int]]:
    """Records end at line feeds with an even count of quotes before them (vectorised)."""
    data = np.frombuffer(block, dtype=np.uint8)
    breaks = np.flatnonzero(data == 10)
    ends = breaks
    if quote is not None:
        quotes_before = np.searchsorted(np.flatnonzero(data == quote), breaks)
        ends = breaks[(quotes_before & 1) == 0]
    ends = ends + 1
    if not len(ends) or ends[-1] < len(block):
        ends = np.append(ends, len(block))
    starts = np.concatenate(([0], ends[:-1]))
    keep = np.ones(len(starts), dtype=bool)
    for k in np.flatnonzero(ends - starts <= 2).tolist():  # blank lines are no records
        keep[k] = bool(block[starts[k]:ends[k]].strip(b"\r\n"))
    starts, ends = starts[keep], ends[keep]
    lines = first_line + np.searchsorted(breaks, starts)
    return list(zip(lines.tolist(), starts.tolist(), ends.tolist()))


def _records_by_csv_module(block: bytes, options: CsvOptions, first_line: int) -> list[tuple[int, int, int]]:
    """(line, start, end) of each non-empty record of ``block``, as Python's csv module
    splits them (Arrow's rules for quotes and blank lines)."""
    lines = block.splitlines(keepends=True)
    offsets = [0] * (len(lines) + 1)
    breaks = [0] * (len(lines) + 1)  # line feeds before each line, as line numbers count them
    for k, text in enumerate(lines):
        offsets[k + 1] = offsets[k] + len(text)
        breaks[k + 1] = breaks[k] + text.endswith(b"\n")
    decoded = (text.decode(options.encoding, "surrogateescape") for text in lines)
    with _no_field_limit():
        reader = pycsv.reader(decoded, **_pycsv_dialect(options))
        records, before = [], 0
        for cells in reader:
            if cells:
                records.append((first_line + breaks[before], offsets[before], offsets[reader.line_num]))
            before = reader.line_num
    return records


def _may_end_inside_quotes(raw_tail: bytes, last_batch: pa.RecordBatch, options: CsvOptions) -> bool:
    """Cheap test on the range's last record: could a quoted field be left open at the end?

    Arrow reads a quote that is never closed as a field running to the end of the data.
    Then the data ends with the quote and that field's value exactly (inner quotes
    doubled); a field that is closed ends with a quote or a line break after its value."""
    if options.quote_char is None or last_batch.num_rows == 0:
        return False
    value = last_batch.column(last_batch.num_columns - 1)[-1].as_py() or ""
    quote = options.quote_char
    written = (quote + value.replace(quote, quote * 2)).encode(options.encoding)
    return len(written) > len(raw_tail) or raw_tail.endswith(written)


@contextlib.contextmanager
def _no_field_limit():
    """Python's csv module refuses fields over 128 KiB by default; errors need the record."""
    limit = pycsv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        pycsv.field_size_limit(limit)


def _text_lines(layout: CsvLayout, options: CsvOptions, start: int, end: int,
                first_line: int) -> Iterator[str]:
    """The decoded lines of a range (line breaks kept), streamed; bad bytes are a
    SourceError naming the line."""
    decoder = codecs.getincrementaldecoder(options.encoding)()
    line = first_line
    with _open_stream(layout.path) as f:
        if layout.gzip:
            f.read(start)
        else:
            f.seek(start)
        left = end - start if end >= 0 else -1
        while left:
            raw = f.readline(left)
            if not raw:
                break
            left = left - len(raw) if left > 0 else left
            try:
                text = decoder.decode(raw)
            except UnicodeDecodeError as exc:
                raise SourceError(f"{layout.path}: line {line}: bytes are not valid {options.encoding}: "
                                  f"{exc.reason}") from None
            yield from io.StringIO(text, newline="")  # also splits at a lone \r, as csv does
            line += raw.count(b"\n")


@dataclasses.dataclass
class _Record:
    line: int  # the file line it starts on
    lines: list[str]  # its text
    fields: list[str]

    @property
    def last_line(self) -> int:
        breaks = sum(text.count("\n") for text in self.lines)
        return self.line + breaks - (1 if self.lines and self.lines[-1].endswith("\n") else 0)

    @property
    def size(self) -> int:
        return sum(len(text) for text in self.lines)


class _LineTap:
    """Hands lines to csv.reader and keeps those of the record being read."""

    def __init__(self, lines: Iterator[str]):
        self._lines = lines
        self.taken: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        text = next(self._lines)
        self.taken.append(text)
        return text


def _records(layout: CsvLayout, options: CsvOptions, start: int, end: int,
             first_line: int) -> Iterator[_Record]:
    """Python's csv reading of a range, record by record, with the lines each starts on
    (blank lines are records without fields). Slow: for errors and their line numbers."""
    tap = _LineTap(_text_lines(layout, options, start, end, first_line))
    reader = pycsv.reader(tap, **_pycsv_dialect(options))
    line = first_line
    with _no_field_limit():
        for fields in reader:
            record = _Record(line, tap.taken, fields)
            tap.taken = []
            yield record
            line = record.last_line + 1


def _unclosed_quote_line(layout: CsvLayout, options: CsvOptions, start: int, end: int,
                         first_line: int) -> Optional[tuple[int, int]]:
    """(line where a quoted field opens that the file ends inside, last line), or None."""
    last = None
    for last in _records(layout, options, start, end, first_line):
        pass
    return _open_quote(last, options) if last is not None else None


def _open_quote(record: _Record, options: CsvOptions) -> Optional[tuple[int, int]]:
    """For a record the data ends inside a quoted field of: (line where that field opens,
    last line); None if every quoted field of the record is closed."""
    if not record.fields:
        return None
    try:
        with _no_field_limit():
            for _ in pycsv.reader(record.lines, strict=True, **_pycsv_dialect(options)):
                pass
        return None
    except pycsv.Error as exc:
        if "unexpected end of data" not in str(exc):
            return None
    # The open field runs to the end of the data: it spans as many lines as its value does.
    value = record.fields[-1]
    value_lines = value.count("\n") + (0 if value.endswith("\n") else 1)
    return record.last_line - value_lines + 1, record.last_line


def _unclosed_quote_error(path: str, line: int, last_line: int) -> SourceError:
    return SourceError(
        f"{path}: line {line}: a quoted field opened here is never closed (the file ends "
        f"inside it, at line {last_line:,}); close the quote, or double a quote that is part "
        "of a value")


def _explain_parse_error(layout: CsvLayout, options: CsvOptions, start: int, end: int,
                         first_line: int, exc: Exception, batch_bytes: int) -> SourceError:
    """Re-reads the range with Python's csv module to name the offending line."""
    width = len(layout.column_names)
    record = None
    for record in _records(layout, options, start, end, first_line):
        if record.fields and len(record.fields) != width:
            opened = _open_quote(record, options)
            if opened is not None:
                return _unclosed_quote_error(layout.path, *opened)
            preview = options.delimiter.join(record.fields)[:120]
            spans = ""
            if record.last_line > record.line:
                spans = (f" (this record spans lines {record.line:,} to {record.last_line:,}: "
                         "check the quotes in it)")
            return SourceError(f"{layout.path}: line {record.line}: expected {width} fields, got "
                               f"{len(record.fields)}: {preview!r}{spans}")
        if record.size > batch_bytes:
            return SourceError(
                f"{layout.path}: line {record.line}: the record starting here has "
                f"{record.size / (1 << 20):.1f} MiB (to line {record.last_line:,}); records over "
                f"{batch_bytes >> 20} MiB are not supported (is a quote in it unbalanced?)")
    if record is None:
        return SourceError(f"{layout.path}: line {first_line}: {exc}")
    opened = _open_quote(record, options)
    if opened is not None:
        return _unclosed_quote_error(layout.path, *opened)
    return SourceError(f"{layout.path}: lines {first_line}-{record.last_line}: {exc}")


# ---------------------------------------------------------------------------------------
# Type inference and conversion (TFX semantics).


def _python_cell_type(cell: bytes) -> ColumnType:
    """tfx_bsl's _InferValueType, on the cell's bytes (as TFX passes them)."""
    if not cell:
        return ColumnType.UNKNOWN
    try:
        value = int(cell)
    except ValueError:
        try:
            float(cell)
        except ValueError:
            return ColumnType.STRING
        return ColumnType.FLOAT
    return ColumnType.INT if _INT64_MIN <= value <= _INT64_MAX else ColumnType.STRING


def _as_binary(column: pa.Array) -> pa.Array:
    return column.cast(pa.binary()) if pa.types.is_string(column.type) else column


def infer_column_type(column: pa.Array) -> ColumnType:
    """The TFX type of a string column (null or empty string = empty cell)."""
    column = pc.fill_null(column, "")
    cells = column.filter(pc.greater(pc.binary_length(column), 0))
    if len(cells) == 0:
        return ColumnType.UNKNOWN
    fast_int = pc.match_substring_regex(cells, _FAST_INT)
    best = ColumnType.INT if pc.any(fast_int).as_py() else ColumnType.UNKNOWN
    rest = cells.filter(pc.invert(fast_int))
    if len(rest) == 0:
        return best
    # Integer-shaped cells outside the fast shape ("+4", 19+ digits) may be INT or, past
    # int64, STRING: Python decides. Other float shapes ("1.5", "1e3") are FLOAT.
    int_shaped = pc.match_substring_regex(rest, r"^[+-]?[0-9]+$")
    float_shaped = pc.and_(pc.match_substring_regex(rest, _FAST_FLOAT), pc.invert(int_shaped))
    if pc.any(float_shaped).as_py():
        best = max(best, ColumnType.FLOAT)
    for value in _as_binary(pc.unique(rest.filter(pc.invert(float_shaped)))).to_pylist():
        best = max(best, _python_cell_type(value))
        if best == ColumnType.STRING:
            break
    return best


def merge_types(a: Sequence[ColumnType], b: Sequence[ColumnType]) -> list[ColumnType]:
    return [max(x, y) for x, y in zip(a, b)]


def _python_convert(cells: list[bytes], ctype: ColumnType):
    if ctype == ColumnType.INT:
        return [int(c) for c in cells]
    return [float(c) for c in cells]


def convert_column(column: pa.Array, ctype: ColumnType) -> tuple[pa.Array, str]:
    """Typed values (null = empty cell) and the tf.train.Feature kind for a string column.

    Raises ValueError for a cell that does not fit ``ctype`` (a schema override that the
    data contradicts); the caller adds the file and line.
    """
    if ctype == ColumnType.UNKNOWN:
        return pa.nulls(len(column), pa.int64()), "none"
    column = pc.fill_null(column, "")
    nonempty = pc.greater(pc.binary_length(column), 0)
    if ctype == ColumnType.STRING:
        values = _as_binary(column)
        return pc.if_else(nonempty, values, pa.scalar(None, pa.binary())), "bytes"
    pattern = _FAST_INT if ctype == ColumnType.INT else _FAST_FLOAT
    fast = pc.and_(nonempty, pc.match_substring_regex(column, pattern))
    target = pa.int64() if ctype == ColumnType.INT else pa.float64()
    fast_values = pc.cast(pc.if_else(fast, column, pa.scalar("0")), target)
    slow = pc.and_(nonempty, pc.invert(fast))
    if pc.any(slow).as_py():
        slow_idx = np.flatnonzero(slow.to_numpy(zero_copy_only=False))
        cells = _as_binary(column.take(pa.array(slow_idx))).to_pylist()
        converted = _convert_cells(cells, ctype)
        dense = fast_values.to_numpy(zero_copy_only=False).copy()
        dense[slow_idx] = converted
        fast_values = pa.array(dense, type=target)
    if ctype == ColumnType.FLOAT:
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, as C's cast does
            fast_values = pa.array(fast_values.to_numpy(zero_copy_only=False).astype(np.float32))
    values = pc.if_else(nonempty, fast_values, pa.scalar(None, fast_values.type))
    return values, ("int64" if ctype == ColumnType.INT else "float")


_HUGE = float(2**63) * (1 - 1e-12)  # beyond this a float-parsed cell may be an int > int64


def fast_convert(column: pa.Array, ctype: ColumnType) -> Optional[tuple[pa.Array, str]]:
    """``convert_column`` for a column whose cells all fit ``ctype`` in Arrow's own grammar.

    One vectorised cast per column. Arrow's integer and float grammars are subsets of
    Python's ``int()``/``float()`` but for hexadecimal integers (``0x1F``) and NaN payloads
    (``nan(1)``), which are excluded here (tests check the rest on random strings), so a
    successful cast proves every cell's TFX type is at most ``ctype`` and gives Python's
    values. Returns None when that
    is not proven (a cell such as ``+4``, `` 12`` or ``abc``): the caller then infers the
    exact type and converts cell by cell.
    """
    if ctype == ColumnType.UNKNOWN:
        if column.null_count == len(column) or not pc.any(pc.greater(pc.binary_length(column), 0)).as_py():
            return pa.nulls(len(column), pa.int64()), "none"
        return None
    if ctype == ColumnType.STRING:
        values = _as_binary(column)
        shortest = pc.min(pc.binary_length(values)).as_py()
        if shortest == 0:  # empty strings (not nulls) also mean "empty cell"
            values = pc.if_else(pc.equal(pc.binary_length(values), 0), pa.scalar(None, pa.binary()), values)
        return values, "bytes"
    try:
        values = pc.cast(column, pa.int64() if ctype == ColumnType.INT else pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    for outside in ("x", "X") if ctype == ColumnType.INT else ("(",):
        if pc.any(pc.match_substring(column, outside)).as_py():
            return None
    if ctype == ColumnType.INT:
        return values, "int64"
    huge = pc.fill_null(pc.greater_equal(pc.abs(values), _HUGE), False)
    if pc.any(huge).as_py():
        # "99999999999999999999" parses as a float, but TFX types it STRING (an int > int64).
        for cell in _as_binary(column.filter(huge)).to_pylist():
            if _python_cell_type(cell) > ColumnType.FLOAT:
                return None
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, as C's cast does
        as_f32 = values.to_numpy(zero_copy_only=False).astype(np.float32)
    return pa.array(as_f32, mask=values.is_null().to_numpy(zero_copy_only=False)), "float"


def _convert_cells(cells: list[bytes], ctype: ColumnType) -> list:
    out = []
    for cell in cells:
        try:
            value = int(cell) if ctype == ColumnType.INT else float(cell)
        except ValueError:
            kind = "an integer" if ctype == ColumnType.INT else "a float"
            raise ValueError(f"value {cell[:60]!r} is not {kind}") from None
        if ctype == ColumnType.INT and not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"value {cell[:60]!r} does not fit in int64")
        out.append(value)
    return out


def invalid_cells(column: pa.Array, ctype: ColumnType) -> list[tuple[int, str]]:
    """(row, message) of every cell that does not fit ``ctype`` (what convert_column raises
    ValueError for on the first one)."""
    column = pc.fill_null(column, "")
    pattern = _FAST_INT if ctype == ColumnType.INT else _FAST_FLOAT
    slow = pc.and_(pc.greater(pc.binary_length(column), 0), pc.invert(pc.match_substring_regex(column, pattern)))
    rows = np.flatnonzero(slow.to_numpy(zero_copy_only=False))
    out = []
    for row, cell in zip(rows.tolist(), _as_binary(column.take(pa.array(rows, pa.int64()))).to_pylist()):
        try:
            _convert_cells([cell], ctype)
        except ValueError as exc:
            out.append((row, str(exc)))
    return out


def sample_types(layout: CsvLayout, options: CsvOptions, sample_bytes: int = 1 << 20,
                 rejects: Optional[RowRejects] = None,
                 keep_rows: Optional[Callable[[pa.RecordBatch], Optional[np.ndarray]]] = None) -> list[ColumnType]:
    """Column types inferred from the first few MB of a file: the workers' first guess.

    ``rejects`` takes the sample's unparsable rows (see read_rows); ``keep_rows(batch)``
    may return a mask of the rows to infer from (the others are bad rows)."""
    if layout.gzip:
        end = -1
    else:

        size = fs.size(layout.path)
        end = min(size, layout.data_offset + sample_bytes)
        with fs.open_input(layout.path) as f:
            f.seek(layout.data_offset)
            data = f.read(end - layout.data_offset)
        cut = data.rfind(b"\n")
        end = layout.data_offset + (cut + 1 if cut >= 0 and end < size else len(data))
        # Only a cut at a balanced quote parity is a record boundary; else take the file.
        if options.quote_byte() is not None and data[: end - layout.data_offset].count(
                bytes([options.quote_byte()])) % 2:
            end = size
    types = [ColumnType.UNKNOWN] * len(layout.column_names)
    for batch in read_chunk(layout, options, layout.data_offset, end, layout.header_lines + 1, rejects=rejects):
        keep = keep_rows(batch) if keep_rows is not None else None
        if keep is not None:
            batch = batch.filter(pa.array(keep))
        types = merge_types(types, [infer_column_type(c) for c in batch.columns])
        if layout.gzip:
            break
    return types


def line_of_row(layout: CsvLayout, options: CsvOptions, start: int, end: int, first_line: int,
                row: int) -> int:
    """The file line where data row ``row`` (0-based, within the range) begins."""
    seen, line = 0, first_line
    for record in _records(layout, options, start, end, first_line):
        if record.fields:
            if seen == row:
                return record.line
            seen += 1
        line = record.last_line + 1
    return line


# ---------------------------------------------------------------------------------------
# The source contract (examplegen.sources): plan the chunks of a split, read one chunk.

Options = CsvOptions
ROWS_NAME = "data rows"


def has_rows(path: str, options: CsvOptions) -> bool:
    """Whether the file holds a data row (not just a header or line breaks)."""
    return read_layout(path, options).has_rows


@dataclasses.dataclass(frozen=True)
class CsvUnit(WorkUnit):
    """A row-aligned byte range of one file, with the column types to convert it with."""

    layout: CsvLayout
    options: CsvOptions
    start: int
    end: int  # -1: to the end (a gzip file is one range)
    first_line: int
    types: tuple[int, ...]  # ColumnType per column
    fixed: tuple[bool, ...]  # column type set by the schema override (no inference)

    def where(self, row: int) -> str:
        line = line_of_row(self.layout, self.options, self.start, self.end, self.first_line, row)
        return f"{self.path}: line {line}"


def plan(split_name: str, files: Sequence[str], options: CsvOptions, chunk_bytes: int = 16 << 20) -> Plan:
    """Chunks of every file of the split, with types sampled from the first file; when a
    chunk needs wider types than the sample showed, the review plans the split again with
    the split's types (TFX types a column over the whole split)."""
    layouts = [read_layout(path, options) for path in files]
    first = layouts[0]
    for layout in layouts[1:]:
        if layout.column_names != first.column_names:
            raise SourceError(
                f"files in input split {split_name!r} have different headers: {first.path} has "
                f"{list(first.column_names)}, {layout.path} has {list(layout.column_names)}")
    names = list(first.column_names)
    overrides = options.schema_types()
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ConfigError(f"csv schema names column(s) {unknown} that {first.path} does not have "
                          f"(columns: {names})")
    fixed = tuple(name in overrides for name in names)

    def units(types: tuple[int, ...]):
        """The chunks, planned lazily so that conversion starts with the first chunk."""
        for layout in layouts:
            for start, end, line in iter_chunks(layout, options, chunk_bytes):
                size = (end if end >= 0 else fs.size(layout.path)) - start
                yield CsvUnit(layout.path, size, layout, options, start, end, line, types, fixed)

    def make(types: tuple[int, ...]) -> Plan:
        def review(notes: list) -> Optional[Plan]:
            final = list(types)
            for seen, _ in notes:
                final = [max(a, b) for a, b in zip(final, seen)]
            if any(mismatch for _, mismatch in notes):
                return make(tuple(final))
            result.info["column_types"] = {n: ColumnType(t).name for n, t in zip(names, final)}
            return None

        result = Plan(units(types), columns=names, review=review)
        return result

    fixed_types = {i: ColumnType(overrides[n]) for i, n in enumerate(names) if n in overrides}

    def good_rows(batch):  # the sample's types come from good rows only
        problems, _ = fixed_cell_checks(batch, names, fixed_types)
        return keep_mask(batch.num_rows, (i for i, _ in problems)) if problems else None

    # Bad rows are only left out of the sample here; read() reports them as the policy says.
    guess = sample_types(first, options, rejects=RowRejects(BadRowPolicy("skip")), keep_rows=good_rows)
    return make(tuple(int(overrides.get(n, t)) for n, t in zip(names, guess)))


def fixed_cell_checks(batch: pa.RecordBatch, names: Sequence[str],
                      fixed: dict[int, ColumnType]) -> tuple[list[tuple[int, str]], dict[int, tuple]]:
    """The rows of a parsed batch whose cells contradict the schema override (``fixed``:
    column index -> type), as sorted (row, reason) pairs, and the fixed columns converted
    (valid when there are no bad rows)."""
    problems, converted = [], {}
    for i, ctype in fixed.items():
        column = batch.column(i)
        done = fast_convert(column, ctype)
        if done is None:
            try:
                done = convert_column(column, ctype)
            except ValueError:
                problems += [(row, f"column {names[i]!r}: {message} (the schema says {ctype.name.lower()})")
                             for row, message in invalid_cells(column, ctype)]
        converted[i] = done
    return sorted(problems, key=lambda p: p[0]), converted


def read(unit: CsvUnit, options: CsvOptions, rejects: Optional[RowRejects] = None) -> Iterator[pa.RecordBatch]:
    """Typed batches of one chunk (int64, float32, binary; an all-empty column is null).

    Bad rows (wrong number of fields, bytes not valid in the encoding, a cell contradicting
    the schema override) go to ``rejects`` (default: the fail policy). Returns (types seen,
    mismatch): when a column proves wider than ``unit.types`` the rest of the chunk is only
    inferred (nothing more is yielded) and mismatch is True.
    """
    rejects = rejects if rejects is not None else RowRejects(BadRowPolicy())
    names = list(unit.layout.column_names)
    seen = [ColumnType(t) for t in unit.types]  # a column's given type unless a cell proved wider
    fixed = {i: ColumnType(t) for i, t in enumerate(unit.types) if unit.fixed[i]}
    mismatch = False
    for block in read_rows(unit.layout, options, unit.start, unit.end, unit.first_line, rejects=rejects):
        batch = block.batch
        problems, converted_fixed = fixed_cell_checks(batch, names, fixed)
        position = None  # the block's row index of each remaining row, when rows were taken out
        if problems:
            for i, reason in problems:
                rejects.reject(unit.path, "line", block.line(i), reason, block.raw(i))
            keep = keep_mask(batch.num_rows, (i for i, _ in problems))
            batch, position = batch.filter(pa.array(keep)), np.flatnonzero(keep)
            _, converted_fixed = fixed_cell_checks(batch, names, fixed)
            if batch.num_rows == 0:
                continue
        converted = []
        for i, column in enumerate(batch.columns):
            ctype = ColumnType(unit.types[i])
            done = converted_fixed.get(i)
            if i not in fixed and not mismatch:
                done = fast_convert(column, ctype)
            if done is None and i not in fixed:
                # Not provably within ctype: infer exactly; wider means a second pass.
                exact = infer_column_type(column)
                seen[i] = max(seen[i], exact)
                if exact > ctype:
                    mismatch = True
                elif not mismatch:
                    done = convert_column(column, ctype)
            converted.append(done)
        if mismatch:
            continue

        def locate(i: int, _block=block, _position=position) -> tuple[str, str, int, bytes]:
            row = i if _position is None else int(_position[i])
            return unit.path, "line", _block.line(row), _block.raw(row)

        rejects.locate(locate)
        yield pa.RecordBatch.from_arrays(
            [pa.nulls(batch.num_rows) if kind == "none" else values for values, kind in converted], names=names)
    return [int(t) for t in seen], mismatch
