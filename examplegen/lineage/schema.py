"""What kfp-examplegen records in ML Metadata, and the names it uses.

The names follow KFP v2's own MLMD records (kubeflow/pipelines backend/src/v2/metadata)
so that, on a cluster, ours join KFP's:

- Types are schemaless, as KFP registers them: every value is a *custom* property, so a
  type that KFP (or another examplegen version) registered first is always compatible.
- Contexts: `system.Pipeline` named after the pipeline, and `system.PipelineRun` named
  after the run, linked to it as child -> parent (ParentContext), exactly as KFP links
  them. On KFP, pass the KFP run id as the run name (dsl.PIPELINE_JOB_ID_PLACEHOLDER)
  and the pipeline name, and the execution lands in KFP's run. A local run gets a
  generated name `examplegen-local-<UTC time>-<random>`. Every execution is associated
  with both contexts and every artifact it touches is attributed to both.
- Executions (`examplegen.Ingest`, `examplegen.Split`, `examplegen.ResolveSpan`):
  `last_known_state` RUNNING -> COMPLETE | FAILED | CACHED (KFP's states). Custom
  properties: display_name (KFP's key), config (canonical JSON of the effective configs,
  credentials redacted), config_digest, engine_version, span, version, spans,
  input_fingerprint, start_time/end_time (ISO-8601 UTC), rows_read, rows_written,
  rows_rejected, error_message (FAILED), cached_execution_id (CACHED; KFP's key), pid
  and host, process (JSON identity: pid, host, boot id, pid namespace, start time;
  examplegen.liveness). A run killed outright stays RUNNING until the next run on the
  same store sees that its process is dead: then it is FAILED with error_message
  "abandoned: ..." and abandoned_by_execution_id (MLMD has no "abandoned" execution
  state; CANCELED would claim that someone stopped it).
- Input artifacts `examplegen.SourceFile`, one per (uri, content digest), reused across
  runs: external_id `examplegen.SourceFile:<sha256 of uri NUL digest>`, properties
  digest ("sha256:<hex>" of the bytes: SHA-256 is in every Python and CPU-accelerated,
  ~1 GB/s here), size, span, version, split (as first seen), display_name. State LIVE.
  A query's result is one too: URI = the connection URL without password, digest = the
  order-independent result digest (examplegen.sources.query), plus query (the text with
  placeholders substituted) and rows; one artifact per (URI, digest, query).
- Output artifacts `tfx.Examples` (KFP's schema title for TFX's Examples), properties as
  TFX names them: split_names (JSON list string), span, version, input_fingerprint,
  payload_format, file_format, plus example_counts (JSON {split: count}), spans (when
  several), files_digest ("sha256:<hex>" of the file list -- path, size, SHA-256 of
  every data file -- that examples_metadata.json holds) and display_name. Created LIVE
  only when the run completes, in the same transaction that marks the execution
  COMPLETE; a failed or killed run leaves none. A run that commits new files at a URI
  marks the older LIVE Examples there DELETED (custom property superseded_by_artifact_id).
  A CACHED run points at the reused artifact; if the engine copied it to another output
  URI, at a new LIVE artifact there with the same properties plus copied_from_artifact_id.
  Before reuse the files are checked against the list; Examples whose files were changed,
  truncated, removed or added to are marked DELETED with invalidated_reason (naming the
  file) and the data is converted again.
- Events: INPUT (path key "sources" with the file's index, or "examples" for a split's
  input Examples) and OUTPUT (path key "examples"), as KFP keys events by artifact name.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Mapping

PIPELINE_CONTEXT = "system.Pipeline"
RUN_CONTEXT = "system.PipelineRun"

INGEST = "examplegen.Ingest"
SPLIT = "examplegen.Split"
RESOLVE_SPAN = "examplegen.ResolveSpan"

SOURCE_FILE = "examplegen.SourceFile"
EXAMPLES = "tfx.Examples"

SOURCES_KEY = "sources"  # event path key of source-file inputs
EXAMPLES_KEY = "examples"  # event path key of Examples inputs/outputs


def set_value(value: Any, python_value: Any) -> None:
    """Store a Python value in an MLMD Value proto (lists/dicts as JSON strings, like TFX)."""
    if isinstance(python_value, bool):
        value.int_value = int(python_value)  # KFP stores booleans as 0/1
    elif isinstance(python_value, int):
        value.int_value = python_value
    elif isinstance(python_value, float):
        value.double_value = python_value
    elif isinstance(python_value, str):
        value.string_value = python_value
    else:
        value.string_value = json.dumps(python_value, sort_keys=True)


def get_value(value: Any) -> Any:
    """The Python value of an MLMD Value proto."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "struct_value":
        from google.protobuf import json_format

        return json_format.MessageToDict(value.struct_value)
    if kind == "proto_value":
        return value.proto_value.type_url
    return getattr(value, kind)


def properties(node: Any) -> dict[str, Any]:
    """All properties and custom properties of an artifact/execution/context as a dict."""
    out = {key: get_value(v) for key, v in node.properties.items()}
    out.update({key: get_value(v) for key, v in node.custom_properties.items()})
    return out


def set_properties(node: Any, values: Mapping[str, Any]) -> None:
    """Set custom properties of `node` from `values`, skipping None."""
    for key, val in values.items():
        if val is None:
            if key in node.custom_properties:
                del node.custom_properties[key]
        else:
            set_value(node.custom_properties[key], val)


def quote_literal(text: str) -> str:
    """`text` as a single-quoted MLMD filter-query (ZetaSQL) string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def iso_time(ms_since_epoch: int | float | None) -> str | None:
    """MLMD's milliseconds since the epoch as ISO-8601 UTC (`2024-05-01T10:00:00Z`)."""
    if not ms_since_epoch:
        return None
    moment = datetime.datetime.fromtimestamp(ms_since_epoch / 1000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> str:
    return datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
