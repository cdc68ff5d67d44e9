"""Text corpora: one example per file or per line, optionally with labels from paths.

Features: ``text`` (bytes: the text re-encoded as UTF-8) and, with labels
(``input_base/<label>/*.txt``), ``label`` (int64, the id in the label map, see
examplegen.sources.folders) and ``label_text`` (bytes, the label).

- ``unit="file"`` (default): a file's whole text is one example (a UTF-8 byte order mark
  removed, line endings kept as they are);
- ``unit="line"``: every line is one example, without its line ending (``\\n`` or
  ``\\r\\n``), as ``tf.data.TextLineDataset`` reads them; empty lines are examples too
  unless ``skip_empty_lines``;
- ``encoding``: any codec Python knows (default utf-8); text that is invalid in it is a
  bad row (examplegen.bad_rows): an error naming the file and line, or under
  ``bad_rows="skip"`` the line (``unit="line"``) or the file (``unit="file"``)
  quarantined. In an encoding whose line break is not the byte ``\n`` (UTF-16, UTF-32)
  invalid text always fails: lines cannot be found in it;
- gzip files (detected from their first bytes, whatever their name) are decompressed.

Labels default to off for text (an unlabelled corpus); ``labels=true`` takes them from
the files' directories.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import gzip
import itertools
from typing import IO, Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa

from examplegen import fs
from examplegen.bad_rows import BadRowPolicy, RowRejects
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


class InvalidText(SourceError):
    """Text that is not valid in the encoding: ``line`` is the first bad line (0: unknown)
    and ``reason`` the message without the file and line."""

    def __init__(self, path: str, line: int, reason: str):
        super().__init__(f"{path}: line {line}: {reason}" if line else f"{path}: {reason}")
        self.path, self.line, self.reason = path, line, reason

    def __reduce__(self):  # pickled from worker processes to the launcher
        return type(self), (self.path, self.line, self.reason)


def _invalid(options: TextOptions, exc: UnicodeDecodeError) -> str:
    return (f"not valid {options.encoding} text ({exc.reason}); set the text option encoding to the files' "
            "encoding")


def _error_line(path: str, options: TextOptions) -> InvalidText:
    """The error for a file with invalid text, naming its first bad line: the file is
    decoded again line by line (only after a failure; the fast path decodes blocks)."""
    decoder = codecs.getincrementaldecoder(_decoder_encoding(options))("strict")
    number, pending = 0, ""
    with _open_binary(path) as binary:
        for chunk in itertools.chain(binary, [b""]):  # split at b"\n": a line per chunk in ASCII-compatible encodings
            try:
                pending += decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return InvalidText(path, number + pending.count(chr(10)) + 1, _invalid(options, exc))
            number += pending.count("\n")
            pending = pending[pending.rfind("\n") + 1:]
    return InvalidText(path, 0, f"not valid {options.encoding} text")  # pragma: no cover - decoded fine twice


def _text_blocks(path: str, options: TextOptions) -> Iterator[str]:
    """The file's text, decoded in blocks; invalid text raises InvalidText naming the file
    and the line, a corrupt gzip file SourceError naming the file."""
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


def _strip_ending(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line


def _line_lists(path: str, options: TextOptions) -> Iterator[tuple[list[str], int]]:
    """(lines, number of the first) of the file, the lines without their endings: lines
    end at ``\n`` (a ``\r`` before it is dropped too), as in TextLineDataset. For
    encodings in which a line break is not the byte ``\n`` (UTF-16, UTF-32): any invalid
    text fails (InvalidText)."""
    pending, number = "", 1
    for text in _text_blocks(path, options):
        lines = (pending + text).split("\n")
        pending = lines.pop()
        yield [_strip_ending(line) for line in lines], number
        number += len(lines)
    if pending:
        yield [_strip_ending(pending)], number


def _lines_by_bytes(path: str, options: TextOptions, rejects: RowRejects) -> Iterator[tuple[list[str], Sequence[int]]]:
    """(lines, their numbers) of a file in an encoding where lines end with the byte
    ``\n`` (UTF-8, Latin-1, ...): blocks of whole lines are decoded at once; in a block
    that holds invalid text each line is decoded alone, and the invalid ones go to
    ``rejects`` (under the default policy the first fails, naming its line)."""
    decoder = codecs.getincrementaldecoder(_decoder_encoding(options))("strict")
    try:
        with _open_binary(path) as binary:
            rest, number = b"", 1
            while True:
                data = binary.read(READ_BYTES)
                data, final = rest + data, not data
                cut = len(data) if final else data.rfind(b"\n") + 1
                block, rest = data[:cut], data[cut:]
                if block:
                    yield _decode_lines(block, number, final, decoder, path, options, rejects)
                    number += block.count(b"\n")
                if final:
                    return
    except (OSError, EOFError) as exc:  # a corrupt or truncated gzip file
        raise SourceError(f"{path}: cannot read ({exc})") from None


def _decode_lines(block: bytes, number: int, final: bool, decoder, path: str, options: TextOptions,
                  rejects: RowRejects) -> tuple[list[str], Sequence[int]]:
    try:
        lines = decoder.decode(block, final=final).split("\n")
        last = lines.pop()  # "" after the block's last line break; the file's last line without one
        if last:
            lines.append(last)
        return [_strip_ending(line) for line in lines], range(number, number + len(lines))
    except UnicodeDecodeError:
        if not rejects.policy.skip:
            raise _error_line(path, options) from None
    texts, numbers = [], []
    raws = block.split(b"\n")
    raws = [raw + b"\n" for raw in raws[:-1]] + ([raws[-1]] if raws[-1] else [])
    for i, raw in enumerate(raws):
        state = decoder.getstate()
        try:
            line = decoder.decode(raw, final=final and i == len(raws) - 1)
        except UnicodeDecodeError as exc:
            decoder.setstate(state)
            rejects.reject(path, "line", number + i, _invalid(options, exc), raw)
            continue
        if line.endswith("\n"):
            line = line[:-1]
        elif not line and i == len(raws) - 1:
            continue  # only a byte order mark after the last line break
        texts.append(_strip_ending(line))
        numbers.append(number + i)
    return texts, numbers


def _splits_at_newline_byte(options: TextOptions) -> bool:
    """Whether a line break is the byte ``\n`` and that byte is always one (ASCII-compatible)."""
    try:
        return codecs.lookup(options.encoding).encode("\na")[0] == b"\na"
    except Exception:  # pragma: no cover - an odd codec
        return False


def _file_bytes(path: str) -> bytes:
    """The file's bytes, decompressed when it is gzip."""
    with _open_binary(path) as binary:
        return binary.read()


