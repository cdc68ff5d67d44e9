"""The component functions: argument handling only, then a call into the engine.

KFP copies each function's source into the compiled pipeline and runs it in the component
image, so every import the body needs is made inside the body. Parameters KFP cannot
leave unset are strings where "" means "not given" (TFX's JSON configs, csv options).
Do not add `from __future__ import annotations` here: KFP reads the annotations as types.
"""

from typing import NamedTuple

from kfp.dsl import HTML, Input, Output

from components.artifacts import Examples


def resolve_span(
    input_base: str = "",
    input_config: str = "",
    range_config: str = "",
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
) -> NamedTuple(
    "SpanOutputs", [("span", int), ("version", int), ("input_config", str), ("fingerprint", str)]
):
    """Resolve the span and version to ingest, as TFX ExampleGen's driver does.

    Args:
        input_base: Folder (local, gs:// or /gcs/...) holding the input files; "" means
            the bundled taxi CSV sample.
        input_config: TFX input config JSON ({"splits": [{"name", "pattern"}]}); "" for
            TFX's default (one split, pattern "*").
        range_config: TFX range config JSON (static_range or rolling_range); "" for latest.
        mlmd: Lineage store URL (sqlite:///, mysql://, postgresql://, grpc://); "" picks
            KFP's metadata service when present, else SQLite under the pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage (the pipelines pass the run's id).
        pipeline_root: The pipeline root (for the default SQLite lineage store).

    Returns:
        span: The resolved span (the latest one of a static range; 0 when the patterns
            have no span spec).
        version: The resolved version, -1 when the patterns have no {VERSION} spec.
        input_config: The input config with span/version substituted (JSON), of that span.
        fingerprint: Content fingerprint of all the resolved input files (as ingestion
            computes it).
    """
    import json

    from components import _common

    base = _common.input_base_or_sample(input_base, "taxi")
    resolutions, fingerprint = _common.resolve_and_record(
        base,
        _common.optional(input_config),
        _common.optional(range_config),
        mlmd=_common.lineage_store(mlmd, pipeline_root),
        pipeline_name=pipeline_name,
        run_name=_common.run_name_or_none(run_name),
    )
    latest = resolutions[-1]
    version = -1 if latest.version is None else latest.version
    resolved_config = json.dumps(latest.input_config().to_dict(), sort_keys=True)
    return latest.span, version, resolved_config, fingerprint


