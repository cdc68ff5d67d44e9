"""The text corpus source: per file / per line, encodings, gzip, labels, errors naming the line."""

import gzip
import os

import pytest

from examplegen.errors import ConfigError, SourceError
from examplegen.sources import text
from tests.helpers import REPO

SAMPLE = os.path.join(REPO, "examples", "data", "text")
CORPUS = os.path.join(REPO, "examples", "data", "text_corpus", "lines.txt.gz")


def read_all(files, options):
    options = options.with_label_map(files)
    rows = []
    for unit in text.plan("train", files, options).units:
        for batch in text.read(unit, options):
            rows.extend(batch.to_pylist())
    return rows


def write(path, data: bytes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def sample_files():
    return sorted(os.path.join(d, n) for d, _, names in os.walk(SAMPLE) for n in names)


def test_one_example_per_file_with_labels_from_paths():
    files = sample_files()
    rows = read_all(files, text.TextOptions(labels=True))
    assert [r["text"] for r in rows] == [open(f, "rb").read() for f in files]
    assert [r["label_text"] for r in rows] == [os.path.basename(os.path.dirname(f)) for f in files]
    assert {r["label_text"]: r["label"] for r in rows} == {"neg": 0, "pos": 1}


def test_one_example_per_line_like_text_line_dataset(tmp_path):
    import tensorflow as tf

    path = write(tmp_path / "c.txt", b"one\r\ntwo\n\nthree\nlast without newline")
    rows = read_all([path], text.TextOptions(unit="line"))
    expected = [t.numpy() for t in tf.data.TextLineDataset([path])]
    assert [r["text"] for r in rows] == expected == [b"one", b"two", b"", b"three", b"last without newline"]
    assert "label" not in rows[0]
    skipped = read_all([path], text.TextOptions(unit="line", skip_empty_lines=True))
    assert [r["text"] for r in skipped] == [e for e in expected if e]
    # A lone carriage return is text, kept (TextLineDataset deletes every \r of a line).
    lone = write(tmp_path / "cr.txt", b"a\rb\n")
    assert [r["text"] for r in read_all([lone], text.TextOptions(unit="line"))] == [b"a\rb"]


def test_gzip_corpus_is_detected_from_its_bytes(tmp_path):
    rows = read_all([CORPUS], text.TextOptions(unit="line"))
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        assert [r["text"].decode() for r in rows] == f.read().split("\n")[:-1]
    renamed = write(tmp_path / "plain_name.txt", open(CORPUS, "rb").read())
    assert read_all([renamed], text.TextOptions(unit="line")) == rows


def test_encoding_option_and_text_stored_as_utf8(tmp_path):
    path = write(tmp_path / "latin.txt", "caf\u00e9\nna\u00efve\n".encode("latin-1"))
    rows = read_all([path], text.TextOptions(unit="line", encoding="latin-1"))
    assert [r["text"] for r in rows] == ["caf\u00e9".encode(), "na\u00efve".encode()]
    utf16 = write(tmp_path / "u16.txt", "a\u00e9\nb\n".encode("utf-16"))
    assert [r["text"] for r in read_all([utf16], text.TextOptions(unit="line", encoding="utf-16"))] == [
        "a\u00e9".encode(), b"b"]
    bom = write(tmp_path / "bom.txt", b"\xef\xbb\xbfhello\n")
    assert read_all([bom], text.TextOptions())[0]["text"] == b"hello\n"


@pytest.mark.parametrize("unit", ["file", "line"])
def test_invalid_text_is_an_error_naming_file_and_line(tmp_path, unit):
    path = write(tmp_path / "bad.txt", b"fine\nstill fine\nbroken \xff byte\nafter\n")
    with pytest.raises(SourceError, match=r"bad\.txt: line 3: not valid utf-8 text"):
        read_all([path], text.TextOptions(unit=unit))


def test_invalid_text_inside_gzip_names_the_line(tmp_path):
    path = write(tmp_path / "bad.txt.gz", gzip.compress(b"a\nb\nc\n\xc3(\n"))
    with pytest.raises(SourceError, match=r"bad\.txt\.gz: line 4: not valid utf-8"):
        read_all([path], text.TextOptions(unit="line"))


def test_truncated_gzip_is_an_error_naming_the_file(tmp_path):
    data = gzip.compress(b"line\n" * 1000)
    path = write(tmp_path / "cut.txt.gz", data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"cut\.txt\.gz: cannot read"):
        read_all([path], text.TextOptions(unit="line"))


def test_options_are_validated():
    with pytest.raises(ConfigError, match="text option unit"):
        text.TextOptions.from_dict({"unit": "paragraph"})
    with pytest.raises(ConfigError, match="not an encoding"):
        text.TextOptions.from_dict({"encoding": "klingon"})
    with pytest.raises(ConfigError, match="text option 'label' is unknown"):
        text.TextOptions.from_dict({"label": True})
    options = text.TextOptions.from_dict({"labels": "true", "unit": "line"})
    assert options.labels and text.TextOptions.from_dict(options.to_dict()) == options


def test_batches_are_cut_by_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "BATCH_ROWS", 3)
    path = write(tmp_path / "c.txt", b"".join(b"%d\n" % i for i in range(7)))
    options = text.TextOptions(unit="line")
    batches = [b.num_rows for u in text.plan("s", [path], options).units for b in text.read(u, options)]
    assert batches == [3, 3, 1]


def test_lines_across_read_blocks(tmp_path, monkeypatch):
    """Blocks cut inside multi-byte characters and between \\r and \\n change nothing."""
    content = "caf\u00e9 \u20ac\r\n\u00fcber\n\nz\r\nlast"
    path = write(tmp_path / "c.txt", content.encode("utf-8"))
    expected = [line.encode() for line in ["caf\u00e9 \u20ac", "\u00fcber", "", "z", "last"]]
    for size in (1, 2, 3, 5, 1 << 20):
        monkeypatch.setattr(text, "READ_BYTES", size)
        assert [r["text"] for r in read_all([path], text.TextOptions(unit="line"))] == expected, size
        assert read_all([path], text.TextOptions())[0]["text"] == content.encode()


def test_batches_are_cut_by_size(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "BATCH_CHARS", 10)
    files = [write(tmp_path / f"{i}.txt", b"123456") for i in range(3)]
    options = text.TextOptions()
    batches = [b.num_rows for u in text.plan("s", files, options).units for b in text.read(u, options)]
    assert batches == [2, 1]
