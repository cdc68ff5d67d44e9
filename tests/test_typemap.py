"""The Arrow type -> tf.Example feature table (README, examplegen.typemap), type by type.

Each case builds a one-column batch, converts it, and parses every row's feature with
TensorFlow's own tf.train.Feature.
"""

from __future__ import annotations

import datetime
import decimal
import uuid

import numpy as np
import pyarrow as pa
import pytest

from examplegen import typemap
from examplegen.errors import SourceError

UTC = datetime.timezone.utc


def _features(column: pa.Array, override: str | None = None, name: str = "c") -> dict[str, list]:
    """feature name -> per row ('kind', [values]) as TensorFlow parses them."""
    import tensorflow as tf

    batch = pa.RecordBatch.from_arrays([column], names=[name])
    out = {}
    for feature in typemap.batch_features(batch, lambda i: f"f.parquet: row {i}", "f.parquet",
                                          {name: override} if override else None):
        rows = []
        for data in feature.feature.to_pylist():
            parsed = tf.train.Feature.FromString(data)
            kind = parsed.WhichOneof("kind")
            rows.append((kind, list(getattr(parsed, kind).value) if kind else None))
        out[feature.name] = rows
    return out


def _one(column: pa.Array, override: str | None = None) -> list:
    (rows,) = _features(column, override).values()
    return rows


F32 = lambda x: float(np.float32(x))  # noqa: E731

CASES = [
    ("null", pa.nulls(2), [(None, None), (None, None)]),
    ("bool", pa.array([True, False, None]), [("int64_list", [1]), ("int64_list", [0]), ("int64_list", [])]),
    ("int8", pa.array([-128, 0], pa.int8()), [("int64_list", [-128]), ("int64_list", [0])]),
    ("int16", pa.array([-3, None], pa.int16()), [("int64_list", [-3]), ("int64_list", [])]),
    ("int32", pa.array([2**31 - 1], pa.int32()), [("int64_list", [2**31 - 1])]),
    ("int64", pa.array([-(2**63), 2**63 - 1]), [("int64_list", [-(2**63)]), ("int64_list", [2**63 - 1])]),
    ("uint8", pa.array([255], pa.uint8()), [("int64_list", [255])]),
    ("uint16", pa.array([65535], pa.uint16()), [("int64_list", [65535])]),
    ("uint32", pa.array([2**32 - 1], pa.uint32()), [("int64_list", [2**32 - 1])]),
    ("uint64", pa.array([2**63 - 1, 0], pa.uint64()), [("int64_list", [2**63 - 1]), ("int64_list", [0])]),
    ("float16", pa.array(np.array([1.5, 0], np.float16)), [("float_list", [1.5]), ("float_list", [0.0])]),
    ("float32", pa.array([0.1, None], pa.float32()), [("float_list", [F32(0.1)]), ("float_list", [])]),
    ("float64", pa.array([0.1, 0.0]), [("float_list", [F32(0.1)]), ("float_list", [0.0])]),
    ("decimal128", pa.array([decimal.Decimal("1.25"), None], pa.decimal128(5, 2)),
     [("float_list", [1.25]), ("float_list", [])]),
    ("decimal256", pa.array([decimal.Decimal("-0.5")], pa.decimal256(40, 1)), [("float_list", [-0.5])]),
    ("string", pa.array(["é", "", None]),
     [("bytes_list", ["é".encode()]), ("bytes_list", [b""]), ("bytes_list", [])]),
    ("large_string", pa.array(["a"], pa.large_string()), [("bytes_list", [b"a"])]),
    ("binary", pa.array([b"\xff\x00"]), [("bytes_list", [b"\xff\x00"])]),
    ("large_binary", pa.array([b"\xfe"], pa.large_binary()), [("bytes_list", [b"\xfe"])]),
    ("fixed_size_binary", pa.array([b"ab", None], pa.binary(2)), [("bytes_list", [b"ab"]), ("bytes_list", [])]),
    ("string_view", pa.array(["v"], pa.string_view()), [("bytes_list", [b"v"])]),
    ("binary_view", pa.array([b"w"], pa.binary_view()), [("bytes_list", [b"w"])]),
    ("dictionary", pa.array(["x", "y", "x"]).dictionary_encode(),
     [("bytes_list", [b"x"]), ("bytes_list", [b"y"]), ("bytes_list", [b"x"])]),
    ("uuid", pa.ExtensionArray.from_storage(pa.uuid(), pa.array([uuid.UUID(int=7).bytes], pa.binary(16))),
     [("bytes_list", [uuid.UUID(int=7).bytes])]),
    ("timestamp_s_utc", pa.array([datetime.datetime(2020, 1, 1, tzinfo=UTC)], pa.timestamp("s", tz="UTC")),
     [("int64_list", [1577836800_000000])]),
    ("timestamp_ms_other_zone", pa.array([datetime.datetime(2020, 1, 1, tzinfo=UTC), None],
                                         pa.timestamp("ms", tz="America/New_York")),
     [("int64_list", [1577836800_000000]), ("int64_list", [])]),
    ("timestamp_ns_naive", pa.array([1_999, -1], pa.timestamp("ns")), [("int64_list", [1]), ("int64_list", [-1])]),
    ("date32", pa.array([datetime.date(1970, 1, 2), datetime.date(1969, 12, 31)]),
     [("int64_list", [1]), ("int64_list", [-1])]),
    ("date64", pa.array([datetime.date(2000, 1, 1)], pa.date64()), [("int64_list", [10957])]),
    ("time32", pa.array([datetime.time(0, 0, 1)], pa.time32("ms")), [("int64_list", [1_000_000])]),
    ("time64", pa.array([datetime.time(0, 0, 0, 5)], pa.time64("ns")), [("int64_list", [5])]),
    ("duration", pa.array([-1], pa.duration("s")), [("int64_list", [-1_000_000])]),
    ("list", pa.array([[1, 2], [], None]), [("int64_list", [1, 2]), ("int64_list", []), ("int64_list", [])]),
    ("large_list", pa.array([["a", "b"]], pa.large_list(pa.string())), [("bytes_list", [b"a", b"b"])]),
    ("fixed_size_list", pa.array([[0.5, 0.0]], pa.list_(pa.float64(), 2)), [("float_list", [0.5, 0.0])]),
    ("list_of_timestamps", pa.array([[1, 2]], pa.list_(pa.timestamp("s"))), [("int64_list", [1_000_000, 2_000_000])]),
    ("list_of_lists", pa.array([[[1], [2, 3]], [None, []], None]),
     [("int64_list", [1, 2, 3]), ("int64_list", []), ("int64_list", [])]),
]


