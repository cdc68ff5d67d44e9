"""Column-wise serialization of tf.train.Example, without the protobuf library.

The bytes are identical to ``example.SerializeToString(deterministic=True)`` of the
equivalent proto under the protobuf runtime this project pins (4.25, upb backend).

Wire format (field number, wire type):
  Example{features=1: Features}; Features{feature=1: repeated map entry};
  map entry{key=1: string, value=2: Feature} (both always written, even an empty Feature);
  Feature oneof{bytes_list=1, float_list=2, int64_list=3};
  BytesList{value=1: repeated bytes}; FloatList{value=1: packed float};
  Int64List{value=1: packed int64, negatives as 10-byte varints}.

Where examplegen._framing is built (examplegen.native), feature_column, example_column and
example_column_of_values (the Examples straight from typed columns, what the engine uses)
are its C loops: two passes per batch, sizes then bytes, into buffers from Arrow's pool.
The rest of this module is the path without it, and the reference the native loops are
tested against.

Every step of that path works on whole columns with numpy and pyarrow.compute: no Python
loop per row.
Building blocks: varint bytes are laid out in a (rows x width) byte matrix and compacted
with a mask; variable parts are concatenated per row with
``pyarrow.compute.binary_join_element_wise``; a row's list values, being contiguous in the
flattened value bytes, are regrouped by offsets without copying. The join costs about the
same per piece whatever its size, so example_column first lays the pieces that have one
width in every row of the batch (most entry headers, features that are never null) side by
side in one matrix: taxi rows join 15 pieces instead of 37.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from examplegen import native

__all__ = ["KINDS", "MISSING", "feature_column", "example_column", "example_column_of_values",
           "sorted_feature_names"]

KINDS = ("int64", "float", "bytes", "none")

_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 0x0A, 0x12, 0x1A  # Feature oneof tags
_LIST_VALUE = 0x0A  # field 1 of BytesList/FloatList/Int64List (length-delimited)
_INT32_MAX = 2**31 - 1
_KIND_TYPES = {"int64": pa.int64(), "float": pa.float32(), "bytes": pa.binary()}


# --------------------------------------------------------------------------- varints
def _varint_lengths(u: np.ndarray) -> np.ndarray:
    """Bytes needed by each uint64 in ``u`` as a protobuf varint (int64 array)."""
    lengths = np.ones(len(u), dtype=np.int64)
    if len(u) == 0:
        return lengths
    top = int(u.max())
    k = 1
    while k < 10 and top >= (1 << (7 * k)):
        lengths += u >= np.uint64(1 << (7 * k))
        k += 1
    return lengths


def _varint_matrix(u: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(len(u) x max length) uint8 matrix; row i starts with the varint of u[i]."""
    width = int(lengths.max()) if len(u) else 1
    out = np.empty((len(u), width), dtype=np.uint8)
    for k in range(width):
        byte = (u >> np.uint64(7 * k)) & np.uint64(0x7F)
        if k + 1 < width:
            byte |= (lengths > k + 1).astype(np.uint64) << np.uint64(7)
        out[:, k] = byte
    return out


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _binary_array(offsets: np.ndarray, data: np.ndarray | pa.Buffer) -> pa.Array:
    """A binary (or large_binary past 2 GiB) array over ``data`` split at ``offsets``."""
    n = len(offsets) - 1
    if offsets[-1] <= _INT32_MAX:
        typ, offsets = pa.binary(), offsets.astype(np.int32, copy=False)
    else:
        typ, offsets = pa.large_binary(), offsets.astype(np.int64, copy=False)
    if not isinstance(data, pa.Buffer):
        data = pa.py_buffer(np.ascontiguousarray(data))
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), data])


