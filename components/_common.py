"""Argument handling shared by the KFP components (no kfp import, so it is unit-testable).

The component functions run inside the component image (or a kfp.local subprocess) and
import these helpers from the installed package.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any, Optional

from examplegen.config import parse_input_config, parse_output_config, parse_range_config
from examplegen.errors import ConfigError

# Where Vertex AI (and GKE clusters with the Cloud Storage FUSE driver) mount Cloud
# Storage in a task's container: gs://bucket/x is <mount>/bucket/x. Open-source KFP mounts
# an empty scratch volume at the same path in every pod (kubeflow/pipelines#6530), so the
# mount is only used for a bucket that is visible under it. EXAMPLEGEN_GCS_MOUNT moves it
# (tests stand a folder in for it).
GCS_MOUNT = "/gcs"
GCS_MOUNT_ENV = "EXAMPLEGEN_GCS_MOUNT"

# Name of the SQLite lineage store written under the pipeline root when no store is given.
SQLITE_STORE_NAME = "mlmd.sqlite"

# How to give the lineage store's password (shown when a parameter holds one).
SECRET_HELP = (
    "put the password in the environment variable EXAMPLEGEN_MLMD_PASSWORD instead, from a "
    "Kubernetes secret (kfp-kubernetes: kubernetes.use_secret_as_env(task, secret_name=..., "
    "secret_key_to_env={'password': 'EXAMPLEGEN_MLMD_PASSWORD'})) or, on Vertex AI, name a "
    "Secret Manager secret version in EXAMPLEGEN_MLMD_PASSWORD_SECRET; see the README, 'Secrets'"
)


def optional(value: Optional[str]) -> Optional[str]:
    """A pipeline string parameter, with "" (KFP's "not set") turned into None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {type(value).__name__}: {value!r}")
    value = value.strip()
    return value or None


def struct(value: Any, name: str) -> Optional[dict]:
    """A config parameter: a dict (KFP STRUCT) or its JSON text; None, "" and {} give None."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name}: not valid JSON ({exc}): {text!r}") from None
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a JSON object (dict), got {type(value).__name__}: {value!r}")
    return value or None


def string_list(value: Any, name: str) -> Optional[list[str]]:
    """A list parameter: a list, JSON list text or comma-separated names; "" or [] give None."""
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [part.strip() for part in text.split(",") if part.strip()] or None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{name}: not valid JSON ({exc}): {text!r}") from None
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name}: expected a list of strings: {value!r}")
    return value or None


def engine_arguments(engine: Any, beam_pipeline_args: Any) -> dict[str, Any]:
    """The engine parameters, checked, as ingest()/resplit() keyword arguments: ``engine``
    "local" or "beam"; ``beam_pipeline_args`` TFX's list of Beam options (a list, its JSON
    text, or one command line split like a shell's: "--runner=DataflowRunner --project=p")."""
    from examplegen.ingest import check_engine

    if isinstance(beam_pipeline_args, str) and not beam_pipeline_args.strip().startswith("["):
        try:
            beam_pipeline_args = shlex.split(beam_pipeline_args)
        except ValueError as exc:
            raise ConfigError(f"beam_pipeline_args: {exc}: {beam_pipeline_args!r}") from None
    args = string_list(beam_pipeline_args, "beam_pipeline_args") or []
    engine = (engine.strip() if isinstance(engine, str) else engine) or "local"
    named("engine", lambda value: check_engine(value, args), engine)
    return {"engine": engine, "beam_pipeline_args": args}


def integer(value: Any, name: str, low: int) -> int:
    """An integer parameter that must be >= low."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")
    return value


def named(name: str, parse, value):
    """parse(value), with a ConfigError's message starting with the parameter's name."""
    try:
        return parse(value)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith(name) else f"{name}: {message}") from None


def mlmd_url(value: Optional[str]) -> Optional[str]:
    """The `mlmd` parameter, checked: a valid store URL without a password, or None."""
    from examplegen.lineage import StoreConfig

    url = optional(value)
    if url is None:
        return None
    config = StoreConfig.from_url(url, origin="the mlmd parameter")
    if config.password is not None:
        raise ConfigError(
            f"mlmd: the parameter {config.url()} holds a password; a parameter value is logged "
            f"and shown in the pipeline UI. Give the URL without it and {SECRET_HELP}"
        )
    return url


def gcs_mount() -> str:
    """Where Cloud Storage would be mounted ($EXAMPLEGEN_GCS_MOUNT, else /gcs)."""
    return os.environ.get(GCS_MOUNT_ENV) or GCS_MOUNT


def local_path(uri: str, mount: Optional[str] = None) -> str:
    """gs://bucket/x -> <mount>/bucket/x when the bucket is visible under the Cloud Storage
    FUSE mount (Vertex AI); otherwise the URI unchanged, read with the Cloud Storage client
    (open-source KFP's empty /gcs scratch volume, or no mount at all)."""
    mount = mount or gcs_mount()
    if uri.startswith("gs://"):
        bucket = uri[len("gs://"):].split("/", 1)[0]
        if bucket and os.path.isdir(os.path.join(mount, bucket)):
            return os.path.join(mount, uri[len("gs://"):])
    return uri


def bad_row_options(bad_rows: str, max_bad_rows: int, max_bad_ratio: float) -> dict[str, Any]:
    """The engine's bad-row keyword arguments from component parameters (a negative limit,
    the parameters' default, means none)."""
    def limit(value):  # other values go to the engine, which names them in its error
        negative = isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0
        return None if value is None or negative else value

    return {"bad_rows": optional(bad_rows) or "fail", "max_bad_rows": limit(max_bad_rows),
            "max_bad_ratio": limit(max_bad_ratio)}


def artifact_location(artifact: Any, engine: Any) -> str:
    """Where the engine reads or writes an artifact: its local path (KFP maps a gs:// URI to
    the Cloud Storage mount or copies the folder), except that with engine "beam" a gs:// or
    s3:// URI is used as is: Beam workers elsewhere (Dataflow) see neither this task's disk
    nor its mount, and the engine writes object stores directly (README, Remote input and
    output)."""
    uri = getattr(artifact, "uri", "") or ""
    if str(engine or "").strip() == "beam" and uri.startswith(("gs://", "s3://")):
        return uri
    return artifact.path


def is_placeholder(value: str) -> bool:
    """True for a KFP runtime placeholder the backend left unresolved (e.g. "{{$.pipeline_root}}")."""
    return value.startswith("{{$") and value.endswith("}}")


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
            f"input_base: not given and the sample data {path} does not exist "
            "(set EXAMPLEGEN_SAMPLE_DATA or pass input_base)"
        )
    return path


def input_base_or_sample(input_base: str, sample: str) -> str:
    """The input base to read: the given one (gs:// through a visible mount) or the sample set."""
    given = named("input_base", optional, input_base)
    return local_path(given) if given else sample_data_dir(sample)


def lineage_store(mlmd: str, pipeline_root: str, environ: Optional[dict] = None) -> Optional[str]:
    """The ML Metadata store URL a component records into; None lets the engine choose.

    In order: the `mlmd` parameter when set (refused when it holds a password); None when
    the environment names a store (EXAMPLEGEN_MLMD, or the gRPC service KFP injects into
    task pods as METADATA_GRPC_SERVICE_HOST / _PORT), which the engine then uses; else a
    SQLite file under the pipeline root (a gs:// root through a visible Cloud Storage
    mount); else None (the engine's default, ./mlmd.sqlite).
    """
    env = os.environ if environ is None else environ
    explicit = mlmd_url(mlmd)
    if explicit:
        return explicit
    if env.get("EXAMPLEGEN_MLMD") or env.get("METADATA_GRPC_SERVICE_HOST"):
        return None
    root = named("pipeline_root", optional, pipeline_root)
    if root and not is_placeholder(root):
        root = local_path(root)
        if "://" not in root:
            return "sqlite:///" + os.path.abspath(os.path.join(root, SQLITE_STORE_NAME))
    return None


def connection_without_password(connection: str) -> str:
    """A query component's connection URL; one holding a password is refused (a parameter is
    visible in the pipeline spec, the UI and ML Metadata)."""
    import urllib.parse

    from examplegen.lineage.store import redact_url

    value = optional(connection)
    if value is None:
        raise ConfigError("connection: the database URL is required, e.g. postgresql://user@host:5432/db")
    parts = urllib.parse.urlsplit(value)
    if parts.password is not None or "access_token" in urllib.parse.parse_qs(parts.query):
        shown = redact_url(urllib.parse.urlunsplit(parts._replace(query="")))
        raise ConfigError(f"connection {shown!r} holds a password or token; parameters are visible in "
                          "the pipeline spec and the UI: give the URL without it and set EXAMPLEGEN_DB_PASSWORD "
                          "(EXAMPLEGEN_DB_TOKEN) in the task's environment from a Kubernetes secret (see README, "
                          "Query sources)")
    return value


def run_name_or_none(run_name: str) -> Optional[str]:
    """The pipeline run's name for lineage; None when KFP left the placeholder unresolved."""
    value = named("run_name", optional, run_name)
    if value is None or is_placeholder(value):
        return None
    return value


def lineage_arguments(mlmd: str, pipeline_name: str, run_name: str, pipeline_root: str) -> dict[str, Any]:
    """The engine's lineage keyword arguments (mlmd, pipeline_name, run_name), checked."""
    name = named("pipeline_name", optional, pipeline_name)
    if name is None:
        raise ConfigError("pipeline_name: must not be empty")
    return {"mlmd": lineage_store(mlmd, pipeline_root), "pipeline_name": name,
            "run_name": run_name_or_none(run_name)}


def fingerprint(value: str) -> Optional[str]:
    """The expected_fingerprint parameter: "" or sha256:<64 hex digits>."""
    text = named("expected_fingerprint", optional, value)
    if text is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", text):
        raise ConfigError(f"expected_fingerprint: expected sha256:<64 hex digits> (resolve_span's "
                          f"fingerprint output), got {text!r}")
    return text


def config_arguments(input_config: Any, output_config: Any, range_config: Any, num_shards: int,
                     force: bool) -> dict[str, Any]:
    """The TFX configs, num_shards and force parameters checked (each error names its
    parameter), as the engine's keyword arguments (ingest() and ingest_query()). An empty
    input_config stays None: the format's default pattern."""
    if not isinstance(force, bool):
        raise ConfigError(f"force: expected true or false, got {force!r}")
    return {
        "input_config": optional_config("input_config", parse_input_config, input_config),
        "output_config": named("output_config", parse_output_config, struct(output_config, "output_config")),
        "range_config": named("range_config", parse_range_config, struct(range_config, "range_config")),
        "num_shards": integer(num_shards, "num_shards", 0),
        "force": force,
    }


def ingest_arguments(*, input_base: str, sample: str, source_format: str, input_config: Any,
                     output_config: Any, range_config: Any, num_shards: int, force: bool,
                     lineage: dict[str, Any], csv_options: Any = None, source_options: Any = None,
                     payload_format: Optional[str] = None, expected_fingerprint: str = "",
                     engine: Any = "local", beam_pipeline_args: Any = None) -> dict[str, Any]:
    """Every ingest component parameter checked (each error names its parameter), as the
    engine's ingest() keyword arguments. An empty input_config stays None: the format's
    default pattern."""
    from examplegen.payload import normalize_payload_format
    from examplegen.sources.csv import CsvOptions

    arguments = {
        "input_base": input_base_or_sample(input_base, sample),
        "source_format": source_format,
        **config_arguments(input_config, output_config, range_config, num_shards, force),
        "expected_fingerprint": fingerprint(expected_fingerprint),
        **engine_arguments(engine, beam_pipeline_args),
        **lineage,
    }
    if source_format == "csv":
        options = struct(csv_options, "csv_options")
        named("csv_options", CsvOptions.from_dict, options)
        arguments["csv_options"] = options
    if source_options is not None:  # any format's options (examplegen.sources)
        from examplegen import sources

        source = named("source_format", sources.get, source_format)
        options = struct(source_options, "source_options")
        named("source_options", source.Options.from_dict, options)
        arguments["source_options"] = options
    if payload_format is not None:
        arguments["payload_format"] = named("payload_format", normalize_payload_format, payload_format)
    return arguments


def optional_config(name: str, parse, value: Any):
    """A config parameter parsed (errors name it), or None when it is empty."""
    config = struct(value, name)
    return None if config is None else named(name, parse, config)


def artifact_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata safe to publish on a KFP artifact: None values dropped (KFP rejects null)."""
    return {key: value for key, value in metadata.items() if value is not None}


def pinned_range(input_config: Any, resolutions) -> dict:
    """The range config that makes the ingest step resolve exactly `resolutions`' spans
    (a static range from the first to the last); {} when the patterns have no span spec."""
    from examplegen.config import parse_input_config
    from examplegen.span import pattern_specs

    if not any(pattern_specs(split.pattern).has_span for split in parse_input_config(input_config).splits):
        return {}
    return {"static_range": {"start_span_number": resolutions[0].span,
                             "end_span_number": resolutions[-1].span}}


def resolve_and_record(
    input_base: str,
    input_config: Any,
    range_config: Any,
    *,
    mlmd: Optional[str],
    pipeline_name: str,
    run_name: Optional[str],
    source_format: str = "csv",
    source_options: Any = None,
):
    """The engine's resolve(): spans to ingest, recorded as an examplegen.ResolveSpan
    execution (input_config None: the format's default pattern)."""
    from examplegen.ingest import resolve

    return resolve(input_base, input_config, range_config, source_format=source_format,
                   source_options=source_options, mlmd=mlmd, pipeline_name=pipeline_name, run_name=run_name)


def sample_for(source_format: str) -> str:
    """The bundled sample data set of a format (input_base "")."""
    samples = {"csv": "taxi", "tfrecord": "taxi_tfrecord", "images": "images", "text": "text_corpus"}
    return samples.get(source_format, f"taxi_{source_format}")
