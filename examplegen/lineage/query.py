"""Reading lineage back: data versions of an input base, and the lineage of an artifact.

Both return plain JSON-able dicts (what `--json` prints); `format_versions` and
`format_lineage` render them as text tables.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Iterable, Mapping, Optional, Union

from examplegen.errors import ConfigError, LineageError
from examplegen.lineage import schema
from examplegen.lineage.postgres_text import is_plain
from examplegen.lineage.schema import iso_time, properties, quote_literal
from examplegen.lineage.store import LineageStore

_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
MAX_DEPTH = 50


def normalize_uri(uri: str) -> str:
    """Local paths made absolute, URLs kept; no trailing slash."""
    if _SCHEME_RE.match(uri):
        return uri.rstrip("/") if not uri.endswith("://") else uri
    return os.path.abspath(uri)


class _Reader:
    """Batched MLMD reads with type names resolved."""

    def __init__(self, store: LineageStore):
        from ml_metadata.proto import metadata_store_pb2 as pb

        self.store = store
        self.pb = pb
        self.artifact_types = {t.id: t.name for t in store.call("get_artifact_types")}
        self.execution_types = {t.id: t.name for t in store.call("get_execution_types")}
        self.context_types = {t.id: t.name for t in store.call("get_context_types")}

    def artifacts(self, ids: Iterable[int]) -> dict[int, Any]:
        ids = sorted(set(ids))
        return {a.id: a for a in self.store.call("get_artifacts_by_id", ids)} if ids else {}

    def executions(self, ids: Iterable[int]) -> dict[int, Any]:
        ids = sorted(set(ids))
        return {e.id: e for e in self.store.call("get_executions_by_id", ids)} if ids else {}

    def events_of_artifacts(self, ids: Iterable[int]) -> list[Any]:
        ids = sorted(set(ids))
        return list(self.store.call("get_events_by_artifact_ids", ids)) if ids else []

    def events_of_executions(self, ids: Iterable[int]) -> list[Any]:
        ids = sorted(set(ids))
        return list(self.store.call("get_events_by_execution_ids", ids)) if ids else []

    def is_input(self, event: Any) -> bool:
        return event.type in (self.pb.Event.INPUT, self.pb.Event.DECLARED_INPUT, self.pb.Event.INTERNAL_INPUT)

    def is_output(self, event: Any) -> bool:
        return event.type in (self.pb.Event.OUTPUT, self.pb.Event.DECLARED_OUTPUT,
                              self.pb.Event.INTERNAL_OUTPUT, self.pb.Event.PENDING_OUTPUT)

    def artifact_dict(self, artifact: Any) -> dict[str, Any]:
        return {
            "id": artifact.id,
            "type": self.artifact_types.get(artifact.type_id, str(artifact.type_id)),
            "uri": artifact.uri,
            "state": self.pb.Artifact.State.Name(artifact.state),
            "created": iso_time(artifact.create_time_since_epoch),
            "properties": properties(artifact),
        }

    def execution_dict(self, execution: Any, events: Iterable[Any] = ()) -> dict[str, Any]:
        props = properties(execution)
        config_text = props.pop("config", None)
        try:
            config = json.loads(config_text) if config_text else None
        except ValueError:
            config = config_text
        contexts = {}
        for ctx in self.store.call("get_contexts_by_execution", execution.id):
            contexts[self.context_types.get(ctx.type_id, str(ctx.type_id))] = ctx.name
        events = [e for e in events if e.execution_id == execution.id]
        return {
            "id": execution.id,
            "type": self.execution_types.get(execution.type_id, str(execution.type_id)),
            "state": self.pb.Execution.State.Name(execution.last_known_state),
            "created": iso_time(execution.create_time_since_epoch),
            "updated": iso_time(execution.last_update_time_since_epoch),
            "pipeline": contexts.get(schema.PIPELINE_CONTEXT),
            "run": contexts.get(schema.RUN_CONTEXT),
            "config": config,
            "properties": props,
            "inputs": sorted({e.artifact_id for e in events if self.is_input(e)}),
            "outputs": sorted({e.artifact_id for e in events if self.is_output(e)}),
        }


# --------------------------------------------------------------------------- versions


def _split_patterns(input_config: Union[None, str, Mapping[str, Any]]) -> Optional[list[tuple[str, re.Pattern]]]:
    """(split name, regex of the relative path) for each split of a TFX Input config."""
    if input_config is None:
        return None
    config = input_config
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError as exc:
            raise ConfigError(f"--input-config is not valid JSON: {exc}") from None
    splits = config.get("splits") if isinstance(config, Mapping) else None
    if not splits or not isinstance(splits, list):
        raise ConfigError('--input-config needs "splits": [{"name": ..., "pattern": ...}, ...]')
    out = []
    for i, split in enumerate(splits):
        if not isinstance(split, Mapping) or not split.get("pattern"):
            raise ConfigError(f"--input-config splits[{i}] has no \"pattern\"")
        out.append((str(split.get("name", "")), re.compile(_pattern_regex(str(split["pattern"])))))
    return out


def _pattern_regex(pattern: str) -> str:
    """TFX file pattern (glob with {SPAN}, {VERSION}, {YYYY}, {MM}, {DD}) as a regex."""
    placeholders = {"{SPAN}": r"\d+", "{VERSION}": r"\d+", "{YYYY}": r"\d{4}", "{MM}": r"\d{2}", "{DD}": r"\d{2}"}
    out, i = [], 0
    while i < len(pattern):
        for token, regex in placeholders.items():
            if pattern.startswith(token, i):
                out.append(regex)
                i += len(token)
                break
        else:
            ch = pattern[i]
            if ch == "*":
                out.append("[^/]*")
            elif ch == "?":
                out.append("[^/]")
            elif ch == "[" and "]" in pattern[i + 2:]:
                end = pattern.index("]", i + 2)
                body = pattern[i + 1:end]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
                i = end
            else:
                out.append(re.escape(ch))
            i += 1
    return "^" + "".join(out) + "$"


def data_versions(
    store: LineageStore,
    input_base: str,
    input_config: Union[None, str, Mapping[str, Any]] = None,
) -> dict[str, Any]:
    """The spans/versions of the files under `input_base` that runs have read.

    A data version is a (span, version) and the exact set of (file, digest) a run read
    for it: the same span read again after a file changed (even with the same size and
    mtime) is a new version. Each lists its files, the runs' input fingerprints, first and
    last time seen, the runs, and the Examples they produced.
    """
    from ml_metadata.metadata_store import metadata_store as mlmd

    base = normalize_uri(input_base)
    patterns = _split_patterns(input_config)
    reader = _Reader(store)
    query = f"type = {quote_literal(schema.SOURCE_FILE)}"
    if is_plain(base):  # else filtered below only (such literals break on PostgreSQL)
        query += f" AND uri LIKE {quote_literal(base + '/%')}"
    found = store.call("get_artifacts", list_options=mlmd.ListOptions(filter_query=query))
    files = {}
    for artifact in found:
        if not artifact.uri.startswith(base + "/"):
            continue
        relative = artifact.uri[len(base) + 1:]
        if patterns is not None and not any(rx.match(relative) for _, rx in patterns):
            continue
        files[artifact.id] = artifact
    input_events = [e for e in reader.events_of_artifacts(files) if reader.is_input(e)]
    executions = reader.executions(e.execution_id for e in input_events)
    all_events = reader.events_of_executions(executions)
    outputs = reader.artifacts(e.artifact_id for e in all_events if reader.is_output(e))
    examples_types = {i for i, n in reader.artifact_types.items() if n == schema.EXAMPLES}

    groups: dict[tuple, dict[str, Any]] = {}
    for execution_id, execution in sorted(executions.items()):
        read = sorted({e.artifact_id for e in input_events if e.execution_id == execution_id})
        by_span: dict[tuple, list[int]] = {}
        for artifact_id in read:
            p = properties(files[artifact_id])
            by_span.setdefault((p.get("span", 0), p.get("version")), []).append(artifact_id)
        ex = reader.execution_dict(execution, all_events)
        produced = [outputs[i] for i in ex["outputs"] if i in outputs and outputs[i].type_id in examples_types]
        for (span, version), artifact_ids in by_span.items():
            key = (span, version, tuple(artifact_ids))
            group = groups.setdefault(key, {
                "span": span, "version": version, "input_fingerprints": [],
                "first_seen": ex["created"], "last_seen": ex["created"],
                "files": [_file_dict(files[i]) for i in artifact_ids],
                "runs": [], "examples": [],
            })
            fingerprint = ex["properties"].get("input_fingerprint")
            if fingerprint and fingerprint not in group["input_fingerprints"]:
                group["input_fingerprints"].append(fingerprint)
            group["first_seen"] = min(group["first_seen"] or "", ex["created"] or "") or None
            group["last_seen"] = max(group["last_seen"] or "", ex["created"] or "") or None
            group["runs"].append({k: ex[k] for k in ("id", "type", "state", "run", "created")})
            for artifact in produced:
                if all(e["artifact_id"] != artifact.id for e in group["examples"]):
                    group["examples"].append(_examples_dict(reader, artifact))
    versions = sorted(groups.values(), key=lambda g: (g["span"], -1 if g["version"] is None else g["version"],
                                                       g["runs"][0]["id"]))
    return {"store": str(store.config), "input_base": base, "versions": versions}


def _file_dict(artifact: Any) -> dict[str, Any]:
    p = properties(artifact)
    return {"artifact_id": artifact.id, "uri": artifact.uri, "split": p.get("split"),
            "digest": p.get("digest"), "size": p.get("size")}


def _json_property(value: Any) -> Any:
    """A property TFX stores as a JSON string (split_names, example_counts), decoded."""
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _examples_dict(reader: _Reader, artifact: Any) -> dict[str, Any]:
    p = properties(artifact)
    return {"artifact_id": artifact.id, "uri": artifact.uri,
            "state": reader.pb.Artifact.State.Name(artifact.state),
            "created": iso_time(artifact.create_time_since_epoch),
            "split_names": _json_property(p.get("split_names")),
            "example_counts": _json_property(p.get("example_counts"))}


# --------------------------------------------------------------------------- lineage


def find_artifacts(store: LineageStore, target: str) -> list[Any]:
    """Artifacts named by `target`: an MLMD artifact id, or a URI (local paths made absolute)."""
    target = target.strip()
    if target.isdigit():
        found = store.call("get_artifacts_by_id", [int(target)])
        if found:
            return list(found)
    candidates = dict.fromkeys([target, target.rstrip("/"), normalize_uri(target)])
    seen: dict[int, Any] = {}
    for uri in candidates:
        if uri:
            for artifact in store.call("get_artifacts_by_uri", uri):
                seen[artifact.id] = artifact
    if not seen:
        raise LineageError(f"no artifact with id or URI {target!r} in MLMD store {store.config}")
    return [seen[i] for i in sorted(seen)]


def lineage(store: LineageStore, target: str, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Upstream (what produced it, from what) and downstream (what consumed it) of `target`."""
    reader = _Reader(store)
    results = []
    for artifact in find_artifacts(store, target):
        results.append({
            "artifact": reader.artifact_dict(artifact),
            "upstream": _walk(reader, artifact.id, upstream=True, max_depth=max_depth),
            "downstream": _walk(reader, artifact.id, upstream=False, max_depth=max_depth),
        })
    return {"store": str(store.config), "target": target, "matches": results}


