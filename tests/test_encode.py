"""Column-wise Example encoding must give the protobuf library's exact bytes."""

import math
from pathlib import Path
import random
import struct

import numpy as np
import pyarrow as pa
import pytest

from examplegen.encode import example_column, example_column_of_values, feature_column, sorted_feature_names

from tensorflow.core.example import example_pb2  # noqa: E402
from tensorflow.core.example import feature_pb2  # noqa: E402

ROWS = 400


def proto_feature(value, kind):
    """tf.train.Feature of one row: value None = empty list; list = several values."""
    feature = feature_pb2.Feature()
    if kind == "none":
        return feature
    target = {"int64": feature.int64_list, "float": feature.float_list, "bytes": feature.bytes_list}[kind]
    target.SetInParent()
    if value is not None:
        target.value.extend(value if isinstance(value, list) else [value])
    return feature


def proto_features(values, kind):
    return [proto_feature(v, kind).SerializeToString() for v in values]


def proto_examples(columns):
    """columns: {name: (values, kind)} -> deterministic serialized Examples."""
    n = len(next(iter(columns.values()))[0])
    out = []
    for i in range(n):
        example = example_pb2.Example()
        example.features.SetInParent()
        for name, (values, kind) in columns.items():
            example.features.feature[name].CopyFrom(proto_feature(values[i], kind))
        out.append(example.SerializeToString(deterministic=True))
    return out


def random_int64(rng):
    bits = rng.choice([1, 7, 8, 14, 15, 21, 28, 35, 42, 49, 56, 63])
    value = rng.getrandbits(bits)
    return -value - 1 if rng.random() < 0.3 else value


INT_EDGES = [0, 1, -1, 127, 128, 16383, 16384, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 2**56, 2**56 - 1]
FLOAT_EDGES = [0.0, -0.0, math.nan, math.inf, -math.inf, 5e-324, 1e-45, 1.4e-45, 1e-40, 0.1, 1 / 3,
               16777217.0, 3.4028235e38, 3.4028236e38, 1e39, -1e39, 1.17549435e-38, 2.0**-149 * 1.5]
BYTES_EDGES = [b"", b"\x00", "é€😀".encode(), b"\xff\xfe\x80", b"x" * 127, b"y" * 128, b"z" * 16383,
               b"w" * 16384, b"v" * 20000]


def random_bytes(rng):
    size = rng.choice([0, 1, 5, 30, 127, 128, 300])
    return bytes(rng.getrandbits(8) for _ in range(size))


def with_nulls(rng, values, rate=0.2):
    return [None if rng.random() < rate else v for v in values]


def assert_same(got: pa.Array, expected: list[bytes]):
    got = got.to_pylist()
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"row {i}: {g!r} != {e!r}"


@pytest.mark.parametrize("nulls", [False, True])
def test_int64_scalars(nulls):
    rng = random.Random(1)
    values = INT_EDGES + [random_int64(rng) for _ in range(ROWS)]
    if nulls:
        values = with_nulls(rng, values)
    assert_same(feature_column(pa.array(values, pa.int64()), "int64"), proto_features(values, "int64"))


def test_int64_from_other_integer_types():
    values = [0, 5, None, 255]
    for typ in (pa.uint8(), pa.int16(), pa.int32(), pa.uint32()):
        assert_same(feature_column(pa.array(values, typ), "int64"), proto_features(values, "int64"))
    bools = [True, False, None]
    assert_same(feature_column(pa.array(bools), "int64"), proto_features([1, 0, None], "int64"))


@pytest.mark.parametrize("nulls", [False, True])
def test_float_scalars_from_float64(nulls):
    rng = random.Random(2)
    values = FLOAT_EDGES + [rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-30, 30) for _ in range(ROWS)]
    if nulls:
        values = with_nulls(rng, values)
    assert_same(feature_column(pa.array(values, pa.float64()), "float"), proto_features(values, "float"))


def test_float_scalars_from_float32_and_ints():
    rng = random.Random(3)
    raw = [struct.unpack("<f", struct.pack("<I", rng.getrandbits(32)))[0] for _ in range(ROWS)]
    values = with_nulls(rng, raw)  # includes NaN payloads and denormals
    got = feature_column(pa.array(values, pa.float32()), "float").to_pylist()
    expected = proto_features(values, "float")
    assert got == expected
    ints = [0, -3, 2**24 + 1, None, 2**62]
    as_floats = [float(v) if v is not None else None for v in ints]
    assert_same(feature_column(pa.array(ints, pa.int64()), "float"), proto_features(as_floats, "float"))


