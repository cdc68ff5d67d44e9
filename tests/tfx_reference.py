"""A slow, row-by-row re-statement of TFX CsvExampleGen, used as the tests' oracle.

It follows TFX's code path (tfx/components/example_gen/csv_example_gen/executor.py and
tfx_bsl/coders/csv_decoder.py): lines are read after the header and joined while their
count of quote characters is odd; each record is parsed with Python's csv module and its
cells encoded as UTF-8 bytes; a column's type is the maximum of its cells' types (empty
UNKNOWN, int() within int64 INT, float() FLOAT, else STRING); examples are built with
TensorFlow's own tf.train.Example and serialized deterministically. Hash splits use
TFX's partition function. Nothing here is shared with the engine.
"""

from __future__ import annotations

import bisect
import csv
import hashlib

UNKNOWN, INT, FLOAT, STRING = 0, 1, 2, 3
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def read_records(path: str, delimiter: str = ",") -> tuple[list[str], list[list[bytes]]]:
    with open(path, "rb") as f:
        header_line = f.readline().decode("utf-8")
        names = next(csv.reader([header_line], delimiter=delimiter))
        records, buffer, quotes = [], [], 0
        for raw in f:
            line = raw.decode("utf-8")
            buffer.append(line)
            quotes += line.count('"')
            if quotes % 2 == 0:
                records.append("".join(buffer))
                buffer, quotes = [], 0
        assert not buffer, "unbalanced quotes"
    rows = []
    for record in records:
        cells = next(csv.reader([record], delimiter=delimiter), [])
        if not cells:
            continue  # blank line
        assert len(cells) == len(names), f"Invalid CSV line: {cells}"
        rows.append([c.encode("utf-8") for c in cells])
    names = [n.lstrip("\ufeff") for n in names]
    return names, rows


def cell_type(value: bytes) -> int:
    if not value:
        return UNKNOWN
    try:
        return INT if _INT64_MIN <= int(value) <= _INT64_MAX else STRING
    except ValueError:
        try:
            float(value)
        except ValueError:
            return STRING
        return FLOAT


def column_types(rows: list[list[bytes]], width: int) -> list[int]:
    types = [UNKNOWN] * width
    for row in rows:
        for i, cell in enumerate(row):
            types[i] = max(types[i], cell_type(cell))
    return types


def to_examples(names: list[str], rows: list[list[bytes]], types: list[int]) -> list[bytes]:
    import tensorflow as tf

    out = []
    for row in rows:
        feature = {}
        for name, cell, t in zip(names, row, types):
            if t == INT:
                feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(cell)] if cell else []))
            elif t == FLOAT:
                feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(cell)] if cell else []))
            elif t == STRING:
                feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[cell] if cell else []))
            else:
                feature[name] = tf.train.Feature()
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        out.append(example.SerializeToString(deterministic=True))
    return out


def csv_file_examples(paths: list[str], delimiter: str = ",") -> list[bytes]:
    names, rows = None, []
    for path in paths:
        n, r = read_records(path, delimiter)
        names = names or n
        rows.extend(r)
    return to_examples(names, rows, column_types(rows, len(names)))


def partition(key: bytes, cumulative: list[int]) -> int:
    bucket = int(hashlib.sha256(key).hexdigest(), 16) % cumulative[-1]
    return bisect.bisect(cumulative, bucket)


def dict_to_example(instance: dict) -> bytes:
    """TFX's example_gen utils.dict_to_example (the Parquet and Avro executors' conversion),
    restated with TensorFlow's protobuf classes: None -> an empty Feature(); int (bool too)
    -> int64_list; float -> float_list; str -> bytes_list of its UTF-8; a list by the type
    of its first item (an empty list -> Feature()); anything else fails the run."""
    import tensorflow as tf

    feature = {}
    for key, value in instance.items():
        if value is None:
            feature[key] = tf.train.Feature()
        elif isinstance(value, int):
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        elif isinstance(value, float):
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        elif isinstance(value, str):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode("utf-8")]))
        elif isinstance(value, list):
            if not value:
                feature[key] = tf.train.Feature()
            elif isinstance(value[0], int):
                feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=value))
            elif isinstance(value[0], float):
                feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=value))
            elif isinstance(value[0], str):
                feature[key] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[v.encode("utf-8") for v in value]))
            else:
                raise RuntimeError(f"Column type `list of {type(value[0])}` is not supported.")
        else:
            raise RuntimeError(f"Column type {type(value)} is not supported.")
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)