def _line_bytes(path: str, number: int) -> bytes:
    """Line ``number`` of the file (decompressed), its line break included."""
    with _open_binary(path) as binary:
        for current, raw in enumerate(binary, start=1):
            if current == number:
                return raw
    return b""


def read(unit: folders.FileUnit, options: TextOptions,
         rejects: Optional[RowRejects] = None) -> Iterator[pa.RecordBatch]:
    """Record batches of the unit's examples, in file (and line) order. Text that is not
    valid in the encoding is a bad row (examplegen.bad_rows): with ``unit="line"`` the
    line (its bytes, line break included), with ``unit="file"`` the file (its bytes, and
    the line of the first invalid text) goes to ``rejects``. A corrupt gzip file fails."""
    rejects = rejects if rejects is not None else RowRejects(BadRowPolicy())
    label_index = {label: i for i, label in enumerate(options.label_map or ())}
    texts: list[str] = []
    labels: list[tuple[str, int]] = []  # (label, examples) runs
    where: list[tuple[str, Sequence[int]]] = []  # (file, line numbers) runs; unit="file": (file, [0])
    size = 0
    by_bytes = options.unit == "line" and _splits_at_newline_byte(options)

    def batch() -> pa.RecordBatch:
        columns = [pa.array(texts, pa.string()).cast(pa.binary())]  # Arrow writes the UTF-8
        if options.labels:
            columns += [pa.array(np.repeat([label_index[x] for x, _ in labels], [n for _, n in labels]), pa.int64()),
                        pa.array(np.repeat([x for x, _ in labels], [n for _, n in labels]).tolist(), pa.string())]
        return pa.RecordBatch.from_arrays(columns, schema=schema(options))

    def locate(i: int, _where=None) -> tuple[str, Optional[str], int, bytes]:
        for path, numbers in _where:
            if i < len(numbers):
                if options.unit == "file":  # the file is the row
                    return path, None, 0, _file_bytes(path)
                return path, "line", numbers[i], _line_bytes(path, numbers[i])
            i -= len(numbers)
        raise IndexError(i)  # pragma: no cover

    for path in unit.files:
        rejects.flush()  # the previous file's bad lines
        label = ""
        if options.labels:
            if options.label_map is None:
                raise ConfigError("text: the label map must be resolved before reading (with_label_map)")
            label = folders.label_of(path)
            if label not in label_index:
                raise SourceError(f"{path}: label {label!r} is not in the label map {list(options.label_map)}")
        if options.unit == "file":
            try:
                pieces: Iterator[tuple[list[str], Sequence[int]]] = iter([(["".join(_text_blocks(path, options))],
                                                                           [0])])
            except InvalidText as exc:
                rejects.reject(path, "line", exc.line, exc.reason, _file_bytes(path))
                continue
        elif by_bytes:
            pieces = _lines_by_bytes(path, options, rejects)
        else:
            pieces = ((lines, range(first, first + len(lines))) for lines, first in _line_lists(path, options))
        for piece, numbers in pieces:
            if options.skip_empty_lines:
                kept = [(line, n) for line, n in zip(piece, numbers) if line]
                piece, numbers = [line for line, _ in kept], [n for _, n in kept]
            while piece:
                take = piece[:BATCH_ROWS - len(texts)]
                piece = piece[len(take):]
                texts.extend(take)
                labels.append((label, len(take)))
                where.append((path, numbers[:len(take)]))
                numbers = numbers[len(take):]
                size += sum(map(len, take))
                if len(texts) >= BATCH_ROWS or size >= BATCH_CHARS:
                    rejects.locate(functools.partial(locate, _where=where))
                    yield batch()
                    texts, labels, where, size = [], [], [], 0
    if texts:
        rejects.flush()
        rejects.locate(functools.partial(locate, _where=where))
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
