"""Assigning examples to output splits.

- Hash buckets, exactly as TFX's ExampleGen: ``bucket = int(sha256(key).hexdigest(), 16) %
  total_buckets`` where the key is the serialized example (deterministic serialization), or
  with ``partition_feature_name`` that feature's serialized ``Feature`` (bytes_list or
  int64_list only); the split is the first whose cumulative bucket count exceeds the bucket.
- Beyond TFX: a value split (``split_config.value_split``): rows whose feature value is
  below ``boundaries[0]`` go to the first split, below ``boundaries[1]`` to the second, ...,
  the rest to the last (a time split on a timestamp column, TFX #352).
- Pass-through: several input splits map one-to-one to output splits.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from examplegen import native
from examplegen.errors import ConfigError, SourceError


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """How rows of one input split are distributed over output splits."""

    names: tuple[str, ...]
    mode: str  # "hash" | "partition" | "value" | "single"
    cumulative_buckets: tuple[int, ...] = ()
    feature: Optional[str] = None  # partition or value-split feature
    boundaries: tuple = ()

    @property
    def needs_feature(self) -> bool:
        return self.mode in ("partition", "value")


def plan_for(output_config, input_split_names: Sequence[str]) -> list[tuple[str, SplitPlan]]:
    """(input split, plan) pairs for an output config (examplegen.config.OutputConfig)."""
    splits = list(getattr(output_config, "splits", ()) or ())
    if not splits:
        return [(name, SplitPlan(names=(name,), mode="single")) for name in input_split_names]
    if len(input_split_names) != 1:
        raise ConfigError("output splits need exactly one input split; "
                          f"the input config has {len(input_split_names)}: {list(input_split_names)}")
    names = tuple(s.name for s in splits)
    value_split = getattr(output_config, "value_split", None)
    if value_split is not None:
        plan = SplitPlan(names=names, mode="value", feature=value_split.feature_name,
                         boundaries=tuple(value_split.boundaries))
    else:
        cumulative, total = [], 0
        for s in splits:
            total += int(s.hash_buckets)
            cumulative.append(total)
        feature = getattr(output_config, "partition_feature_name", None) or None
        plan = SplitPlan(names=names, mode="partition" if feature else "hash",
                         cumulative_buckets=tuple(cumulative), feature=feature)
    return [(input_split_names[0], plan)]


def hash_buckets(keys: Sequence[bytes] | pa.Array, total: int) -> np.ndarray:
    """TFX's bucket of each key: int(sha256(key).hexdigest(), 16) % total."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if isinstance(keys, pa.Array):
        keys = _buffer_slices(keys)
    if native.framing is not None and isinstance(keys, list) and all(type(key) is bytes for key in keys):
        return buckets_of_digests(native.framing.sha256_digests(keys), total)  # one call, OpenSSL's SHA-256
    sha256 = hashlib.sha256
    return buckets_of_digests(b"".join([sha256(key).digest() for key in keys]), total)


def buckets_of_digests(digests: bytes, total: int) -> np.ndarray:
    """TFX's bucket of each 32-byte sha256 digest in ``digests`` (back to back): the digest
    read as a big-endian integer, modulo ``total`` (int64 array)."""
    if total < 1:
        raise ValueError(f"the number of hash buckets must be positive, got {total}")
    n = len(digests) // 32
    if total >= 1 << 32:  # beyond the uint64 arithmetic below; configs allow at most 2**32 - 1
        return np.fromiter((int.from_bytes(digests[i:i + 32], "big") % total for i in range(0, 32 * n, 32)),
                           dtype=np.int64, count=n)
    # Horner's rule over the eight 32-bit words: r < total < 2**32, so r * 2**32 + word fits.
    words = np.frombuffer(digests, dtype=">u4", count=8 * n).reshape(n, 8).astype(np.uint64)
    modulus = np.uint64(total)
    rest = np.zeros(n, dtype=np.uint64)
    for k in range(8):
        rest = ((rest << np.uint64(32)) | words[:, k]) % modulus
    return rest.astype(np.int64)


def _buffer_slices(array: pa.Array) -> np.ndarray:
    """Each value of a binary array as a bytes object (an object array). Arrow's conversion
    makes them several times faster than slicing a buffer in Python, and hashlib and
    google_crc32c take bytes at their lowest per-call cost."""
    return array.to_numpy(zero_copy_only=False)


def _bucket_to_split(buckets: np.ndarray, cumulative: Sequence[int]) -> np.ndarray:
    # bisect.bisect(cumulative, bucket): index of the first cumulative count > bucket.
    return np.searchsorted(np.asarray(cumulative), buckets, side="right").astype(np.int32)


def split_of_buckets(buckets: np.ndarray, plan: SplitPlan) -> np.ndarray:
    """Split index (int32) of each hash bucket under a hash or partition plan."""
    return _bucket_to_split(buckets, plan.cumulative_buckets)


def assign_hash(examples: Sequence[bytes] | pa.Array, plan: SplitPlan) -> np.ndarray:
    """Split index per serialized example (keys = the examples themselves)."""
    if len(plan.names) == 1:
        return np.zeros(len(examples), dtype=np.int32)
    return _bucket_to_split(hash_buckets(examples, plan.cumulative_buckets[-1]), plan.cumulative_buckets)


def assign_partition(feature_bytes: pa.Array, kind: str, plan: SplitPlan, where) -> np.ndarray:
    """Split index per row from the serialized partition ``Feature`` of each row.

    ``kind`` is the feature's list type ("int64", "bytes", "float", "none"); ``where(i)``
    describes row i for error messages.
    """
    if kind not in ("int64", "bytes"):
        raise SourceError(
            f"partition feature {plan.feature!r} is a {kind} feature; only bytes_list and "
            f"int64_list features can partition examples")
    keys = feature_bytes.to_pylist() if isinstance(feature_bytes, pa.Array) else list(feature_bytes)
    # An empty list serializes as the 2-byte header alone (b'\x1a\x00' / b'\x0a\x00').
    for i, key in enumerate(keys):
        if key is None or len(key) <= 2:
            raise SourceError(f"{where(i)}: partition feature {plan.feature!r} has no value")
    return _bucket_to_split(hash_buckets(keys, plan.cumulative_buckets[-1]), plan.cumulative_buckets)


def assign_value(values: pa.Array, plan: SplitPlan, where) -> np.ndarray:
    """Split index per row: how many boundaries the row's value is >= to."""
    if values.null_count:
        first = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise SourceError(f"{where(first)}: value-split feature {plan.feature!r} has no value")
    index = np.zeros(len(values), dtype=np.int32)
    for boundary in plan.boundaries:
        try:
            scalar = pa.scalar(boundary).cast(values.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise ConfigError(
                f"value_split boundary {boundary!r} cannot be compared with feature "
                f"{plan.feature!r} of type {values.type}") from None
        index += pc.greater_equal(values, scalar).to_numpy(zero_copy_only=False).astype(np.int32)
    return index
