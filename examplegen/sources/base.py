"""The types of the source contract (see examplegen.sources for the contract itself)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Optional, Sequence

import pyarrow as pa

from examplegen.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class WorkUnit:
    """One piece of a split's input that one worker converts: a file, a range of it, row groups.

    A source subclasses it (a frozen dataclass, so it pickles to worker processes) and adds
    what its ``read`` needs. ``size`` is in input bytes (progress and scheduling only).
    """

    path: str
    size: int

    def where(self, row: int) -> str:
        """Where the unit's ``row``-th row (0-based, counted over the unit) comes from, for
        error messages: ``"<file>: row N"`` by default; sources override it (line numbers)."""
        return f"{self.path}: row {row}"


@dataclasses.dataclass
class Plan:
    """What ``plan()`` returns for one input split (it lives in the launcher, never pickled).

    units: the work units in output order; may be a lazy iterable, consumed as workers
      free up (conversion starts with the first unit).
    columns: the feature names the examples will have, when known before reading (a split
      feature that is not one of them fails before any data is read); None: checked while
      converting.
    review: called with the return values of ``read()`` for every unit (a list, in unit
      order) after the split is converted; returning a new Plan discards the split's output
      and converts it again with that plan (CSV: a later chunk needed a wider type than the
      sample showed). None: nothing to review.
    info: facts about the split recorded in the run's config (key -> value; e.g.
      ``{"column_types": {...}}``), read after the last review.
    """

    units: Iterable[WorkUnit]
    columns: Optional[Sequence[str]] = None
    review: Optional[Callable[[list], Optional["Plan"]]] = None
    info: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Records:
    """What a records-as-read source (TFRecord import) yields instead of a typed batch: the
    serialized payloads, their TFRecord frames, and the payload format. The records are
    split and written unchanged (their frames are copied, not made again)."""

    records: pa.Array  # binary: the serialized payload of each record
    frames: pa.Array  # binary: the TFRecord frame (length, CRCs, payload) of each record
    payload_format: str  # FORMAT_TF_EXAMPLE | FORMAT_TF_SEQUENCE_EXAMPLE | FORMAT_PROTO


def options_from_dict(cls, d: Optional[dict], source: str):
    """``cls(**d)`` for an options dataclass, with unknown keys a ConfigError naming them."""
    d = dict(d or {})
    known = {f.name for f in dataclasses.fields(cls)}
    for key in d:
        if key not in known:
            raise ConfigError(f"{source} option {key!r} is unknown (known: {', '.join(sorted(known)) or 'none'})")
    return cls(**d)


def schema_pairs(schema: Any, source: str) -> Optional[tuple[tuple[str, str], ...]]:
    """A schema override given as a dict or as ``"col:type,col2:type"``, as sorted pairs."""
    if schema is None:
        return None
    if isinstance(schema, str):
        items = [item.split(":", 1) for item in schema.split(",") if item.strip()]
        if any(len(item) != 2 for item in items):
            raise ConfigError(f"{source} option schema: expected 'column:type,...', got {schema!r}")
        schema = dict(items)
    if not isinstance(schema, dict):
        raise ConfigError(f"{source} option schema: expected an object of column -> type, got {schema!r}")
    return tuple(sorted((str(k).strip(), str(v).strip()) for k, v in schema.items()))
