"""The ingestion report: one self-contained HTML page describing an Examples artifact.

It shows the example count per split, the bad rows skipped (count and the first few, from
the artifact's quarantine file), the schema inferred from the tf.Examples (type,
values per example, missing count, value range per feature), a few sample rows, and the
span / version / lineage summary. The KFP UI displays it as the pipeline's HTML artifact;
it is also readable in any browser (no external JS or CSS).

Examples are parsed with the engine's protobuf classes (examplegen.protos), so building a
report needs no TensorFlow.
"""

from __future__ import annotations

import collections
import dataclasses
import html
import json
import math
import os
from typing import Iterable, Iterator, Optional

from examplegen import fs, protos, report_media
from examplegen.bad_rows import FIRST_REASONS
from examplegen.errors import ExampleGenError, SourceError

METADATA_FILE = "examples_metadata.json"
SPLIT_PREFIX = "Split-"

# Bounds that keep a report of a 10M-row artifact fast and small.
DEFAULT_MAX_EXAMPLES = 100_000  # per split, for the schema statistics
DEFAULT_SAMPLE_ROWS = 5
_MAX_DISTINCT = 10_000  # distinct string values tracked per feature
_TOP_VALUES = 3
_CELL_CHARS = 40
_MAX_DISTINCT_BYTES = 1024  # longer values (images, documents) are not tracked as distinct values


@dataclasses.dataclass
class FeatureStats:
    """Statistics of one feature over the examples read."""

    name: str
    kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    present: int = 0  # examples where the feature has at least one value
    missing: int = 0  # examples where it is absent or has an empty list
    min_values: Optional[int] = None  # values per example, over examples where present
    max_values: Optional[int] = None
    minimum: Optional[float] = None  # numeric features
    maximum: Optional[float] = None
    total: float = 0.0
    numeric_count: int = 0
    nan_count: int = 0
    min_length: Optional[int] = None  # bytes features: value length in bytes
    max_length: Optional[int] = None
    distinct: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    distinct_overflow: bool = False

    @property
    def type_name(self) -> str:
        """INT, FLOAT, STRING, UNKNOWN (never had a value) or MIXED (kinds differ)."""
        kinds = [k for k in self.kinds if k is not None]
        if not kinds:
            return "UNKNOWN"
        if len(kinds) > 1:
            return "MIXED(" + ",".join(sorted(_KIND_NAMES[k] for k in kinds)) + ")"
        return _KIND_NAMES[kinds[0]]

    @property
    def mean(self) -> Optional[float]:
        finite = self.numeric_count - self.nan_count
        return self.total / finite if finite else None


_KIND_NAMES = {"int64_list": "INT", "float_list": "FLOAT", "bytes_list": "STRING"}


@dataclasses.dataclass
class ExamplesSummary:
    """What the report shows, computed from an Examples artifact directory."""

    uri: str
    metadata: dict
    split_names: list[str]
    counts: dict[str, int]  # examples per split (all of them, not only those read)
    examples_read: int
    truncated: bool  # True when a split had more than max_examples examples
    payload_format: str
    features: dict[str, FeatureStats]
    sequence_features: list[str]  # feature_lists names (SequenceExample payloads)
    sample_split: Optional[str]
    sample_rows: list[dict[str, str]]
    rows_rejected: Optional[int] = None  # bad rows skipped (None: the artifact has no quarantine)
    rejected_rows: list[dict] = dataclasses.field(default_factory=list)  # the first few quarantine entries
    media: report_media.MediaSummary = dataclasses.field(default_factory=report_media.MediaSummary)


