"""The component functions: parameter checks, then a call into the engine.

KFP copies each function's source into the compiled spec and runs it in the component
image, so every import the body needs is made inside the body. Every parameter is checked
at the start of the task (kfp_examplegen.components._common), and an error names it.

Types: the Examples outputs are `system.Dataset` artifacts (any KFP component typed
`Input[Dataset]` or `Input[Artifact]` consumes them) carrying TFX's Examples properties
in their metadata. TFX's configs and the CSV options are `dict` parameters (KFP STRUCT);
their JSON text is accepted too. A string parameter left "" means "not given".
Do not add `from __future__ import annotations` here: KFP reads the annotations as types.
"""

from typing import NamedTuple

from kfp.dsl import HTML, Dataset, Input, Output


def resolve_span(
    input_base: str = "",
    input_config: dict = {},
    range_config: dict = {},
    source_format: str = "csv",
    source_options: dict = {},
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
) -> NamedTuple("SpanOutputs", [("span", int), ("version", int), ("input_config", dict),
                                ("range_config", dict), ("fingerprint", str), ("files", list)]):
    """Resolve the span(s) and version to ingest, as TFX ExampleGen's driver does.

    Args:
        input_base: Folder (local, gs:// or s3://) holding the input files; "" means the
            bundled sample of the format (the taxi CSV for csv).
        input_config: TFX input config ({"splits": [{"name", "pattern"}]}); empty for
            one split with the format's pattern, as the ingest step uses ("*"; "*/*" for
            labels from folders: images, text with labels).
        range_config: TFX range config (static_range or rolling_range); empty for the
            latest span.
        source_format: The format the ingest step reads (csv, parquet, images, ...): its
            default pattern applies when input_config is empty.
        source_options: The format's options (images/text: labels decides the default
            pattern); empty for the defaults.
        mlmd: Lineage store URL (sqlite:///, mysql://, postgresql://, grpc://) without a
            password (see EXAMPLEGEN_MLMD_PASSWORD); "" picks KFP's metadata service when
            present, else SQLite under the pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage (the pipelines pass the run's id).
        pipeline_root: The pipeline root (for the default SQLite lineage store).

    Returns:
        span: The resolved span (the latest one of a static range; 0 when the patterns
            have no span spec).
        version: The resolved version, -1 when the patterns have no {VERSION} spec.
        input_config: The input config with the latest span/version filled in.
        range_config: Pass it to the ingest step: a static range of exactly the resolved
            spans ({} when the patterns have no span spec).
        fingerprint: Content fingerprint of every resolved file; pass it to the ingest
            step as expected_fingerprint, which then ingests exactly these files or fails.
        files: Every resolved input file.
    """
    from kfp_examplegen.components import _common

    config = _common.struct(input_config, "input_config")
    source_format = source_format.strip() or "csv"
    resolutions, fingerprint = _common.resolve_and_record(
        _common.input_base_or_sample(input_base, _common.sample_for(source_format)),
        _common.optional_config("input_config", _common.parse_input_config, config),
        _common.named("range_config", _common.parse_range_config, _common.struct(range_config, "range_config")),
        source_format=source_format, source_options=source_options or {},
        **_common.lineage_arguments(mlmd, pipeline_name, run_name, pipeline_root),
    )
    latest = resolutions[-1]
    return (latest.span, -1 if latest.version is None else latest.version,
            latest.input_config().to_dict(), _common.pinned_range(config, resolutions), fingerprint,
            [source.uri for resolution in resolutions for source in resolution.sources()])


