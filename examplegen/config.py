"""TFX-compatible ExampleGen configs: Input, Output (SplitConfig) and RangeConfig.

The configs are the JSON form of TFX's protos (tfx/proto/example_gen.proto and
range_config.proto), given as a JSON string, a dict, a path to a .json file, or a
protobuf message. Keys may be snake_case or camelCase. Unknown keys and wrong types are
a ConfigError naming the key path, e.g.
`output_config.split_config.splits[1].hash_buckets: expected an integer from 1 to 4294967295
(a uint32 in TFX's proto), got "2x"`.

One addition beyond TFX: `split_config.value_split` assigns rows to output splits by
comparing one feature with ascending boundaries instead of hashing (see ValueSplit).

TFX's `output_data_format` and `output_file_format` are component parameters, not fields
of the Output proto, so they are not accepted here.

`to_dict()` / `to_json()` give the canonical snake_case form (deterministic; used in
lineage records and cache keys).
"""

from __future__ import annotations

import bisect
import dataclasses
import difflib
import json
import math
import os
import re
from typing import Any, Mapping, Optional, Union

from examplegen.errors import ConfigError

SPLIT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
DEFAULT_INPUT_SPLIT = "single_split"
DEFAULT_INPUT_PATTERN = "*"
# TFX's default output when one input split is hashed: train 2 buckets, eval 1.
DEFAULT_OUTPUT_SPLITS = (("train", 2), ("eval", 1))

_INT32 = (-(2**31), 2**31 - 1)
_UINT32_MAX = 2**32 - 1
_HASH_BUCKETS = f"an integer from 1 to {_UINT32_MAX} (a uint32 in TFX's proto)"

Boundary = Union[int, float, str]


# ---------------------------------------------------------------- dataclasses


@dataclasses.dataclass(frozen=True)
class InputSplit:
    """One input split: a name and a glob pattern relative to the input base."""

    name: str
    pattern: str

    def to_dict(self) -> dict:
        return {"name": self.name, "pattern": self.pattern}


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """example_gen_pb2.Input. The default is one split `single_split` with pattern `*`."""

    splits: tuple[InputSplit, ...] = (InputSplit(DEFAULT_INPUT_SPLIT, DEFAULT_INPUT_PATTERN),)

    def __post_init__(self):
        object.__setattr__(self, "splits", tuple(self.splits))
        if not self.splits:
            raise ConfigError("input_config.splits: at least one split is required")
        seen: dict[str, int] = {}
        for i, split in enumerate(self.splits):
            path = f"input_config.splits[{i}]"
            _check_split_name(split.name, f"{path}.name", seen, i)
            pattern = split.pattern
            if not isinstance(pattern, str) or not pattern:
                raise ConfigError(
                    f"{path}.pattern: expected a non-empty string, got {_show(pattern)}"
                )
            if pattern.startswith("/") or "://" in pattern:
                raise ConfigError(
                    f"{path}.pattern: {pattern!r} must be relative to the input base directory"
                )
            if ".." in pattern.split("/"):
                raise ConfigError(
                    f"{path}.pattern: {pattern!r} has a '..' part, which leads outside the input "
                    "base; patterns only select files inside it (choose a higher input base)"
                )

    @property
    def split_names(self) -> list[str]:
        return [split.name for split in self.splits]

    def to_dict(self) -> dict:
        return {"splits": [split.to_dict() for split in self.splits]}

    def to_json(self) -> str:
        return _dump(self.to_dict())


@dataclasses.dataclass(frozen=True)
class OutputSplit:
    """One output split. hash_buckets may be None only when a value_split is used."""

    name: str
    hash_buckets: Optional[int] = None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"name": self.name}
        if self.hash_buckets is not None:
            out["hash_buckets"] = self.hash_buckets
        return out


