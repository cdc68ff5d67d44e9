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

from typing import Optional, Sequence

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


def bad_records(records: list[bytes], payload_format: str, mode: str, offset: int,
                array: pa.Array | None = None, frames: pa.Array | None = None) -> list[tuple[int, str]]:
    """(index, reason) of each record that is not the payload type. ``offset``: index of
    the first record in its file (the first 1,000 of a file are always parsed).
    ``array``: the records as a binary array, or ``frames``: their TFRecord frames (either
    saves converting ``records``)."""
    if mode == "none" or payload_format == "FORMAT_PROTO":
        return []
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
    cls = _message_class(payload_format)
    problems = []
    for i in suspects:
        reason = _parse_error(cls, records[i], payload_format)
        if reason:
            problems.append((i, reason))
    return problems


def _parse_error(cls, record: bytes, payload_format: str):
    """Why ``record`` is not a serialized ``cls`` without unknown fields (None when it is one)."""
    kind = "tf.train.SequenceExample" if payload_format == "FORMAT_TF_SEQUENCE_EXAMPLE" else "tf.train.Example"
    try:
        message = cls.FromString(record)
    except Exception as exc:  # google.protobuf.message.DecodeError and friends
        return f"not a serialized {kind} ({exc})"
    if _has_unknown_fields(message, record, cls):
        return f"has fields unknown to {kind}{_unknown_fields_hint(cls.FromString(record), payload_format)}"
    return None


def check(records: list[bytes], payload_format: str, mode: str, path: str, offset: int,
          array: pa.Array | None = None, frames: pa.Array | None = None) -> None:
    """Raises SourceError naming file and record index for a record that is not the payload."""
    for i, reason in bad_records(records, payload_format, mode, offset, array, frames)[:1]:
        raise SourceError(f"{path}: record {offset + i}: {reason}")


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


def _parsed_features(records: list[bytes], payload_format: str, problems: list):
    """(index, features) of each record that parses; the others go to ``problems``."""
    cls = _message_class(payload_format)
    for i, record in enumerate(records):
        try:
            message = cls.FromString(record)
        except Exception:  # noqa: BLE001 - a record that is not the payload (verify_payload none)
            problems.append((i, _parse_error(cls, record, payload_format)))
            continue
        yield i, _features(message, payload_format)


def feature_keys(records: list[bytes], payload_format: str,
                 name: str) -> tuple[list[Optional[bytes]], str, list[tuple[int, str]]]:
    """The serialized partition Feature of each record (TFX's partition key; None for a bad
    record), its kind, and (index, reason) of the records without a usable key."""
    if payload_format == "FORMAT_PROTO":
        raise ConfigError("partition_feature_name needs FORMAT_TF_EXAMPLE or FORMAT_TF_SEQUENCE_EXAMPLE records")
    keys: list[Optional[bytes]] = [None] * len(records)
    kind, problems = None, []
    for i, features in _parsed_features(records, payload_format, problems):
        this = features[name].WhichOneof("kind") if name in features else None
        if name not in features:
            problems.append((i, f"partition feature {name!r} does not exist"))
        elif this is None:
            problems.append((i, f"partition feature {name!r} has no value"))
        elif this not in ("bytes_list", "int64_list"):
            problems.append((i, f"partition feature {name!r} is a {this}; only bytes_list and int64_list "
                                f"features can partition examples"))
        else:
            keys[i] = features[name].SerializeToString(deterministic=True)
            kind = kind or ("bytes" if this == "bytes_list" else "int64")
    return keys, kind or "bytes", sorted(problems)


def feature_values(records: list[bytes], payload_format: str,
                   name: str) -> tuple[pa.Array, list[tuple[int, str]]]:
    """The single value of feature ``name`` in each record (for a value split; null for a
    bad record) and (index, reason) of the records without exactly one value."""
    if payload_format == "FORMAT_PROTO":
        raise ConfigError("value_split needs FORMAT_TF_EXAMPLE or FORMAT_TF_SEQUENCE_EXAMPLE records")
    values: list = [None] * len(records)
    problems: list = []
    for i, features in _parsed_features(records, payload_format, problems):
        feature = features[name] if name in features else None
        kind = feature.WhichOneof("kind") if feature is not None else None
        items = list(getattr(feature, kind).value) if kind else []
        if len(items) != 1:
            problems.append((i, f"value-split feature {name!r} needs exactly one value, has {len(items)}"))
        else:
            values[i] = items[0]
    present = [v for v in values if v is not None]
    if present and isinstance(present[0], float):
        missing = np.array([v is None for v in values])
        dense = np.asarray([0.0 if v is None else v for v in values], dtype=np.float32)
        return pa.array(dense, mask=missing), sorted(problems)
    return pa.array(values), sorted(problems)
