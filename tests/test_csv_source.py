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
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\na,,c\n1,2,3\n")  # blank lines before the header are skipped
    with pytest.raises(SourceError, match="blank.csv: line 3: the header has an empty column name"):
        csv_source.read_layout(str(blank), CsvOptions())
    blank.write_text("\n\na,b\n1,2\n")
    assert _read_all(blank) == [("1", "2")]
    opened = tmp_path / "opened.csv"
    opened.write_text('a,"b\n1,2\n')
    with pytest.raises(SourceError, match="opened.csv: line 1: a quoted field opened in the header is never closed"):
        csv_source.read_layout(str(opened), CsvOptions())
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


# ---------------------------------------------------------------- malformed quoting, huge records


def _read_all(path, options=CsvOptions(), chunk_bytes=1 << 20):
    layout = csv_source.read_layout(str(path), options)
    return _rows(layout, options, csv_source.plan_chunks(layout, options, chunk_bytes))


@pytest.mark.parametrize("compress", [False, True])
def test_quote_never_closed_names_the_line_it_opened(tmp_path, compress):
    data = b'a,b\n1,"hello\n2,x\n3,y\n'
    path = tmp_path / ("q.csv.gz" if compress else "q.csv")
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(SourceError, match=r"q\.csv(\.gz)?: line 2: a quoted field opened here is never closed"):
        _read_all(path)


def test_quote_never_closed_after_a_closed_multi_line_field_and_in_a_late_chunk(tmp_path):
    rows = "".join(f'{i},"multi\nline {i}"\n' for i in range(3000))  # lines 2..6001
    path = tmp_path / "late.csv"
    path.write_text('a,b\n' + rows + '7,"ok\nfine","oops\n8,x\n9,y\n')
    with pytest.raises(SourceError, match=r"late\.csv: line 6003: a quoted field opened here is never closed"):
        _read_all(path, chunk_bytes=4096)


def test_quote_never_closed_after_a_quote_inside_an_unquoted_field(tmp_path):
    # Found by the property tests: the stray quote evens out the count of quotes.
    path = tmp_path / "even.csv"
    path.write_bytes(b'c0,c1,c2,c3\n"a\r\n",aaaaa",",","\n')
    with pytest.raises(SourceError, match=r"even\.csv: line 3: a quoted field opened here is never closed"):
        _read_all(path)


def test_stray_quote_far_from_the_end_of_a_file_is_an_error(tmp_path):
    # More than Arrow's 8 MiB block after the stray quote: Arrow reads it all as one field.
    path = tmp_path / "stray.csv"
    path.write_bytes(b'a,b\n1,x\n2,"bad\n' + b"3,yyyyyyyyyyyyyyyyyyyyyyyyyyyy\n" * 300_000)
    with pytest.raises(SourceError, match=r"stray\.csv: line 3: a quoted field opened here is never closed"):
        _read_all(path, chunk_bytes=64 << 20)


def test_stray_quote_closed_much_later_names_the_record_and_says_why(tmp_path):
    path = tmp_path / "merged.csv"
    path.write_bytes(b'a,b\n1,x\n2,"bad\n' + b"3,yyyyyyyyyyyyyyyyyyyyyyyyyyyy\n" * 300_000 + b'",3\n4,z\n')
    with pytest.raises(SourceError) as info:
        _read_all(path, chunk_bytes=64 << 20)
    message = str(info.value)
    assert "merged.csv: line 3: expected 2 fields, got 3" in message and "300,004" in message and "quote" in message
    assert "_csv" not in message and "field limit" not in message


def test_record_larger_than_the_block_size_names_its_line(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_bytes(b'a,b\n1,x\n2,"' + b"y" * (17 << 20) + b'"\n3,z\n')  # Arrow reads 8 MiB blocks
    with pytest.raises(SourceError, match=r"huge\.csv: line 3: the record starting here has 17\.0 MiB"):
        _read_all(path, chunk_bytes=64 << 20)


def test_quotes_inside_unquoted_fields_are_still_read_as_text(tmp_path):
    # An odd number of quote characters that are all literal (not RFC 4180, common in data).
    path = tmp_path / "inch.csv"
    path.write_text('a,b\n1,12" pizza\n2,x\n')
    assert _read_all(path) == [("1", '12" pizza'), ("2", "x")]


def test_truncated_gzip_names_the_file(tmp_path):
    small = tmp_path / "small.csv.gz"
    small.write_bytes(gzip.compress(b"a,b\n1,2\n3,4\n")[:20])
    with pytest.raises(SourceError, match=r"small\.csv\.gz: the gzip data is truncated or corrupt"):
        _read_all(small)
    rng = random.Random(5)
    text = "a,b\n" + "".join(f"{rng.random()},{rng.random()}\n" for _ in range(40_000))
    big = tmp_path / "big.csv.gz"
    big.write_bytes(gzip.compress(text.encode())[:-5000])
    with pytest.raises(SourceError, match=r"big\.csv\.gz: the gzip data is truncated or corrupt"):
        _read_all(big)


def test_layout_tells_files_without_data_rows(tmp_path):
    cases = {"empty.csv": b"", "header.csv": b"a,b\n", "blank.csv": b"a,b\r\n\r\n\n", "bom.csv": b"\xef\xbb\xbf",
             "data.csv": b"a,b\n\n1,2"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        layout = csv_source.read_layout(str(tmp_path / name), CsvOptions())
        assert layout.has_rows == (name == "data.csv"), name
    (tmp_path / "h.csv.gz").write_bytes(gzip.compress(b"a,b\n"))
    assert not csv_source.read_layout(str(tmp_path / "h.csv.gz"), CsvOptions()).has_rows
    no_header = CsvOptions.from_dict({"header": False, "column_names": "a,b"})
    assert not csv_source.read_layout(str(tmp_path / "empty.csv"), no_header).has_rows
    assert csv_source.read_layout(str(tmp_path / "header.csv"), no_header).has_rows
