"""TFRecord files: framing, gzip writing and checked, streaming reading.

A TFRecord file is a sequence of frames, each::

    uint64le length | uint32le masked_crc32c(length bytes) | data | uint32le masked_crc32c(data)

optionally compressed as a whole with gzip (TF "GZIP") or zlib (TF "ZLIB"). A gzip file may
hold several concatenated members; readers (TF's and ours) read them as one stream.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from typing import BinaryIO, Iterator, NamedTuple, Optional, Sequence

import google_crc32c
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip, isal_zlib

from examplegen import native
from examplegen.errors import SourceError
from examplegen.split import buckets_of_digests

__all__ = [
    "masked_crc32c",
    "frame_column",
    "frame_and_bucket",
    "crc_and_bucket",
    "frames_by_key",
    "grouped_frames",
    "frame_records",
    "gzip_member",
    "open_writer",
    "iter_records",
    "count_records",
    "read_record_batches",
    "read_frame_batches",
    "FrameBatch",
    "is_empty",
]

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_GZIP_MAGIC = b"\x1f\x8b"
_READ_CHUNK = 1 << 22
DEFAULT_LEVEL = 1  # isal levels are 0..3; on taxi records 1 beat zlib level 1 in ratio, ~4x faster


def masked_crc32c(data: bytes) -> int:
    """CRC32C of ``data`` masked as TFRecord stores it."""
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _mask(crcs: np.ndarray) -> np.ndarray:
    crcs = crcs.astype(np.uint32)
    return ((crcs >> np.uint32(15)) | (crcs << np.uint32(17))) + np.uint32(_MASK_DELTA)


_header_crcs: dict[int, int] = {}


def _header_crc(length: int) -> int:
    """Masked crc of the 8 length bytes, cached by length (records repeat lengths a lot)."""
    crc = _header_crcs.get(length)
    if crc is None:
        crc = masked_crc32c(length.to_bytes(8, "little"))
        if len(_header_crcs) < 1 << 16:
            _header_crcs[length] = crc
    return crc


def _frame_headers(lengths: np.ndarray) -> np.ndarray:
    """(n x 12) uint8: the frame header of a record of each length (length, masked crc).
    One crc per distinct length; records of a batch share few lengths."""
    top = int(lengths.max())
    if top < 1 << 22:
        distinct = np.flatnonzero(np.bincount(lengths))
        rank = np.zeros(top + 1, dtype=np.intp)
        rank[distinct] = np.arange(len(distinct))
        index = rank[lengths]
    else:
        distinct, index = np.unique(lengths, return_inverse=True)
    table = np.empty((len(distinct), 12), dtype=np.uint8)
    table[:, :8] = distinct.astype("<u8").view(np.uint8).reshape(-1, 8)
    crcs = np.array([_header_crc(int(length)) for length in distinct], dtype="<u4")
    table[:, 8:] = crcs.view(np.uint8).reshape(-1, 4)
    return table[index]


# --------------------------------------------------------------------------- writing
def _fixed_width(matrix: np.ndarray) -> pa.Array:
    """Binary array whose row i is ``matrix`` row i."""
    n, width = matrix.shape
    offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(matrix)])


def _record_array(records: pa.Array | Sequence[bytes]) -> pa.Array:
    if isinstance(records, pa.ChunkedArray):
        records = records.combine_chunks()
    if not isinstance(records, pa.Array):
        records = pa.array(records, pa.binary())
    if not (pa.types.is_binary(records.type) or pa.types.is_large_binary(records.type)):
        raise ValueError(f"records must be a binary array, got {records.type}")
    if records.null_count:
        raise ValueError("cannot frame null records")
    return records


def _record_lengths(records: pa.Array) -> np.ndarray:
    width = np.int64 if pa.types.is_large_binary(records.type) else np.int32
    offsets = np.frombuffer(records.buffers()[1], dtype=width, count=len(records) + 1,
                            offset=records.offset * np.dtype(width).itemsize)
    return np.diff(offsets).astype(np.int64)


def _framed(records: pa.Array, crcs: np.ndarray) -> pa.Array:
    """Header, record and footer of each record, from the records' raw crc32c values."""
    n = len(records)
    header = _frame_headers(_record_lengths(records))
    footer = _mask(crcs).astype("<u4").view(np.uint8).reshape(n, 4)
    if pa.types.is_large_binary(records.type):
        return pc.binary_join_element_wise(_fixed_width(header).cast(pa.large_binary()), records,
                                           _fixed_width(footer).cast(pa.large_binary()),
                                           pa.scalar(b"", pa.large_binary()))
    return pc.binary_join_element_wise(_fixed_width(header), records, _fixed_width(footer), b"")


