"""Checks and field access on serialized records of imported TFRecords.

A record passes when it parses as the declared message type without unknown fields (a
tf.train.SequenceExample parses as a tf.train.Example, its feature_lists kept as an
unknown field, so parsing alone would accept it). Verifying that every record parses (``verify_payload="full"``) costs ~4.5 µs a record with
the upb runtime: more than the rest of an import. The default, ``"structure"``, checks
each record's top-level wire structure in bulk with numpy (every top-level field is a
length-delimited field the message type has, and the lengths add up exactly to the record),
fully parses any record that does not have that shape and the first 1,000 records of every
file, and so catches a file of some other payload (text, images, another message type)
or a record cut short. ``"none"`` skips the check.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from examplegen.errors import ConfigError, SourceError

PAYLOAD_FORMATS = ("FORMAT_TF_EXAMPLE", "FORMAT_TF_SEQUENCE_EXAMPLE", "FORMAT_PROTO")
VERIFY_MODES = ("structure", "full", "none")
_FULL_PARSE_PREFIX = 1000
# Top-level field tags (field number << 3 | wire type 2) of each message type.
_TOP_LEVEL_TAGS = {"FORMAT_TF_EXAMPLE": (0x0A,), "FORMAT_TF_SEQUENCE_EXAMPLE": (0x0A, 0x12)}


def normalize_payload_format(value: str) -> str:
    text = (value or "FORMAT_TF_EXAMPLE").strip().upper()
    aliases = {"TF_EXAMPLE": "FORMAT_TF_EXAMPLE", "EXAMPLE": "FORMAT_TF_EXAMPLE",
               "TF_SEQUENCE_EXAMPLE": "FORMAT_TF_SEQUENCE_EXAMPLE",
               "SEQUENCE_EXAMPLE": "FORMAT_TF_SEQUENCE_EXAMPLE", "PROTO": "FORMAT_PROTO"}
    text = aliases.get(text, text)
    if text not in PAYLOAD_FORMATS:
        raise ConfigError(f"payload format {value!r} is unknown; use one of {', '.join(PAYLOAD_FORMATS)}")
    return text


def _message_class(payload_format: str):
    from examplegen import protos

    return protos.SequenceExample if payload_format == "FORMAT_TF_SEQUENCE_EXAMPLE" else protos.Example


def structure_ok(records: pa.Array, tags: Sequence[int], max_fields: int = 4,
                 framed: bool = False) -> np.ndarray:
    """Per record: is it a sequence of <= max_fields length-delimited fields with these tags?
    ``framed``: ``records`` holds whole TFRecord frames; the check skips their 12-byte
    header and 4-byte footer."""
    if pa.types.is_large_binary(records.type):
        width = np.int64
    else:
        records = records.cast(pa.binary()) if not pa.types.is_binary(records.type) else records
        width = np.int32
    n = len(records)
    if n == 0:
        return np.zeros(0, dtype=bool)
    offsets = np.frombuffer(records.buffers()[1], dtype=width)[records.offset: records.offset + n + 1]
    data_buffer = records.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(1, np.uint8)
    if len(data) == 0:
        data = np.zeros(1, np.uint8)
    pos = offsets[:-1].astype(np.int64)
    end = offsets[1:].astype(np.int64)
    if framed:
        pos += 12
        end -= 4
    ok = np.ones(n, dtype=bool)
    last = len(data) - 1
    for _ in range(max_fields):
        active = ok & (pos < end)
        if not active.any():
            break
        idx = np.flatnonzero(active)
        p = pos[idx]
        e = end[idx]
        good = np.isin(data[np.minimum(p, last)], tags)
        # varint length (at most 5 bytes for a length below 2**32)
        length = np.zeros(len(idx), dtype=np.int64)
        cur = p + 1
        more = np.ones(len(idx), dtype=bool)
        for b in range(5):
            inside = cur < e
            good &= inside | ~more
            byte = data[np.minimum(cur, last)].astype(np.int64)
            take = more & inside
            length |= np.where(take, (byte & 0x7F) << (7 * b), 0)
            cur = np.where(take, cur + 1, cur)
            more = take & ((byte & 0x80) != 0)
        good &= ~more
        new_pos = cur + length
        good &= new_pos <= e
        ok[idx[~good]] = False
        pos[idx] = np.where(good, new_pos, pos[idx])
    ok &= pos == end
    return ok


def check(records: list[bytes], payload_format: str, mode: str, path: str, offset: int,
          array: pa.Array | None = None, frames: pa.Array | None = None) -> None:
    """Raises SourceError naming file and record index for a record that is not the payload.
    ``array``: the records as a binary array, or ``frames``: their TFRecord frames (either
    saves converting ``records``)."""
    if mode == "none" or payload_format == "FORMAT_PROTO":
        return
    cls = _message_class(payload_format)
    if mode == "full":
        suspects = range(len(records))
    else:
        tags = _TOP_LEVEL_TAGS[payload_format]
        if frames is not None:
            ok = structure_ok(frames, tags, framed=True)
        else:
            ok = structure_ok(array if array is not None else pa.array(records, pa.binary()), tags)
        bad = np.flatnonzero(~ok)
        head = range(0, max(0, min(len(records), _FULL_PARSE_PREFIX - offset)))
        suspects = sorted(set(head) | set(bad.tolist()))
    kind = "tf.train.SequenceExample" if payload_format == "FORMAT_TF_SEQUENCE_EXAMPLE" else "tf.train.Example"
    for i in suspects:
        try:
            message = cls.FromString(records[i])
        except Exception as exc:  # google.protobuf.message.DecodeError and friends
            raise SourceError(f"{path}: record {offset + i}: not a serialized {kind} ({exc})") from None
        if _has_unknown_fields(message, records[i], cls):
            raise SourceError(f"{path}: record {offset + i}: has fields unknown to {kind}"
                              f"{_unknown_fields_hint(cls.FromString(records[i]), payload_format)}")


def _has_unknown_fields(message, record: bytes, cls) -> bool:
    """Whether the parsed ``message`` kept unknown fields, at any depth. ``message`` is
    changed. Fast path: without unknown fields (and encoded canonically, as every protobuf
    library writes) the record is exactly as long as its known fields serialized."""
    message.DiscardUnknownFields()
    if message.ByteSize() == len(record):
        return False
    parsed = cls.FromString(record)  # sizes differ: unknown fields, or a non-canonical encoding
    size = parsed.ByteSize()
    parsed.DiscardUnknownFields()
    return parsed.ByteSize() != size


def _unknown_fields_hint(message, payload_format: str) -> str:
    """Which top-level fields are unknown, and the likely payload format."""
    from google.protobuf.unknown_fields import UnknownFieldSet

    numbers = sorted({field.field_number for field in UnknownFieldSet(message)})
    where = f" (top-level field {', '.join(map(str, numbers))})" if numbers else " (inside a feature)"
    if payload_format == "FORMAT_TF_EXAMPLE" and numbers == [2]:
        return (f"{where}: it looks like a tf.train.SequenceExample (field 2 is its feature_lists); "
                "import it with payload format FORMAT_TF_SEQUENCE_EXAMPLE")
    return (f"{where}: the records are of another message type; give the right payload format, "
            "or FORMAT_PROTO to import them unchecked")


def _features(message, payload_format: str):
    return message.context.feature if payload_format == "FORMAT_TF_SEQUENCE_EXAMPLE" else message.features.feature


def feature_keys(records: list[bytes], payload_format: str, name: str,
                 where: Callable[[int], str]) -> tuple[list[bytes], str]:
    """The serialized partition Feature of each record (TFX's partition key) and its kind."""
    if payload_format == "FORMAT_PROTO":
        raise ConfigError("partition_feature_name needs FORMAT_TF_EXAMPLE or FORMAT_TF_SEQUENCE_EXAMPLE records")
    cls = _message_class(payload_format)
    keys, kind = [], None
    for i, record in enumerate(records):
        features = _features(cls.FromString(record), payload_format)
        if name not in features:
            raise SourceError(f"{where(i)}: partition feature {name!r} does not exist")
        feature = features[name]
        this = feature.WhichOneof("kind")
        if this is None:
            raise SourceError(f"{where(i)}: partition feature {name!r} has no value")
        if this not in ("bytes_list", "int64_list"):
            raise SourceError(f"{where(i)}: partition feature {name!r} is a {this}; only bytes_list "
                              f"and int64_list features can partition examples")
        keys.append(feature.SerializeToString(deterministic=True))
        kind = kind or ("bytes" if this == "bytes_list" else "int64")
    return keys, kind or "bytes"


def feature_values(records: list[bytes], payload_format: str, name: str,
                   where: Callable[[int], str]) -> pa.Array:
    """The single value of feature ``name`` in each record (for a value split)."""
    if payload_format == "FORMAT_PROTO":
        raise ConfigError("value_split needs FORMAT_TF_EXAMPLE or FORMAT_TF_SEQUENCE_EXAMPLE records")
    cls = _message_class(payload_format)
    values = []
    for i, record in enumerate(records):
        features = _features(cls.FromString(record), payload_format)
        feature = features[name] if name in features else None
        kind = feature.WhichOneof("kind") if feature is not None else None
        items = list(getattr(feature, kind).value) if kind else []
        if len(items) != 1:
            raise SourceError(f"{where(i)}: value-split feature {name!r} needs exactly one value, "
                              f"has {len(items)}")
        values.append(items[0])
    if values and isinstance(values[0], float):
        return pa.array(np.asarray(values, dtype=np.float32))
    return pa.array(values)
