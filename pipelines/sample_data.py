"""Regenerate the TFRecord sample, examples/data/taxi_tfrecord/, from the taxi CSV sample.

    python -m kfp_examplegen.pipelines.sample_data

It writes the first ROWS rows of examples/data/taxi/data.csv as gzip TFRecords of
tf.train.Example, typed as TFX's CsvExampleGen types a column (INT if every non-empty
cell is an int, else FLOAT if every one is a float, else STRING; an empty cell is an
empty list), using TensorFlow's own classes and writer. The import_and_resplit pipeline
reads it by default. The committed file is small (about 75 kB).
"""

from __future__ import annotations

import csv
import os

ROWS = 2000
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSV_PATH = os.path.join(REPO, "examples", "data", "taxi", "data.csv")
OUTPUT_PATH = os.path.join(REPO, "examples", "data", "taxi_tfrecord", "data.tfrecord.gz")


def _column_type(cells: list[str]) -> str:
    kind = "int"
    for cell in cells:
        if cell == "":
            continue
        try:
            int(cell)
            continue
        except ValueError:
            pass
        try:
            float(cell)
            kind = "float"
        except ValueError:
            return "string"
    return kind


def main() -> None:
    import tensorflow as tf

    with open(CSV_PATH, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [row for _, row in zip(range(ROWS), reader)]
    types = {name: _column_type([row[i] for row in rows]) for i, name in enumerate(header)}

    def feature(kind: str, cell: str) -> tf.train.Feature:
        if kind == "int":
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(cell)] if cell else []))
        if kind == "float":
            return tf.train.Feature(float_list=tf.train.FloatList(value=[float(cell)] if cell else []))
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[cell.encode()] if cell else []))

    os.makedirs(os.path.dirname(OUTPUT_PATH), exist_ok=True)
    with tf.io.TFRecordWriter(OUTPUT_PATH, options="GZIP") as writer:
        for row in rows:
            features = {name: feature(types[name], cell) for name, cell in zip(header, row)}
            example = tf.train.Example(features=tf.train.Features(feature=features))
            writer.write(example.SerializeToString(deterministic=True))
    print(f"wrote {len(rows)} examples to {OUTPUT_PATH} ({os.path.getsize(OUTPUT_PATH):,} bytes)")


if __name__ == "__main__":
    main()
