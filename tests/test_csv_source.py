"""CSV parsing, chunking, type inference and conversion against Python's own semantics."""

import csv
import gzip
import io
import random

import numpy as np
import pyarrow as pa
import pytest

from examplegen.errors import ConfigError, SourceError
from examplegen.sources import csv as csv_source
from examplegen.sources.csv import ColumnType, CsvOptions
from tests import tfx_reference

TRICKY_CELLS = [
    "", "0", "12", "-7", "+4", "007", " 12 ", "1_000", "12 ", "\t5", "9223372036854775807",
    "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "123456789012345678901234",
    "1.5", "-0.0", ".5", "5.", "1e3", "1E-3", "+.5e-3", "nan", "NaN", "-inf", "Infinity", "1e500",
    "1_0.5", "0x10", "abc", "1,5", "١٢", "½", "1e", "e3", "--1", " ", "True", "3.4028235e38",
    "3.4028236e38", "1.00000005960464477539062", "2.2250738585072014e-308", "4.9e-324",
]


def test_cell_types_match_python_for_tricky_cells():
    for cell in TRICKY_CELLS:
        column = pa.array([cell])
        assert int(csv_source.infer_column_type(column)) == tfx_reference.cell_type(cell.encode()), cell


def test_column_type_is_the_maximum_over_cells_on_random_columns():
    rng = random.Random(7)
    for _ in range(300):
        cells = [rng.choice(TRICKY_CELLS) for _ in range(rng.randint(1, 6))]
        expected = max(tfx_reference.cell_type(c.encode()) for c in cells)
        assert int(csv_source.infer_column_type(pa.array(cells))) == expected, cells


def test_int_conversion_matches_python_int():
    cells = ["12", "+4", "007", " 12 ", "1_000", "", "-9223372036854775808", "9223372036854775807"]
    values, kind = csv_source.convert_column(pa.array(cells), ColumnType.INT)
    assert kind == "int64"
    assert values.to_pylist() == [int(c) if c else None for c in cells]


def test_float_conversion_is_pythons_float_rounded_to_float32():
    rng = random.Random(3)
    cells = ["1.5", ".5", "1e3", "nan", "-inf", "1_0.5", " 2.5", "7", "+4", "", "3.4028236e38",
             "1.00000005960464477539062", "4.9e-324"]
    cells += [repr(rng.uniform(-1e6, 1e6)) for _ in range(200)]
    cells += [f"{rng.random():.17g}" for _ in range(200)] + [f"{rng.random() * 1e-40:.20e}" for _ in range(50)]
    values, kind = csv_source.convert_column(pa.array(cells), ColumnType.FLOAT)
    assert kind == "float"
    got = values.to_numpy(zero_copy_only=False)
    for cell, value in zip(cells, got):
        if not cell:
            continue
        with np.errstate(over="ignore"):  # float32 overflow gives inf, as C's cast does
            expected = np.float64(float(cell)).astype(np.float32)
        if np.isnan(expected):
            assert np.isnan(value), cell
        else:
            assert np.float32(value).tobytes() == np.float32(expected).tobytes(), cell
    assert values.null_count == 1


def test_string_conversion_keeps_raw_utf8_and_empty_cells_are_null():
    values, kind = csv_source.convert_column(pa.array(["héllo", "", " x "]), ColumnType.STRING)
    assert kind == "bytes"
    assert values.to_pylist() == ["héllo".encode(), None, b" x "]


def test_schema_override_conversion_error_names_the_value():
    with pytest.raises(ValueError, match="'abc' is not an integer"):
        csv_source.convert_column(pa.array(["1", "abc"]), ColumnType.INT)


def _rows(layout, options, chunks):
    out = []
    for start, end, line in chunks:
        for batch in csv_source.read_chunk(layout, options, start, end, line):
            # an empty cell is null
            out.extend(tuple("" if v is None else v for v in row) for row in zip(*[c.to_pylist() for c in batch.columns]))
    return out


