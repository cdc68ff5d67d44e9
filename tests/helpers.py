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
