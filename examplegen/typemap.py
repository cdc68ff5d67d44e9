"""Typed Arrow columns to tf.Example features: the one type mapping every source uses.

Where TFX's ``dict_to_example`` writes a value, the feature is the same (same kind, same
value, float32 narrowing as protobuf's FloatList does), so an example without nulls is
byte-identical to TFX's. 0, 0.0, False and "" are always written as values, and a null is
an empty list of the column's kind (TFX writes an empty ``Feature()``).

The table of every Arrow type's feature is in the README ("Type mapping"); the tests
(tests/test_typemap.py) check it row by row. In short: bools and integers -> int64_list
(uint64 above int64 max: an error naming column and row), floats and decimals ->
float_list, text and bytes -> bytes_list, timestamps -> int64 microseconds since the epoch
(UTC), dates -> int64 days, times and durations -> int64 microseconds, lists -> their values
(nested lists flattened), structs -> ``parent.child`` features, maps -> ``parent.key`` and
``parent.value`` lists; a null inside a list, unions and intervals are errors.

Schema override (``schema`` option, per column, struct children as ``parent.child``):
``int`` (int64), ``float``, ``string``/``bytes`` (Arrow's text form of the value, e.g. a
decimal's exact digits), and for timestamps, times and durations ``int_s``, ``int_ms``,
``int_us``, ``int_ns``. A value the override cannot convert is an error naming the column
and row.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from examplegen import encode
from examplegen.errors import ConfigError, SourceError

__all__ = ["BadValueError", "Feature", "OVERRIDES", "bad_rows", "batch_features", "check_overrides",
           "example_names"]

_INT64_MAX = 2**63 - 1
_UNIT_DIGITS = {"s": 0, "ms": 3, "us": 6, "ns": 9}
_DEFAULT_UNIT = "us"
_TIME_OVERRIDES = {f"int_{unit}": unit for unit in _UNIT_DIGITS}
OVERRIDES = ("int", "int64", "float", "float32", "string", "bytes", *_TIME_OVERRIDES)


@dataclasses.dataclass
class Feature:
    """One feature column of a batch: the values as written (int64, float32 or binary, or a
    list array of them; null = empty list), the tf.train.Feature kind, and on first use the
    serialized tf.train.Feature per row (Examples are written from the values directly, see
    ``examples``)."""

    name: str
    values: pa.Array
    kind: str

    @functools.cached_property
    def feature(self) -> pa.Array:
        return encode.feature_column(self.values, self.kind)


def examples(features: Sequence[Feature]) -> pa.Array:
    """The serialized tf.train.Example of every row of a batch's features."""
    return encode.example_column_of_values([f.name for f in features], [(f.values, f.kind) for f in features])


class BadValueError(SourceError):
    """A value of one row that the mapping rejects (the message names file, row, column);
    ``row`` is the row's index in the batch (see ``bad_rows`` for all of them)."""

    def __init__(self, message: str, row: int):
        super().__init__(message)
        self.row = row

    def __reduce__(self):  # pickled from worker processes to the launcher
        return type(self), (str(self), self.row)


class _BadValue(Exception):
    """A value that cannot be mapped; ``index`` is its position in the array converted."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


class _Unsupported(Exception):
    """A column type with no mapping."""


def check_overrides(schema: Optional[Sequence[tuple[str, str]]], source: str) -> None:
    """A ConfigError for an override type that is not one of OVERRIDES."""
    for column, type_name in schema or ():
        if type_name.lower() not in OVERRIDES:
            raise ConfigError(f"{source} schema: column {column!r} has type {type_name!r}; "
                              f"use one of {', '.join(OVERRIDES)}")


# --------------------------------------------------------------------------- columns
def _expand(name: str, arr: pa.Array) -> Iterator[tuple[str, pa.Array]]:
    """(feature name, array) pairs of a column: structs flattened into ``parent.child``,
    maps into ``parent.key``/``parent.value``, nested lists into one list per row."""
    typ = arr.type
    if pa.types.is_dictionary(typ) and pa.types.is_nested(typ.value_type):
        yield from _expand(name, arr.dictionary_decode())
    elif isinstance(typ, pa.BaseExtensionType):
        yield from _expand(name, arr.storage)
    elif pa.types.is_struct(typ):
        for field, child in zip(typ, arr.flatten()):
            yield from _expand(f"{name}.{field.name}", child)
    elif pa.types.is_map(typ):
        entries = pa.StructArray.from_arrays([arr.keys, arr.items], names=["key", "value"])
        yield from _expand(name, pa.ListArray.from_arrays(arr.offsets, entries, mask=arr.is_null()))
    elif _is_list(typ):
        leaf_type = typ.value_type
        if pa.types.is_dictionary(leaf_type):
            leaf_type = leaf_type.value_type
        if isinstance(leaf_type, pa.BaseExtensionType):
            leaf_type = leaf_type.storage_type
        if not pa.types.is_nested(leaf_type):
            yield name, arr
            return
        # A list of lists, structs or maps: regroup the innermost elements by row.
        leaf, counts = _leaf_and_counts(arr)
        for child_name, child in _expand(name, leaf):
            yield from _expand(child_name, _list_array(counts, child))
    else:
        yield name, arr


def _is_list(typ: pa.DataType) -> bool:
    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def _leaf_and_counts(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The innermost non-list values of a (nested) list array, and how many each row has."""
    parent = np.arange(len(arr), dtype=np.int64)
    current = arr
    while _is_list(current.type):
        parent = parent[pc.list_parent_indices(current).to_numpy(zero_copy_only=False)]
        current = pc.list_flatten(current)
    return current, np.bincount(parent, minlength=len(arr)).astype(np.int64)