def _record_objects(records: pa.Array, given) -> Sequence[bytes]:
    """The records as bytes objects: the caller's own list, or converted by Arrow (far
    cheaper than slicing in Python; crc32c and sha256 take bytes at their lowest cost)."""
    if isinstance(given, (list, tuple)) and all(type(item) is bytes for item in given):
        return given
    return records.to_numpy(zero_copy_only=False)


def _digests_and_crcs(array: pa.Array, given, with_digests: bool) -> tuple[bytes, np.ndarray]:
    """The SHA-256 digest (32 bytes each, back to back; b"" unless ``with_digests``) and the
    CRC32C of every record of ``array``: in one native call over the array's buffers when
    examplegen._framing is built, else per record with hashlib and google_crc32c."""
    n = len(array)
    if native.framing is not None:
        _, offsets, data = array.buffers()
        width = 8 if pa.types.is_large_binary(array.type) else 4
        digests, crcs = native.framing.digests_and_crcs(offsets, data if data is not None else b"", width,
                                                  array.offset, n, with_digests)
        return digests, np.frombuffer(crcs, dtype=np.uint32, count=n)
    items = _record_objects(array, given)
    digests = b""
    if with_digests:
        sha256 = hashlib.sha256
        digests = b"".join([sha256(item).digest() for item in items])
    return digests, np.fromiter(map(google_crc32c.value, items), dtype=np.uint32, count=n)


def frame_column(records: pa.Array | Sequence[bytes]) -> pa.Array:
    """Per record, its whole TFRecord frame (header, data, footer) as a binary array."""
    array = _record_array(records)
    if len(array) == 0:
        return pa.array([], array.type)
    return _framed(array, _digests_and_crcs(array, records, with_digests=False)[1])


def frame_and_bucket(records: pa.Array | Sequence[bytes], total_buckets: int) -> tuple[pa.Array, np.ndarray]:
    """``frame_column(records)`` and the TFX hash bucket of each record
    (``split.hash_buckets(records, total_buckets)``), in one pass over the records."""
    crcs, buckets = crc_and_bucket(records, total_buckets)
    array = _record_array(records)
    return (_framed(array, crcs) if len(array) else pa.array([], array.type)), buckets


def crc_and_bucket(records: pa.Array | Sequence[bytes], total_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """The raw CRC32C (uint32) and the TFX hash bucket (int64) of each record, in one pass:
    what ``frames_by_key`` and the hash split need."""
    array = _record_array(records)
    if len(array) == 0:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
    digests, crcs = _digests_and_crcs(array, records, with_digests=True)
    return crcs, buckets_of_digests(digests, total_buckets)


def frames_by_key(records: pa.Array | Sequence[bytes], key: np.ndarray,
                  crcs: Optional[np.ndarray] = None) -> list[tuple[int, int, pa.Buffer]]:
    """``grouped_frames(frame_column(records), key)``: for each distinct key, ascending, (the
    key, how many records have it, their frames back to back in their order). With the
    native module the frames are written once, straight in key order, into one buffer from
    Arrow's pool (``crcs``: the records' raw CRC32C when already known, crc_and_bucket)."""
    array = _record_array(records)
    n = len(array)
    key = np.asarray(key, dtype=np.int64)
    if len(key) != n:
        raise ValueError(f"{len(key)} keys for {n} records")
    if native.framing is None or n == 0:
        return grouped_frames(frame_column(array) if crcs is None else _framed(array, crcs), key)
    if crcs is None:
        crcs = _digests_and_crcs(array, records, with_digests=False)[1]
    order = np.arange(n, dtype=np.int64) if (key == key[0]).all() else np.argsort(key, kind="stable")
    frame_len = _record_lengths(array)[order] + 16
    ends = np.cumsum(frame_len)
    out = pa.allocate_buffer(int(ends[-1]))
    _, offsets, data = array.buffers()
    native.framing.frame_rows(offsets, data if data is not None else b"",
                              8 if pa.types.is_large_binary(array.type) else 4, array.offset, n,
                              np.ascontiguousarray(crcs, dtype=np.uint32), order, out)
    ordered_key = key[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(ordered_key)) + 1]).tolist()
    bounds = starts + [n]
    byte_at = np.concatenate([[0], ends]).tolist()
    return [(int(ordered_key[a]), b - a, out.slice(byte_at[a], byte_at[b] - byte_at[a]))
            for a, b in zip(bounds[:-1], bounds[1:])]