@dataclasses.dataclass(frozen=True)
class ValueSplit:
    """Beyond TFX: route rows by the value of one feature.

    With N output splits there are N-1 strictly ascending boundaries (all numbers or all
    strings). A row whose value is < boundaries[0] goes to splits[0], < boundaries[1] to
    splits[1], ..., and anything else to the last split.
    """

    feature_name: str
    boundaries: tuple[Boundary, ...]

    def __post_init__(self):
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        path = "output_config.split_config.value_split"
        if not isinstance(self.feature_name, str) or not self.feature_name:
            raise ConfigError(
                f"{path}.feature_name: expected a non-empty string, got {_show(self.feature_name)}"
            )
        kind = None
        for i, value in enumerate(self.boundaries):
            item = f"{path}.boundaries[{i}]"
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ConfigError(f"{item}: expected a number or a string, got {_show(value)}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{item}: expected a finite number, got {value}")
            this_kind = "a string" if isinstance(value, str) else "a number"
            if kind is None:
                kind = this_kind
            elif this_kind != kind:
                raise ConfigError(f"{item}: expected {kind} like boundaries[0], got {_show(value)}")
            if i and not self.boundaries[i - 1] < value:
                raise ConfigError(
                    f"{item}: {_show(value)} is not greater than boundaries[{i - 1}] "
                    f"({_show(self.boundaries[i - 1])}); boundaries must be strictly ascending"
                )

    def split_index(self, value: Boundary) -> int:
        """Index of the output split a row with feature `value` belongs to."""
        return bisect.bisect_right(self.boundaries, value)

    def to_dict(self) -> dict:
        return {"feature_name": self.feature_name, "boundaries": list(self.boundaries)}


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """example_gen_pb2.Output (its split_config), plus our value_split.

    Empty `splits` means "not specified": see effective_output_config for what TFX does
    then (train/eval 2:1 for one input split, the input splits unchanged for several).
    """

    splits: tuple[OutputSplit, ...] = ()
    partition_feature_name: Optional[str] = None
    value_split: Optional[ValueSplit] = None

    def __post_init__(self):
        object.__setattr__(self, "splits", tuple(self.splits))
        path = "output_config.split_config"
        if self.partition_feature_name == "":
            object.__setattr__(self, "partition_feature_name", None)
        if self.partition_feature_name is not None and not isinstance(
            self.partition_feature_name, str
        ):
            raise ConfigError(
                f"{path}.partition_feature_name: expected a string, "
                f"got {_show(self.partition_feature_name)}"
            )
        if self.partition_feature_name is not None and self.value_split is not None:
            raise ConfigError(
                f"{path}: partition_feature_name and value_split are exclusive; give one of them"
            )
        if not self.splits:
            for key in ("partition_feature_name", "value_split"):
                if getattr(self, key) is not None:
                    raise ConfigError(f"{path}.{key}: needs output splits in {path}.splits")
            return
        seen: dict[str, int] = {}
        for i, split in enumerate(self.splits):
            item = f"{path}.splits[{i}]"
            _check_split_name(split.name, f"{item}.name", seen, i)
            buckets = split.hash_buckets
            if buckets is None:
                if self.value_split is None:
                    raise ConfigError(
                        f"{item}.hash_buckets: required (a positive integer) "
                        f"unless {path}.value_split is given"
                    )
            elif (
                isinstance(buckets, bool)
                or not isinstance(buckets, int)
                or not (0 < buckets <= _UINT32_MAX)
            ):
                raise ConfigError(f"{item}.hash_buckets: expected {_HASH_BUCKETS}, got {_show(buckets)}")
        if self.value_split is not None:
            wanted = len(self.splits) - 1
            got = len(self.value_split.boundaries)
            if got != wanted:
                raise ConfigError(
                    f"{path}.value_split.boundaries: {len(self.splits)} output splits need "
                    f"{wanted} boundaries, got {got}"
                )

    @property
    def split_names(self) -> list[str]:
        return [split.name for split in self.splits]

    @property
    def total_hash_buckets(self) -> int:
        return sum(split.hash_buckets or 0 for split in self.splits)

    def to_dict(self) -> dict:
        if not self.splits:
            return {}
        split_config: dict[str, Any] = {"splits": [split.to_dict() for split in self.splits]}
        if self.partition_feature_name is not None:
            split_config["partition_feature_name"] = self.partition_feature_name
        if self.value_split is not None:
            split_config["value_split"] = self.value_split.to_dict()
        return {"split_config": split_config}

    def to_json(self) -> str:
        return _dump(self.to_dict())