def _walk(reader: _Reader, artifact_id: int, *, upstream: bool, max_depth: int) -> dict[str, Any]:
    """Executions and artifacts reachable from `artifact_id`, nearest first."""
    frontier, seen_artifacts, seen_executions = {artifact_id}, {artifact_id}, set()
    executions: list[dict[str, Any]] = []
    artifact_ids: list[int] = []
    for _ in range(max_depth):
        events = reader.events_of_artifacts(frontier)
        linked = reader.is_output if upstream else reader.is_input
        next_ids = sorted({e.execution_id for e in events if linked(e)} - seen_executions)
        if not next_ids:
            break
        seen_executions.update(next_ids)
        their_events = reader.events_of_executions(next_ids)
        frontier = set()
        for _, execution in sorted(reader.executions(next_ids).items()):
            ex = reader.execution_dict(execution, their_events)
            executions.append(ex)
            for i in ex["inputs"] + ex["outputs"]:
                if i not in seen_artifacts:
                    seen_artifacts.add(i)
                    artifact_ids.append(i)
            frontier.update(ex["inputs"] if upstream else ex["outputs"])
        frontier -= {artifact_id}
    fetched = reader.artifacts(artifact_ids)
    return {"executions": executions,
            "artifacts": [reader.artifact_dict(fetched[i]) for i in artifact_ids if i in fetched]}


