"""What the sources that read folders of whole files share (images, text): labels from
paths, their options, and work units of whole files.

Labels from paths
-----------------

A file's label is the name of the directory that holds it: ``input_base/cat/1.jpg`` is
``cat`` (also under spans: ``span-3/cat/1.jpg``). Labels become integers through a
**label map**, the list of label names whose positions are the label ids:

- without a previous map, the labels found in every split of the run, sorted (the order
  of ``tf.keras.utils.image_dataset_from_directory``);
- with a previous map (given by the user, or recorded on the previous artifact), its
  labels keep their ids and labels it does not hold are appended after it, sorted among
  themselves, so a new label never renumbers old ones. ``new_labels="error"`` makes an
  unknown label an error instead (a fixed class set).

The map is recorded in the artifact's ``examples_metadata.json`` as ``label_map`` (a JSON
list) and on the Examples artifact in ML Metadata.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterable, Optional, Sequence

from examplegen.errors import ConfigError, SourceError
from examplegen.sources.base import WorkUnit

METADATA_KEY = "label_map"
NEW_LABEL_POLICIES = ("append", "error")


def label_of(path: str) -> str:
    """The label of a file: the name of its directory."""
    return os.path.basename(os.path.dirname(os.path.normpath(path)))


def _check_labels(labels: Any, where: str) -> tuple[str, ...]:
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) and x for x in labels):
        raise ConfigError(f"{where}: a label map is a list of non-empty label names, got {labels!r}")
    duplicates = sorted({x for x in labels if list(labels).count(x) > 1})
    if duplicates:
        raise ConfigError(f"{where}: label map names {duplicates} more than once")
    return tuple(labels)


def load_label_map(spec: Any) -> Optional[tuple[str, ...]]:
    """A label map from an option value.

    ``spec`` is a list of labels, JSON text of one, the path of a JSON file holding a list
    (or an object with a ``label_map`` list, e.g. an ``examples_metadata.json``), or the
    directory of an Examples artifact whose metadata records one. None or "" means none.
    """
    if spec is None or spec == "" or spec == []:
        return None
    if isinstance(spec, (list, tuple)):
        return _check_labels(list(spec), "label_map")
    if not isinstance(spec, str):
        raise ConfigError(f"label_map: expected a list of labels or a path, got {spec!r}")
    text = spec.strip()
    if text.startswith("["):
        try:
            return _check_labels(json.loads(text), "label_map")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"label_map: invalid JSON ({exc})") from None
    path = spec
    if os.path.isdir(path):
        path = os.path.join(path, "examples_metadata.json")
        if not os.path.exists(path):
            raise ConfigError(f"label_map: {spec} is a directory without examples_metadata.json "
                              f"(not a committed Examples artifact)")
        recorded = previous_label_map(spec)
        if recorded is None:
            raise ConfigError(f"label_map: the Examples artifact {spec} records no label map")
        return recorded
    if not os.path.exists(path):
        raise ConfigError(f"label_map: {spec!r} is neither a JSON list of labels nor an existing file "
                          f"or Examples artifact directory")
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"label_map: cannot read {path} as JSON ({exc})") from None
    if isinstance(value, dict):
        return recorded_label_map(value, f"label_map file {path}")
    return _check_labels(value, f"label_map file {path}")


def recorded_label_map(metadata: dict, where: str) -> Optional[tuple[str, ...]]:
    """The label map in an artifact's metadata (a list, or JSON text of one), or None."""
    value = metadata.get(METADATA_KEY)
    if value is None:
        return None
    if isinstance(value, str):  # examples_metadata.json and ML Metadata hold it as JSON text
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: the recorded label_map is not JSON ({exc})") from None
    return _check_labels(value, where)


def previous_label_map(examples_dir: str) -> Optional[tuple[str, ...]]:
    """The label map recorded on a committed Examples artifact, or None."""
    path = os.path.join(examples_dir, "examples_metadata.json")
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (OSError, ValueError):
        return None
    return recorded_label_map(metadata, path) if isinstance(metadata, dict) else None


def build_label_map(files: Iterable[str], previous: Optional[Sequence[str]] = None,
                    new_labels: str = "append") -> tuple[str, ...]:
    """The label map for ``files``: ``previous`` kept as it is, new labels appended sorted
    (``new_labels="error"``: a label not in ``previous`` is an error)."""
    first_file: dict[str, str] = {}
    for path in files:
        first_file.setdefault(label_of(path), path)
    known = tuple(previous or ())
    new = sorted(set(first_file) - set(known))
    if new and previous is not None and new_labels == "error":
        examples = ", ".join(f"{label!r} ({first_file[label]})" for label in new[:5])
        raise SourceError(f"label(s) not in the label map {list(known)}: {examples}; add them to label_map "
                          f"or set new_labels to 'append'")
    return known + tuple(new)


