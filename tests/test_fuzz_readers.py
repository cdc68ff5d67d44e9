"""Property tests of the CSV and TFRecord readers on random and mutated files.

Whatever the bytes, a reader either raises one of our ExampleGenErrors (a clear message,
no traceback in the CLI) or returns exactly the rows the file holds, as an independent
reader counts them: Python's csv module for CSV, a few lines of TF-free framing code
below for TFRecord. Deterministic (derandomize) and bounded, so CI never flakes.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import struct
import tempfile

import google_crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examplegen import payload, tfrecord
from examplegen.errors import ExampleGenError
from examplegen.ingest import ingest
from examplegen.sources import csv as csv_source
from examplegen.sources.csv import CsvOptions

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=400,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---------------------------------------------------------------- CSV

# Python's csv.writer leaves a lone \r unquoted (which its reader then rejects): no lone \r.
CELL_TEXT = st.lists(st.sampled_from(["a", "b", "1", ".", "-", '"', ",", " ", "\n", "\r\n", "\t", "é"]),
                     max_size=8).map("".join)


def _csv_text(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


@st.composite
def csv_files(draw):
    width = draw(st.integers(1, 4))
    header = [f"c{i}" for i in range(width)]
    rows = draw(st.lists(st.lists(CELL_TEXT, min_size=width, max_size=width), max_size=30))
    return _csv_text(header, rows)


@st.composite
def mutated(draw, files):
    """A valid file with a few bytes deleted, inserted, replaced or cut off."""
    data = bytearray(draw(files))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "delete" and data:
            del data[at]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from([b'"', b",", b"\n", b"\r", b"\xff", b"x"]))
        elif kind == "replace" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


def _our_rows(path: str, chunk_bytes: int) -> list[tuple[str, ...]]:
    """Every row as our reader returns it (a file without data rows has none)."""
    options = CsvOptions()
    layout = csv_source.read_layout(path, options)
    if not layout.has_rows:
        return []
    rows = []
    for start, end, line in csv_source.iter_chunks(layout, options, chunk_bytes):
        for batch in csv_source.read_chunk(layout, options, start, end, line):
            columns = [c.to_pylist() for c in batch.columns]
            rows.extend(tuple("" if v is None else v for v in row) for row in zip(*columns))
    return rows


def _python_rows(data: bytes):
    """(rows, None) as Python's strict csv reader reads a well-formed file, or (None, why)
    when it calls the file malformed (or the file is not UTF-8, or rows are ragged)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "encoding"
    text = text.removeprefix("\ufeff")
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        return None, str(exc)
    records = [r for r in records if r]  # blank lines are skipped, as Arrow does
    if not records or any(len(r) != len(records[0]) for r in records):
        return None, "ragged"
    if any(c.strip() == "" for c in records[0]) or len(set(records[0])) != len(records[0]):
        return None, "header"
    return [tuple(r) for r in records[1:]], None


def _check_csv(data: bytes, chunk_bytes: int, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, "f.csv.gz" if compress else "f.csv", gzip.compress(data) if compress else data)
        expected, why = _python_rows(data)
        try:
            got = _our_rows(path, chunk_bytes)
        except ExampleGenError:
            assert expected is None or _arrow_stricter(data), f"rejected a well-formed file: {data!r}"
            return
        if expected is not None:
            assert got == expected, data
        else:
            # Python's strict reader refuses the file; silently reading a quote that never
            # closes (merged rows) is what must not happen.
            assert why != "unexpected end of data", f"accepted a quote that is never closed: {data!r}"


def _arrow_stricter(data: bytes) -> bool:
    """Files Python reads that our reader may refuse: a lone \\r is a line break to Arrow
    (so a row can turn out ragged), and a quote inside an unquoted field (not RFC 4180)
    breaks TFX's quote-parity rule for where records end."""
    return b"\r" in data or _quote_inside_unquoted_field(data)


def _quote_inside_unquoted_field(data: bytes) -> bool:
    """RFC 4180 by hand: a quote may only open a field or, doubled, stand inside a quoted one."""
    i, at_start, quoted = 0, True, False
    while i < len(data):
        char = data[i:i + 1]
        i += 1
        if quoted:
            if char == b'"':
                if data[i:i + 1] == b'"':
                    i += 1
                else:
                    quoted = False
            continue
        if char == b'"':
            if not at_start:
                return True
            quoted = True
        at_start = char in (b",", b"\n", b"\r")
    return False


@FUZZ
@given(data=csv_files(), chunk_bytes=st.sampled_from([16, 97, 1 << 20]), compress=st.booleans())
def test_valid_csv_files_read_exactly_as_pythons_csv_reads_them(data, chunk_bytes, compress):
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, "f.csv.gz" if compress else "f.csv", gzip.compress(data) if compress else data)
        expected, why = _python_rows(data)
        assert why is None
        try:
            got = _our_rows(path, chunk_bytes)
        except ExampleGenError:
            assert _arrow_stricter(data), data
            return
        assert got == expected