@dataclasses.dataclass(frozen=True)
class StaticRange:
    """Spans [start_span_number, end_span_number], both included."""

    start_span_number: int = 0
    end_span_number: int = 0

    def __post_init__(self):
        path = "range_config.static_range"
        for key in ("start_span_number", "end_span_number"):
            _check_int(getattr(self, key), f"{path}.{key}", *_INT32, "a 32-bit integer")
        if self.start_span_number > self.end_span_number:
            raise ConfigError(
                f"{path}: start_span_number ({self.start_span_number}) is greater than "
                f"end_span_number ({self.end_span_number})"
            )

    def to_dict(self) -> dict:
        return {
            "start_span_number": self.start_span_number,
            "end_span_number": self.end_span_number,
        }


@dataclasses.dataclass(frozen=True)
class RollingRange:
    """The latest `num_spans` spans, none before start_span_number."""

    num_spans: int = 1
    start_span_number: int = 0

    def __post_init__(self):
        path = "range_config.rolling_range"
        _check_int(self.num_spans, f"{path}.num_spans", 1, _INT32[1], "a positive integer")
        _check_int(
            self.start_span_number,
            f"{path}.start_span_number",
            0,
            _INT32[1],
            "an integer >= 0",
        )

    def to_dict(self) -> dict:
        return {"start_span_number": self.start_span_number, "num_spans": self.num_spans}


@dataclasses.dataclass(frozen=True)
class RangeConfig:
    """range_config_pb2.RangeConfig: exactly one of static_range and rolling_range."""

    static_range: Optional[StaticRange] = None
    rolling_range: Optional[RollingRange] = None

    def __post_init__(self):
        if (self.static_range is None) == (self.rolling_range is None):
            raise ConfigError("range_config: give exactly one of static_range and rolling_range")

    @classmethod
    def static(cls, start_span_number: int, end_span_number: Optional[int] = None) -> "RangeConfig":
        end = start_span_number if end_span_number is None else end_span_number
        return cls(static_range=StaticRange(start_span_number, end))

    @classmethod
    def rolling(cls, num_spans: int = 1, start_span_number: int = 0) -> "RangeConfig":
        return cls(rolling_range=RollingRange(num_spans, start_span_number))

    def to_dict(self) -> dict:
        if self.static_range is not None:
            return {"static_range": self.static_range.to_dict()}
        return {"rolling_range": self.rolling_range.to_dict()}

    def to_json(self) -> str:
        return _dump(self.to_dict())


# ---------------------------------------------------------------- parsing


def parse_input_config(source: Any) -> InputConfig:
    """InputConfig from JSON text, a dict, a .json path or a proto; None/""/{} -> default."""
    if isinstance(source, InputConfig):
        return source
    raw = _load(source, "input_config")
    if not raw:
        return InputConfig()
    fields = _fields(raw, "input_config", ("splits",))
    if "splits" not in fields:
        return InputConfig()
    splits = []
    for i, item in enumerate(_list(fields["splits"], "input_config.splits")):
        path = f"input_config.splits[{i}]"
        split = _fields(item, path, ("name", "pattern"))
        splits.append(
            InputSplit(
                name=_string(_required(split, "name", path), f"{path}.name"),
                pattern=_string(_required(split, "pattern", path), f"{path}.pattern"),
            )
        )
    return InputConfig(tuple(splits))


