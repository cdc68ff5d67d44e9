"""Row-level rejection (examplegen.bad_rows) in the Parquet, Avro, JSON Lines, images and
text sources.

Each test writes an input with bad rows and the same input with those rows deleted: under
``bad_rows="skip"`` the Examples (read back with TensorFlow) must equal, record for record,
those of the clean input under the default policy, and the quarantine must list exactly
the deleted rows (file, line/record/row, the bytes, read from the input independently).
Under the default policy the first bad row fails the run, naming its file and row.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import random
import shutil

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from examplegen import typemap
from examplegen.bad_rows import TooManyBadRows
from examplegen.errors import SourceError
from examplegen.ingest import ingest
from tests.helpers import REPO, read_split, split_names, tree_bytes

TWO_SPLITS = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 1}]}}
IMAGES = os.path.join(REPO, "examples", "data", "images")


def quarantine(artifact) -> list[dict]:
    with gzip.open(os.path.join(artifact, "Quarantine", "bad_rows.jsonl.gz"), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def records(artifact) -> dict[str, list[bytes]]:
    return {split: read_split(str(artifact), split) for split in split_names(str(artifact))}


def raw(entry) -> bytes:
    return base64.b64decode(entry["raw_base64"])


def skip_and_clean(tmp_path, bad_input, clean_input, **kw):
    """(result under skip of bad_input, result of clean_input under the default policy);
    their Examples are equal."""
    result = ingest(str(bad_input), str(tmp_path / "out"), bad_rows="skip", record_lineage=False, **kw)
    expected = ingest(str(clean_input), str(tmp_path / "expected"), record_lineage=False, **kw)
    assert records(tmp_path / "out") == records(tmp_path / "expected")
    assert result.counts == expected.counts
    assert result.rows_read == result.rows_written + result.rows_rejected
    assert result.rows_written == expected.rows_written
    md = json.loads((tmp_path / "out" / "examples_metadata.json").read_text())
    assert (md["rows_rejected"], md["quarantine_file"]) == (result.rows_rejected, "Quarantine/bad_rows.jsonl.gz")
    return result, expected


# --------------------------------------------------------------------------- type map
def test_bad_rows_finds_every_row_the_type_map_rejects():
    # The search after a failed batch (bisection) against converting every row alone.
    rng = random.Random(7)
    n = 3000
    u = [rng.randrange(2**63) for _ in range(n)]
    lists = [[rng.randrange(100) for _ in range(rng.randrange(4))] for _ in range(n)]
    text = [str(i) for i in range(n)]
    for i in rng.sample(range(n), 40):
        u[i] = 2**63 + i
    for i in rng.sample(range(n), 40):
        lists[i] = [1, None]
    for i in rng.sample(range(n), 40):
        text[i] = f"x{i}"
    batch = pa.RecordBatch.from_pydict({"u": pa.array(u, pa.uint64()), "l": pa.array(lists, pa.list_(pa.int64())),
                                        "s": pa.StructArray.from_arrays([pa.array(text)], names=["t"])})
    overrides = {"s.t": "int"}
    found = typemap.bad_rows(batch, overrides)

    def fails(i):
        try:
            typemap.batch_features(batch.slice(i, 1), lambda r: "x", "x", overrides)
            return False
        except typemap.BadValueError:
            return True

    assert [i for i, _ in found] == [i for i in range(n) if fails(i)]
    assert len(found) > 100
    reasons = dict(found)
    for i in range(n):
        if u[i] > 2**63 - 1:
            assert reasons[i].startswith("column 'u': uint64 value")
        elif lists[i] == [1, None]:
            assert reasons[i].startswith("column 'l': a list holds a null value")
        elif text[i].startswith("x"):
            assert reasons[i] == f"column 's.t': value 'x{i}' is not an integer"
    assert typemap.bad_rows(batch.filter(pa.array([not fails(i) for i in range(n)]))) == []


def test_the_errors_of_bad_rows_cross_process_boundaries():
    # A worker's error reaches the launcher pickled: an exception that cannot be rebuilt
    # there would break the worker pool instead of naming the row.
    import pickle

    from examplegen.sources.text import InvalidText

    for exc in (typemap.BadValueError("a.parquet: row 5: column 'u': bad", 5),
                InvalidText("a.txt", 3, "not valid utf-16 text")):
        again = pickle.loads(pickle.dumps(exc))
        assert (type(again), str(again), vars(again)) == (type(exc), str(exc), vars(exc))


# --------------------------------------------------------------------------- Parquet
def _parquet_table(n, bad):
    u = [i * 3 for i in range(n)]
    lists = [[i, i + 1] for i in range(n)]
    for i in bad:
        if i % 2:
            u[i] = 2**63 + i
        else:
            lists[i] = [i, None]
    return pa.table({"u": pa.array(u, pa.uint64()), "l": pa.array(lists, pa.list_(pa.int64())),
                     "s": [f"row {i}" for i in range(n)]})


@pytest.mark.parametrize("workers", [1, 2])
def test_parquet_rows_the_type_map_rejects_are_quarantined(tmp_path, monkeypatch, workers):
    monkeypatch.setattr("examplegen.ingest.CHUNK_BYTES", 4000)  # several units of row groups
    n, bad = 2000, [0, 5, 6, 999, 1000, 1777, 1999]
    (tmp_path / "in").mkdir()
    (tmp_path / "clean").mkdir()
    table = _parquet_table(n, bad)
    pq.write_table(table, tmp_path / "in" / "a.parquet", row_group_size=150)
    keep = [i not in bad for i in range(n)]
    pq.write_table(table.filter(pa.array(keep)), tmp_path / "clean" / "a.parquet", row_group_size=150)
    options = {"batch_rows": 64}
    result, _ = skip_and_clean(tmp_path, tmp_path / "in", tmp_path / "clean", source_format="parquet",
                               source_options=options, output_config=TWO_SPLITS, workers=workers)
    assert (result.rows_read, result.rows_rejected) == (n, len(bad))

    entries = quarantine(tmp_path / "out")
    assert [e["row"] for e in entries] == bad
    assert {e["file"] for e in entries} == {str(tmp_path / "in" / "a.parquet")}
    rows = pq.read_table(tmp_path / "in" / "a.parquet").to_pylist()  # read independently
    for entry in entries:
        assert json.loads(raw(entry)) == rows[entry["row"]]
        column = "u" if entry["row"] % 2 else "l"
        assert entry["reason"].startswith(f"column {column!r}: ")

    # as before row-level rejection: the first bad value of the first column that has one
    with pytest.raises(SourceError, match=r"a.parquet: row 5: column 'u': uint64 value 9223372036854775813 does"):
        ingest(str(tmp_path / "in"), str(tmp_path / "fail"), source_format="parquet", source_options=options,
               workers=workers, record_lineage=False)
    assert not os.path.exists(tmp_path / "fail" / "examples_metadata.json")
    with pytest.raises(TooManyBadRows, match=r"more than max_bad_rows=6"):
        ingest(str(tmp_path / "in"), str(tmp_path / "limit"), source_format="parquet", bad_rows="skip",
               max_bad_rows=6, record_lineage=False)


# --------------------------------------------------------------------------- Avro
AVRO_SCHEMA = {"type": "record", "name": "r", "fields": [
    {"name": "id", "type": "long"},
    {"name": "code", "type": "string"},
    {"name": "xs", "type": {"type": "array", "items": ["null", "long"]}},
]}


def _avro_records(n, bad):
    out = [{"id": i, "code": str(i * 7), "xs": [i, i * 2]} for i in range(n)]
    for i in bad:
        if i % 2:
            out[i]["code"] = f"not a number {i}"
        else:
            out[i]["xs"] = [None, i]
    return out


def _write_avro(path, rows):
    with open(path, "wb") as f:
        fastavro.writer(f, AVRO_SCHEMA, rows, codec="deflate", sync_interval=2000)


def test_avro_records_the_type_map_rejects_are_quarantined(tmp_path, monkeypatch):
    monkeypatch.setattr("examplegen.ingest.CHUNK_BYTES", 6000)  # runs of blocks
    n, bad = 3000, [3, 4, 1500, 2998, 2999]
    (tmp_path / "in").mkdir()
    (tmp_path / "clean").mkdir()
    rows = _avro_records(n, bad)
    _write_avro(tmp_path / "in" / "a.avro", rows)
    _write_avro(tmp_path / "clean" / "a.avro", [r for i, r in enumerate(rows) if i not in bad])
    options = {"schema": {"code": "int"}, "batch_rows": 100}
    result, _ = skip_and_clean(tmp_path, tmp_path / "in", tmp_path / "clean", source_format="avro",
                               source_options=options, output_config=TWO_SPLITS, workers=2)
    assert (result.rows_read, result.rows_rejected) == (n, len(bad))
    entries = quarantine(tmp_path / "out")
    assert [e["record"] for e in entries] == bad
    with open(tmp_path / "in" / "a.avro", "rb") as f:
        read_back = list(fastavro.reader(f))
    for entry in entries:
        assert json.loads(raw(entry)) == read_back[entry["record"]]
        assert entry["reason"].startswith("column 'code'" if entry["record"] % 2 else "column 'xs'")

    with pytest.raises(SourceError, match=r"a.avro: record 3: column 'code': value 'not a number 3' is not an "
                                          r"integer"):
        ingest(str(tmp_path / "in"), str(tmp_path / "fail"), source_format="avro", source_options=options,
               record_lineage=False)
    # A corrupt block stays fatal under skip.
    data = bytearray((tmp_path / "in" / "a.avro").read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\x00" * 64
    (tmp_path / "in" / "a.avro").write_bytes(bytes(data))
    with pytest.raises(SourceError, match=r"a.avro: .*the Avro data cannot be read|a.avro: .*block"):
        ingest(str(tmp_path / "in"), str(tmp_path / "corrupt"), source_format="avro", source_options=options,
               bad_rows="skip", record_lineage=False)


# --------------------------------------------------------------------------- JSON Lines
def test_json_lines_that_do_not_parse_or_contradict_the_types_are_quarantined(tmp_path, monkeypatch):
    monkeypatch.setattr("examplegen.ingest.CHUNK_BYTES", 3000)  # line-aligned ranges
    good = [json.dumps({"n": i, "code": str(i), "pad": "x" * 20}) for i in range(400)]
    bad = {
        5: '{"n": 5, "code": "5",',  # not JSON
        77: "[1, 2, 3]",  # not an object
        200: json.dumps({"n": "two hundred", "code": "200"}),  # text where the field is a number
        321: json.dumps({"n": 321, "code": "three"}),  # contradicts the schema override
    }
    lines = [bad.get(i, line) for i, line in enumerate(good)]
    lines.insert(50, "")  # a blank line: not a row, but lines are counted
    (tmp_path / "in").mkdir()
    (tmp_path / "clean").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "clean" / "a.jsonl").write_text("\n".join(line for line in lines if line not in bad.values()) + "\n")
    options = {"schema": {"code": "int"}}
    result, _ = skip_and_clean(tmp_path, tmp_path / "in", tmp_path / "clean", source_format="jsonl",
                               source_options=options, output_config=TWO_SPLITS, workers=2)
    assert (result.rows_read, result.rows_rejected) == (400, 4)

    entries = quarantine(tmp_path / "out")
    file_lines = (tmp_path / "in" / "a.jsonl").read_bytes().splitlines(keepends=True)
    expected = [i + 1 for i, line in enumerate(file_lines) if line.rstrip(b"\n").decode() in bad.values()]
    assert [e["line"] for e in entries] == expected == [6, 79, 202, 323]
    assert [raw(e) for e in entries] == [file_lines[n - 1] for n in expected]
    assert entries[0]["reason"].startswith("not valid JSON")
    assert entries[1]["reason"] == "expected a JSON object, got list"
    assert entries[2]["reason"].startswith("field 'n' is text here but a number")
    assert entries[3]["reason"] == "column 'code': value 'three' is not an integer"

    with pytest.raises(SourceError, match=r"a.jsonl: line 6: not valid JSON"):
        ingest(str(tmp_path / "in"), str(tmp_path / "fail"), source_format="jsonl", source_options=options,
               record_lineage=False)
    (tmp_path / "in" / "a.jsonl").write_text("\n".join(line for line in lines if line != bad[5]) + "\n")
    with pytest.raises(SourceError, match=r"a.jsonl: line 78: expected a JSON object, got list"):
        ingest(str(tmp_path / "in"), str(tmp_path / "fail"), source_format="jsonl", source_options=options,
               record_lineage=False)


def test_json_lines_with_nested_values_of_different_types_stay_an_error_under_skip(tmp_path):
    # Which line is bad is not known when only values inside objects disagree.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"o": {"x": 1}}\n{"o": {"x": 2}}\n{"o": {"x": "t"}}\n')
    with pytest.raises(SourceError, match=r"a.jsonl: lines 1-3: nested values of different types"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", bad_rows="skip",
               record_lineage=False)


def test_a_truncated_gzip_json_lines_file_stays_fatal_under_skip(tmp_path):
    (tmp_path / "in").mkdir()
    data = gzip.compress(b"".join(json.dumps({"n": i}).encode() + b"\n" for i in range(5000)))
    (tmp_path / "in" / "a.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"a.jsonl.gz: cannot read"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="jsonl", bad_rows="skip",
               record_lineage=False)
    assert not os.path.exists(tmp_path / "out" / "examples_metadata.json")


# --------------------------------------------------------------------------- images
def _image_folders(tmp_path):
    """The sample images with bad files among them, and the sample alone: (bad, clean, {bad file: bytes})."""
    shutil.copytree(IMAGES, tmp_path / "in")
    shutil.copytree(IMAGES, tmp_path / "clean")
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(png, format="PNG")
    webp = io.BytesIO()
    Image.new("RGB", (8, 8)).save(webp, format="WEBP")
    bad = {
        tmp_path / "in" / "circle" / "b0_text.jpg": b"this is not an image\n",
        tmp_path / "in" / "square" / "zz_truncated.png": png.getvalue()[:60],
        tmp_path / "in" / "triangle" / "c1.webp": webp.getvalue(),  # not in the accepted formats
    }
    for path, data in bad.items():
        path.write_bytes(data)
    return tmp_path / "in", tmp_path / "clean", bad


def test_images_that_do_not_decode_are_quarantined(tmp_path, monkeypatch):
    monkeypatch.setattr("examplegen.sources.images.BATCH_FILES", 2)
    monkeypatch.setattr("examplegen.sources.images.UNIT_FILES", 5)
    data, clean, bad = _image_folders(tmp_path)
    result, expected = skip_and_clean(tmp_path, data, clean, source_format="images", output_config=TWO_SPLITS,
                                      workers=2)
    assert result.rows_rejected == 3 and result.rows_read == expected.rows_read + 3
    assert json.loads((tmp_path / "out" / "examples_metadata.json").read_text())["label_map"] == \
        json.loads((tmp_path / "expected" / "examples_metadata.json").read_text())["label_map"]
    entries = quarantine(tmp_path / "out")
    assert [e["file"] for e in entries] == sorted(str(p) for p in bad)  # in input order
    assert all(set(e) == {"file", "reason", "raw_base64"} for e in entries)  # the file is the row
    assert [raw(e) for e in entries] == [open(e["file"], "rb").read() for e in entries]
    reasons = {os.path.basename(e["file"]): e["reason"] for e in entries}
    assert reasons["b0_text.jpg"].startswith("not a decodable image")
    assert reasons["zz_truncated.png"].startswith("not a decodable image")
    assert reasons["c1.webp"].startswith("a WEBP image; accepted formats are")

    with pytest.raises(SourceError, match=r"circle/b0_text.jpg: not a decodable image"):
        ingest(str(data), str(tmp_path / "fail"), source_format="images", record_lineage=False)
    with pytest.raises(TooManyBadRows, match=r"max_bad_ratio=0.01"):
        ingest(str(data), str(tmp_path / "limit"), source_format="images", bad_rows="skip", max_bad_ratio=0.01,
               record_lineage=False)


# --------------------------------------------------------------------------- text
def _text_lines(n, bad_at):
    out = [f"line {i} caf\u00e9".encode() + b"\n" for i in range(n)]
    for i in bad_at:
        out[i] = f"line {i} ".encode() + b"\xff\xfe broken\n"
    return out


@pytest.mark.parametrize("compress", [False, True])
def test_text_lines_invalid_in_the_encoding_are_quarantined(tmp_path, monkeypatch, compress):
    monkeypatch.setattr("examplegen.sources.text.READ_BYTES", 500)  # many blocks
    bad_at = {"a": [0, 41, 42, 199], "b": [7]}
    for name, bad in bad_at.items():
        lines = _text_lines(200, bad)
        lines[-1] = lines[-1].rstrip(b"\n")  # the last line without a line break
        clean = b"".join(line for i, line in enumerate(lines) if i not in bad)
        for folder, content in (("in", b"".join(lines)), ("clean", clean)):
            path = tmp_path / folder / f"{name}.txt"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(gzip.compress(content) if compress else content)
    options = {"unit": "line"}
    result, _ = skip_and_clean(tmp_path, tmp_path / "in", tmp_path / "clean", source_format="text",
                               source_options=options, output_config=TWO_SPLITS)
    assert (result.rows_read, result.rows_rejected) == (400, 5)
    entries = quarantine(tmp_path / "out")
    assert [(os.path.basename(e["file"]), e["line"]) for e in entries] == [
        ("a.txt", 1), ("a.txt", 42), ("a.txt", 43), ("a.txt", 200), ("b.txt", 8)]
    for entry in entries:
        content = (gzip.decompress if compress else bytes)(open(entry["file"], "rb").read())
        assert raw(entry) == content.splitlines(keepends=True)[entry["line"] - 1]
        assert entry["reason"].startswith("not valid utf-8 text")
    texts = sorted(r for split in records(tmp_path / "out").values() for r in split)
    assert len(texts) == 395

    with pytest.raises(SourceError, match=r"a.txt: line 1: not valid utf-8 text"):
        ingest(str(tmp_path / "in"), str(tmp_path / "fail"), source_format="text", source_options=options,
               record_lineage=False)


def test_text_files_invalid_in_the_encoding_are_quarantined_whole(tmp_path):
    for folder in ("in", "clean"):
        (tmp_path / folder / "pos").mkdir(parents=True)
        (tmp_path / folder / "neg").mkdir(parents=True)
        (tmp_path / folder / "pos" / "a.txt").write_text("good\ntext\n")
        (tmp_path / folder / "neg" / "c.txt").write_text("more text\n")
    broken = b"fine\nstill fine\nnot \xe9 utf-8\n"
    (tmp_path / "in" / "neg" / "b.txt").write_bytes(broken)
    options = {"labels": True}
    result, _ = skip_and_clean(tmp_path, tmp_path / "in", tmp_path / "clean", source_format="text",
                               source_options=options, output_config=TWO_SPLITS)
    assert (result.rows_read, result.rows_rejected) == (3, 1)
    [entry] = quarantine(tmp_path / "out")
    assert (entry["file"], entry["line"], raw(entry)) == (str(tmp_path / "in" / "neg" / "b.txt"), 3, broken)
    with pytest.raises(SourceError, match=r"b.txt: line 3: not valid utf-8 text"):
        ingest(str(tmp_path / "in"), str(tmp_path / "fail"), source_format="text", source_options=options,
               record_lineage=False)


def test_text_in_an_encoding_without_byte_lines_fails_under_skip(tmp_path):
    # In UTF-16 a line break is not the byte \n: lines cannot be cut out of invalid text.
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_bytes("one\ntwo\n".encode("utf-16") + b"\x00\xd8")  # a lone surrogate
    with pytest.raises(SourceError, match=r"a.txt: line 3: not valid utf-16 text"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="text", bad_rows="skip",
               source_options={"unit": "line", "encoding": "utf-16"}, workers=2, record_lineage=False)


# --------------------------------------------------------------------------- both engines
@pytest.mark.parametrize("source", ["parquet", "jsonl", "images", "text"])
def test_the_beam_engine_quarantines_what_the_local_engine_does(tmp_path, source):
    data = tmp_path / "in"
    options = None
    if source == "parquet":
        data.mkdir()
        pq.write_table(_parquet_table(500, [3, 4, 400]), data / "a.parquet", row_group_size=100)
        options = {"batch_rows": 50}
    elif source == "jsonl":
        data.mkdir()
        (data / "a.jsonl").write_text('{"a": 1}\n{"a": 2,\n{"a": "x"}\n{"a": 4}\n')
    elif source == "images":
        data, _, _ = _image_folders(tmp_path)
    else:
        data.mkdir()
        (data / "a.txt").write_bytes(b"".join(_text_lines(50, [2, 30])))
        options = {"unit": "line"}
    common = dict(source_format=source, source_options=options, output_config=TWO_SPLITS, bad_rows="skip",
                  record_lineage=False)
    local = ingest(str(data), str(tmp_path / "local"), workers=1, **common)
    beam = ingest(str(data), str(tmp_path / "beam"), engine="beam", beam_pipeline_args=["--runner=DirectRunner"],
                  **common)
    assert beam.rows_rejected == local.rows_rejected > 0
    assert tree_bytes(str(tmp_path / "beam")) == tree_bytes(str(tmp_path / "local"))
    assert len(quarantine(tmp_path / "beam")) == local.rows_rejected
    with pytest.raises(TooManyBadRows):
        ingest(str(data), str(tmp_path / "limit"), engine="beam", beam_pipeline_args=["--runner=DirectRunner"],
               max_bad_rows=local.rows_rejected - 1, **common)