def concatenated(array: pa.Array) -> pa.Buffer:
    """The values of a binary array back to back (zero-copy when the array is not sliced)."""
    if len(array) == 0:
        return pa.py_buffer(b"")
    width = np.int64 if pa.types.is_large_binary(array.type) else np.int32
    _, offsets, data = array.buffers()
    item = np.dtype(width).itemsize
    bounds = np.frombuffer(offsets, dtype=width, count=2, offset=array.offset * item)
    end = int(np.frombuffer(offsets, dtype=width, count=1, offset=(array.offset + len(array)) * item)[0])
    return data.slice(int(bounds[0]), end - int(bounds[0]))


def grouped_frames(framed: pa.Array, key: np.ndarray) -> list[tuple[int, int, pa.Buffer]]:
    """For each distinct value of ``key`` (one integer per frame), ascending: (the value,
    how many frames have it, those frames back to back in their order). One stable sort
    and a single take for all groups, the groups being zero-copy slices of its result."""
    n = len(framed)
    if n == 0:
        return []
    key = np.asarray(key, dtype=np.int64)
    if len(key) != n:
        raise ValueError(f"{len(key)} keys for {n} frames")
    if (key == key[0]).all():
        return [(int(key[0]), n, concatenated(framed))]
    order = np.argsort(key, kind="stable")
    ordered = framed.take(pa.array(order))
    ordered_key = key[order]
    starts = np.concatenate([[0], np.flatnonzero(np.diff(ordered_key)) + 1, [n]]).tolist()
    return [(int(ordered_key[a]), b - a, concatenated(ordered.slice(a, b - a)))
            for a, b in zip(starts[:-1], starts[1:])]


def frame_records(records: pa.Array | Sequence[bytes]) -> bytes:
    """The TFRecord frames of ``records`` (a binary array or a sequence of bytes), concatenated."""
    return concatenated(frame_column(records)).to_pybytes()


def gzip_member(data: bytes, level: int = DEFAULT_LEVEL) -> bytes:
    """``data`` as one complete gzip member; members may be appended to one file."""
    return isal_zlib.compress(data, level, wbits=31)


def open_writer(path: str | os.PathLike, compression: str | None = "gzip",
                level: int = DEFAULT_LEVEL) -> BinaryIO:
    """A binary file for framed records: gzip through isal's igzip (levels 0-3), or plain."""
    if compression is None or str(compression).lower() in ("", "none"):
        return open(path, "wb")
    if str(compression).lower() == "gzip":
        if not 0 <= level <= 3:
            raise ValueError(f"igzip compression level must be 0..3, got {level}")
        return igzip.open(path, "wb", compresslevel=level)
    raise ValueError(f"unsupported TFRecord compression {compression!r}; use 'gzip' or None")