def label_ids(paths: Sequence[str], label_map: Sequence[str]) -> tuple[list[int], list[str]]:
    """(label id, label) of every path under ``label_map``."""
    index = {label: i for i, label in enumerate(label_map)}
    ids, names = [], []
    for path in paths:
        label = label_of(path)
        if label not in index:
            raise SourceError(f"{path}: label {label!r} is not in the label map {list(label_map)}")
        ids.append(index[label])
        names.append(label)
    return ids, names


@dataclasses.dataclass(frozen=True)
class SourceOptions:
    """Options shared by the sources with labels from paths (images, text).

    ``labels``: take labels from the files' directories. ``label_map``: see
    load_label_map; None means the previous artifact's map (see for_output), if any, else
    the sorted labels found. ``new_labels``: "append" or "error".
    """

    labels: bool = True
    label_map: Optional[tuple[str, ...]] = None
    new_labels: str = "append"

    _what = "source"  # option group name in messages

    @classmethod
    def from_dict(cls, d: Optional[dict]):
        d = dict(d or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in d:
            if key not in fields:
                raise ConfigError(f"{cls._what} option {key!r} is unknown (known: {', '.join(sorted(fields))})")
        for key, value in list(d.items()):
            if key == "label_map":
                d[key] = load_label_map(value)
            elif isinstance(value, list):
                d[key] = tuple(value)
            elif isinstance(value, str) and str(fields[key].type).startswith("tuple"):
                d[key] = tuple(v.strip() for v in value.split(",") if v.strip())
            elif fields[key].type in ("bool", bool) and not isinstance(value, bool):
                if str(value).lower() not in ("true", "false", "1", "0"):
                    raise ConfigError(f"{cls._what} option {key!r}: expected true or false, got {value!r}")
                d[key] = str(value).lower() in ("true", "1")
        return cls(**d)

    def __post_init__(self):
        if self.new_labels not in NEW_LABEL_POLICIES:
            raise ConfigError(f"{self._what} option new_labels: {self.new_labels!r} is unknown; "
                              f"use one of {', '.join(NEW_LABEL_POLICIES)}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def with_label_map(self, files: Iterable[str], previous: Optional[Sequence[str]] = None):
        """These options with the label map of ``files`` resolved (see build_label_map):
        the given map, else ``previous``, extended by the labels found."""
        if not self.labels:
            return self
        base = self.label_map if self.label_map is not None else previous
        return dataclasses.replace(self, label_map=build_label_map(files, base, self.new_labels))


@dataclasses.dataclass(frozen=True)
class FileUnit(WorkUnit):
    """A work unit: consecutive whole files of one input split (``path`` is the first)."""

    files: tuple[str, ...] = ()
    rows_per_file: bool = True  # one row per file: where(row) can name the file

    def where(self, row: int) -> str:
        if self.rows_per_file and 0 <= row < len(self.files):
            return self.files[row]
        return f"{self.path} (or a later file of its work unit of {len(self.files)}): example {row}"


def plan_files(files: Sequence[str], unit_bytes: int, unit_files: int = 1 << 30,
               rows_per_file: bool = True) -> list[FileUnit]:
    """Work units of consecutive whole files, about ``unit_bytes`` (at most ``unit_files``) each."""
    units, current, size = [], [], 0

    def unit() -> FileUnit:
        return FileUnit(current[0], size, tuple(current), rows_per_file)

    for path in files:
        n = os.path.getsize(path)
        if current and (size + n > unit_bytes or len(current) >= unit_files):
            units.append(unit())
            current, size = [], 0
        current.append(path)
        size += n
    if current:
        units.append(unit())
    return units


def for_output(options: SourceOptions, previous) -> SourceOptions:
    """The source hook (examplegen.sources): without a given label map, the one recorded on
    the previous artifact (``previous()``: its metadata or None), so a new span keeps the
    label ids."""
    if not options.labels or options.label_map is not None:
        return options
    recorded = recorded_label_map(previous() or {}, "the previous Examples artifact")
    return dataclasses.replace(options, label_map=recorded) if recorded is not None else options


def prepare(options: SourceOptions, split_files: dict) -> SourceOptions:
    """The source hook: the label map over every split's files (new labels appended)."""
    return options.with_label_map([f for names in split_files.values() for f in names])


def artifact_metadata(options: SourceOptions) -> dict:
    """The source hook: the label map, recorded on the Examples artifact (None before
    prepare has resolved it)."""
    if not options.labels:
        return {}
    return {METADATA_KEY: json.dumps(list(options.label_map)) if options.label_map is not None else None}


def default_input_pattern(options: SourceOptions) -> str:
    """The source hook: files one folder down (``<label>/<file>``) with labels, else ``*``."""
    return "*/*" if options.labels else "*"