def _pack(fields: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> pa.Array:
    """Row i = for each (matrix, lengths) field, the first lengths[i] bytes of matrix row i.

    ``lengths`` None means the whole row. One concatenation, one mask compaction.
    """
    matrix = np.hstack([m for m, _ in fields]) if len(fields) > 1 else fields[0][0]
    n = matrix.shape[0]
    if all(lengths is None for _, lengths in fields):
        return _binary_array(np.arange(n + 1, dtype=np.int64) * matrix.shape[1], matrix.reshape(-1))
    mask = np.hstack([
        np.ones(m.shape, dtype=bool) if lengths is None else np.arange(m.shape[1]) < lengths[:, None]
        for m, lengths in fields
    ])
    row_lengths = sum(m.shape[1] if lengths is None else lengths for m, lengths in fields)
    return _binary_array(_offsets(row_lengths), matrix[mask])


def _constant(byte: int, n: int) -> tuple[np.ndarray, None]:
    return np.full((n, 1), byte, dtype=np.uint8), None


def _varint(u: np.ndarray, present: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Varint field of uint64 ``u``; rows where ``present`` is False get no bytes."""
    lengths = _varint_lengths(u)
    matrix = _varint_matrix(u, lengths)
    if present is not None:
        lengths = np.where(present, lengths, 0)
    return matrix, lengths


def _join(*arrays: pa.Array) -> pa.Array:
    """Per-row concatenation of binary arrays (Arrow's binary_join_element_wise; nulls give
    null rows)."""
    if any(pa.types.is_large_binary(a.type) for a in arrays):
        arrays = tuple(a.cast(pa.large_binary()) for a in arrays)
        return pc.binary_join_element_wise(*arrays, pa.scalar(b"", pa.large_binary()))
    return pc.binary_join_element_wise(*arrays, b"")


def _binary_offsets(arr: pa.Array) -> tuple[np.ndarray, pa.Buffer]:
    """Offsets (int64, starting at the array's own offset) and data buffer of a binary array."""
    width = np.int64 if pa.types.is_large_binary(arr.type) else np.int32
    _, off_buf, data = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=width, count=len(arr) + 1,
                            offset=arr.offset * np.dtype(width).itemsize)
    if data is None:
        data = pa.py_buffer(b"")
    return offsets.astype(np.int64), data


def _lengths(arr: pa.Array) -> np.ndarray:
    offsets, _ = _binary_offsets(arr)
    return np.diff(offsets)


# --------------------------------------------------------------------------- inputs
def _flatten(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray | None]:
    """(values, per-row value offsets) of a list array: a null list is a row with no values.

    A scalar array comes back as it is, with offsets None (one value per row, or none
    where the value is null).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        raise TypeError(f"expected a pyarrow Array, got {type(values).__name__}")
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    typ = values.type
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        counts = pc.list_value_length(values).fill_null(0).to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(values)
        if pa.types.is_dictionary(flat.type):
            flat = flat.dictionary_decode()
        if flat.null_count:
            raise ValueError("a list contains a null value; tf.train.Feature lists cannot hold nulls")
        if pa.types.is_nested(flat.type):
            raise ValueError(f"nested lists are not supported: {typ}")
        return flat, _offsets(counts.astype(np.int64))
    return values, None


def _to_int64(flat: pa.Array) -> np.ndarray:
    typ = flat.type
    if not (pa.types.is_integer(typ) or pa.types.is_boolean(typ)):
        raise ValueError(f"int64 feature needs integer values, got {typ}")
    try:
        flat = flat.cast(pa.int64())
    except pa.ArrowInvalid as exc:
        raise ValueError(f"value out of int64 range: {exc}") from None
    if flat.null_count:
        flat = flat.fill_null(0)
    return flat.to_numpy(zero_copy_only=False)


def _to_float32(flat: pa.Array) -> np.ndarray:
    typ = flat.type
    if not (pa.types.is_floating(typ) or pa.types.is_integer(typ)):
        raise ValueError(f"float feature needs numeric values, got {typ}")
    if pa.types.is_integer(typ) or pa.types.is_float16(typ):  # as Python's float(int) would
        flat = flat.cast(pa.float64(), safe=False)
    if flat.null_count:
        flat = flat.fill_null(0)
    if typ == pa.float32():
        return flat.to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore"):  # out of float32 range becomes +-inf, as static_cast does
        return flat.to_numpy(zero_copy_only=False).astype(np.float32)


def _to_binary(flat: pa.Array) -> pa.Array:
    typ = flat.type
    if pa.types.is_string(typ) or pa.types.is_binary(typ):
        return flat.cast(pa.binary()) if pa.types.is_string(typ) else flat
    if pa.types.is_large_string(typ) or pa.types.is_large_binary(typ):
        return flat.cast(pa.large_binary())
    if typ in (pa.string_view(), pa.binary_view()):
        return flat.cast(pa.binary())
    raise ValueError(f"bytes feature needs string or binary values, got {typ}")


# --------------------------------------------------------------------------- features
def _list_header(tag: int, payload: np.ndarray) -> list:
    """Fields ``tag, varint(L), 0a, varint(payload)``, or ``tag, 00`` where payload is 0.

    An empty packed FloatList/Int64List writes no value field at all.
    """
    n = len(payload)
    present = payload > 0
    inner = _varint(payload.astype(np.uint64), present)
    size = np.where(present, 1 + inner[1] + payload, 0).astype(np.uint64)
    return [_constant(tag, n), _varint(size),
            (np.full((n, 1), _LIST_VALUE, dtype=np.uint8), present.astype(np.int64)), inner]


def _valid_mask(values: pa.Array) -> np.ndarray | None:
    if not values.null_count:
        return None
    return values.is_valid().to_numpy(zero_copy_only=False)


def _scalar_packed(tag: int, body: np.ndarray, body_len: np.ndarray | None,
                   valid: np.ndarray | None, null_len: int) -> pa.Array:
    """Feature per row with one packed value of at most 10 bytes (``body`` row i, first
    body_len[i] bytes): ``tag, len+2, 0a, len, value``. Where not valid: ``tag, 00``
    (null_len 2, an empty list) or nothing (null_len 0, an empty Feature)."""
    n, width = body.shape
    matrix = np.empty((n, 4 + width), dtype=np.uint8)
    matrix[:, 0] = tag
    matrix[:, 2] = _LIST_VALUE
    matrix[:, 4:] = body
    if body_len is None:
        matrix[:, 1] = width + 2
        matrix[:, 3] = width
        row_len = np.full(n, 4 + width, dtype=np.int64)
    else:
        matrix[:, 1] = body_len + 2
        matrix[:, 3] = body_len
        row_len = body_len + 4
    if valid is not None:
        matrix[:, 1] *= valid
        row_len = np.where(valid, row_len, null_len)
    if n and int(row_len.min()) == 4 + width:
        return _binary_array(np.arange(n + 1, dtype=np.int64) * (4 + width), matrix.reshape(-1))
    if body_len is None and width % 2 == 0:  # floats: rows of 8 or 2 bytes, 2 at a time
        pairs = matrix.view(np.uint16)
        data = pairs[np.arange(pairs.shape[1]) < (row_len // 2)[:, None]].view(np.uint8)
    else:
        data = _leading_bytes(matrix, row_len)
    return _binary_array(_offsets(row_len), data)


def _leading_bytes(matrix: np.ndarray, row_len: np.ndarray) -> np.ndarray:
    """The first row_len[i] bytes of each row of a uint8 matrix, back to back."""
    return matrix[np.arange(matrix.shape[1]) < row_len[:, None]]


def _list_packed(tag: int, body: np.ndarray, body_len: np.ndarray | None,
                 row_offsets: np.ndarray) -> pa.Array:
    """Feature per row holding that row's values (rows of ``body``) as a packed list."""
    if body_len is None:
        data = body.reshape(-1)
        value_offsets = np.arange(body.shape[0] + 1, dtype=np.int64) * body.shape[1]
    else:
        data = _leading_bytes(body, body_len)
        value_offsets = _offsets(body_len)
    row_data_offsets = value_offsets[row_offsets]
    header = _pack(_list_header(tag, np.diff(row_data_offsets)))
    return _join(header, _binary_array(row_data_offsets, data))


def _int64_feature(values: pa.Array, row_offsets: np.ndarray | None, null_len: int) -> pa.Array:
    valid = _valid_mask(values) if row_offsets is None else None
    u = _to_int64(values).view(np.uint64)
    lengths = _varint_lengths(u)
    body = _varint_matrix(u, lengths)
    if row_offsets is None:
        return _scalar_packed(_INT64_LIST, body, lengths, valid, null_len)
    return _list_packed(_INT64_LIST, body, lengths, row_offsets)


def _float_feature(values: pa.Array, row_offsets: np.ndarray | None, null_len: int) -> pa.Array:
    valid = _valid_mask(values) if row_offsets is None else None
    f = _to_float32(values)
    body = np.ascontiguousarray(f, dtype="<f4").view(np.uint8).reshape(len(f), 4)
    if row_offsets is None:
        return _scalar_packed(_FLOAT_LIST, body, None, valid, null_len)
    return _list_packed(_FLOAT_LIST, body, None, row_offsets)


def _bytes_feature(values: pa.Array, row_offsets: np.ndarray | None, null_len: int) -> pa.Array:
    values = _to_binary(values)
    n = len(values)
    if row_offsets is None:  # 0a varint(P) 0a varint(len) bytes; a null: 0a 00, or nothing
        valid = _valid_mask(values)
        if valid is not None:
            values = values.fill_null(b"")
        value_len = _lengths(values)
        prefix = _varint(value_len.astype(np.uint64), valid)
        payload = 1 + prefix[1] + value_len
        if valid is not None:
            payload = np.where(valid, payload, 0)
        list_value = (np.full((n, 1), _LIST_VALUE, dtype=np.uint8),
                      None if valid is None else valid.astype(np.int64))
        tag = _constant(_BYTES_LIST, n)
        size = _varint(payload.astype(np.uint64))
        if valid is not None and null_len == 0:
            tag = (tag[0], valid.astype(np.int64))
            size = (size[0], np.where(valid, size[1], 0))
        header = _pack([tag, size, list_value, prefix])
        return _join(header, values)
    # every value is its own field: 0a varint(len) bytes; a row's values are contiguous
    prefixes = _pack([_constant(_LIST_VALUE, n), _varint(_lengths(values).astype(np.uint64))])
    element_offsets, element_data = _binary_offsets(_join(prefixes, values))
    element_offsets = element_offsets[row_offsets]
    rows = len(element_offsets) - 1
    header = _pack([_constant(_BYTES_LIST, rows), _varint(np.diff(element_offsets).astype(np.uint64))])
    return _join(header, _binary_array(element_offsets, element_data))


MISSING = ("empty_list", "empty_feature")


def feature_column(values: pa.Array | pa.ChunkedArray, kind: str,
                   missing: str = "empty_list") -> pa.Array:
    """Serialized tf.train.Feature per row of ``values``.

    kind: "int64" (integer or boolean values), "float" (stored as float32: float64 is
    rounded to nearest like C++ static_cast, out-of-range values become +-inf; integers go
    through float64 as Python's float() does), "bytes" (string or binary) or "none" (every
    row is an empty Feature()). ``values`` may be a list, large_list or fixed_size_list
    array for multi-valued features; a null inside a list is a ValueError.

    missing: what a null value or null list becomes: "empty_list" (an empty list of
    ``kind``, e.g. ``int64_list {}``) or "empty_feature" (``Feature()``, no kind set, which
    is what TFX's ExampleGen writes for a missing value). An empty, non-null list is always
    an empty list of ``kind``.
    """
    values, kind, flat, row_offsets, null_len = _normalize(values, kind, missing)
    if kind == "none":
        return _binary_array(np.zeros(len(values) + 1, dtype=np.int64), np.zeros(0, dtype=np.uint8))
    if native.framing is not None:
        offsets, data, width = native.framing.feature_rows(
            _native_column(values, kind, flat, row_offsets, null_len), len(values), pa.allocate_buffer)
        return _rows_array(offsets, data, width, len(values))
    if kind == "int64":
        features = _int64_feature(flat, row_offsets, null_len)
    elif kind == "float":
        features = _float_feature(flat, row_offsets, null_len)
    else:
        features = _bytes_feature(flat, row_offsets, null_len)
    if missing == "empty_feature" and row_offsets is not None and values.null_count:
        features = pc.if_else(values.is_valid(), features, pa.scalar(b"", features.type))
    return features


def _normalize(values: pa.Array | pa.ChunkedArray, kind: str, missing: str):
    """(values, kind, flat values, row offsets or None, null_len) of a column for
    feature_column; kind "none" where every row is an empty Feature."""
    if kind not in KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; expected one of {KINDS}")
    if missing not in MISSING:
        raise ValueError(f"unknown missing-value encoding {missing!r}; expected one of {MISSING}")
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        raise TypeError(f"expected a pyarrow Array, got {type(values).__name__}")
    null_len = 2 if missing == "empty_list" else 0  # bytes of a null scalar's Feature
    if kind == "none" or (pa.types.is_null(values.type) and missing == "empty_feature"):
        return values, "none", None, None, null_len
    if pa.types.is_null(values.type):  # an all-null column: every row an empty list
        values = pa.nulls(len(values), _KIND_TYPES[kind])
    flat, row_offsets = _flatten(values)
    if pa.types.is_null(flat.type):  # lists that are all empty
        flat = pa.array([], _KIND_TYPES[kind])
    return values, kind, flat, row_offsets, null_len


_TAGS = {"int64": _INT64_LIST, "float": _FLOAT_LIST, "bytes": _BYTES_LIST}
_RAW = 1  # a native column of serialized Features


def _native_column(values: pa.Array, kind: str, flat: pa.Array | None, row_offsets: np.ndarray | None,
                   null_len: int) -> tuple:
    """The column tuple of examplegen._framing's encoders (see Column in _framing.c) from
    what _normalize returns."""
    if kind == "none":
        return (0, None, None, None, None, null_len)
    value_offsets = None
    if kind == "int64":
        data = np.ascontiguousarray(_to_int64(flat), dtype=np.int64)
    elif kind == "float":
        data = np.ascontiguousarray(_to_float32(flat), dtype="<f4")
    else:
        value_offsets, data = _binary_offsets(_to_binary(flat))
    if row_offsets is None:
        valid = _valid_mask(flat)
    else:  # a null list has no values; it is an empty Feature where missing is "empty_feature"
        valid = _valid_mask(values) if null_len == 0 else None
        row_offsets = np.ascontiguousarray(row_offsets, dtype=np.int64)
    return (_TAGS[kind], data, value_offsets, row_offsets, None if valid is None else valid.view(np.uint8), null_len)


def _rows_array(offsets: pa.Buffer, data: pa.Buffer, width: int, n: int) -> pa.Array:
    return pa.Array.from_buffers(pa.binary() if width == 4 else pa.large_binary(), n, [None, offsets, data])


# --------------------------------------------------------------------------- examples
def sorted_feature_names(names: Sequence[str]) -> list[str]:
    """Names in the order upb's deterministic serialization writes map keys.

    Keys compare by UTF-8 bytes, except that a key sorts *after* the longer keys it is a
    prefix of ("ab" before "a"), a quirk of upb's map sorter that the bytes must follow.
    """
    return sorted(names, key=lambda name: (*name.encode("utf-8"), 256))


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _entry_header(key: bytes, feature_len: int) -> bytes:
    """Map entry bytes up to the Feature: 0a len 0a keylen key 12 featurelen."""
    inner = b"\x0a" + _varint_bytes(len(key)) + key + b"\x12" + _varint_bytes(feature_len)
    return b"\x0a" + _varint_bytes(len(inner) + feature_len) + inner


def example_column(names: Sequence[str], features: Sequence[pa.Array]) -> pa.Array:
    """Serialized tf.train.Example per row, one feature per name (any order of names).

    ``features`` are binary arrays of serialized tf.train.Feature (see feature_column).
    Raises ValueError on no features, duplicate names or arrays of different lengths.
    """
    names = list(names)
    features = [f.combine_chunks() if isinstance(f, pa.ChunkedArray) else f for f in features]
    _check_names(names, len(features), "feature arrays")
    n = len(features[0])
    for name, arr in zip(names, features):
        if len(arr) != n:
            raise ValueError(f"feature {name!r} has {len(arr)} rows, expected {n}")
        if not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
            raise ValueError(f"feature {name!r} must be a binary array, got {arr.type}")
        if arr.null_count:
            raise ValueError(f"feature {name!r} has null rows; use feature_column to encode them")
    ordered = [features[names.index(name)] for name in sorted_feature_names(names)]
    keys = [name.encode("utf-8") for name in sorted_feature_names(names)]
    if native.framing is not None:
        return _examples_native(keys, ordered)
    return _examples_by_join(keys, ordered)


def _check_names(names: list[str], count: int, what: str) -> None:
    """One name per column, at least one, no name twice (ValueError otherwise)."""
    if len(names) != count:
        raise ValueError(f"{len(names)} names but {count} {what}")
    if not names:
        raise ValueError("an example needs at least one feature")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate feature name {name!r}")
        seen.add(name)


def _examples_native(keys: list[bytes], features: list[pa.Array]) -> pa.Array:
    """example_column's rows by examplegen._framing.examples_of_columns, each feature a
    column of Feature bytes written as they are."""
    n = len(features[0])
    columns = [(_RAW, data, offsets, None, None, 2) for offsets, data in map(_binary_offsets, features)]
    return _rows_array(*native.framing.examples_of_columns(keys, columns, n, pa.allocate_buffer), n)


def example_column_of_values(names: Sequence[str], columns: Sequence[tuple[pa.Array, str]],
                             missing: str = "empty_list") -> pa.Array:
    """Serialized tf.train.Example per row from (values, kind) columns: the same bytes as
    ``example_column(names, [feature_column(values, kind, missing) ...])``, written in one
    native pass without the Feature rows in between where examplegen._framing is built."""
    names = list(names)
    if native.framing is None:
        return example_column(names, [feature_column(values, kind, missing) for values, kind in columns])
    _check_names(names, len(columns), "columns")
    normalized = {name: _normalize(values, kind, missing) for name, (values, kind) in zip(names, columns)}
    n = len(next(iter(normalized.values()))[0])
    for name, (values, *_rest) in normalized.items():
        if len(values) != n:
            raise ValueError(f"feature {name!r} has {len(values)} rows, expected {n}")
    order = sorted_feature_names(names)
    specs = [_native_column(*normalized[name]) for name in order]
    return _rows_array(*native.framing.examples_of_columns([name.encode("utf-8") for name in order], specs,
                                                            n, pa.allocate_buffer), n)


def _header_table(key: bytes, feature_len: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """Entry headers of the distinct feature lengths and the index of each row's one."""
    if len(feature_len) and int(feature_len.max()) < 1 << 22:
        present = np.bincount(feature_len)
        distinct = np.flatnonzero(present)
        rank = np.zeros(len(present), dtype=np.intp)
        rank[distinct] = np.arange(len(distinct))
        index = rank[feature_len]
    else:
        distinct, index = np.unique(feature_len, return_inverse=True)
    return [_entry_header(key, int(length)) for length in distinct], index


class _Block:
    """A piece of every row that has the same width in all rows: ``template`` bytes, with
    the rows of ``rows`` (a void array) or the byte columns of ``patches`` written over them."""

    __slots__ = ("template", "rows", "patches")

    def __init__(self, template: bytes, rows: np.ndarray | None = None,
                 patches: Sequence[tuple[int, np.ndarray]] = ()):
        self.template, self.rows, self.patches = template, rows, patches


def _examples_by_join(keys: list[bytes], features: list[pa.Array]) -> pa.Array:
    """Joins [head, header 1, feature 1, header 2, ...] per row. A piece whose rows all have
    one width (most entry headers and many features) is a _Block; runs of neighbouring
    blocks are laid out as one matrix, so the join gets far fewer pieces."""
    n = len(features[0])
    items: list[_Block | pa.Array] = []
    total = np.zeros(n, dtype=np.int64)
    for key, feature in zip(keys, features):
        feature_len = _lengths(feature)
        table, index = _header_table(key, feature_len)
        sizes = np.array([len(header) for header in table], dtype=np.int64)
        total += sizes[index] + feature_len
        items.append(_table_block(table, index) if n and sizes.min() == sizes.max()
                     else pa.array(table, pa.binary()).take(pa.array(index)))
        items.append(_fixed_rows(feature, feature_len))
    u = total.astype(np.uint64)
    lengths = _varint_lengths(u)
    if n and lengths.min() == lengths.max():
        varint = _varint_matrix(u, lengths)
        head = _Block(bytes([0x0A]) + bytes(varint.shape[1]),
                      patches=[(1 + k, varint[:, k]) for k in range(varint.shape[1])])
    else:
        head = _pack([_constant(0x0A, n), _varint(u)])
    return _join(*_merge_blocks([head] + items, n))


def _table_block(table: list[bytes], index: np.ndarray) -> _Block:
    """Row i is table[index[i]] (rows of equal length): only the varying bytes are written."""
    if len(table) == 1:
        return _Block(table[0])
    matrix = np.frombuffer(b"".join(table), dtype=np.uint8).reshape(len(table), -1)
    varying = np.flatnonzero((matrix != matrix[0]).any(axis=0))
    return _Block(table[0], patches=[(int(j), matrix[:, j][index]) for j in varying])


def _fixed_rows(feature: pa.Array, feature_len: np.ndarray) -> _Block | pa.Array:
    """The rows of a binary array as a block (zero-copy) when they all have one length;
    otherwise the array itself."""
    if not len(feature) or feature_len.min() != feature_len.max():
        return feature
    width = int(feature_len[0])
    if width == 0:
        return _Block(b"")
    offsets, data = _binary_offsets(feature)
    rows = np.frombuffer(data, dtype=f"V{width}", count=len(feature), offset=int(offsets[0]))
    return _Block(bytes(width), rows=rows)


def _merge_blocks(items: list[_Block | pa.Array], n: int) -> list[pa.Array]:
    """Binary arrays for the join: each run of neighbouring blocks becomes one matrix."""
    pieces: list[pa.Array] = []
    run: list[_Block] = []

    def flush() -> None:
        template = b"".join(block.template for block in run)
        if template:
            matrix = np.empty((n, len(template)), dtype=np.uint8)
            matrix[:] = np.frombuffer(template, dtype=np.uint8)
            column = 0
            for block in run:
                width = len(block.template)
                if block.rows is not None:
                    matrix[:, column:column + width].view(block.rows.dtype)[:, 0] = block.rows
                for j, values in block.patches:
                    matrix[:, column + j] = values
                column += width
            step = np.arange(n + 1, dtype=np.int64) * len(template)
            pieces.append(_binary_array(step, matrix.reshape(-1)))
        run.clear()

    for item in items:
        if isinstance(item, _Block):
            run.append(item)
        else:
            flush()
            pieces.append(item)
    flush()
    return pieces or [_binary_array(np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.uint8))]