# --------------------------------------------------------------------------- values
def _floor_div(raw: pa.Array, divisor: int) -> pa.Array:
    valid = raw.is_valid().to_numpy(zero_copy_only=False)
    floored = np.floor_divide(raw.fill_null(0).to_numpy(zero_copy_only=False), divisor)
    return pa.array(floored, pa.int64(), mask=None if valid.all() else ~valid)


def _time_ints(arr: pa.Array, unit: str) -> pa.Array:
    """Timestamp, time or duration values as int64 counts of ``unit`` (floored)."""
    raw = arr.cast(pa.int32() if pa.types.is_time32(arr.type) else pa.int64()).cast(pa.int64())
    shift = _UNIT_DIGITS[unit] - _UNIT_DIGITS[arr.type.unit]
    if shift == 0:
        return raw
    if shift < 0:
        return _floor_div(raw, 10**-shift)
    try:
        return pc.multiply_checked(raw, 10**shift)
    except pa.ArrowInvalid:
        limit = _INT64_MAX // 10**shift
        bad = int(np.flatnonzero(np.abs(raw.fill_null(0).to_numpy(zero_copy_only=False)) > limit)[0])
        raise _BadValue(bad, f"value {arr[bad]} does not fit in int64 {unit}") from None


def _first_failing(arr: pa.Array, convert: Callable[[pa.Array], pa.Array]) -> int:
    for i in range(len(arr)):
        try:
            convert(arr.slice(i, 1))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return i
    return 0


def _cast(arr: pa.Array, target: pa.DataType, what: str) -> pa.Array:
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if isinstance(exc, pa.ArrowNotImplementedError):
            raise _Unsupported(f"type {arr.type} cannot be read as {what}") from None
        bad = _first_failing(arr, lambda a: a.cast(target))
        raise _BadValue(bad, f"value {arr[bad].as_py()!r} is not {what}") from None


def _scalar(arr: pa.Array, override: Optional[str]) -> tuple[pa.Array, str]:
    """(values, kind) of a column of non-nested values."""
    typ = arr.type
    if isinstance(typ, pa.BaseExtensionType):
        return _scalar(arr.storage, override)
    if pa.types.is_dictionary(typ):
        return _scalar(arr.dictionary_decode(), override)
    temporal = (pa.types.is_timestamp(typ) or pa.types.is_time(typ) or pa.types.is_duration(typ))
    if override:
        override = override.lower()
        if override in _TIME_OVERRIDES:
            if not temporal:
                raise _Unsupported(f"schema type {override!r} applies to timestamps, times and durations, "
                                   f"not to {typ}")
            return _time_ints(arr, _TIME_OVERRIDES[override]), "int64"
        if override in ("string", "bytes"):
            if pa.types.is_binary(typ) or pa.types.is_large_binary(typ) or pa.types.is_string(typ) \
                    or pa.types.is_large_string(typ) or pa.types.is_fixed_size_binary(typ):
                return _scalar(arr, None)
            return _cast(arr, pa.string(), "text"), "bytes"
        if override in ("int", "int64"):
            if temporal or pa.types.is_date(typ):
                return _scalar(arr, None)
            return _cast(arr, pa.int64(), "an integer"), "int64"
        if override in ("float", "float32"):
            return _cast(arr, pa.float64(), "a float"), "float"
        raise _Unsupported(f"unknown schema type {override!r}")
    if pa.types.is_null(typ):
        return arr, "none"
    if pa.types.is_boolean(typ):
        return arr.cast(pa.int64()), "int64"
    if pa.types.is_integer(typ):
        if typ == pa.uint64() and len(arr) and (pc.max(arr).as_py() or 0) > _INT64_MAX:
            bad = int(np.flatnonzero(pc.fill_null(pc.greater(arr, pa.scalar(_INT64_MAX, pa.uint64())), False)
                                     .to_numpy(zero_copy_only=False))[0])
            raise _BadValue(bad, f"uint64 value {arr[bad].as_py()} does not fit in int64 "
                                 "(use the schema override 'string' or 'float' for this column)")
        return arr.cast(pa.int64()), "int64"
    if pa.types.is_floating(typ):
        return arr, "float"
    if pa.types.is_decimal(typ):
        return arr.cast(pa.float64()), "float"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ) \
            or pa.types.is_large_binary(typ) or typ in (pa.string_view(), pa.binary_view()):
        return arr, "bytes"
    if pa.types.is_fixed_size_binary(typ):
        return arr.cast(pa.binary()), "bytes"
    if temporal:
        return _time_ints(arr, _DEFAULT_UNIT), "int64"
    if pa.types.is_date32(typ):
        return arr.cast(pa.int32()).cast(pa.int64()), "int64"
    if pa.types.is_date64(typ):
        return _floor_div(arr.cast(pa.int64()), 86_400_000), "int64"
    raise _Unsupported(f"type {typ} has no tf.Example mapping (see the type table in the README)")