def test_chunks_never_cut_a_quoted_field_and_cover_every_row(tmp_path):
    rng = random.Random(11)
    path = tmp_path / "data.csv"
    rows = []
    for i in range(2000):
        text = rng.choice(["plain", 'with "quotes"', "multi\nline", "comma, inside", "", "x\n\ny"])
        rows.append([str(i), text, f"{rng.random():.3f}"])
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "text", "value"])
    writer.writerows(rows)
    path.write_text(buf.getvalue())
    options = CsvOptions()
    layout = csv_source.read_layout(str(path), options)
    assert layout.column_names == ("id", "text", "value")
    chunks = csv_source.plan_chunks(layout, options, chunk_bytes=997)
    assert len(chunks) > 20
    assert chunks[0][0] == layout.data_offset and chunks[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    assert [list(r) for r in _rows(layout, options, chunks)] == rows
    # first_line of every chunk is the file line where its first record starts
    lines = path.read_bytes().split(b"\n")
    for start, _, line in chunks:
        assert path.read_bytes()[start:].split(b"\n", 1)[0] == lines[line - 1]


def test_bom_blank_lines_delimiter_quote_char_and_encoding(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("a;b\n\n'x;1';2\n\n3;'é'\n".encode("latin-1"))
    options = CsvOptions.from_dict({"delimiter": ";", "quote_char": "'", "encoding": "latin-1"})
    layout = csv_source.read_layout(str(path), options)
    rows = _rows(layout, options, csv_source.plan_chunks(layout, options, 1 << 20))
    assert rows == [("x;1", "2"), ("3", "é")]

    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfcol1,col2\r\n1,2\r\n")
    layout = csv_source.read_layout(str(bom), CsvOptions())
    assert layout.column_names == ("col1", "col2")


def test_gzip_csv_and_no_header(tmp_path):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"1,2\n3,4\n"))
    options = CsvOptions.from_dict({"header": False, "column_names": "a,b"})
    layout = csv_source.read_layout(str(path), options)
    assert layout.gzip and layout.column_names == ("a", "b")
    chunks = csv_source.plan_chunks(layout, options, 1)
    assert len(chunks) == 1
    assert _rows(layout, options, chunks) == [("1", "2"), ("3", "4")]


def test_ragged_row_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text('a,b,c\n1,2,3\n"multi\nline",5,6\n7,8\n9,10,11\n')
    options = CsvOptions()
    layout = csv_source.read_layout(str(path), options)
    with pytest.raises(SourceError, match=r"bad\.csv: line 5: expected 3 fields, got 2"):
        _rows(layout, options, csv_source.plan_chunks(layout, options, 1 << 20))


def test_unbalanced_quote_and_bad_encoding_errors(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('a,b\n1,2\n"open,3\n4,5\n')
    options = CsvOptions()
    layout = csv_source.read_layout(str(path), options)
    with pytest.raises(SourceError, match=r"q\.csv: line \d+: "):
        _rows(layout, options, csv_source.plan_chunks(layout, options, 1 << 20))
    bad = tmp_path / "enc.csv"
    bad.write_bytes(b"a,b\n1,2\n3,\xff\xfe\n")
    layout = csv_source.read_layout(str(bad), options)
    with pytest.raises(SourceError, match=r"enc\.csv: line 3: .*not valid utf-8"):
        _rows(layout, options, csv_source.plan_chunks(layout, options, 1 << 20))


def test_header_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SourceError, match="empty.csv: line 1: the file has no header"):
        csv_source.read_layout(str(empty), CsvOptions())
    dup = tmp_path / "dup.csv"
    dup.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(SourceError, match=r"repeats column name\(s\) \['a'\]"):
        csv_source.read_layout(str(dup), CsvOptions())


@pytest.mark.parametrize("options,message", [
    ({"delimiter": ";;"}, "delimiter must be one character"),
    ({"quote_char": ","}, "quote_char and delimiter must differ"),
    ({"encoding": "no-such"}, "not a known encoding"),
    ({"header": False}, "header=false needs column_names"),
    ({"schema": "fare:decimal"}, "column 'fare' has type 'decimal'"),
    ({"sep": ","}, "csv option 'sep' is unknown"),
])
def test_option_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        CsvOptions.from_dict(options)


def _random_cells(rng, n):
    alphabet = "0123456789+-.eE _xnaifNIF"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(n)]


@pytest.mark.parametrize("ctype", [ColumnType.INT, ColumnType.FLOAT])
def test_fast_path_accepts_only_what_python_accepts_with_pythons_values(ctype):
    """fast_convert must never claim a cell fits when Python's int()/float() says otherwise."""
    rng = random.Random(5)
    cells = TRICKY_CELLS + _random_cells(rng, 3000) + ["-nan", "+inf", "1e-45", "-0"]
    for cell in cells:
        done = csv_source.fast_convert(pa.array([cell or None], pa.string()), ctype)
        python_type = tfx_reference.cell_type(cell.encode())
        if done is None:
            continue
        assert python_type <= ctype, (cell, python_type)
        values, _ = done
        if not cell:
            assert values.null_count == 1
            continue
        got = values.to_pylist()[0]
        if ctype == ColumnType.INT:
            assert got == int(cell), cell
        else:
            with np.errstate(over="ignore"):
                expected = np.float64(float(cell)).astype(np.float32)
            assert np.float32(got).tobytes() == expected.tobytes(), cell


def test_fast_and_slow_conversion_agree_on_random_columns():
    rng = random.Random(9)
    for _ in range(200):
        cells = [rng.choice(TRICKY_CELLS) for _ in range(rng.randint(1, 8))]
        column = pa.array([c or None for c in cells], pa.string())
        ctype = csv_source.infer_column_type(column)
        fast = csv_source.fast_convert(column, ctype)
        slow = csv_source.convert_column(column, ctype)
        if fast is not None:
            assert fast[1] == slow[1]
            assert fast[0].cast(slow[0].type).equals(slow[0]) or ctype == ColumnType.FLOAT, cells