def parse_output_config(source: Any) -> OutputConfig:
    """OutputConfig from JSON text, a dict, a .json path or a proto; None/""/{} -> empty."""
    if isinstance(source, OutputConfig):
        return source
    raw = _load(source, "output_config")
    if not raw:
        return OutputConfig()
    fields = _fields(raw, "output_config", ("split_config",))
    if "split_config" not in fields:
        return OutputConfig()
    root = "output_config.split_config"
    config = _fields(
        fields["split_config"], root, ("splits", "partition_feature_name", "value_split")
    )
    splits = []
    for i, item in enumerate(_list(config.get("splits", []), f"{root}.splits")):
        path = f"{root}.splits[{i}]"
        split = _fields(item, path, ("name", "hash_buckets"))
        buckets = split.get("hash_buckets")
        if buckets is not None:
            buckets = _integer(buckets, f"{path}.hash_buckets", 1, _UINT32_MAX, _HASH_BUCKETS)
        splits.append(OutputSplit(_string(_required(split, "name", path), f"{path}.name"), buckets))
    partition = config.get("partition_feature_name")
    if partition is not None:
        partition = _string(partition, f"{root}.partition_feature_name", allow_empty=True)
    value_split = None
    if config.get("value_split") is not None:
        path = f"{root}.value_split"
        vs = _fields(config["value_split"], path, ("feature_name", "boundaries"))
        value_split = ValueSplit(
            feature_name=_string(_required(vs, "feature_name", path), f"{path}.feature_name"),
            boundaries=tuple(_list(_required(vs, "boundaries", path), f"{path}.boundaries")),
        )
    return OutputConfig(tuple(splits), partition or None, value_split)


def parse_range_config(source: Any) -> Optional[RangeConfig]:
    """RangeConfig from JSON text, a dict, a .json path or a proto; None/"" -> None."""
    if source is None or isinstance(source, RangeConfig):
        return source
    raw = _load(source, "range_config")
    if raw is None:
        return None
    fields = _fields(raw, "range_config", ("static_range", "rolling_range"))
    if len(fields) != 1:
        raise ConfigError("range_config: give exactly one of static_range and rolling_range")
    if "static_range" in fields:
        path = "range_config.static_range"
        sr = _fields(fields["static_range"], path, ("start_span_number", "end_span_number"))
        # Proto3 JSON leaves out zeros, so a missing number means 0.
        return RangeConfig(
            static_range=StaticRange(
                start_span_number=_integer(
                    sr.get("start_span_number", 0),
                    f"{path}.start_span_number",
                    *_INT32,
                    "a 32-bit integer",
                ),
                end_span_number=_integer(
                    sr.get("end_span_number", 0),
                    f"{path}.end_span_number",
                    *_INT32,
                    "a 32-bit integer",
                ),
            )
        )
    path = "range_config.rolling_range"
    rr = _fields(fields["rolling_range"], path, ("start_span_number", "num_spans"))
    return RangeConfig(
        rolling_range=RollingRange(
            num_spans=_integer(
                rr.get("num_spans", 0), f"{path}.num_spans", 1, _INT32[1], "a positive integer"
            ),
            start_span_number=_integer(
                rr.get("start_span_number", 0),
                f"{path}.start_span_number",
                0,
                _INT32[1],
                "an integer >= 0",
            ),
        )
    )


# ---------------------------------------------------------------- TFX split rules


def effective_output_config(input_config: InputConfig, output_config: OutputConfig) -> OutputConfig:
    """The output config ExampleGen really uses (TFX's make_default_output_config rules).

    - output splits given: there must be exactly one input split; returned as is.
    - none given, one input split: train (2 hash buckets) / eval (1).
    - none given, several input splits: empty -- the output splits are the input splits,
      copied through without hashing.
    """
    if output_config.splits:
        if len(input_config.splits) != 1:
            names = ", ".join(input_config.split_names)
            raise ConfigError(
                "output_config.split_config.splits: output splits need exactly one input "
                f"split, but input_config has {len(input_config.splits)} ({names}); leave "
                "output_config empty to keep the input splits as they are"
            )
        return output_config
    if len(input_config.splits) == 1:
        return OutputConfig(tuple(OutputSplit(n, b) for n, b in DEFAULT_OUTPUT_SPLITS))
    return output_config