@pytest.mark.parametrize("typ", [pa.binary(), pa.large_binary()])
def test_bytes_scalars(typ):
    rng = random.Random(4)
    values = with_nulls(rng, BYTES_EDGES + [random_bytes(rng) for _ in range(ROWS)])
    assert_same(feature_column(pa.array(values, typ), "bytes"), proto_features(values, "bytes"))


def test_string_scalars_are_utf8_bytes():
    values = ["", "abc", None, "Ünïcödé 😀", "x" * 200]
    expected = proto_features([v.encode() if v is not None else None for v in values], "bytes")
    for typ in (pa.string(), pa.large_string()):
        assert_same(feature_column(pa.array(values, typ), "bytes"), expected)
    assert_same(feature_column(pa.array(values, pa.string()).dictionary_encode(), "bytes"), expected)


@pytest.mark.parametrize("kind,typ", [("int64", pa.int64()), ("float", pa.float64()), ("bytes", pa.string())])
def test_all_null_columns(kind, typ):
    expected = proto_features([None] * 5, kind)
    assert_same(feature_column(pa.nulls(5), kind), expected)
    assert_same(feature_column(pa.nulls(5, typ), kind), expected)


def test_none_kind_is_empty_feature_for_every_row():
    got = feature_column(pa.array([1, None, 3]), "none")
    assert got.to_pylist() == [b"", b"", b""] == proto_features([1, None, 3], "none")


def random_lists(rng, make_value, rows=ROWS):
    out = []
    for _ in range(rows):
        r = rng.random()
        if r < 0.1:
            out.append(None)
        elif r < 0.2:
            out.append([])
        else:
            out.append([make_value() for _ in range(rng.randint(1, 6))])
    return out


@pytest.mark.parametrize("list_type", [pa.list_, pa.large_list])
def test_list_arrays(list_type):
    rng = random.Random(5)
    cases = [
        ("int64", pa.int64(), lambda: random_int64(rng)),
        ("float", pa.float64(), lambda: rng.choice(FLOAT_EDGES + [rng.uniform(-1e3, 1e3)])),
        ("float", pa.float32(), lambda: rng.uniform(-1e3, 1e3)),
        ("bytes", pa.binary(), lambda: rng.choice(BYTES_EDGES[:6] + [random_bytes(rng)])),
    ]
    for kind, item, make in cases:
        values = random_lists(rng, make)
        arr = pa.array(values, list_type(item))
        expected = [proto_feature(v, kind).SerializeToString() for v in values]
        assert_same(feature_column(arr, kind), expected)


def test_fixed_size_lists_and_empty_columns():
    values = [[1, -2], None, [3, 4]]
    arr = pa.array(values, pa.list_(pa.int64(), 2))
    assert_same(feature_column(arr, "int64"), proto_features(values, "int64"))
    kinds = [("int64", pa.int64()), ("float", pa.float32()), ("bytes", pa.string()), ("none", pa.int64())]
    for kind, typ in kinds:
        assert len(feature_column(pa.array([], typ), kind)) == 0
    assert len(example_column(["a"], [feature_column(pa.array([], pa.int64()), "int64")])) == 0


def test_long_lists_need_multibyte_lengths():
    # 2000 int64s = ~20000 packed bytes, so Int64List and Feature lengths are 3-byte varints
    values = [[-1] * 2000, list(range(3000)), [1.5] * 5000]
    assert_same(feature_column(pa.array(values[:2], pa.list_(pa.int64())), "int64"),
                proto_features(values[:2], "int64"))
    assert_same(feature_column(pa.array([values[2]], pa.list_(pa.float64())), "float"),
                proto_features([values[2]], "float"))
    many = [[b"ab"] * 10000]
    assert_same(feature_column(pa.array(many, pa.list_(pa.binary())), "bytes"), proto_features(many, "bytes"))


def test_sliced_and_chunked_inputs():
    rng = random.Random(6)
    values = with_nulls(rng, [random_int64(rng) for _ in range(50)])
    arr = pa.array(values, pa.int64())
    assert_same(feature_column(arr.slice(7, 20), "int64"), proto_features(values[7:27], "int64"))
    strings = with_nulls(rng, [random_bytes(rng) for _ in range(50)])
    sarr = pa.array(strings, pa.binary())
    assert_same(feature_column(sarr.slice(3, 30), "bytes"), proto_features(strings[3:33], "bytes"))
    lists = random_lists(rng, lambda: random_int64(rng), rows=50)
    larr = pa.array(lists, pa.list_(pa.int64()))
    assert_same(feature_column(larr.slice(11, 25), "int64"), proto_features(lists[11:36], "int64"))
    chunked = pa.chunked_array([arr.slice(0, 10), arr.slice(10, 40)])
    assert_same(feature_column(chunked, "int64"), proto_features(values, "int64"))