# --------------------------------------------------------------------------- reading
class _ZlibReader(io.RawIOBase):
    """Streaming reader of a zlib-wrapped (RFC 1950) file, as TF writes with "ZLIB"."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._inflate = isal_zlib.decompressobj()
        self._drained = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while (size < 0 or len(out) < size) and not self._inflate.eof:
            data = self._inflate.unconsumed_tail or self._raw.read(1 << 16)
            if not data:
                raise EOFError("zlib stream ended before its end marker")
            out += self._inflate.decompress(data, 0 if size < 0 else size - len(out))
        if self._inflate.eof and not self._drained:
            # read the file to its end (bytes after the end marker are ignored, as before),
            # so that a digest check of the file (examplegen.fs.expect_digests) takes place
            self._drained = True
            while self._raw.read(1 << 16):
                pass
        return bytes(out)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _is_plain_tfrecord(head: bytes) -> bool:
    if len(head) < 12:
        return False
    length, crc = _HEADER.unpack_from(head)
    return _header_crc(length) == crc


def _is_zlib(head: bytes) -> bool:
    return len(head) >= 2 and head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and (head[0] << 8 | head[1]) % 31 == 0


def _open_stream(path: str | os.PathLike) -> tuple[BinaryIO, str]:
    """Open ``path`` (a local path, or gs:// and s3:// through examplegen.fs) decompressed.
    A valid first frame header means plain (this wins over magic bytes, which a plain record
    length could happen to spell); else gzip or zlib."""
    from examplegen import fs

    path = os.fspath(path)
    with fs.open_input(path) as probe:
        head = probe.read(12)
    if not head or _is_plain_tfrecord(head):
        return fs.open_input(path), "plain"
    if head.startswith(_GZIP_MAGIC):
        return fs.open_gzip(path), "gzip"
    if _is_zlib(head):
        return _ZlibReader(fs.open_input(path)), "zlib"
    return fs.open_input(path), "plain"  # the reader reports the bad first header


def is_empty(path: str | os.PathLike) -> bool:
    """True if the file holds no bytes once decompressed, so no record. A corrupt or
    truncated stream counts as not empty: reading its records reports it."""
    try:
        stream, _ = _open_stream(path)
        with stream:
            return not stream.read(1)
    except (EOFError, OSError, isal_zlib.error):
        return False


def _frame_starts(buf: bytes, where) -> tuple[Sequence[int], int, int]:
    """Offsets of the complete frames at the front of ``buf``, the offset after the last of
    them, and the size of the incomplete frame after it (0 if its header is incomplete).
    ``where(i, offset)`` names frame i for an error about a bad length CRC. One native
    walk (examplegen.native; the offsets as an int64 array) or a Python loop (a list)."""
    if native.framing is not None:
        starts, stop, frame_size, bad = native.framing.frame_starts(buf)
        if bad >= 0:
            raise SourceError(f"{where(bad, stop)}: length CRC mismatch, the file is "
                              "corrupt or not a TFRecord file")
        return np.frombuffer(starts, dtype=np.int64), stop, frame_size
    unpack = _HEADER.unpack_from
    known = _header_crcs.get
    starts: list[int] = []
    append = starts.append
    pos, end = 0, len(buf)
    while pos + 12 <= end:
        length, crc = unpack(buf, pos)
        if known(length) != crc and _header_crc(length) != crc:
            raise SourceError(f"{where(len(starts), pos)}: length CRC mismatch, the file is "
                              "corrupt or not a TFRecord file")
        after = pos + 16 + length
        if after > end:
            return starts, pos, after - pos
        append(pos)
        pos = after
    return starts, pos, 0


def _check_data(buf: bytes, starts: Sequence[int], stop: int, where) -> None:
    """Checks the data CRC of the frames at ``starts`` (the last ending at ``stop``)."""
    n = len(starts)
    begin = np.asarray(starts, dtype=np.int64)
    if native.framing is not None:
        bad = native.framing.bad_frame_data(buf, begin, stop)
        if bad >= 0:
            raise SourceError(f"{where(bad, int(begin[bad]))}: data CRC mismatch, the file is corrupt")
        return
    crc_at = np.empty(n, dtype=np.int64)
    crc_at[:-1] = begin[1:] - 4
    crc_at[-1] = stop - 4
    datas = map(buf.__getitem__, map(slice, (begin + 12).tolist(), crc_at.tolist()))
    crcs = np.fromiter(map(google_crc32c.value, datas), dtype=np.uint32, count=n)
    stored = np.frombuffer(buf, dtype=np.uint8)[crc_at[:, None] + np.arange(4)].copy().view("<u4")
    bad = np.flatnonzero(_mask(crcs) != stored.reshape(n))
    if bad.size:
        i = int(bad[0])
        raise SourceError(f"{where(i, starts[i])}: data CRC mismatch, the file is corrupt")


class FrameRecords(Sequence[bytes]):
    """The records (payloads) of a binary array of TFRecord frames, as a sequence of bytes
    made on access: a batch of imported records is hashed, split and written from its
    frames, and only the records a check or a split key reads become bytes objects."""

    def __init__(self, frames: pa.Array):
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("record index out of range")
        frame = self.frames[i].as_buffer()
        return frame[12:frame.size - 4].to_pybytes()

    def __iter__(self) -> Iterator[bytes]:
        return iter(payloads_of_frames(self.frames))


def payloads_of_frames(frames: pa.Array) -> list[bytes]:
    """The payload of every frame of a binary array of TFRecord frames, as bytes."""
    offsets, data = _frame_bounds(frames)
    buf = memoryview(data)
    return [bytes(buf[a + 12:b - 4]) for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def _frame_bounds(frames: pa.Array) -> tuple[np.ndarray, pa.Buffer]:
    width = np.int64 if pa.types.is_large_binary(frames.type) else np.int32
    _, off_buf, data = frames.buffers()
    offsets = np.frombuffer(off_buf, dtype=width, count=len(frames) + 1, offset=frames.offset * np.dtype(width).itemsize)
    return offsets.astype(np.int64), data if data is not None else pa.py_buffer(b"")


def frame_buckets(frames: pa.Array, total_buckets: int) -> np.ndarray:
    """TFX's hash bucket of each record of a binary array of TFRecord frames (the SHA-256 of
    its payload): one native call over the frames, else hashlib per record."""
    if native.framing is not None:
        _, offsets, data = frames.buffers()
        width = 8 if pa.types.is_large_binary(frames.type) else 4
        digests = native.framing.frame_digests(offsets, data if data is not None else b"", width,
                                               frames.offset, len(frames))
        return buckets_of_digests(digests, total_buckets)
    sha256 = hashlib.sha256
    return buckets_of_digests(b"".join([sha256(r).digest() for r in payloads_of_frames(frames)]), total_buckets)


class FrameBatch(NamedTuple):
    """Consecutive records of a file: ``records`` (each record's data, both CRCs checked,
    a FrameRecords over ``frames``) and ``frames`` (binary array, each record's whole frame
    exactly as read; byte-identical to ``frame_column(records)``, so it can be written out
    without framing again)."""

    records: Sequence[bytes]
    frames: pa.Array


def _checked_pieces(path: str | os.PathLike) -> Iterator[tuple[bytes, Sequence[int], int]]:
    """Per decompressed chunk of ``path``: (the chunk, the offsets of its whole frames,
    the offset after the last of them), both CRCs of every frame checked. Errors: see
    read_record_batches."""
    for buf, starts, stop, where in _frame_pieces(path):
        _check_data(buf, starts, stop, where)
        yield buf, starts, stop


def count_records(path: str | os.PathLike) -> int:
    """The number of records in a TFRecord file: a walk over the frame headers (their
    length CRCs checked), the records themselves neither checked nor parsed. Errors: see
    read_record_batches."""
    return sum(len(starts) for _, starts, _, _ in _frame_pieces(path))


def _frame_pieces(path: str | os.PathLike):
    """Per decompressed chunk of ``path``: (the chunk, the offsets of its whole frames, the
    offset after the last of them, ``where(i, offset)`` naming a frame of the chunk)."""
    name = os.fspath(path)
    try:
        stream, kind = _open_stream(path)
    except OSError as exc:
        raise SourceError(f"{name}: cannot open: {exc}") from exc
    suffix = "" if kind == "plain" else f" of the {kind}-decompressed stream"
    chunk_size = _READ_CHUNK
    index = 0  # index of the record at buf[0]
    base = 0  # stream offset of buf[0]
    buf = b""  # unparsed bytes: an incomplete frame, or nothing
    frame_size = 0  # size of that incomplete frame once its header is read

    def where(i: int, offset: int) -> str:
        return f"{name}: record {index + i} (byte offset {base + offset}{suffix})"

    with stream:
        while True:
            # a frame cut by the previous chunk is completed by a small read of its rest,
            # so every chunk after it starts with a whole frame
            need = (frame_size or 12) - len(buf) if buf else chunk_size
            try:
                chunk = stream.read(need)
            except (EOFError, OSError, isal_zlib.error, igzip.BadGzipFile) as exc:
                raise SourceError(f"{where(0, len(buf))}: the {kind} stream is truncated or "
                                  f"corrupt: {exc}") from exc
            if not chunk:
                if buf:
                    raise SourceError(f"{where(0, 0)}: truncated record, the file ends after "
                                      f"{len(buf)} of its bytes")
                return
            buf = buf + chunk if buf else chunk
            starts, stop, frame_size = _frame_starts(buf, where)
            if len(starts):
                yield buf, starts, stop, where
                index += len(starts)
            if stop:
                buf = buf[stop:]
                base += stop


def _joined_frames(pieces: list[tuple[bytes, list[int], int]]) -> pa.Array:
    """The frames of ``pieces`` (chunk, frame offsets, end of the last frame) as one binary
    array: zero-copy over the chunk for a single piece, else one copy by Arrow."""
    arrays = []
    for buf, starts, stop in pieces:
        first = starts[0]
        bounds = np.append(np.asarray(starts, dtype=np.int64), stop) - first
        width = np.int32 if stop - first < 1 << 31 else np.int64
        kind = pa.binary() if width is np.int32 else pa.large_binary()
        arrays.append(pa.Array.from_buffers(kind, len(starts), [None, pa.py_buffer(bounds.astype(width)),
                                                               pa.py_buffer(memoryview(buf)[first:stop])]))
    if len(arrays) == 1:
        return arrays[0]
    if any(pa.types.is_large_binary(a.type) for a in arrays) or sum(a.nbytes for a in arrays) >= 1 << 31:
        arrays = [a.cast(pa.large_binary()) for a in arrays]
    return pa.concat_arrays(arrays)


def read_frame_batches(path: str | os.PathLike, batch_size: int = 8192) -> Iterator[FrameBatch]:
    """Like read_record_batches, with the records' frames as read (see FrameBatch)."""
    return _batches(path, batch_size, True)


