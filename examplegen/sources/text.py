"""Text corpora: one example per file or per line, optionally with labels from paths.

Features: ``text`` (bytes: the text re-encoded as UTF-8) and, with labels
(``input_base/<label>/*.txt``), ``label`` (int64, the id in the label map, see
examplegen.sources.folders) and ``label_text`` (bytes, the label).

- ``unit="file"`` (default): a file's whole text is one example (a UTF-8 byte order mark
  removed, line endings kept as they are);
- ``unit="line"``: every line is one example, without its line ending (``\\n`` or
  ``\\r\\n``), as ``tf.data.TextLineDataset`` reads them; empty lines are examples too
  unless ``skip_empty_lines``;
- ``encoding``: any codec Python knows (default utf-8); text that is invalid in it is an
  error naming the file and line;
- gzip files (detected from their first bytes, whatever their name) are decompressed.

Labels default to off for text (an unlabelled corpus); ``labels=true`` takes them from
the files' directories.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import itertools
from typing import IO, Iterator, Sequence

import numpy as np
import pyarrow as pa

from examplegen import fs
from examplegen.errors import ConfigError, SourceError
from examplegen.sources import folders
from examplegen.sources.base import Plan

FORMAT = "text"
UNITS = ("file", "line")
BATCH_ROWS = 8192  # examples per record batch
BATCH_CHARS = 16 << 20  # or about this much text
READ_BYTES = 1 << 20  # bytes decoded at a time
UNIT_BYTES = 32 << 20  # input bytes per work unit (a file is never cut)
_GZIP_MAGIC = b"\x1f\x8b"

LABEL_FIELDS = [("label", pa.int64()), ("label_text", pa.string())]


@dataclasses.dataclass(frozen=True)
class TextOptions(folders.SourceOptions):
    """How to read a text corpus (see the module docstring and SourceOptions)."""

    labels: bool = False
    unit: str = "file"  # "file" | "line": one example per file or per line
    encoding: str = "utf-8"
    skip_empty_lines: bool = False  # unit="line": drop lines that are empty

    _what = "text"

    def __post_init__(self):
        super().__post_init__()
        if self.unit not in UNITS:
            raise ConfigError(f"text option unit: {self.unit!r} is unknown; use one of {', '.join(UNITS)}")
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"text option encoding: {self.encoding!r} is not an encoding Python knows") from None


Options = TextOptions


def plan(split_name: str, files: Sequence[str], options: TextOptions, chunk_bytes: int = 0) -> Plan:
    """Work units of consecutive whole files, about UNIT_BYTES each."""
    units = folders.plan_files(files, UNIT_BYTES, rows_per_file=options.unit == "file")
    return Plan(units, columns=schema(options).names)


def schema(options: TextOptions) -> pa.Schema:
    return pa.schema([("text", pa.binary())] + (LABEL_FIELDS if options.labels else []))


def _open_binary(path: str) -> IO[bytes]:
    raw = fs.open_input(path)  # checked against its digest when read whole (examplegen.fs)
    if raw.read(2) == _GZIP_MAGIC:
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb")
    raw.seek(0)
    return raw


def _decoder_encoding(options: TextOptions) -> str:
    # utf-8-sig drops a leading byte order mark, as Python's csv/json readers expect.
    return "utf-8-sig" if codecs.lookup(options.encoding).name == "utf-8" else options.encoding


def _error_line(path: str, options: TextOptions) -> SourceError:
    """The error for a file with invalid text, naming its first bad line: the file is
    decoded again line by line (only after a failure; the fast path decodes blocks)."""
    decoder = codecs.getincrementaldecoder(_decoder_encoding(options))("strict")
    number, pending = 0, ""
    with _open_binary(path) as binary:
        for chunk in itertools.chain(binary, [b""]):  # split at b"\n": a line per chunk in ASCII-compatible encodings
            try:
                pending += decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return SourceError(f"{path}: line {number + pending.count(chr(10)) + 1}: not valid "
                                   f"{options.encoding} text ({exc.reason}); set the text option encoding "
                                   "to the files' encoding")
            number += pending.count("\n")
            pending = pending[pending.rfind("\n") + 1:]
    return SourceError(f"{path}: not valid {options.encoding} text")  # pragma: no cover - decoded fine twice


def _text_blocks(path: str, options: TextOptions) -> Iterator[str]:
    """The file's text, decoded in blocks; invalid text or a corrupt gzip file raises
    SourceError naming the file (and the line)."""
    decoder = codecs.getincrementaldecoder(_decoder_encoding(options))("strict")
    try:
        with _open_binary(path) as binary:
            while True:
                block = binary.read(READ_BYTES)
                try:
                    text = decoder.decode(block, final=not block)
                except UnicodeDecodeError:
                    raise _error_line(path, options) from None
                if text:
                    yield text
                if not block:
                    return
    except (OSError, EOFError) as exc:  # a corrupt or truncated gzip file
        raise SourceError(f"{path}: cannot read ({exc})") from None


def _line_lists(path: str, options: TextOptions) -> Iterator[list[str]]:
    """Lists of the file's lines, without their endings: lines end at ``\\n`` (a ``\\r``
    before it is dropped too), as in TextLineDataset."""
    pending = ""
    for text in _text_blocks(path, options):
        lines = (pending + text).split("\n")
        pending = lines.pop()
        yield [line[:-1] if line.endswith("\r") else line for line in lines]
    if pending:
        yield [pending[:-1] if pending.endswith("\r") else pending]


def read(unit: folders.FileUnit, options: TextOptions) -> Iterator[pa.RecordBatch]:
    """Record batches of the unit's examples, in file (and line) order."""
    label_index = {label: i for i, label in enumerate(options.label_map or ())}
    texts: list[str] = []
    labels: list[tuple[str, int]] = []  # (label, examples) runs
    size = 0

    def batch() -> pa.RecordBatch:
        columns = [pa.array(texts, pa.string()).cast(pa.binary())]  # Arrow writes the UTF-8
        if options.labels:
            columns += [pa.array(np.repeat([label_index[x] for x, _ in labels], [n for _, n in labels]), pa.int64()),
                        pa.array(np.repeat([x for x, _ in labels], [n for _, n in labels]).tolist(), pa.string())]
        return pa.RecordBatch.from_arrays(columns, schema=schema(options))

    for path in unit.files:
        label = ""
        if options.labels:
            if options.label_map is None:
                raise ConfigError("text: the label map must be resolved before reading (with_label_map)")
            label = folders.label_of(path)
            if label not in label_index:
                raise SourceError(f"{path}: label {label!r} is not in the label map {list(options.label_map)}")
        if options.unit == "file":
            pieces: Iterator[list[str]] = iter([["".join(_text_blocks(path, options))]])
        else:
            pieces = _line_lists(path, options)
        for piece in pieces:
            if options.skip_empty_lines:
                piece = [line for line in piece if line]
            while piece:
                take = piece[:BATCH_ROWS - len(texts)]
                piece = piece[len(take):]
                texts.extend(take)
                labels.append((label, len(take)))
                size += sum(map(len, take))
                if len(texts) >= BATCH_ROWS or size >= BATCH_CHARS:
                    yield batch()
                    texts, labels, size = [], [], 0
    if texts:
        yield batch()


ROWS_NAME = "lines"


def has_rows(path: str, options: TextOptions) -> bool:
    """The source hook: with one example per line, an empty file has none (it is left out
    with a warning); with one per file, every file is an example."""
    if options.unit == "file":
        return True
    try:
        with _open_binary(path) as binary:
            return bool(binary.read(1))
    except (OSError, EOFError) as exc:
        raise SourceError(f"{path}: cannot read ({exc})") from None


# Optional hooks of the source contract (examplegen.sources): the label map over all splits.
for_output = folders.for_output
prepare = folders.prepare
artifact_metadata = folders.artifact_metadata
default_input_pattern = folders.default_input_pattern