def csv_example_gen(
    examples: Output[Examples],
    input_base: str = "",
    input_config: str = "",
    output_config: str = "",
    range_config: str = "",
    csv_options: str = "",
    num_shards: int = 0,
    expected_fingerprint: str = "",
    force: bool = False,
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Ingest CSV files into a TFX Examples artifact (split gzip TFRecords of tf.Example).

    Args:
        examples: The output Examples artifact.
        input_base: Folder holding the CSV files; "" means the bundled taxi CSV sample.
        input_config: TFX input config JSON; "" for one split with pattern "*".
        output_config: TFX output config JSON; "" for train/eval hash buckets 2:1.
        range_config: TFX range config JSON; "" for the latest span.
        csv_options: JSON object of CSV options (delimiter, quote_char, encoding, header,
            column_names, schema); "" for TFX's defaults.
        num_shards: Output files per split; 0 chooses by size.
        expected_fingerprint: When set (resolve_span's fingerprint), fail if the input
            files changed since they were resolved.
        force: Rewrite even when lineage shows identical input was ingested already.
        mlmd: Lineage store URL; "" picks KFP's metadata service, else SQLite under the
            pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from components import _common
    from examplegen.ingest import ingest

    result = ingest(
        _common.input_base_or_sample(input_base, "taxi"),
        examples.path,
        source_format="csv",
        input_config=_common.optional(input_config),
        output_config=_common.optional(output_config),
        range_config=_common.optional(range_config),
        csv_options=_common.json_object(csv_options, "csv_options"),
        num_shards=num_shards,
        mlmd=_common.lineage_store(mlmd, pipeline_root),
        pipeline_name=pipeline_name,
        run_name=_common.run_name_or_none(run_name),
        force=force,
    )
    _common.check_fingerprint(result, expected_fingerprint)
    examples.metadata.update(_common.artifact_metadata(result.metadata()))


def import_example_gen(
    examples: Output[Examples],
    input_base: str = "",
    input_config: str = "",
    output_config: str = "",
    range_config: str = "",
    payload_format: str = "FORMAT_TF_EXAMPLE",
    num_shards: int = 0,
    force: bool = False,
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Import TFRecord files (tf.Example, tf.SequenceExample or raw protos; gzip or plain)
    into a TFX Examples artifact.

    Args:
        examples: The output Examples artifact.
        input_base: Folder holding the TFRecord files; "" means the bundled taxi
            TFRecord sample.
        input_config: TFX input config JSON; "" for one split with pattern "*".
        output_config: TFX output config JSON; "" for train/eval hash buckets 2:1.
        range_config: TFX range config JSON; "" for the latest span.
        payload_format: What the records hold: FORMAT_TF_EXAMPLE,
            FORMAT_TF_SEQUENCE_EXAMPLE or FORMAT_PROTO.
        num_shards: Output files per split; 0 chooses by size.
        force: Rewrite even when lineage shows identical input was ingested already.
        mlmd: Lineage store URL; "" picks KFP's metadata service, else SQLite under the
            pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from components import _common
    from examplegen.ingest import ingest

    result = ingest(
        _common.input_base_or_sample(input_base, "taxi_tfrecord"),
        examples.path,
        source_format="tfrecord",
        input_config=_common.optional(input_config),
        output_config=_common.optional(output_config),
        range_config=_common.optional(range_config),
        payload_format=payload_format,
        num_shards=num_shards,
        mlmd=_common.lineage_store(mlmd, pipeline_root),
        pipeline_name=pipeline_name,
        run_name=_common.run_name_or_none(run_name),
        force=force,
    )
    examples.metadata.update(_common.artifact_metadata(result.metadata()))


def image_example_gen(
    examples: Output[Examples],
    input_base: str = "",
    input_config: str = "",
    output_config: str = "",
    range_config: str = "",
    image_options: str = "",
    num_shards: int = 0,
    force: bool = False,
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Ingest an image folder with labels from paths (input_base/<label>/<file>) into a TFX
    Examples artifact: one tf.Example per image (image/encoded, image/format, image/height,
    image/width, image/channels, image/filename, image/class/label, image/class/text).

    Args:
        examples: The output Examples artifact; its metadata holds the label map.
        input_base: Folder holding one sub-folder per label; "" means the bundled sample
            of shapes (circle, square, triangle).
        input_config: TFX input config JSON; "" for one split with pattern "*/*".
        output_config: TFX output config JSON; "" for train/eval hash buckets 2:1.
        range_config: TFX range config JSON; "" for the latest span.
        image_options: JSON object of image options: label_map (a list, a .json file or
            the previous Examples artifact; default: the map ML Metadata recorded for the
            same input base, else the sorted labels), new_labels ("append" | "error"),
            labels (false: no label features), verify ("decode" | "header"), formats.
        num_shards: Output files per split; 0 chooses by size.
        force: Rewrite even when lineage shows identical input was ingested already.
        mlmd: Lineage store URL; "" picks KFP's metadata service, else SQLite under the
            pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from components import _common
    from examplegen.ingest import ingest

    result = ingest(
        _common.input_base_or_sample(input_base, "images"),
        examples.path,
        source_format="images",
        input_config=_common.optional(input_config),
        output_config=_common.optional(output_config),
        range_config=_common.optional(range_config),
        source_options=_common.json_object(image_options, "image_options"),
        num_shards=num_shards,
        mlmd=_common.lineage_store(mlmd, pipeline_root),
        pipeline_name=pipeline_name,
        run_name=_common.run_name_or_none(run_name),
        force=force,
    )
    examples.metadata.update(_common.artifact_metadata(result.metadata()))


def split_examples(
    input_examples: Input[Examples],
    examples: Output[Examples],
    output_config: str,
    input_splits: str = "",
    num_shards: int = 0,
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Re-split an Examples artifact into new named splits (hash buckets or a partition
    feature), so a pipeline can ingest once and split several ways.

    Args:
        input_examples: The Examples artifact to re-split.
        examples: The output Examples artifact.
        output_config: TFX output config JSON with the new split_config.
        input_splits: Splits of the input to read (JSON list or comma-separated); ""
            reads all of them.
        num_shards: Output files per split; 0 chooses by size.
        mlmd: Lineage store URL; "" picks KFP's metadata service, else SQLite under the
            pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from components import _common
    from examplegen.ingest import resplit

    result = resplit(
        input_examples.path,
        examples.path,
        output_config=output_config,
        input_splits=_common.string_list(input_splits, "input_splits"),
        num_shards=num_shards,
        mlmd=_common.lineage_store(mlmd, pipeline_root),
        pipeline_name=pipeline_name,
        run_name=_common.run_name_or_none(run_name),
    )
    examples.metadata.update(_common.artifact_metadata(result.metadata()))


def ingestion_report(
    examples: Input[Examples],
    report: Output[HTML],
    sample_rows: int = 5,
    max_examples: int = 100000,
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Write an HTML report of an Examples artifact: counts per split, inferred schema
    (types, values per example, missing counts, value ranges), sample rows, and the
    span / version / lineage summary.

    Args:
        examples: The Examples artifact to describe.
        report: The output HTML page (shown by the KFP UI).
        sample_rows: How many example rows to show.
        max_examples: Examples read per split for the schema statistics.
        mlmd: Lineage store URL; "" picks KFP's metadata service, else SQLite under the
            pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from components import _common
    from examplegen.report import report_with_lineage

    report_with_lineage(
        examples.path,
        report.path,
        mlmd=_common.lineage_store(mlmd, pipeline_root),
        pipeline_name=pipeline_name,
        run_name=_common.run_name_or_none(run_name),
        sample_rows=sample_rows,
        max_examples=max_examples,
    )