# --------------------------------------------------------------------------- text


def _short(digest: Optional[str], keep: int = 16) -> str:
    if not digest:
        return "-"
    algo, _, hexpart = digest.partition(":")
    if not hexpart:
        return digest[:keep] + ("…" if len(digest) > keep else "")
    return f"{algo}:{hexpart[:keep]}" + ("…" if len(hexpart) > keep else "")


def _size(size: Any) -> str:
    return f"{int(size):,} B" if isinstance(size, (int, float)) else "-"


def _counts(counts: Any) -> str:
    if isinstance(counts, Mapping):
        return " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    return str(counts or "-")


def _table(rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def format_versions(report: Mapping[str, Any]) -> str:
    """Text for `examplegen versions`."""
    lines = [f"Data versions under {report['input_base']}  (MLMD store {report['store']})", ""]
    versions = report["versions"]
    if not versions:
        lines.append("No runs have read files under this input base.")
        return "\n".join(lines) + "\n"
    header = [["SPAN", "VERSION", "FIRST SEEN", "LAST SEEN", "RUNS", "FILES", "INPUT FINGERPRINT"]]
    rows = [[str(v["span"]), "-" if v["version"] is None else str(v["version"]),
             v["first_seen"] or "-", v["last_seen"] or "-", str(len(v["runs"])), str(len(v["files"])),
             ", ".join(_short(f) for f in v["input_fingerprints"]) or "-"] for v in versions]
    table = _table(header + rows)
    lines.append(table[0])
    for line, version in zip(table[1:], versions):
        lines.append(line)
        files = [["file", f["split"] or "-", _short(f["digest"]), _size(f["size"]), f["uri"]]
                 for f in version["files"]]
        examples = [["examples", f"#{e['artifact_id']}", e["state"], _counts(e["example_counts"]), e["uri"]]
                    for e in version["examples"]]
        lines.extend(_table(files + examples, indent="    "))
    return "\n".join(lines) + "\n"


def _artifact_line(a: Mapping[str, Any]) -> str:
    p = a["properties"]
    if a["type"] == schema.SOURCE_FILE:
        detail = (f"{_short(p.get('digest'))}  {_size(p.get('size'))}  split {p.get('split', '-')}"
                  f"  span {p.get('span', '-')}" + (f" version {p['version']}" if "version" in p else ""))
    elif "split_names" in p or a["type"] == schema.EXAMPLES:
        counts = p.get("example_counts")
        try:
            counts = json.loads(counts) if isinstance(counts, str) else counts
        except ValueError:
            pass
        detail = f"{_counts(counts)}  span {p.get('span', '-')}  fingerprint {_short(p.get('input_fingerprint'))}"
    else:
        detail = ""
    return f"#{a['id']} {a['type']} {a['state']}  {a['uri']}  {detail}".rstrip()


def _execution_lines(ex: Mapping[str, Any], artifacts: Mapping[int, Mapping[str, Any]]) -> list[str]:
    p = ex["properties"]
    rows = " ".join(f"{k.split('_')[1]}={p[k]}" for k in ("rows_read", "rows_written", "rows_rejected") if k in p)
    lines = [f"  execution #{ex['id']} {ex['type']} {ex['state']}  {ex['created']}  run {ex['run'] or '-'}"
             + (f"  rows {rows}" if rows else "")]
    extra = [f"{k}={p[k]}" for k in ("span", "version", "input_fingerprint", "engine_version",
                                     "cached_execution_id") if k in p]
    if extra:
        lines.append("      " + "  ".join(extra))
    if "error_message" in p:
        lines.append(f"      error: {p['error_message']}")
    if ex["config"] is not None:
        lines.append("      config: " + json.dumps(ex["config"], sort_keys=True))
    for label, ids in (("in ", ex["inputs"]), ("out", ex["outputs"])):
        for i in ids:
            a = artifacts.get(i)
            lines.append(f"      {label} " + (_artifact_line(a) if a else f"#{i}"))
    return lines


def format_lineage(report: Mapping[str, Any]) -> str:
    """Text for `examplegen lineage`."""
    lines = []
    for match in report["matches"]:
        target = match["artifact"]
        lines.append("Artifact " + _artifact_line(target))
        lines.append(f"  created {target['created']}  (MLMD store {report['store']})")
        for title, part in (("Upstream (produced it)", match["upstream"]),
                            ("Downstream (consumed it)", match["downstream"])):
            known = {a["id"]: a for a in part["artifacts"]}
            known[target["id"]] = target
            lines.append("")
            lines.append(f"{title}:")
            if not part["executions"]:
                lines.append("  (none)")
            for ex in part["executions"]:
                lines.extend(_execution_lines(ex, known))
        lines.append("")
    return "\n".join(lines)