def test_feature_column_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown feature kind"):
        feature_column(pa.array([1]), "double")
    with pytest.raises(ValueError, match="null value"):
        feature_column(pa.array([[1, None]], pa.list_(pa.int64())), "int64")
    with pytest.raises(ValueError, match="integer"):
        feature_column(pa.array(["1"]), "int64")
    with pytest.raises(ValueError, match="int64 range"):
        feature_column(pa.array([2**64 - 1], pa.uint64()), "int64")
    with pytest.raises(ValueError, match="string or binary"):
        feature_column(pa.array([1]), "bytes")
    with pytest.raises(ValueError, match="nested"):
        feature_column(pa.array([[[1]]]), "int64")


NAMES = ["B", "a", "ab", "abc", "é", "", "Z_9", "feature.with.dots", "\u00e9t\u00e9", "zz", "a\x00"]


def test_sorted_feature_names_match_protobuf_map_order():
    rng = random.Random(7)
    alphabet = ["a", "b", "B", "é", "\x00", "ab", "\x7f", "€"]
    for _ in range(200):
        names = list({"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
                      for _ in range(rng.randint(1, 8))})
        example = example_pb2.Example()
        for name in names:
            example.features.feature[name].SetInParent()
        parsed_order = [key for key, _ in _entries(example.SerializeToString(deterministic=True))]
        assert parsed_order == sorted_feature_names(names)


def _entries(serialized):
    """(key, value bytes) of each Features map entry, in wire order."""
    def varint(buf, pos):
        result = shift = 0
        while True:
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return result, pos
    features_len, pos = varint(serialized, 1)
    out = []
    while pos < len(serialized):
        entry_len, pos = varint(serialized, pos + 1)
        entry, pos = serialized[pos:pos + entry_len], pos + entry_len
        key_len, k = varint(entry, 1)
        out.append((entry[k:k + key_len].decode(), entry[k + key_len:]))
    return out


def test_example_column_matches_protobuf():
    rng = random.Random(8)
    n = 300
    makers = {
        "int64": lambda: random_int64(rng),
        "float": lambda: rng.choice(FLOAT_EDGES + [rng.uniform(-1e4, 1e4)]),
        "bytes": lambda: random_bytes(rng),
    }
    types = {"int64": pa.int64(), "float": pa.float64(), "bytes": pa.binary()}
    columns, arrays, typed = {}, {}, {}
    for i, name in enumerate(NAMES):
        kind = ["int64", "float", "bytes", "none"][i % 4]
        if kind == "none":
            values = [None] * n
            arr = pa.nulls(n)
        elif i % 3 == 0:
            values = random_lists(rng, makers[kind], rows=n)
            arr = pa.array(values, pa.list_(types[kind]))
        else:
            values = with_nulls(rng, [makers[kind]() for _ in range(n)])
            arr = pa.array(values, types[kind])
        columns[name] = (values, kind)
        arrays[name] = feature_column(arr, kind)
        typed[name] = (arr, kind)
    shuffled = list(NAMES)
    rng.shuffle(shuffled)
    got = example_column(shuffled, [arrays[name] for name in shuffled])
    assert_same(got, proto_examples(columns))
    assert_same(example_column_of_values(shuffled, [typed[name] for name in shuffled]), proto_examples(columns))


def test_example_column_with_long_keys_and_features():
    # key > 127 bytes and feature > 16383 bytes: every length in the entry header is multi-byte
    name = "k" * 200
    values = [b"x" * 20000, None, b""]
    features = feature_column(pa.array(values, pa.binary()), "bytes")
    ints = feature_column(pa.array([1, 2, 3]), "int64")
    got = example_column([name, "short"], [features, ints])
    expected = proto_examples({name: (values, "bytes"), "short": ([1, 2, 3], "int64")})
    assert_same(got, expected)
    of_values = example_column_of_values([name, "short"], [(pa.array(values, pa.binary()), "bytes"),
                                                           (pa.array([1, 2, 3]), "int64")])
    assert_same(of_values, expected)