@FUZZ
@given(data=mutated(csv_files()), chunk_bytes=st.sampled_from([16, 97, 1 << 20]), compress=st.booleans())
def test_mutated_csv_files_give_an_error_or_exactly_their_rows(data, chunk_bytes, compress):
    _check_csv(data, chunk_bytes, compress)


@FUZZ
@given(data=st.binary(max_size=300), chunk_bytes=st.sampled_from([16, 1 << 20]), compress=st.booleans())
def test_random_bytes_as_csv_give_an_error_or_exactly_their_rows(data, chunk_bytes, compress):
    _check_csv(data, chunk_bytes, compress)


@settings(FUZZ, max_examples=40)
@given(data=st.one_of(mutated(csv_files()), st.binary(max_size=200)))
def test_ingest_of_a_mutated_csv_file_never_crashes_or_miscounts(data):
    expected, why = _python_rows(data)
    with tempfile.TemporaryDirectory() as directory:
        os.mkdir(os.path.join(directory, "in"))
        _write(directory, "in/f.csv", data)
        try:
            result = ingest(os.path.join(directory, "in"), os.path.join(directory, "out"),
                            record_lineage=False, workers=1)
        except ExampleGenError:
            return
        assert why != "unexpected end of data"
        if expected is not None:
            assert result.rows_read == sum(result.counts.values()) == len(expected)


# ---------------------------------------------------------------- TFRecord


def _masked(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _frame(records: list[bytes]) -> bytes:
    """TFRecord framing, written out here from the format's definition."""
    out = b""
    for record in records:
        length = struct.pack("<Q", len(record))
        out += length + struct.pack("<I", _masked(length)) + record + struct.pack("<I", _masked(record))
    return out


def _reference_records(data: bytes):
    """The records of a plain TFRecord stream, or None if it is not one (bad CRC, cut)."""
    records, pos = [], 0
    while pos < len(data):
        if pos + 12 > len(data):
            return None
        (length,) = struct.unpack_from("<Q", data, pos)
        if struct.unpack_from("<I", data, pos + 8)[0] != _masked(data[pos:pos + 8]):
            return None
        end = pos + 12 + length + 4
        if end > len(data):
            return None
        record = data[pos + 12:pos + 12 + length]
        if struct.unpack_from("<I", data, end - 4)[0] != _masked(record):
            return None
        records.append(record)
        pos = end
    return records


@st.composite
def tfrecord_streams(draw):
    return _frame(draw(st.lists(st.binary(max_size=40), max_size=12)))


def _our_records(path: str) -> list[bytes]:
    records = []
    for batch in tfrecord.read_record_batches(path, batch_size=5):
        payload.check(batch, "FORMAT_PROTO", "structure", path, len(records))
        records.extend(batch)
    return records


def _check_tfrecord(stream: bytes, compression: str) -> None:
    data = {"none": stream, "gzip": gzip.compress(stream), "zlib": __import__("zlib").compress(stream)}[compression]
    expected = _reference_records(stream)
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, "f.tfrecord", data)
        try:
            got = _our_records(path)
        except ExampleGenError:
            assert expected is None, f"rejected a valid stream: {stream!r}"
            return
        if compression == "none" or expected is not None:
            # A plain file is read as plain only when its first frame header checks out.
            assert got == expected, stream


@FUZZ
@given(stream=st.one_of(tfrecord_streams(), mutated(tfrecord_streams())),
       compression=st.sampled_from(["none", "gzip", "zlib"]))
def test_tfrecord_streams_give_an_error_or_exactly_their_records(stream, compression):
    _check_tfrecord(stream, compression)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_as_tfrecord_give_an_error_or_exactly_their_records(data):
    _check_tfrecord(data, "none")


@FUZZ
@given(data=mutated(st.builds(gzip.compress, tfrecord_streams())))
def test_mutated_gzip_tfrecord_files_give_an_error_or_exactly_their_records(data):
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, "f.gz", data)
        try:
            expected = _reference_records(gzip.decompress(data))
        except (EOFError, OSError, __import__("zlib").error):
            expected = None  # Python's gzip refuses it: ours must too
        try:
            got = _our_records(path)
        except ExampleGenError:
            return
        if data[:2] == b"\x1f\x8b":
            assert expected is not None and got == expected


@settings(FUZZ, max_examples=40)
@given(records=st.lists(st.binary(max_size=30), min_size=1, max_size=6))
def test_random_records_declared_as_examples_are_rejected_or_are_examples(records):
    from examplegen import protos

    def is_example(record: bytes) -> bool:
        try:
            message = protos.Example.FromString(record)
        except Exception:
            return False
        size = message.ByteSize()
        message.DiscardUnknownFields()
        return message.ByteSize() == size

    for mode in ("structure", "full"):
        try:
            payload.check(records, "FORMAT_TF_EXAMPLE", mode, "f.gz", 0)
        except ExampleGenError:
            assert not all(is_example(r) for r in records)
        else:
            assert all(is_example(r) for r in records)
