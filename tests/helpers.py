"""Small helpers shared by the tests: reading artifacts with TensorFlow's own reader."""

from __future__ import annotations

import glob
import os

SHARED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "testdata", "tfx"))
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TAXI_CSV_DIR = os.path.join(REPO, "examples", "data", "taxi")


def shared(*parts: str) -> str:
    path = os.path.join(SHARED, *parts)
    if not os.path.exists(path):
        raise FileNotFoundError(f"reference data missing: {path} (the tests need ../shared/testdata/tfx)")
    return path


def read_tfrecords(paths: list[str]) -> list[bytes]:
    """Records of gzip TFRecord files, read by TensorFlow (the reader TFX components use)."""
    import tensorflow as tf

    if not paths:
        return []
    dataset = tf.data.TFRecordDataset(sorted(paths), compression_type="GZIP")
    return [r.numpy() for r in dataset]


def read_split(artifact: str, split: str) -> list[bytes]:
    files = glob.glob(os.path.join(artifact, f"Split-{split}", "*"))
    return read_tfrecords(files)


def split_names(artifact: str) -> list[str]:
    return sorted(d[len("Split-"):] for d in os.listdir(artifact) if d.startswith("Split-"))


def tree_bytes(root: str) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = open(path, "rb").read()
    return out


def example_values(record: bytes) -> dict[str, tuple]:
    """A serialized tf.train.Example parsed by TensorFlow: feature -> (kind, values)."""
    import tensorflow as tf

    example = tf.train.Example.FromString(record)
    out = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[name] = (kind, tuple(getattr(feature, kind).value) if kind else ())
    return out


def expected_values(row: dict, kinds: dict[str, str]) -> dict[str, tuple]:
    """What the engine should write for an input row read independently (a dict of Python
    values): a null is an empty list of the column's kind, floats are rounded to float32,
    text is UTF-8 bytes, a list keeps its items; a column of kind None (null in every row)
    is an empty Feature()."""
    import numpy as np

    out = {}
    for name, value in row.items():
        kind = kinds[name]
        if kind is None:
            out[name] = (None, ())
            continue
        items = [] if value is None else value if isinstance(value, list) else [value]
        if kind == "float_list":
            items = [float(np.float32(v)) for v in items]
        elif kind == "bytes_list":
            items = [v.encode("utf-8") if isinstance(v, str) else v for v in items]
        else:
            items = [int(v) for v in items]
        out[name] = (kind, tuple(items))
    return out


def canonical(values: dict[str, tuple]) -> str:
    """A hashable, order-free form of example_values/expected_values output (NaN-safe)."""
    return repr(sorted(values.items()))


def check_tfx_compatible(artifact: str, rows: list[dict], kinds: dict[str, str], null_free: bool = True) -> None:
    """The artifact holds exactly ``rows`` (read independently), and (``null_free``) every row
    without a null is byte-identical to TFX's dict_to_example output and in the split TFX
    would put it in (default config: train 2 / eval 1 hash buckets)."""
    import collections

    from tests import tfx_reference

    written = {split: read_split(artifact, split) for split in ("train", "eval")}
    actual = collections.Counter(canonical(example_values(r)) for records in written.values() for r in records)
    assert actual == collections.Counter(canonical(expected_values(row, kinds)) for row in rows)
    if not null_free:
        return
    by_split = {split: collections.Counter(records) for split, records in written.items()}
    complete = [row for row in rows if all(v is not None for v in row.values())]
    assert complete, "the data should have rows without nulls"
    for row in complete:
        tfx = tfx_reference.dict_to_example(row)
        split = ("train", "eval")[tfx_reference.partition(tfx, [2, 3])]
        assert by_split[split][tfx] > 0, row


def plain_values(row: dict) -> dict:
    """A row of Python values as the examples hold them (for expected_values): dates as days
    since the epoch, datetimes as microseconds since the epoch (naive ones taken as UTC),
    times as microseconds since midnight,
    decimals as floats, a struct (dict) as ``parent.child`` columns."""
    import datetime
    import decimal

    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    out = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(plain_values({f"{key}.{k}": v for k, v in value.items()}))
            continue
        if isinstance(value, datetime.datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
            value = (aware - epoch) // datetime.timedelta(microseconds=1)
        elif isinstance(value, datetime.date):
            value = (value - epoch.date()).days
        elif isinstance(value, datetime.time):
            value = ((value.hour * 60 + value.minute) * 60 + value.second) * 10**6 + value.microsecond
        elif isinstance(value, decimal.Decimal):
            value = float(value)
        out[key] = value
    return out


def run_query_pipeline(root, params: list[str], capsys) -> tuple[str, str]:
    """Runs the query-ingest pipeline locally (``examplegen run``) with ``--param`` s;
    returns the paths of its Examples artifact and its report page."""
    import re

    from examplegen.cli import main

    assert main(["run", "query_ingest", "--pipeline-root", str(root), *params]) == 0
    printed = capsys.readouterr().out
    examples = re.search(r"query-example-gen/examples \(system.Dataset\): (\S+)", printed).group(1)
    return examples, re.search(r"^report: (.+)$", printed, re.M).group(1)


def dockerfile_stages(path: str) -> dict[str, dict]:
    """The build stages of a Dockerfile, in order: {name: {"from": image or stage,
    "platform": --platform or None, "lines": [instruction, ...]}}, each instruction on one
    line (continuations joined, comments and blank lines left out). An unnamed stage is
    named by its index. Instructions before the first FROM are under the name ""."""
    stages: dict[str, dict] = {"": {"from": None, "platform": None, "lines": []}}
    current, pending = stages[""], ""
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if line.startswith("#") or not (line or pending):
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            line, pending = pending + line, ""
            words = line.split()
            if words[0].upper() == "FROM":
                platform = next((w.split("=", 1)[1] for w in words[1:] if w.startswith("--platform=")), None)
                rest = [w for w in words[1:] if not w.startswith("--")]
                name = rest[2] if len(rest) == 3 and rest[1].upper() == "AS" else str(len(stages) - 1)
                current = stages[name] = {"from": rest[0], "platform": platform, "lines": []}
            else:
                current["lines"].append(line)
    return stages