def test_example_column_taxi_like_rows():
    rng = np.random.default_rng(9)
    n = 1000
    ts = rng.integers(1.3e9, 1.5e9, n)
    fare = np.round(rng.uniform(0, 100, n), 2)
    company = rng.choice(["Taxi Affiliation Services", "Dispatch Taxi Affiliation", ""], n).tolist()
    month = [None if i % 17 == 0 else int(i % 12 + 1) for i in range(n)]
    columns = {"trip_start_timestamp": (ts.tolist(), "int64"), "fare": (fare.tolist(), "float"),
               "company": ([c.encode() for c in company], "bytes"), "trip_start_month": (month, "int64")}
    got = example_column(
        list(columns),
        [feature_column(pa.array(ts), "int64"), feature_column(pa.array(fare), "float"),
         feature_column(pa.array(company), "bytes"), feature_column(pa.array(month, pa.int64()), "int64")])
    assert_same(got, proto_examples(columns))


@pytest.mark.parametrize("mixed", [False, True])
def test_example_column_fixed_width_pieces_and_variable_ones(mixed):
    """Pieces of one width in every row are laid out as blocks, the rest joined: every mix
    of the two must give protobuf's bytes (mixed: more variable pieces, and examples on
    both sides of 16384 bytes, so the leading varint has two widths)."""
    rng = random.Random(11)
    n = 300
    columns = {
        "float_dense": ([rng.uniform(-5, 5) for _ in range(n)], "float", pa.float64()),
        "int_small": ([rng.randint(0, 127) for _ in range(n)], "int64", pa.int64()),
        "int_5_bytes": ([rng.randint(2**28, 2**35 - 1) for _ in range(n)], "int64", pa.int64()),
        "none": ([None] * n, "none", pa.null()),
        "same_len_bytes": ([bytes(rng.getrandbits(8) for _ in range(7)) for _ in range(n)], "bytes", pa.binary()),
        "float_nulls": (with_nulls(rng, [rng.uniform(-5, 5) for _ in range(n)]), "float", pa.float64()),
        # feature lengths on both sides of 128: entry headers of two widths
        "bytes_across_127": ([b"m" * rng.randint(118, 140) for _ in range(n)], "bytes", pa.binary()),
        # lengths 200..300: one header width, but the length bytes differ from row to row
        "bytes_200_300": ([b"w" * rng.randint(200, 300) for _ in range(n)], "bytes", pa.binary()),
        "int_list": (random_lists(rng, lambda: random_int64(rng), rows=n), "int64", pa.list_(pa.int64())),
        "huge_or_empty": ([b"h" * 17000 if i % 5 == 0 else b"" for i in range(n)], "bytes", pa.binary()),
    }
    if not mixed:
        for name in ("bytes_across_127", "bytes_200_300", "int_list", "huge_or_empty"):
            del columns[name]
    names = list(columns)
    features = [feature_column(pa.array(values, typ), kind) for values, kind, typ in columns.values()]
    expected = proto_examples({name: (values, kind) for name, (values, kind, _) in columns.items()})
    head_widths = {next(i for i in range(1, 11) if e[i] < 0x80) for e in expected}  # varint bytes
    assert len(head_widths) == (2 if mixed else 1)
    assert_same(example_column(names, features), expected)
    # sliced and large_binary feature arrays
    sliced = example_column(names, [f.slice(17, 200) for f in features])
    assert_same(sliced, expected[17:217])
    large = example_column(names, [f.cast(pa.large_binary()) if i % 2 else f for i, f in enumerate(features)])
    assert_same(large, expected)
    assert example_column(names, [f.slice(0, 0) for f in features]).to_pylist() == []
    # straight from the typed columns: whole, sliced, chunked, and no rows
    typed = [(pa.array(values, typ), kind) for values, kind, typ in columns.values()]
    assert_same(example_column_of_values(names, typed), expected)
    assert_same(example_column_of_values(names, [(a.slice(17, 200), k) for a, k in typed]), expected[17:217])
    chunked = [(pa.chunked_array([a.slice(0, 100), a.slice(100)]), k) for a, k in typed]
    assert_same(example_column_of_values(names, chunked), expected)
    assert example_column_of_values(names, [(a.slice(0, 0), k) for a, k in typed]).to_pylist() == []