def read_metadata(examples_dir: str) -> dict:
    """The artifact's metadata JSON (written by the engine beside the splits), or {}."""
    from examplegen.writer import incomplete_message, is_interrupted

    path = fs.join(examples_dir, METADATA_FILE)
    if not fs.is_file(path):
        if is_interrupted(examples_dir):
            raise SourceError(incomplete_message(examples_dir))
        return {}
    try:
        with fs.open_read(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the Examples metadata: {exc}") from exc


def list_splits(examples_dir: str, metadata: dict) -> list[str]:
    """Split names: from metadata's split_names when present, else the Split-* folders."""
    names = metadata.get("split_names")
    if isinstance(names, str):
        names = json.loads(names)
    if names:
        return list(names)
    from examplegen.writer import split_folders

    if not fs.exists(examples_dir):
        raise SourceError(f"{examples_dir}: Examples directory does not exist")
    return [entry[len(SPLIT_PREFIX):] for entry in split_folders(examples_dir)]


def split_files(examples_dir: str, split: str) -> list[str]:
    folder = fs.join(examples_dir, SPLIT_PREFIX + split)
    if not fs.exists(folder):
        raise SourceError(f"{folder}: split folder of split {split!r} does not exist")
    return [fs.join(folder, name) for name in fs.listdir(folder) if not name.startswith(".")]


def summarize(
    examples_dir: str,
    *,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> ExamplesSummary:
    """Read an Examples artifact directory and compute what the report shows.

    Statistics cover at most `max_examples` examples per split; counts come from the
    metadata when it has them (exact), else from reading every record.
    """
    metadata = read_metadata(examples_dir)
    splits = list_splits(examples_dir, metadata)
    known_counts = _metadata_counts(metadata)
    payload_format = str(metadata.get("payload_format") or "FORMAT_TF_EXAMPLE")
    parser = _PARSERS.get(payload_format)

    features: dict[str, FeatureStats] = {}
    sequence_features: set[str] = set()
    counts: dict[str, int] = {}
    samples: list[dict[str, str]] = []
    sample_split = None
    media = report_media.MediaSummary()
    examples_read = 0
    truncated = False
    for split in splits:
        read = total = 0
        for path, index, record in _split_records(examples_dir, split):
            total += 1
            if parser is None or read >= max_examples:
                if split in known_counts:
                    break  # the exact count is known: no need to read on
                continue
            read += 1
            example_features, feature_lists = parser(record, path, index)
            _accumulate(features, example_features)
            media.add(example_features, split)
            sequence_features.update(feature_lists)
            if len(samples) < sample_rows and sample_split in (None, split):
                sample_split = split
                samples.append(_sample_row(example_features))
        counts[split] = known_counts.get(split, total)
        truncated = truncated or read < counts[split]
        examples_read += read
    for stats in features.values():
        stats.missing = examples_read - stats.present
    rows_rejected, rejected_rows = _quarantine(examples_dir, metadata, FIRST_REASONS)
    return ExamplesSummary(
        rows_rejected=rows_rejected,
        rejected_rows=rejected_rows,
        uri=examples_dir,
        metadata=metadata,
        split_names=splits,
        counts=counts,
        examples_read=examples_read,
        truncated=truncated and parser is not None,
        payload_format=payload_format,
        features=dict(sorted(features.items())),
        sequence_features=sorted(sequence_features),
        sample_split=sample_split,
        sample_rows=samples,
        media=media,
    )


def _quarantine(examples_dir: str, metadata: dict, first: int) -> tuple[Optional[int], list[dict]]:
    """The count of skipped bad rows and the first entries of the quarantine file."""
    relative = metadata.get("quarantine_file")
    if not relative:
        return None, []
    import gzip

    path = os.path.join(examples_dir, relative)
    entries = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                if len(entries) >= first:
                    break
                entries.append(json.loads(line))
    except (OSError, EOFError, json.JSONDecodeError) as exc:
        raise SourceError(f"{path}: cannot read the quarantine file: {exc}") from exc
    return int(metadata.get("rows_rejected", 0)), entries


def _metadata_counts(metadata: dict) -> dict[str, int]:
    counts = metadata.get("example_counts") or metadata.get("counts") or {}
    if isinstance(counts, str):
        counts = json.loads(counts)
    return {str(k): int(v) for k, v in counts.items()}


def _split_records(examples_dir: str, split: str) -> Iterator[tuple[str, int, bytes]]:
    """(file, record index, record bytes) for every record of a split, in file order."""
    from examplegen.tfrecord import iter_records  # gzip or plain, CRC-checked

    for path in split_files(examples_dir, split):
        for index, record in enumerate(iter_records(path)):
            yield path, index, record


def _parse_example(record: bytes, path: str, index: int):
    try:
        example = protos.Example.FromString(record)
    except Exception as exc:  # protobuf's DecodeError; its type differs between runtimes
        raise SourceError(f"{path}: record {index} is not a tf.Example: {exc}") from exc
    return example.features.feature, ()


def _parse_sequence_example(record: bytes, path: str, index: int):
    try:
        example = protos.SequenceExample.FromString(record)
    except Exception as exc:
        raise SourceError(f"{path}: record {index} is not a tf.SequenceExample: {exc}") from exc
    return example.context.feature, example.feature_lists.feature_list.keys()


_PARSERS = {
    "FORMAT_TF_EXAMPLE": _parse_example,
    "FORMAT_TF_SEQUENCE_EXAMPLE": _parse_sequence_example,
    # FORMAT_PROTO: arbitrary messages; only counts are reported.
}


def _values(feature) -> tuple[Optional[str], list]:
    kind = feature.WhichOneof("kind")
    if kind is None:
        return None, []
    return kind, list(getattr(feature, kind).value)


def _accumulate(features: dict[str, FeatureStats], example_features) -> None:
    for name, feature in example_features.items():
        stats = features.get(name)
        if stats is None:
            stats = features[name] = FeatureStats(name)
        kind, values = _values(feature)
        stats.kinds[kind] += 1
        if not values:
            continue
        stats.present += 1
        n = len(values)
        stats.min_values = n if stats.min_values is None else min(stats.min_values, n)
        stats.max_values = n if stats.max_values is None else max(stats.max_values, n)
        if kind == "bytes_list":
            for value in values:
                length = len(value)
                stats.min_length = length if stats.min_length is None else min(stats.min_length, length)
                stats.max_length = length if stats.max_length is None else max(stats.max_length, length)
                if length > _MAX_DISTINCT_BYTES:
                    stats.distinct_overflow = True
                elif value in stats.distinct or len(stats.distinct) < _MAX_DISTINCT:
                    stats.distinct[value] += 1
                else:
                    stats.distinct_overflow = True
        else:
            for value in values:
                stats.numeric_count += 1
                if isinstance(value, float) and math.isnan(value):
                    stats.nan_count += 1
                    continue
                stats.total += value
                stats.minimum = value if stats.minimum is None else min(stats.minimum, value)
                stats.maximum = value if stats.maximum is None else max(stats.maximum, value)


def _sample_row(example_features) -> dict[str, str]:
    row = {}
    for name in sorted(example_features):
        kind, values = _values(example_features[name])
        row[name] = ", ".join(_format_value(v) for v in values)
    return row


def _format_value(value) -> str:
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:  # binary (e.g. an encoded image)
            return f"({len(value):,} bytes)"
    elif isinstance(value, float):
        text = f"{value:.7g}"
    else:
        text = str(value)
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"


# ---------------------------------------------------------------------------------------
# HTML


_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#202124}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dadce0}
.muted{color:#5f6368;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
th,td{border:1px solid #dadce0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;background:#f1f3f4;padding:1px 3px}
.scroll{overflow-x:auto;max-width:100%}
"""


def _esc(value) -> str:
    """HTML-escaped text; None shows as an empty cell."""
    return "" if value is None else html.escape(str(value), quote=True)


def _num(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.6g}"
    return f"{value:,}"


def _table(headers: Iterable[str], rows: Iterable[Iterable], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    out = ["<table><thead><tr>", *(f"<th>{_esc(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            out.append(f"<td{cls}>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _value_range(stats: FeatureStats) -> str:
    if stats.present == 0:
        return ""
    if stats.numeric_count:
        text = f"{_num(stats.minimum)} … {_num(stats.maximum)}"
        if stats.mean is not None:
            text += f" (mean {_num(stats.mean)})"
        if stats.nan_count:
            text += f", {stats.nan_count:,} NaN"
        return _esc(text)
    if not stats.distinct:  # long values only (e.g. encoded images): lengths only
        return _esc(f"length {_num(stats.min_length)} … {_num(stats.max_length)} bytes")
    top = ", ".join(
        f"{_esc(_format_value(v))} ({n:,})" for v, n in stats.distinct.most_common(_TOP_VALUES)
    )
    distinct = f"≥{len(stats.distinct):,}" if stats.distinct_overflow else f"{len(stats.distinct):,}"
    return (
        f"{distinct} distinct; length {_num(stats.min_length)} … {_num(stats.max_length)}"
        f"<br><span class=\"muted\">top: {top}</span>"
    )


def _valency(stats: FeatureStats) -> str:
    if stats.present == 0:
        return "0"
    if stats.min_values == stats.max_values:
        return str(stats.min_values)
    return f"{stats.min_values} … {stats.max_values}"


def render_html(summary: ExamplesSummary, lineage: Optional[dict] = None, title: Optional[str] = None) -> str:
    """The report page for `summary`; `lineage` (optional) as from lineage_summary()."""
    md = summary.metadata
    total = sum(summary.counts.values())
    title = title or "Ingestion report"
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{_esc(title)}</title><style>{_CSS}{report_media.CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f"<div class=\"muted\">Examples: <code>{_esc(summary.uri)}</code></div>",
    ]

    # Overview: span, version, fingerprint, formats.
    overview = [
        ("Examples", _num(total)),
        ("Splits", _esc(", ".join(summary.split_names))),
        ("Span", _esc(md.get("span", ""))),
        ("Version", _esc(md.get("version", "none"))),
    ]
    spans = md.get("spans")
    if spans:
        overview.append(("Spans", _esc(", ".join(map(str, json.loads(spans) if isinstance(spans, str) else spans)))))
    overview += [
        ("Input fingerprint", f"<code>{_esc(md.get('input_fingerprint', ''))}</code>"),
        ("Payload format", _esc(summary.payload_format)),
        ("File format", _esc(md.get("file_format", ""))),
    ]
    if summary.rows_rejected is not None:
        overview.append(("Bad rows skipped", _num(summary.rows_rejected)))
    parts.append("<h2>Overview</h2>")
    parts.append(_table(["", ""], ((f"<b>{_esc(k)}</b>", v) for k, v in overview)))

    # Counts per split.
    parts.append("<h2>Examples per split</h2>")
    rows = []
    for split in summary.split_names:
        n = summary.counts.get(split, 0)
        share = f"{100.0 * n / total:.1f}%" if total else ""
        rows.append((_esc(split), _num(n), share))
    rows.append(("<b>total</b>", f"<b>{_num(total)}</b>", "100%" if total else ""))
    parts.append(_table(["Split", "Examples", "Share"], rows, numeric=(1, 2)))

    if summary.rows_rejected:
        parts.append("<h2>Bad rows</h2>")
        parts.append(f"<p class=\"muted\">{summary.rows_rejected:,} rows were skipped (bad_rows=skip) and are "
                     f"listed in <code>{_esc(md.get('quarantine_file', ''))}</code>; the first "
                     f"{len(summary.rejected_rows)}:</p>")
        parts.append(_table(
            ["File", "Line / record / row", "Reason"],
            ((f"<code>{_esc(e.get('file', ''))}</code>", _esc(e.get("line", e.get("record", e.get("row", "")))),
              _esc(e.get("reason", ""))) for e in summary.rejected_rows),
            numeric=(1,),
        ))

    # Schema.
    parts.append("<h2>Schema</h2>")
    if summary.payload_format not in _PARSERS:
        parts.append(
            f"<p class=\"muted\">Payload format {_esc(summary.payload_format)} holds arbitrary "
            "protos; no schema is inferred.</p>"
        )
    else:
        note = f"Inferred from {summary.examples_read:,} examples"
        if summary.truncated:
            note += " (the first examples of each split; counts above are exact)"
        parts.append(f"<p class=\"muted\">{_esc(note)}.</p>")
        rows = []
        for stats in summary.features.values():
            missing = stats.missing
            pct = f" ({100.0 * missing / summary.examples_read:.1f}%)" if summary.examples_read else ""
            rows.append((
                f"<code>{_esc(stats.name)}</code>",
                _esc(stats.type_name),
                _esc(_valency(stats)),
                _num(stats.present),
                f"{_num(missing)}{pct}",
                _value_range(stats),
            ))
        parts.append(_table(
            ["Feature", "Type", "Values per example", "Present", "Missing", "Value range"],
            rows, numeric=(3, 4),
        ))
        if summary.sequence_features:
            parts.append(
                "<p>Feature lists (SequenceExample): "
                + ", ".join(f"<code>{_esc(n)}</code>" for n in summary.sequence_features) + "</p>"
            )

    parts.append(report_media.render(summary.media, summary.split_names, md, _table))

    # Sample rows.
    if summary.sample_rows:
        parts.append(f"<h2>Sample rows</h2><p class=\"muted\">First {len(summary.sample_rows)} "
                     f"examples of split {_esc(summary.sample_split)}.</p>")
        columns = sorted({c for row in summary.sample_rows for c in row})
        parts.append("<div class=\"scroll\">" + _table(
            columns, ([_esc(row.get(c, "")) for c in columns] for row in summary.sample_rows)
        ) + "</div>")

    # Lineage.
    parts.append("<h2>Lineage</h2>")
    parts.append(_lineage_html(lineage or {}))
    parts.append("</body></html>")
    return "".join(parts) + "\n"


def _lineage_html(lineage: dict) -> str:
    if not lineage:
        return "<p class=\"muted\">No lineage store was used.</p>"
    out = []
    facts = [
        ("Store", lineage.get("store")),
        ("Pipeline", lineage.get("pipeline")),
        ("Run", lineage.get("run")),
        ("Examples artifact id", lineage.get("artifact_id")),
    ]
    out.append(_table(["", ""], ((f"<b>{_esc(k)}</b>", _esc(v)) for k, v in facts if v not in (None, ""))))
    executions = lineage.get("executions") or []
    if executions:
        out.append("<p>Produced by (nearest first):</p>")
        out.append(_table(
            ["Execution", "Type", "State", "Run", "Span", "Version", "Rows written", "Rows rejected"],
            (
                (
                    _esc(e.get("id", "")), _esc(e.get("type", "")), _esc(e.get("state", "")),
                    _esc(e.get("run") or ""), _esc(e.get("span", "")), _esc(e.get("version", "")),
                    _num(e.get("rows_written")), _num(e.get("rows_rejected")),
                )
                for e in executions
            ),
            numeric=(6, 7),
        ))
    sources = lineage.get("sources") or []
    if sources:
        out.append(f"<p>{len(sources)} source file(s):</p>")
        out.append(_table(
            ["Source", "Split", "Span", "Version", "Bytes", "Digest"],
            (
                (
                    f"<code>{_esc(s.get('uri', ''))}</code>"
                    + (f"<br>query ({_num(s.get('rows'))} rows): <code>{_esc(s['query'])}</code>"
                       if s.get("query") is not None else ""),
                    _esc(s.get("split", "")),
                    _esc(s.get("span", "")), _esc(s.get("version", "")),
                    _num(s.get("size")), f"<code>{_esc(s.get('digest', ''))}</code>",
                )
                for s in sources
            ),
            numeric=(4,),
        ))
    upstream = lineage.get("upstream_examples") or []
    if upstream:
        out.append("<p>Upstream Examples:</p><ul>"
                   + "".join(f"<li><code>{_esc(u)}</code></li>" for u in upstream) + "</ul>")
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Lineage

REPORT_EXECUTION = "examplegen.Report"


def lineage_summary(store, examples_uri: str) -> dict:
    """What the report's lineage section shows, read from MLMD: the store, the newest LIVE
    Examples artifact at `examples_uri`, the executions upstream of it, their source files
    (with digests) and any Examples they were derived from."""
    from examplegen.lineage import EXAMPLES, SOURCE_FILE, redact_url
    from examplegen.lineage.query import lineage

    summary = {"store": redact_url(str(store.config))}
    try:
        found = lineage(store, examples_uri)
    except ExampleGenError:  # not recorded (e.g. written with lineage off)
        return summary
    matches = [m for m in found["matches"]
               if m["artifact"]["type"] == EXAMPLES and m["artifact"]["state"] == "LIVE"]
    if not matches:
        return summary
    match = max(matches, key=lambda m: m["artifact"]["id"])
    upstream = match["upstream"]
    executions = upstream["executions"]
    summary["artifact_id"] = match["artifact"]["id"]
    if executions:
        summary["pipeline"] = executions[0].get("pipeline")
        summary["run"] = executions[0].get("run")
    summary["executions"] = [
        {"id": e["id"], "type": e["type"], "state": e["state"], "run": e.get("run"),
         **{k: e["properties"].get(k) for k in ("span", "version", "rows_written", "rows_rejected")}}
        for e in executions
    ]
    summary["sources"] = [
        {"uri": a["uri"], **{k: a["properties"].get(k) for k in ("split", "span", "version", "size", "digest", "query", "rows")}}
        for a in upstream["artifacts"] if a["type"] == SOURCE_FILE
    ]
    summary["upstream_examples"] = [a["uri"] for a in upstream["artifacts"] if a["type"] == EXAMPLES]
    return summary


def report_with_lineage(
    examples_dir: str,
    html_path: str,
    *,
    mlmd: Optional[str] = None,
    pipeline_name: str = "examplegen",
    run_name: Optional[str] = None,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> ExamplesSummary:
    """Write the report of `examples_dir` to `html_path`, with its lineage read from the MLMD
    store `mlmd` (see examplegen.lineage.open_store), and record this as an execution of
    type examplegen.Report that takes the Examples artifact as input."""
    from examplegen.lineage import Recorder, open_store

    examples_uri = fs.absolute(examples_dir)
    store = open_store(mlmd)
    config = {"examples_uri": examples_uri, "max_examples": max_examples, "sample_rows": sample_rows}
    with Recorder(store, REPORT_EXECUTION, pipeline_name=pipeline_name, run_name=run_name,
                  config=config) as recorder:
        recorder.record_input_examples(examples_uri, metadata=read_metadata(examples_uri))
        summary = write_report(examples_uri, html_path, lineage=lineage_summary(store, examples_uri),
                               max_examples=max_examples, sample_rows=sample_rows)
        recorder.set_properties(
            span=summary.metadata.get("span"), version=summary.metadata.get("version"),
            input_fingerprint=summary.metadata.get("input_fingerprint"),
            rows_read=summary.examples_read,
        )
        recorder.complete(output=("system.HTML", "report", os.path.abspath(html_path)))
    return summary


def write_report(
    examples_dir: str,
    html_path: str,
    *,
    lineage: Optional[dict] = None,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    title: Optional[str] = None,
) -> ExamplesSummary:
    """Summarize `examples_dir` and write the HTML page to `html_path`."""
    summary = summarize(examples_dir, max_examples=max_examples, sample_rows=sample_rows)
    page = render_html(summary, lineage=lineage, title=title)
    parent = os.path.dirname(html_path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(page)
    return summary