def _values(arr: pa.Array, override: Optional[str]) -> tuple[pa.Array, str]:
    """(values, kind) of a column; a list column keeps its shape, with its values mapped."""
    if not _is_list(arr.type):
        return _scalar(arr, override)
    flat = pc.list_flatten(arr)
    rows = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
    if flat.null_count:
        bad = int(rows[np.flatnonzero(~flat.is_valid().to_numpy(zero_copy_only=False))[0]])
        raise _BadValue(bad, "a list holds a null value; tf.train.Feature lists cannot hold nulls "
                             "(drop or fill the nulls before ingesting)")
    try:
        values, kind = _scalar(flat, override)
    except _BadValue as exc:
        raise _BadValue(int(rows[exc.index]), str(exc)) from None
    counts = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    return _list_array(counts, values), kind


def _list_array(counts: np.ndarray, values: pa.Array) -> pa.Array:
    """A list array of ``values`` with ``counts[i]`` values in row i."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if offsets[-1] < 2**31:
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values)
    return pa.LargeListArray.from_arrays(pa.array(offsets), values)


def example_names(schema: pa.Schema) -> list[str]:
    """The feature names a batch of ``schema`` gives (structs and maps flattened)."""
    empty = pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)
    return [name for field, column in zip(schema, empty.columns) for name, _ in _expand(field.name, column)]


def batch_features(batch: pa.RecordBatch, where: Callable[[int], str], origin: str,
                   overrides: Optional[dict[str, str]] = None) -> list[Feature]:
    """The features of every row of ``batch``: one Feature per (flattened) column.

    ``where(i)`` names the file and line/row of the batch's row i and ``origin`` the file
    (for errors about a whole column); ``overrides`` maps a feature name to a schema type.
    """
    overrides = overrides or {}
    out: list[Feature] = []
    seen: set[str] = set()
    for field, column in zip(batch.schema, batch.columns):
        for name, arr in _expand(field.name, column):
            if name in seen:
                raise SourceError(f"{origin}: two columns give the feature name {name!r} "
                                  "(a struct child flattened to parent.child clashes with a column)")
            seen.add(name)
            try:
                values, kind = _values(arr, overrides.get(name))
            except _BadValue as exc:
                raise BadValueError(f"{where(exc.index)}: column {name!r}: {exc}", exc.index) from None
            except _Unsupported as exc:
                raise SourceError(f"{origin}: column {name!r}: {exc}") from None
            out.append(Feature(name, values, kind))
    return out


def bad_rows(batch: pa.RecordBatch, overrides: Optional[dict[str, str]] = None) -> list[tuple[int, str]]:
    """(row, reason) of every row of ``batch`` with a value the mapping rejects, in row
    order (the reason names the column: that row's first bad column).

    Only for the failure path (after ``batch_features`` raised BadValueError): each column
    that fails is searched by converting slices of it, a failing slice's first bad row
    taken out and the rest halved, so k bad rows cost about k * log(rows) conversions.
    """
    overrides = overrides or {}
    found: dict[int, str] = {}
    for field, column in zip(batch.schema, batch.columns):
        for name, arr in _expand(field.name, column):
            override = overrides.get(name)
            stack = [(0, len(arr))]
            while stack:
                start, end = stack.pop()
                if end <= start:
                    continue
                try:
                    _values(arr.slice(start, end - start), override)
                    continue
                except _BadValue as exc:
                    row, reason = start + exc.index, str(exc)
                except _Unsupported:  # a whole-column problem: batch_features names it
                    break
                try:
                    _values(arr.slice(row, 1), override)
                    alone = False
                except _BadValue as exc:
                    alone, reason = True, str(exc)
                if alone:
                    found.setdefault(row, f"column {name!r}: {reason}")
                    middle = (row + 1 + end) // 2
                    stack += [(middle, end), (row + 1, middle)]
                elif end - start > 1:  # the row converts alone: search both halves
                    middle = (start + end) // 2
                    stack += [(middle, end), (start, middle)]
    return sorted(found.items())