def effective_output_splits(input_config: InputConfig, output_config: OutputConfig) -> list[str]:
    """Output split names in output order (TFX's generate_output_split_names)."""
    config = effective_output_config(input_config, output_config)
    return config.split_names if config.splits else input_config.split_names


# ---------------------------------------------------------------- helpers


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _show(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _check_split_name(name: Any, path: str, seen: dict[str, int], index: int) -> None:
    if not isinstance(name, str) or not SPLIT_NAME_RE.match(name):
        raise ConfigError(
            f"{path}: {_show(name)} is not a valid split name (letters, digits, '_' and '-', "
            "starting with a letter or digit)"
        )
    if name in seen:
        raise ConfigError(f"{path}: duplicate split name {name!r} (also splits[{seen[name]}])")
    seen[name] = index


def _load(source: Any, root: str) -> Optional[dict]:
    """The raw dict behind `source`, or None when nothing was given."""
    if source is None:
        return None
    if hasattr(source, "DESCRIPTOR") and hasattr(source, "ListFields"):  # a protobuf message
        from google.protobuf import json_format

        return json_format.MessageToDict(source, preserving_proto_field_name=True)
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    origin = None
    if isinstance(source, os.PathLike):
        origin = os.fspath(source)
    elif isinstance(source, str):
        text = source.strip()
        if not text:
            return None
        if text[0] not in "{[" and text != "null":
            origin = text
    else:
        raise ConfigError(
            f"{root}: expected JSON text, a dict or a .json path, got {type(source).__name__}"
        )
    where = root
    if origin is not None:
        where = f"{root} ({origin})"
        if not os.path.isfile(origin):
            raise ConfigError(f"{root}: {origin!r} is neither JSON text nor an existing .json file")
        try:
            with open(origin, encoding="utf-8") as stream:
                text = stream.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{where}: cannot read: {exc}") from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {_show(value)}")
    return value


def load_object(source: Any, root: str) -> Optional[dict]:
    """A JSON object given as JSON text, a dict or the path of a .json file (None: not given)."""
    return _load(source, root)


def _snake(key: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), key)


def _fields(value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The object's keys mapped to snake_case; null values are dropped (proto3: unset)."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected an object, got {_show(value)}")
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, item in value.items():
        name = _snake(key) if isinstance(key, str) else key
        if name not in allowed:
            hint = difflib.get_close_matches(str(name), allowed, n=1)
            raise ConfigError(
                f"{path}.{key}: unknown key; expected one of {', '.join(allowed)}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
            )
        if name in spelled:
            raise ConfigError(f"{path}.{name}: given twice (as {spelled[name]!r} and {key!r})")
        spelled[name] = key
        if item is not None:
            out[name] = item
    return out


def _required(fields: dict, key: str, path: str) -> Any:
    if key not in fields:
        raise ConfigError(f"{path}.{key}: required")
    return fields[key]


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list, got {_show(value)}")
    return value


def _string(value: Any, path: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ConfigError(f"{path}: expected a non-empty string, got {_show(value)}")
    return value


def _integer(value: Any, path: str, low: int, high: int, what: str) -> int:
    """An integer as proto3 JSON allows it: a number with no fraction, or a decimal string."""
    number = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        number = int(value.strip())
    if number is None or not low <= number <= high:
        raise ConfigError(f"{path}: expected {what}, got {_show(value)}")
    return number


def _check_int(value: Any, path: str, low: int, high: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{path}: expected {what}, got {_show(value)}")