def csv_example_gen(
    examples: Output[Dataset],
    input_base: str = "",
    input_config: dict = {},
    output_config: dict = {},
    range_config: dict = {},
    csv_options: dict = {},
    num_shards: int = 0,
    expected_fingerprint: str = "",
    bad_rows: str = "fail",
    max_bad_rows: int = -1,
    max_bad_ratio: float = -1.0,
    force: bool = False,
    engine: str = "local",
    beam_pipeline_args: list = [],
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Ingest CSV files into a TFX Examples artifact (split gzip TFRecords of tf.Example).

    Args:
        examples: The output Examples (system.Dataset; TFX's properties in its metadata).
        input_base: Folder holding the CSV files; "" means the bundled taxi CSV sample.
        input_config: TFX input config; empty for one split with pattern "*".
        output_config: TFX output config; empty for train/eval hash buckets 2:1.
        range_config: TFX range config; empty for the latest span. In a pipeline, pass
            resolve_span's range_config output.
        csv_options: CSV options (delimiter, quote_char, encoding, header, column_names,
            schema); empty for TFX's defaults.
        num_shards: Output files per split; 0 chooses by size.
        expected_fingerprint: resolve_span's fingerprint: ingest exactly the files it
            resolved, or fail before writing anything. "" skips the check.
        bad_rows: "fail" (default): the first bad row fails the step; "skip": bad rows
            are left out and listed in the artifact's Quarantine/bad_rows.jsonl.gz.
        max_bad_rows: With "skip", fail when more rows than this are bad; -1: no limit.
        max_bad_ratio: With "skip", fail when more than this share (0-1) of the rows read
            are bad; -1: no limit.
        force: Rewrite even when lineage shows identical input was ingested already.
        engine: "local" (processes in this task) or "beam" (README, Apache Beam).
        beam_pipeline_args: TFX's beam_pipeline_args for engine "beam"; empty: DirectRunner.
        mlmd: Lineage store URL without a password; "" picks KFP's metadata service,
            else SQLite under the pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from examplegen.ingest import ingest
    from kfp_examplegen.components import _common

    arguments = _common.ingest_arguments(
        input_base=input_base, sample="taxi", source_format="csv", input_config=input_config,
        output_config=output_config, range_config=range_config, csv_options=csv_options,
        num_shards=num_shards, force=force, expected_fingerprint=expected_fingerprint,
        engine=engine, beam_pipeline_args=beam_pipeline_args,
        lineage=_common.lineage_arguments(mlmd, pipeline_name, run_name, pipeline_root))
    result = ingest(output_uri=_common.artifact_location(examples, engine), **arguments,
                    **_common.bad_row_options(bad_rows, max_bad_rows, max_bad_ratio))
    examples.metadata.update(_common.artifact_metadata(result.metadata()))


def file_example_gen(
    examples: Output[Dataset],
    source_format: str = "parquet",
    input_base: str = "",
    input_config: dict = {},
    output_config: dict = {},
    range_config: dict = {},
    source_options: dict = {},
    num_shards: int = 0,
    bad_rows: str = "fail",
    max_bad_rows: int = -1,
    max_bad_ratio: float = -1.0,
    force: bool = False,
    engine: str = "local",
    beam_pipeline_args: list = [],
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Ingest files of any format (Parquet, Avro, JSON Lines, CSV, TFRecord, image folders,
    text corpora or a registered source) into a TFX Examples artifact (split gzip TFRecords
    of tf.Example).

    Args:
        examples: The output Examples (system.Dataset; TFX's properties in its metadata).
        source_format: parquet, avro, jsonl, csv, tfrecord, images, text, an entry point
            of the examplegen.sources group or a module path (see the README).
        input_base: Folder holding the files; "" means the bundled sample of that format
            (examples/data/taxi_<format>; images: shapes in one folder per label; text: a
            corpus).
        input_config: TFX input config; empty for one split with the format's pattern
            ("*"; "*/*" for labels from folders).
        output_config: TFX output config; empty for train/eval hash buckets 2:1.
        range_config: TFX range config; empty for the latest span.
        source_options: The format's options (Parquet/Avro/JSON Lines: columns, schema,
            batch_rows; images: label_map, new_labels, labels, verify, formats; text: unit,
            encoding, labels, label_map, ...); empty for the defaults.
        num_shards: Output files per split; 0 chooses by size.
        bad_rows: "fail" (default): the first bad row fails the step; "skip": bad rows
            (a row with a value the type map rejects, a JSON Lines line that does not
            parse, an image that does not decode, text invalid in the encoding, ...) are
            left out and listed in the artifact's Quarantine/bad_rows.jsonl.gz.
        max_bad_rows: With "skip", fail when more rows than this are bad; -1: no limit.
        max_bad_ratio: With "skip", fail when more than this share (0-1) of the rows read
            are bad; -1: no limit.
        force: Rewrite even when lineage shows identical input was ingested already.
        engine: "local" (processes in this task) or "beam" (README, Apache Beam).
        beam_pipeline_args: TFX's beam_pipeline_args for engine "beam"; empty: DirectRunner.
        mlmd: Lineage store URL without a password; "" picks KFP's metadata service,
            else SQLite under the pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from examplegen.ingest import ingest
    from kfp_examplegen.components import _common

    source_format = source_format.strip()
    arguments = _common.ingest_arguments(
        input_base=input_base, sample=_common.sample_for(source_format), source_format=source_format, input_config=input_config,
        output_config=output_config, range_config=range_config, source_options=source_options or {},
        num_shards=num_shards, force=force, engine=engine, beam_pipeline_args=beam_pipeline_args,
        lineage=_common.lineage_arguments(mlmd, pipeline_name, run_name, pipeline_root))
    result = ingest(output_uri=_common.artifact_location(examples, engine), **arguments,
                    **_common.bad_row_options(bad_rows, max_bad_rows, max_bad_ratio))
    examples.metadata.update(_common.artifact_metadata(result.metadata()))


def import_example_gen(
    examples: Output[Dataset],
    input_base: str = "",
    input_config: dict = {},
    output_config: dict = {},
    range_config: dict = {},
    payload_format: str = "FORMAT_TF_EXAMPLE",
    num_shards: int = 0,
    bad_rows: str = "fail",
    max_bad_rows: int = -1,
    max_bad_ratio: float = -1.0,
    force: bool = False,
    engine: str = "local",
    beam_pipeline_args: list = [],
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Import TFRecord files (tf.Example, tf.SequenceExample or raw protos; gzip or plain)
    into a TFX Examples artifact.

    Args:
        examples: The output Examples (system.Dataset; TFX's properties in its metadata).
        input_base: Folder holding the TFRecord files; "" means the bundled taxi
            TFRecord sample.
        input_config: TFX input config; empty for one split with pattern "*".
        output_config: TFX output config; empty for train/eval hash buckets 2:1.
        range_config: TFX range config; empty for the latest span.
        payload_format: What the records hold: FORMAT_TF_EXAMPLE,
            FORMAT_TF_SEQUENCE_EXAMPLE or FORMAT_PROTO.
        num_shards: Output files per split; 0 chooses by size.
        bad_rows: "fail" (default): the first bad row fails the step; "skip": bad rows
            are left out and listed in the artifact's Quarantine/bad_rows.jsonl.gz.
        max_bad_rows: With "skip", fail when more rows than this are bad; -1: no limit.
        max_bad_ratio: With "skip", fail when more than this share (0-1) of the rows read
            are bad; -1: no limit.
        force: Rewrite even when lineage shows identical input was ingested already.
        engine: "local" (processes in this task) or "beam" (README, Apache Beam).
        beam_pipeline_args: TFX's beam_pipeline_args for engine "beam"; empty: DirectRunner.
        mlmd: Lineage store URL without a password; "" picks KFP's metadata service,
            else SQLite under the pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from examplegen.ingest import ingest
    from kfp_examplegen.components import _common

    arguments = _common.ingest_arguments(
        input_base=input_base, sample="taxi_tfrecord", source_format="tfrecord",
        input_config=input_config, output_config=output_config, range_config=range_config,
        payload_format=payload_format, num_shards=num_shards, force=force,
        engine=engine, beam_pipeline_args=beam_pipeline_args,
        lineage=_common.lineage_arguments(mlmd, pipeline_name, run_name, pipeline_root))
    result = ingest(output_uri=_common.artifact_location(examples, engine), **arguments,
                    **_common.bad_row_options(bad_rows, max_bad_rows, max_bad_ratio))
    examples.metadata.update(_common.artifact_metadata(result.metadata()))


def query_example_gen(
    examples: Output[Dataset],
    connection: str,
    input_config: dict,
    source_format: str = "sql",
    output_config: dict = {},
    range_config: dict = {},
    source_options: dict = {},
    num_shards: int = 0,
    force: bool = False,
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Run queries (TFX QueryBasedExampleGen: each input split's pattern is a query) into a
    TFX Examples artifact, each query's result digest recorded as its data version.

    The database password (or Trino JWT) is never a parameter: the task reads it from the
    environment variable EXAMPLEGEN_DB_PASSWORD (EXAMPLEGEN_DB_TOKEN), set from a Kubernetes
    secret (see the README, "Query sources"); BigQuery uses Application Default Credentials.

    Args:
        examples: The output Examples (system.Dataset; TFX's properties in its metadata).
        connection: Database URL without password, e.g.
            postgresql://user@host:5432/db, mysql://user@host:3306/db, bigquery://PROJECT,
            trino://user@host:8443/catalog/schema (or presto://).
        input_config: TFX input config whose split patterns are the queries; they may
            use @span_begin_timestamp, @span_end_timestamp and @span_yyyymmdd_utc.
        source_format: The query source: sql, bigquery or trino.
        output_config: TFX output config; empty for train/eval hash buckets 2:1.
        range_config: TFX range config with a static_range; empty for span 0 (TFX).
        source_options: The source's options (sql: partition_on, partition_num; bigquery:
            dataset, location, max_streams; trino: catalog, db_schema, verify, auth; all: digest,
            schema); empty for the defaults.
        num_shards: Output files per split; 0 for one.
        force: Rewrite even when lineage shows an identical result was ingested already.
        mlmd: Lineage store URL without a password; "" picks KFP's metadata service,
            else SQLite under the pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from examplegen.query_ingest import ingest_query
    from kfp_examplegen.components import _common

    result = ingest_query(
        _common.connection_without_password(connection), examples.path,
        source_format=_common.named("source_format", _common.optional, source_format) or "sql",
        source_options=_common.struct(source_options, "source_options"),
        **_common.config_arguments(input_config, output_config, range_config, num_shards, force),
        **_common.lineage_arguments(mlmd, pipeline_name, run_name, pipeline_root))
    examples.metadata.update(_common.artifact_metadata(result.metadata()))


def split_examples(
    input_examples: Input[Dataset],
    examples: Output[Dataset],
    output_config: dict,
    input_splits: list = [],
    num_shards: int = 0,
    bad_rows: str = "fail",
    max_bad_rows: int = -1,
    max_bad_ratio: float = -1.0,
    engine: str = "local",
    beam_pipeline_args: list = [],
    mlmd: str = "",
    pipeline_name: str = "examplegen",
    run_name: str = "",
    pipeline_root: str = "",
):
    """Re-split an Examples artifact into new named splits (hash buckets or a partition
    feature), so a pipeline can ingest once and split several ways.

    Args:
        input_examples: The Examples artifact to re-split (Split-<name>/ folders).
        examples: The output Examples (system.Dataset; TFX's properties in its metadata).
        output_config: TFX output config with the new split_config.
        input_splits: Splits of the input to read (a list, JSON list text or
            comma-separated names); empty reads all of them.
        num_shards: Output files per split; 0 chooses by size.
        bad_rows: "fail" (default): the first bad row fails the step; "skip": bad rows
            are left out and listed in the artifact's Quarantine/bad_rows.jsonl.gz.
        max_bad_rows: With "skip", fail when more rows than this are bad; -1: no limit.
        max_bad_ratio: With "skip", fail when more than this share (0-1) of the rows read
            are bad; -1: no limit.
        engine: "local" (processes in this task) or "beam" (README, Apache Beam).
        beam_pipeline_args: TFX's beam_pipeline_args for engine "beam"; empty: DirectRunner.
        mlmd: Lineage store URL without a password; "" picks KFP's metadata service,
            else SQLite under the pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from examplegen.ingest import resplit
    from kfp_examplegen.components import _common

    config = _common.struct(output_config, "output_config")
    if config is None:
        raise _common.ConfigError("output_config: give the new split_config (it is required)")
    result = resplit(
        _common.artifact_location(input_examples, engine),
        _common.artifact_location(examples, engine),
        output_config=_common.named("output_config", _common.parse_output_config, config),
        input_splits=_common.string_list(input_splits, "input_splits"),
        num_shards=_common.integer(num_shards, "num_shards", 0),
        **_common.bad_row_options(bad_rows, max_bad_rows, max_bad_ratio),
        **_common.engine_arguments(engine, beam_pipeline_args),
        **_common.lineage_arguments(mlmd, pipeline_name, run_name, pipeline_root),
    )
    examples.metadata.update(_common.artifact_metadata(result.metadata()))


def ingestion_report(
    examples: Input[Dataset],
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
        examples: The Examples artifact to describe (Split-<name>/ folders).
        report: The output HTML page (shown by the KFP UI).
        sample_rows: How many example rows to show.
        max_examples: Examples read per split for the schema statistics.
        mlmd: Lineage store URL without a password; "" picks KFP's metadata service,
            else SQLite under the pipeline root.
        pipeline_name: Pipeline name recorded in lineage.
        run_name: Pipeline run recorded in lineage.
        pipeline_root: The pipeline root (for the default SQLite lineage store).
    """
    from examplegen.report import report_with_lineage
    from kfp_examplegen.components import _common

    report_with_lineage(
        examples.path,
        report.path,
        sample_rows=_common.integer(sample_rows, "sample_rows", 0),
        max_examples=_common.integer(max_examples, "max_examples", 1),
        **_common.lineage_arguments(mlmd, pipeline_name, run_name, pipeline_root),
    )