def test_example_column_of_values_rejects_bad_input():
    a = pa.array([1, 2])
    with pytest.raises(ValueError, match="duplicate feature name 'a'"):
        example_column_of_values(["a", "a"], [(a, "int64"), (a, "int64")])
    with pytest.raises(ValueError, match="'b' has 1 rows, expected 2"):
        example_column_of_values(["a", "b"], [(a, "int64"), (a.slice(0, 1), "int64")])
    with pytest.raises(ValueError, match="2 names but 1"):
        example_column_of_values(["a", "b"], [(a, "int64")])
    with pytest.raises(ValueError, match="at least one feature"):
        example_column_of_values([], [])
    with pytest.raises(ValueError, match="unknown feature kind"):
        example_column_of_values(["a"], [(a, "int32")])
    with pytest.raises(ValueError, match="bytes feature needs string or binary"):
        example_column_of_values(["a"], [(a, "bytes")])
    with pytest.raises(ValueError, match="contains a null value"):
        example_column_of_values(["a"], [(pa.array([[1, None]]), "int64")])


def test_example_column_rejects_bad_input():
    f = feature_column(pa.array([1, 2]), "int64")
    with pytest.raises(ValueError, match="duplicate feature name 'a'"):
        example_column(["a", "a"], [f, f])
    with pytest.raises(ValueError, match="'b' has 1 rows, expected 2"):
        example_column(["a", "b"], [f, f.slice(0, 1)])
    with pytest.raises(ValueError, match="2 names but 1"):
        example_column(["a", "b"], [f])
    with pytest.raises(ValueError, match="at least one feature"):
        example_column([], [])
    with pytest.raises(ValueError, match="binary array"):
        example_column(["a"], [pa.array([1, 2])])


@pytest.mark.parametrize("list_type", [None, pa.list_])
def test_missing_as_empty_feature(list_type):
    rng = random.Random(10)
    cases = [("int64", pa.int64(), lambda: random_int64(rng)),
             ("float", pa.float64(), lambda: rng.uniform(-10, 10)),
             ("bytes", pa.binary(), lambda: random_bytes(rng))]
    for kind, item, make in cases:
        if list_type is None:
            values = with_nulls(rng, [make() for _ in range(200)])
            arr = pa.array(values, item)
        else:
            values = random_lists(rng, make, rows=200)
            arr = pa.array(values, list_type(item))
        expected = [b"" if v is None else proto_feature(v, kind).SerializeToString() for v in values]
        assert_same(feature_column(arr, kind, missing="empty_feature"), expected)
        examples = example_column(["f"], [feature_column(arr, kind, missing="empty_feature")])
        assert example_column_of_values(["f"], [(arr, kind)], missing="empty_feature").equals(examples)
    assert feature_column(pa.nulls(3), "int64", missing="empty_feature").to_pylist() == [b""] * 3
    with pytest.raises(ValueError, match="missing-value"):
        feature_column(pa.array([1]), "int64", missing="zero")


TFX_TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "tfx"


@pytest.mark.parametrize("pattern,limit", [
    ("external/tfrecord/data_tfrecord-00000-of-00002.gz", 3000),  # taxi rows as TFX ships them
    ("csv_example_gen/Split-train/data_tfrecord-00000-of-00012.gz", None),  # CsvExampleGen output
])
def test_reproduces_tfx_example_bytes(pattern, limit):
    """Columns taken from TFX's own taxi Examples re-encode to exactly TFX's bytes.

    TFX writes a missing value as an empty Feature() (missing="empty_feature")."""
    from examplegen.tfrecord import iter_records

    path = TFX_TESTDATA / pattern
    assert path.exists(), f"TFX reference data missing at {path} (the tests need ../shared/testdata/tfx)"
    records = list(iter_records(path))[:limit]
    assert len(records) > 500
    columns: dict[str, list] = {}
    kinds: dict[str, str] = {}
    for record in records:
        example = example_pb2.Example.FromString(record)
        for name, feature in example.features.feature.items():
            which = feature.WhichOneof("kind")
            column = columns.setdefault(name, [])
            if which is None:
                column.append(None)
                continue
            kind = {"int64_list": "int64", "float_list": "float", "bytes_list": "bytes"}[which]
            assert kinds.setdefault(name, kind) == kind
            value = list(getattr(feature, which).value)
            column.append(value[0] if len(value) == 1 else value)
    assert all(len(column) == len(records) for column in columns.values())
    assert any(None in column for column in columns.values())  # TFX wrote empty Features
    types = {"int64": pa.int64(), "float": pa.float32(), "bytes": pa.binary()}
    names = sorted(columns)
    typed = [(pa.array(columns[name], types[kinds.get(name, "bytes")]), kinds.get(name, "none")) for name in names]
    features = [feature_column(values, kind, missing="empty_feature") for values, kind in typed]
    assert_same(example_column(names, features), records)
    assert_same(example_column_of_values(names, typed, missing="empty_feature"), records)
