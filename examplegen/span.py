"""Span, version and date resolution of input split patterns (TFX's rules).

A split pattern is a glob relative to the input base that may hold these specs:

- `{SPAN}` or `{SPAN:w}`: digits giving the span number (`w` digits exactly, if given);
- `{YYYY}`, `{MM}`, `{DD}`: a date; span = days since 1970-01-01. All three exactly once,
  and never together with `{SPAN}`;
- `{VERSION}` or `{VERSION:w}`: digits giving the version; needs a span or date spec.

Each spec may appear at most once and every split must use the same specs. Without a
range config (or with rolling_range num_spans=1) the latest span wins, then the latest
version within it, and every split must resolve to the same span and version. A static
range pins the span. A pattern with no spec is span 0, version None.
Globs follow TFX (tf.io.gfile): `*` and `?` never cross '/', and `*` also matches
names starting with a dot.

Beyond TFX:
- a static range with start < end resolves every span in the range that has files, one
  SpanResolution per span, ascending, each at its latest version (TFX issue #5462);
- spans written with zero padding but matched by a width-less `{SPAN}` (`span01`) resolve
  to int("01") = 1, also for a static range;
- specs match digits only, so a file that matches the glob but whose span/version/date
  part is not digits is an error naming the file (TFX also fails, less clearly);
- only regular files count; directories matched by a glob are ignored;
- the fingerprint is built from the files' content digests, not sizes and mtimes.

The resolved pattern (specs replaced by the matched digits) is what TFX hands to its
executor. Read `ResolvedSplit.files`, not a re-glob of that pattern: a resolved
`data_1*` would also match span 12's `data_12.csv`.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import os
import re
from typing import Any, Optional, Sequence, Union

from examplegen import fs
from examplegen.config import (
    InputConfig,
    InputSplit,
    RangeConfig,
    parse_input_config,
    parse_range_config,
)
from examplegen.digest import file_digest
from examplegen.errors import ConfigError, SpanResolutionError
from examplegen.result import SourceFile
from examplegen.writer import FILE_PREFIX, METADATA_FILE, SPLIT_PREFIX, STAGING_PREFIX

log = logging.getLogger(__name__)

SPAN_SPEC = "{SPAN}"
VERSION_SPEC = "{VERSION}"
DATE_SPECS = ("{YYYY}", "{MM}", "{DD}")
# {SPAN} or {SPAN:w}; like TFX, an empty width ({SPAN:}) means no width.
_SPAN_RE = re.compile(r"\{SPAN(?::(?P<width>[^}]*))?\}")
_VERSION_RE = re.compile(r"\{VERSION(?::(?P<width>[^}]*))?\}")
_ANY_SPEC_RE = re.compile(r"\{SPAN(?::[^}]*)?\}|\{VERSION(?::[^}]*)?\}|\{YYYY\}|\{MM\}|\{DD\}")
_DATE_GROUPS = {"{YYYY}": ("year", 4), "{MM}": ("month", 2), "{DD}": ("day", 2)}
UNIX_EPOCH = datetime.date(1970, 1, 1)


# ---------------------------------------------------------------- public data


@dataclasses.dataclass(frozen=True)
class ResolvedSplit:
    """One input split resolved to concrete files."""

    name: str
    pattern: str  # relative to the input base, specs replaced by the matched digits
    files: tuple[str, ...]  # absolute paths, sorted
    sources: tuple[SourceFile, ...] = ()  # the same files with size and digest


@dataclasses.dataclass(frozen=True)
class SpanResolution:
    """The files of one span (at one version) for every input split."""

    span: int
    version: Optional[int]
    splits: tuple[ResolvedSplit, ...]
    fingerprint: str  # "sha256:<hex>" over each split's (relative path, content digest)
    input_base: str = ""

    def input_config(self) -> InputConfig:
        """The input config with the resolved patterns."""
        return InputConfig(tuple(InputSplit(s.name, s.pattern) for s in self.splits))

    def sources(self) -> list[SourceFile]:
        """Every input file with its size and digest, split by split."""
        return [source for split in self.splits for source in split.sources]

    def to_json(self) -> dict:
        return {
            "span": self.span,
            "version": self.version,
            "splits": [{"name": s.name, "pattern": s.pattern} for s in self.splits],
            "fingerprint": self.fingerprint,
        }


@dataclasses.dataclass(frozen=True)
class PatternSpecs:
    """Which specs a split pattern uses (TFX's verify_split_pattern_specs)."""

    span: bool
    date: bool
    version: bool
    span_width: Optional[int] = None
    version_width: Optional[int] = None

    @property
    def has_span(self) -> bool:
        """True if the pattern carries a span, as {SPAN} or as a date."""
        return self.span or self.date

    def describe(self) -> str:
        parts = [SPAN_SPEC] if self.span else []
        parts += ["{YYYY}{MM}{DD}"] if self.date else []
        parts += [VERSION_SPEC] if self.version else []
        return " and ".join(parts) or "no spec"


# ---------------------------------------------------------------- dates


def date_to_span(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 (raises ValueError for an invalid date)."""
    return (datetime.date(year, month, day) - UNIX_EPOCH).days


def span_to_date(span: int) -> datetime.date:
    """The calendar date of a span number (raises OverflowError outside years 1-9999)."""
    return UNIX_EPOCH + datetime.timedelta(days=span)


# ---------------------------------------------------------------- patterns


def pattern_specs(pattern: str, where: str = "pattern") -> PatternSpecs:
    """Check the specs in `pattern` with TFX's rules; ConfigError names `where`."""
    spans = list(_SPAN_RE.finditer(pattern))
    versions = list(_VERSION_RE.finditer(pattern))
    has_date = any(spec in pattern for spec in DATE_SPECS)
    if spans and has_date:
        raise ConfigError(
            f"{where}: {SPAN_SPEC} and the date specs {{YYYY}}{{MM}}{{DD}} are exclusive; "
            f"use one or the other in {pattern!r}"
        )
    if len(spans) > 1:
        raise ConfigError(f"{where}: only one {SPAN_SPEC} spec is allowed in {pattern!r}")
    if has_date and not all(pattern.count(spec) == 1 for spec in DATE_SPECS):
        raise ConfigError(
            f"{where}: exactly one each of {{YYYY}}, {{MM}} and {{DD}} is required in {pattern!r}"
        )
    if versions and not (spans or has_date):
        raise ConfigError(
            f"{where}: {VERSION_SPEC} needs a {SPAN_SPEC} or date spec in {pattern!r}"
        )
    if len(versions) > 1:
        raise ConfigError(f"{where}: only one {VERSION_SPEC} spec is allowed in {pattern!r}")
    return PatternSpecs(
        span=bool(spans),
        date=has_date,
        version=bool(versions),
        span_width=_width(spans[0], "SPAN", pattern, where) if spans else None,
        version_width=_width(versions[0], "VERSION", pattern, where) if versions else None,
    )


def _width(match: re.Match, name: str, pattern: str, where: str) -> Optional[int]:
    text = match.group("width")
    if not text:
        return None
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(
            f"{where}: the width in {match.group(0)} must be a positive integer in {pattern!r}"
        )
    return int(text)


def pattern_for_span_version(pattern: str, span: int, version: Optional[int]) -> str:
    """`pattern` with its specs filled in for `span` / `version` (TFX's
    get_pattern_for_span_version): zero-padded to the spec's width, dates as YYYY MM DD."""
    specs = pattern_specs(pattern)
    if specs.span:
        token = _padded(span, specs.span_width, SPAN_SPEC, pattern, "span")
        pattern = _SPAN_RE.sub(lambda _: token, pattern)
    elif specs.date:
        try:
            date = span_to_date(span)
        except OverflowError:
            raise ConfigError(
                f"span {span} is not a date {{YYYY}}{{MM}}{{DD}} can express"
            ) from None
        for spec, value in zip(
            DATE_SPECS, (f"{date.year:04d}", f"{date.month:02d}", f"{date.day:02d}")
        ):
            pattern = pattern.replace(spec, value)
    if specs.version:
        if version is None:
            raise ConfigError(
                f"pattern {pattern!r} has a {VERSION_SPEC} spec but no version was given"
            )
        token = _padded(version, specs.version_width, VERSION_SPEC, pattern, "version")
        pattern = _VERSION_RE.sub(lambda _: token, pattern)
    return pattern


def _padded(number: int, width: Optional[int], spec: str, pattern: str, what: str) -> str:
    text = str(number)
    if width is None:
        return text
    if width < len(text):
        raise ConfigError(
            f"{what} {number} has more digits than the width {width} of the {spec} spec "
            f"in {pattern!r}"
        )
    return text.zfill(width)


# ---------------------------------------------------------------- resolution


@dataclasses.dataclass
class _Match:
    path: str  # as globbed (absolute)
    rel: str  # relative to the input base
    span: int
    span_token: Optional[tuple[str, ...]]
    version: Optional[int]
    version_token: Optional[str]


@dataclasses.dataclass
class _Scan:
    split: InputSplit
    glob: str
    matches: list[_Match]


def resolve_spans(
    input_base: Union[str, os.PathLike],
    input_config: Any = None,
    range_config: Any = None,
) -> list[SpanResolution]:
    """Resolve the spans to ingest: one SpanResolution per span, ascending.

    Without a range config, or with rolling_range (num_spans=1), that is the latest span.
    A static range returns every span in [start, end] that has files. Configs may be given
    in any form config.parse_* accepts.
    """
    input_base = os.fspath(input_base)
    input_config = parse_input_config(input_config)
    range_config = parse_range_config(range_config)
    specs = _common_specs(input_config)
    _check_range_config(range_config, specs)

    base = fs.absolute(input_base)
    if not fs.exists(base):
        raise SpanResolutionError(f"input base {input_base!r} does not exist")

    static = range_config.static_range if range_config else None
    pinned = None
    if static is not None and static.start_span_number == static.end_span_number:
        pinned = static.start_span_number
    scans = [_scan(base, split, specs, pinned) for split in input_config.splits]

    if not specs.has_span:
        targets = [(0, None)]
        for scan in scans:
            _require_files(scan, scan.matches)
    elif static is None:
        targets = [_latest(scans)]
    else:
        targets = _in_range(scans, static.start_span_number, static.end_span_number)

    return [_resolution(base, scans, specs, span, version) for span, version in targets]


def combined_fingerprint(resolutions: Sequence[SpanResolution]) -> str:
    """One fingerprint for several spans (the single span's own when there is one)."""
    if len(resolutions) == 1:
        return resolutions[0].fingerprint
    h = hashlib.sha256()
    for r in resolutions:
        h.update(f"span:{r.span},version:{r.version},{r.fingerprint}\n".encode())
    return "sha256:" + h.hexdigest()


def resolve(
    input_base: Union[str, os.PathLike], input_config: Any = None, range_config: Any = None
) -> SpanResolution:
    """The single span to ingest: the latest, or the pinned one of a static range.

    For a static range covering several spans this is the last (highest) span found;
    use resolve_spans to get all of them.
    """
    return resolve_spans(input_base, input_config, range_config)[-1]


def _common_specs(input_config: InputConfig) -> PatternSpecs:
    first: Optional[PatternSpecs] = None
    for i, split in enumerate(input_config.splits):
        where = f"input_config.splits[{i}].pattern"
        specs = pattern_specs(split.pattern, where)
        if first is None:
            first = specs
        elif (specs.span, specs.date, specs.version) != (first.span, first.date, first.version):
            raise ConfigError(
                f"{where}: every split must use the same specs; split {split.name!r} uses "
                f"{specs.describe()} but split {input_config.splits[0].name!r} uses "
                f"{first.describe()}"
            )
    assert first is not None
    return first


def _check_range_config(range_config: Optional[RangeConfig], specs: PatternSpecs) -> None:
    """TFX's ExampleGen limits on range configs (FileBasedInputProcessor)."""
    if range_config is None:
        return
    if not specs.has_span:
        raise ConfigError(
            "range_config is given but the split patterns have no {SPAN} or {YYYY}{MM}{DD} spec"
        )
    rolling = range_config.rolling_range
    if rolling is not None:
        if rolling.num_spans != 1:
            raise ConfigError(
                "range_config.rolling_range.num_spans: ExampleGen ingests a single span for a "
                f"rolling range (as TFX), so it must be 1, got {rolling.num_spans}; use "
                "static_range [start, end] to ingest several spans"
            )
        if rolling.start_span_number > 0:
            raise ConfigError(
                "range_config.rolling_range.start_span_number is not supported by ExampleGen "
                f"(as TFX), got {rolling.start_span_number}"
            )


def _scan(base: str, split: InputSplit, specs: PatternSpecs, pinned: Optional[int]) -> _Scan:
    """Glob the split's files and read span/version from each path."""
    glob_rel, regex = _glob_and_regex(split.pattern, specs, pinned)
    glob_pattern = fs.join(fs.escape_glob(base), glob_rel)
    display_glob = fs.join(base, glob_rel)
    log.info("split %s: glob %s, regex %s", split.name, display_glob, regex.pattern)
    prefix = base.rstrip("/") + "/"
    matches = []
    artifacts: dict[str, bool] = {}  # folder -> holds examplegen's metadata file
    for path in fs.glob(glob_pattern):
        if not fs.is_file(path):
            continue
        rel = path[len(prefix) :] if path.startswith(prefix) else path
        if ".." in rel.split("/"):  # an object key with a literal '..' part
            raise SpanResolutionError(
                f"split {split.name!r}: {path} has a '..' part, which leads outside the input "
                f"base {base}; rename the object or narrow the pattern {split.pattern!r}"
            )
        _refuse_examplegen_output(base, rel, split, artifacts)
        found = regex.fullmatch(rel)
        if found is None:
            raise SpanResolutionError(
                f"split {split.name!r}: file {rel!r} matches the glob {glob_rel!r} but not the "
                f"pattern {split.pattern!r} (spans, versions and dates must be digits, "
                f"exactly as wide as a width modifier says); input base {base}"
            )
        matches.append(_read_match(split, path, rel, found, specs))
    return _Scan(split, display_glob, matches)


_SHARD_FILE_RE = re.compile(
    rf"(^|/){re.escape(SPLIT_PREFIX)}[^/]+/{re.escape(FILE_PREFIX)}-[0-9]{{5}}-of-[0-9]{{5}}\.gz$"
)
_OUR_NAMES = (SPLIT_PREFIX, STAGING_PREFIX, METADATA_FILE)


def _refuse_examplegen_output(base: str, rel: str, split: InputSplit, artifacts: dict) -> None:
    """Raise if `rel` is part of an Examples artifact or a staging folder that examplegen
    wrote, unless the split's pattern names such a part literally (reading it on purpose).

    Ours are: the metadata file, files in a `Split-*` folder beside one, shard files named
    as the writer names them, and anything in a `.staging-*` folder. So an output written
    into the input base is never ingested again by the next run.
    """
    if any(name in split.pattern for name in _OUR_NAMES):
        return
    parts = rel.split("/")
    reason = None
    for i, part in enumerate(parts[:-1]):
        if part.startswith(STAGING_PREFIX):
            folder = fs.join(base, *parts[: i + 1])
            reason = f"is in the staging folder {folder} of an examplegen run"
            break
        if part.startswith(SPLIT_PREFIX) and _holds_metadata(fs.join(base, *parts[:i]), artifacts):
            reason = f"belongs to the Examples artifact {fs.join(base, *parts[:i])}"
            break
    if reason is None and (parts[-1] == METADATA_FILE or _SHARD_FILE_RE.search(rel)):
        reason = f"belongs to an Examples artifact in {fs.join(base, *parts[:-1])}"
    if reason is not None:
        raise SpanResolutionError(
            f"split {split.name!r}: {rel!r} (matched by pattern {split.pattern!r}) {reason}: an "
            "Examples artifact written by examplegen is not read as input, so an output "
            "written inside the input base is not ingested again. Write the output outside "
            "the input base or narrow the pattern; to re-split an artifact use "
            "`examplegen resplit --examples DIR`; to import its records on purpose, name its "
            "Split- folder in the pattern (e.g. 'out/Split-train/*')"
        )


def _holds_metadata(folder: str, artifacts: dict) -> bool:
    if folder not in artifacts:
        artifacts[folder] = fs.is_file(fs.join(folder, METADATA_FILE))
    return artifacts[folder]


def _glob_and_regex(
    pattern: str, specs: PatternSpecs, pinned: Optional[int]
) -> tuple[str, re.Pattern]:
    """A glob finding the candidate files and a regex capturing their specs.

    A pinned span is put into the glob when its text is certain (a span width, or a
    date); otherwise the glob keeps `*` and the span is filtered after parsing, so
    zero-padded spans match a width-less {SPAN}.
    """
    pinned_tokens: dict[str, str] = {}
    if pinned is not None and specs.span and specs.span_width:
        pinned_tokens["span"] = _padded(
            pinned, specs.span_width, SPAN_SPEC, pattern, "range_config.static_range: span"
        )
    elif pinned is not None and specs.date:
        try:
            date = span_to_date(pinned)
        except OverflowError:
            raise ConfigError(
                f"range_config.static_range: span {pinned} is not a date {{YYYY}}{{MM}}{{DD}} "
                "can express"
            ) from None
        pinned_tokens.update(
            year=f"{date.year:04d}", month=f"{date.month:02d}", day=f"{date.day:02d}"
        )

    glob_parts: list[str] = []
    regex_parts: list[str] = []
    position = 0
    for spec in _ANY_SPEC_RE.finditer(pattern):
        literal = pattern[position : spec.start()]
        glob_parts.append(literal)
        regex_parts.append(_glob_to_regex(literal))
        text = spec.group(0)
        if text.startswith("{SPAN"):
            group, width = "span", specs.span_width
        elif text.startswith("{VERSION"):
            group, width = "version", specs.version_width
        else:
            group, width = _DATE_GROUPS[text]
        glob_parts.append(pinned_tokens.get(group, "*"))
        digits = f"[0-9]{{{width}}}" if width else "[0-9]+"
        regex_parts.append(f"(?P<{group}>{digits})")
        position = spec.end()
    glob_parts.append(pattern[position:])
    regex_parts.append(_glob_to_regex(pattern[position:]))
    return "".join(glob_parts), re.compile("".join(regex_parts))


def _glob_to_regex(text: str) -> str:
    """Regex for a glob: `*` and `?` stay within one path segment, `[...]` classes work."""
    out = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            j = i
            if j < n and text[j] == "!":
                j += 1
            if j < n and text[j] == "]":
                j += 1
            while j < n and text[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal '['
                out.append(re.escape(char))
                continue
            body = text[i:j].replace("\\", "\\\\")
            i = j + 1
            if body.startswith("!"):
                body = "^/" + body[1:]
            elif body.startswith("^"):
                body = "\\" + body
            out.append(f"[{body}]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _read_match(
    split: InputSplit, path: str, rel: str, found: re.Match, specs: PatternSpecs
) -> _Match:
    span, span_token = 0, None
    if specs.span:
        span_token = (found.group("span"),)
        span = int(span_token[0])
    elif specs.date:
        span_token = (found.group("year"), found.group("month"), found.group("day"))
        try:
            span = date_to_span(*(int(part) for part in span_token))
        except ValueError:
            raise SpanResolutionError(
                f"split {split.name!r}: file {rel!r} has an invalid date "
                f"{'-'.join(span_token)} (year-month-day) for pattern {split.pattern!r}"
            ) from None
    version, version_token = None, None
    if specs.version:
        version_token = found.group("version")
        version = int(version_token)
    return _Match(path, rel, span, span_token, version, version_token)


def _require_files(scan: _Scan, matches: list, what: str = "") -> None:
    if not matches:
        raise SpanResolutionError(
            f"split {scan.split.name!r}: no file{what} matches pattern {scan.split.pattern!r} "
            f"(glob {scan.glob})"
        )


def _latest(scans: list[_Scan]) -> tuple[int, Optional[int]]:
    """Latest span, then latest version in it; the same for every split."""
    per_split = []
    for scan in scans:
        _require_files(scan, scan.matches)
        span = max(m.span for m in scan.matches)
        version = _latest_version(scan, span)
        per_split.append((scan.split.name, span, version))
    _check_agreement(per_split)
    return per_split[0][1], per_split[0][2]


def _in_range(scans: list[_Scan], start: int, end: int) -> list[tuple[int, Optional[int]]]:
    """Every span in [start, end] with files, each at its latest version."""
    what = f" for span {start}" if start == end else f" for spans {start} to {end}"
    spans: set[int] = set()
    for scan in scans:
        scan.matches = [m for m in scan.matches if start <= m.span <= end]
        _require_files(scan, scan.matches, what + " (static range)")
        spans.update(m.span for m in scan.matches)
    targets = []
    for span in sorted(spans):
        per_split = []
        for scan in scans:
            if not any(m.span == span for m in scan.matches):
                others = [s.split.name for s in scans if any(m.span == span for m in s.matches)]
                raise SpanResolutionError(
                    f"span {span} has files for split {others[0]!r} but none for split "
                    f"{scan.split.name!r} (pattern {scan.split.pattern!r}, glob {scan.glob})"
                )
            per_split.append((scan.split.name, span, _latest_version(scan, span)))
        _check_agreement(per_split)
        targets.append((span, per_split[0][2]))
    return targets


def _latest_version(scan: _Scan, span: int) -> Optional[int]:
    versions = [m.version for m in scan.matches if m.span == span and m.version is not None]
    return max(versions) if versions else None


def _check_agreement(per_split: list[tuple[str, int, Optional[int]]]) -> None:
    """Every split must land on the same span and version (TFX)."""
    if len({span for _, span, _ in per_split}) > 1:
        detail = ", ".join(f"{name} -> {span}" for name, span, _ in per_split)
        raise SpanResolutionError(
            f"the splits resolve to different latest spans ({detail}); every split needs "
            "files for the same latest span"
        )
    if len({version for _, _, version in per_split}) > 1:
        detail = ", ".join(f"{name} -> {version}" for name, _, version in per_split)
        raise SpanResolutionError(
            f"the splits resolve to different latest versions of span {per_split[0][1]} "
            f"({detail}); every split needs files for the same latest version"
        )


def _resolution(
    base: str, scans: list[_Scan], specs: PatternSpecs, span: int, version: Optional[int]
) -> SpanResolution:
    splits = []
    for scan in scans:
        chosen = [m for m in scan.matches if m.span == span and m.version == version]
        pattern = _fill_pattern(scan, specs, chosen)
        files = tuple(sorted(m.path for m in chosen))
        sources = tuple(
            SourceFile(
                uri=path,
                size=fs.size(path),
                digest=file_digest(path),
                split=scan.split.name,
                span=span,
                version=version,
            )
            for path in files
        )
        splits.append(ResolvedSplit(scan.split.name, pattern, files, sources))
    return SpanResolution(span, version, tuple(splits), _fingerprint(base, splits), base)


def _fill_pattern(scan: _Scan, specs: PatternSpecs, chosen: list[_Match]) -> str:
    """The split pattern with its specs replaced by the digits the chosen files use."""
    pattern = scan.split.pattern
    if not specs.has_span:
        return pattern
    span_tokens = {m.span_token for m in chosen}
    version_tokens = {m.version_token for m in chosen}
    for tokens, name in ((span_tokens, "span"), (version_tokens, "version")):
        if len(tokens) > 1:
            shown = ", ".join(
                repr("".join(t) if isinstance(t, tuple) else t) for t in sorted(tokens)
            )
            number = chosen[0].span if name == "span" else chosen[0].version
            raise SpanResolutionError(
                f"split {scan.split.name!r}: {name} {number} is written in more than one way "
                f"({shown}) in files matching {pattern!r}; rename the files or give the spec "
                "a width"
            )
    (span_token,) = span_tokens
    if specs.span:
        pattern = _SPAN_RE.sub(lambda _: span_token[0], pattern)
    else:
        for spec, value in zip(DATE_SPECS, span_token):
            pattern = pattern.replace(spec, value)
    if specs.version:
        (version_token,) = version_tokens
        pattern = _VERSION_RE.sub(lambda _: version_token, pattern)
    return pattern


def _fingerprint(base: str, splits: list[ResolvedSplit]) -> str:
    """sha256 over each split's name and its (path relative to the base, digest) pairs."""
    prefix = base.rstrip("/") + "/"
    document = [
        {
            "split": split.name,
            "files": [
                [s.uri[len(prefix) :] if s.uri.startswith(prefix) else s.uri, s.digest]
                for s in split.sources
            ],
        }
        for split in splits
    ]
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