@pytest.mark.parametrize("name,column,expected", CASES, ids=[c[0] for c in CASES])
def test_type_table(name, column, expected):
    assert _one(column) == expected


def test_struct_is_flattened_into_parent_child_features():
    column = pa.array([{"a": 1, "b": {"c": "x"}}, None, {"a": None, "b": None}])
    assert _features(column, name="s") == {
        "s.a": [("int64_list", [1]), ("int64_list", []), ("int64_list", [])],
        "s.b.c": [("bytes_list", [b"x"]), ("bytes_list", []), ("bytes_list", [])],
    }


def test_list_of_structs_gives_a_list_feature_per_child():
    column = pa.array([[{"a": 1, "b": "p"}, {"a": 2, "b": "q"}], [], None])
    assert _features(column, name="l") == {
        "l.a": [("int64_list", [1, 2]), ("int64_list", []), ("int64_list", [])],
        "l.b": [("bytes_list", [b"p", b"q"]), ("bytes_list", []), ("bytes_list", [])],
    }


def test_map_gives_key_and_value_lists_in_map_order():
    column = pa.array([[("z", 1.5), ("a", 0.0)], None], pa.map_(pa.string(), pa.float64()))
    assert _features(column, name="m") == {
        "m.key": [("bytes_list", [b"z", b"a"]), ("bytes_list", [])],
        "m.value": [("float_list", [1.5, 0.0]), ("float_list", [])],
    }


def test_uint64_above_int64_max_names_column_and_row():
    with pytest.raises(SourceError, match=r"f.parquet: row 1: column 'c': uint64 value 9223372036854775808 "
                                          r"does not fit in int64"):
        _one(pa.array([1, 2**63], pa.uint64()))


def test_null_inside_a_list_names_column_and_row():
    with pytest.raises(SourceError, match=r"f.parquet: row 2: column 'c': a list holds a null value"):
        _one(pa.array([[1], [], [2, None]]))


def test_union_is_an_error_naming_the_column():
    union = pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])])
    with pytest.raises(SourceError, match=r"f.parquet: column 'c': type .*union.* has no tf.Example mapping"):
        _one(union)


def test_clashing_flattened_names_are_an_error():
    batch = pa.RecordBatch.from_pydict({"s": pa.array([{"a": 1}]), "s.a": pa.array([2])})
    with pytest.raises(SourceError, match="two columns give the feature name 's.a'"):
        typemap.batch_features(batch, str, "f.parquet")


@pytest.mark.parametrize("column,override,expected", [
    (pa.array([decimal.Decimal("1.10"), None], pa.decimal128(5, 2)), "string",
     [("bytes_list", [b"1.10"]), ("bytes_list", [])]),
    (pa.array([1_500, -1], pa.timestamp("ms")), "int_s", [("int64_list", [1]), ("int64_list", [-1])]),
    (pa.array([1_500], pa.timestamp("ms")), "int_ms", [("int64_list", [1500])]),
    (pa.array([1], pa.timestamp("s")), "int_ns", [("int64_list", [1_000_000_000])]),
    (pa.array(["12", None]), "int", [("int64_list", [12]), ("int64_list", [])]),
    (pa.array(["1.5"]), "float", [("float_list", [1.5])]),
    (pa.array([7]), "string", [("bytes_list", [b"7"])]),
    (pa.array([7]), "float", [("float_list", [7.0])]),
    (pa.array([2**64 - 1], pa.uint64()), "string", [("bytes_list", [b"18446744073709551615"])]),
], ids=["decimal-string", "ts-s", "ts-ms", "ts-ns", "string-int", "string-float", "int-string", "int-float",
        "uint64-string"])
def test_schema_override(column, override, expected):
    assert _one(column, override) == expected


def test_override_the_data_contradicts_names_row():
    with pytest.raises(SourceError, match=r"f.parquet: row 1: column 'c': value 'x' is not an integer"):
        _one(pa.array(["1", "x"]), "int")


def test_time_override_on_a_number_is_an_error():
    with pytest.raises(SourceError, match="applies to timestamps, times and durations"):
        _one(pa.array([1]), "int_ms")


def test_example_names_flatten_like_the_conversion():
    schema = pa.schema([("a", pa.int64()), ("s", pa.struct([("x", pa.string()), ("y", pa.list_(pa.int8()))])),
                        ("m", pa.map_(pa.string(), pa.int64()))])
    assert typemap.example_names(schema) == ["a", "s.x", "s.y", "m.key", "m.value"]
