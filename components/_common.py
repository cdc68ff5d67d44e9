"""Argument handling shared by the KFP components (no kfp import, so it is unit-testable).

The component functions run inside the component image (or a kfp.local subprocess) and
import these helpers from the installed package.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, Optional

from examplegen.errors import ConfigError, SourceError

# Where KFP mounts object storage inside a task's container (gcsfuse on Vertex AI and on
# GKE clusters with the GCS FUSE driver).
GCS_MOUNT = "/gcs"

# Name of the SQLite lineage store written under the pipeline root when no store is given.
SQLITE_STORE_NAME = "mlmd.sqlite"


def optional(value: Optional[str]) -> Optional[str]:
    """A pipeline string parameter, with "" (KFP's "not set") turned into None."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def json_object(value: Optional[str], what: str) -> Optional[dict]:
    """Parse a JSON-object string parameter (e.g. csv_options); "" gives None."""
    value = optional(value)
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: not valid JSON ({exc}): {value!r}") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"{what}: expected a JSON object, got {type(parsed).__name__}: {value!r}")
    return parsed


def string_list(value: Optional[str], what: str) -> Optional[list[str]]:
    """A list parameter given as a JSON list or comma-separated names; "" gives None."""
    value = optional(value)
    if value is None:
        return None
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{what}: not valid JSON ({exc}): {value!r}") from None
        if not all(isinstance(v, str) for v in parsed):
            raise ConfigError(f"{what}: expected a JSON list of strings: {value!r}")
        return parsed
    return [part.strip() for part in value.split(",") if part.strip()]


def beam_pipeline_args(value: Optional[str]) -> list[str]:
    """TFX's beam_pipeline_args as a string parameter: a JSON list of arguments, or one
    command line split like a shell's ("--runner=DataflowRunner --project=p"); "" gives []."""
    value = optional(value)
    if value is None:
        return []
    if value.startswith("["):
        return string_list(value, "beam_pipeline_args")
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise ConfigError(f"beam_pipeline_args: {exc}: {value!r}") from None


def is_placeholder(value: str) -> bool:
    """True for a KFP runtime placeholder the backend left unresolved (e.g. "{{$.pipeline_root}}")."""
    return value.startswith("{{$") and value.endswith("}}")


def local_path(uri: str, mount: str = GCS_MOUNT) -> str:
    """gs://bucket/x -> /gcs/bucket/x when KFP's GCS mount exists; other paths unchanged."""
    if uri.startswith("gs://") and os.path.isdir(mount):
        return os.path.join(mount, uri[len("gs://"):])
    return uri


def sample_data_dir(name: str) -> str:
    """Directory of the bundled sample data set `name` (e.g. "taxi").

    EXAMPLEGEN_SAMPLE_DATA (set in the component image) names the folder holding the
    sample sets; otherwise the repository's examples/data/ is used.
    """
    root = os.environ.get("EXAMPLEGEN_SAMPLE_DATA") or str(
        Path(__file__).resolve().parent.parent / "examples" / "data"
    )
    path = os.path.join(root, name)
    if not os.path.isdir(path):
        raise ConfigError(
            f"no input_base given and the sample data {path} does not exist "
            "(set EXAMPLEGEN_SAMPLE_DATA or pass input_base)"
        )
    return path


def input_base_or_sample(input_base: str, sample: str) -> str:
    """The input base to read: the given one (gs:// mapped to the mount) or the sample set."""
    given = optional(input_base)
    return local_path(given) if given else sample_data_dir(sample)


def lineage_store(mlmd: str, pipeline_root: str, environ: Optional[dict] = None) -> Optional[str]:
    """The ML Metadata store URL a component records into; None lets the engine choose.

    In order: the `mlmd` parameter when set; None when the environment names a store
    (EXAMPLEGEN_MLMD, or the gRPC service KFP injects into task pods as
    METADATA_GRPC_SERVICE_HOST / _PORT), which the engine then uses; else a SQLite file
    under the pipeline root (a gs:// root through the /gcs mount); else None (the engine's
    default, ./mlmd.sqlite).
    """
    env = os.environ if environ is None else environ
    explicit = optional(mlmd)
    if explicit:
        return explicit
    if env.get("EXAMPLEGEN_MLMD") or env.get("METADATA_GRPC_SERVICE_HOST"):
        return None
    root = optional(pipeline_root)
    if root and not is_placeholder(root):
        root = local_path(root)
        if "://" not in root:
            return "sqlite:///" + os.path.abspath(os.path.join(root, SQLITE_STORE_NAME))
    return None


def run_name_or_none(run_name: str) -> Optional[str]:
    """The pipeline run's name for lineage; None when KFP left the placeholder unresolved."""
    value = optional(run_name)
    if value is None or is_placeholder(value):
        return None
    return value


def check_fingerprint(result, expected: str) -> None:
    """Fail when the ingested files differ from those resolve_span saw (`expected` "" skips)."""
    expected = optional(expected)
    if expected and result.input_fingerprint != expected:
        raise SourceError(
            f"the input files changed between resolve_span and ingestion: resolved fingerprint "
            f"{expected}, ingested {result.input_fingerprint}; rerun the pipeline"
        )


def artifact_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata safe to publish on a KFP artifact: None values dropped (KFP rejects null)."""
    return {key: value for key, value in metadata.items() if value is not None}


def resolve_and_record(
    input_base: str,
    input_config: Optional[str],
    range_config: Optional[str],
    *,
    mlmd: Optional[str],
    pipeline_name: str,
    run_name: Optional[str],
):
    """The engine's resolve(): spans to ingest, recorded as an examplegen.ResolveSpan execution."""
    from examplegen.ingest import resolve

    return resolve(input_base, input_config, range_config, mlmd=mlmd, pipeline_name=pipeline_name,
                   run_name=run_name)