def read_record_batches(path: str | os.PathLike, batch_size: int = 8192) -> Iterator[list[bytes]]:
    """Records of a TFRecord file (plain, gzip or zlib: detected from the content), in lists
    of ``batch_size`` (the last may be shorter). Both CRCs of every record are checked.
    Reads in chunks, so memory stays bounded by a chunk, a batch and the largest record.

    Raises SourceError naming the file, the 0-based record index and its byte offset (in
    the decompressed stream) on a bad CRC, a truncated record or a corrupt compressed stream.
    """
    return _batches(path, batch_size, False)


def _batches(path, batch_size: int, with_frames: bool):
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return _batches_of(path, batch_size, with_frames)


def _batches_of(path, batch_size: int, with_frames: bool):
    pending = 0  # checked records not yet in a batch
    pieces: list[tuple[bytes, Sequence[int], int]] = []  # where their frames are

    def take(n: int):
        taken, left = [], n
        while left:
            buf, starts, stop = pieces[0]
            if len(starts) <= left:
                taken.append(pieces.pop(0))
                left -= len(starts)
            else:  # the batch ends inside this piece: split it
                taken.append((buf, starts[:left], starts[left]))
                pieces[0] = (buf, starts[left:], stop)
                left = 0
        frames = _joined_frames(taken)
        if not with_frames:
            return payloads_of_frames(frames)
        return FrameBatch(FrameRecords(frames), frames)

    for buf, starts, stop in _checked_pieces(path):
        pending += len(starts)
        pieces.append((buf, starts, stop))
        while pending >= batch_size:
            pending -= batch_size
            yield take(batch_size)
    if pending:
        yield take(pending)


def iter_records(path: str | os.PathLike) -> Iterator[bytes]:
    """Each record of a TFRecord file, checked (see read_record_batches)."""
    for batch in read_record_batches(path):
        yield from batch
