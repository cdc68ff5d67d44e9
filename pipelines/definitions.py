"""The pipelines, composed from the components in components/.

- csv-ingest: resolve_span -> csv_example_gen -> ingestion_report
- import-and-resplit: import_example_gen -> split_examples -> ingestion_report
- file-ingest: file_example_gen -> ingestion_report (Parquet, Avro, JSON Lines, any format)
- query-ingest: query_example_gen -> ingestion_report (the database password from a
  Kubernetes secret through kfp-kubernetes, never a parameter)
- image-ingest: file_example_gen (format images) -> ingestion_report (an image folder, labels
  from paths)

TFX's configs are dict parameters (KFP STRUCT); left empty they mean TFX's defaults. A
string parameter left "" means "not given" (the bundled sample data for input_base; the
default lineage store for mlmd). csv-ingest's ingest step gets resolve_span's range_config
and fingerprint, so it ingests exactly the files that step resolved (or fails before
writing anything). KFP's own step cache is turned off for
every task: whether the input data changed is decided by the engine from content digests
in ML Metadata, which KFP's cache (keyed on parameter values only) cannot see.

No `from __future__ import annotations` here: KFP reads the pipeline parameters' annotations
as types.
"""

from kfp_examplegen import components

CSV_INGEST = "csv-ingest"
IMPORT_AND_RESPLIT = "import-and-resplit"
FILE_INGEST = "file-ingest"
QUERY_INGEST = "query-ingest"
IMAGE_INGEST = "image-ingest"
PIPELINE_NAMES = (CSV_INGEST, IMPORT_AND_RESPLIT, FILE_INGEST, QUERY_INGEST, IMAGE_INGEST)
# The Kubernetes secret (key "password") the query step's EXAMPLEGEN_DB_PASSWORD comes from.
DEFAULT_DB_PASSWORD_SECRET = "examplegen-db"
DB_PASSWORD_ENV = "EXAMPLEGEN_DB_PASSWORD"

DEFAULT_RESPLIT_CONFIG = {
    "split_config": {
        "splits": [
            {"name": "train", "hash_buckets": 8},
            {"name": "eval", "hash_buckets": 1},
            {"name": "test", "hash_buckets": 1},
        ]
    }
}


def canonical_name(name: str) -> str:
    """'csv_ingest' or 'csv-ingest' -> 'csv-ingest' (KFP pipeline names are DNS labels)."""
    return name.strip().lower().replace("_", "-")


def build(image: str | None = None) -> dict:
    """The pipelines, by name, with components running in `image` (see components.image())."""
    from kfp import dsl

    c = components.load(image)
    note = components.image_note(c.image)

    def lineage_args(pipeline_name: str, mlmd) -> dict:
        return {
            "mlmd": mlmd,
            "pipeline_name": pipeline_name,
            # KFP's run context in ML Metadata is named by the run's id.
            "run_name": dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            "pipeline_root": dsl.PIPELINE_ROOT_PLACEHOLDER,
        }

    def engine_args(engine, beam_pipeline_args) -> dict:
        return {"engine": engine, "beam_pipeline_args": beam_pipeline_args}

    def step(task, display_name: str):
        task.set_display_name(display_name)
        task.set_caching_options(False)
        return task

    @dsl.pipeline(
        name=CSV_INGEST,
        description=(
            "Resolve the span/version of CSV input files, ingest them into a TFX Examples "
            "artifact (split gzip TFRecords of tf.Example) and write an HTML ingestion report. "
            + note
        ),
    )
    def csv_ingest(
        input_base: str = "",
        input_config: dict = {},
        output_config: dict = {},
        range_config: dict = {},
        csv_options: dict = {},
        num_shards: int = 0,
        force: bool = False,
        engine: str = "local",
        beam_pipeline_args: list = [],
        mlmd: str = "",
    ):
        """Ingest CSV files into TFX Examples with a report.

        Args:
            input_base: Folder of the CSV files; "" for the bundled taxi sample.
            input_config: TFX input config; empty for one split, pattern "*".
            output_config: TFX output config; empty for train/eval 2:1.
            range_config: TFX range config; empty for the latest span.
            csv_options: CSV options (delimiter, quote_char, encoding, header, column_names, schema); empty for TFX's defaults.
            num_shards: Output files per split; 0 chooses by size.
            force: Rewrite even when identical input was ingested before.
            engine: "local" (processes in the task's container) or "beam" (Apache Beam; see the README).
            beam_pipeline_args: Beam options for engine "beam" (TFX's beam_pipeline_args).
            mlmd: Lineage store URL without a password (EXAMPLEGEN_MLMD_PASSWORD); "" for KFP's metadata service, else SQLite under the pipeline root.
        """
        lineage = lineage_args(CSV_INGEST, mlmd)
        span = step(c.resolve_span(
            input_base=input_base, input_config=input_config, range_config=range_config,
            **lineage,
        ), "Resolve span")
        gen = step(c.csv_example_gen(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            range_config=span.outputs["range_config"],
            csv_options=csv_options,
            num_shards=num_shards,
            expected_fingerprint=span.outputs["fingerprint"],
            force=force,
            **engine_args(engine, beam_pipeline_args),
            **lineage,
        ), "CSV ExampleGen")
        step(c.ingestion_report(examples=gen.outputs["examples"], **lineage), "Ingestion report")

    @dsl.pipeline(
        name=IMPORT_AND_RESPLIT,
        description=(
            "Import TFRecord files into a TFX Examples artifact, re-split it into new named "
            "splits and write an HTML ingestion report of the result. " + note
        ),
    )
    def import_and_resplit(
        input_base: str = "",
        input_config: dict = {},
        output_config: dict = {},
        range_config: dict = {},
        payload_format: str = "FORMAT_TF_EXAMPLE",
        resplit_config: dict = DEFAULT_RESPLIT_CONFIG,
        input_splits: list = [],
        num_shards: int = 0,
        force: bool = False,
        engine: str = "local",
        beam_pipeline_args: list = [],
        mlmd: str = "",
    ):
        """Import TFRecords into TFX Examples, re-split them and report.

        Args:
            input_base: Folder of the TFRecord files; "" for the bundled taxi sample.
            input_config: TFX input config; empty for one split, pattern "*".
            output_config: TFX output config of the import; empty for train/eval 2:1.
            range_config: TFX range config; empty for the latest span.
            payload_format: FORMAT_TF_EXAMPLE, FORMAT_TF_SEQUENCE_EXAMPLE or FORMAT_PROTO.
            resplit_config: TFX output config of the re-split.
            input_splits: Imported splits to re-split; empty for all.
            num_shards: Output files per split; 0 chooses by size.
            force: Rewrite even when identical input was ingested before.
            engine: "local" (processes in the task's container) or "beam" (Apache Beam; see the README).
            beam_pipeline_args: Beam options for engine "beam" (TFX's beam_pipeline_args).
            mlmd: Lineage store URL without a password (EXAMPLEGEN_MLMD_PASSWORD); "" for KFP's metadata service, else SQLite under the pipeline root.
        """
        lineage = lineage_args(IMPORT_AND_RESPLIT, mlmd)
        imported = step(c.import_example_gen(
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            range_config=range_config,
            payload_format=payload_format,
            num_shards=num_shards,
            force=force,
            **engine_args(engine, beam_pipeline_args),
            **lineage,
        ), "Import ExampleGen")
        resplit = step(c.split_examples(
            input_examples=imported.outputs["examples"],
            output_config=resplit_config,
            input_splits=input_splits,
            num_shards=num_shards,
            **engine_args(engine, beam_pipeline_args),
            **lineage,
        ), "Split examples")
        step(c.ingestion_report(examples=resplit.outputs["examples"], **lineage), "Ingestion report")

    @dsl.pipeline(
        name=FILE_INGEST,
        description=(
            "Ingest Parquet, Avro or JSON Lines files (or any registered format) into a TFX "
            "Examples artifact and write an HTML ingestion report. " + note
        ),
    )
    def file_ingest(
        source_format: str = "parquet",
        input_base: str = "",
        input_config: dict = {},
        output_config: dict = {},
        range_config: dict = {},
        source_options: dict = {},
        num_shards: int = 0,
        force: bool = False,
        engine: str = "local",
        beam_pipeline_args: list = [],
        mlmd: str = "",
    ):
        """Ingest files of any format into TFX Examples with a report.

        Args:
            source_format: parquet, avro, jsonl (or csv, tfrecord, a registered source).
            input_base: Folder of the files; "" for the bundled taxi sample of the format.
            input_config: TFX input config; empty for one split, pattern "*".
            output_config: TFX output config; empty for train/eval 2:1.
            range_config: TFX range config; empty for the latest span.
            source_options: The format's options (columns, schema, batch_rows); empty for the defaults.
            num_shards: Output files per split; 0 chooses by size.
            force: Rewrite even when identical input was ingested before.
            engine: "local" (processes in the task's container) or "beam" (Apache Beam; see the README).
            beam_pipeline_args: Beam options for engine "beam" (TFX's beam_pipeline_args).
            mlmd: Lineage store URL without a password (EXAMPLEGEN_MLMD_PASSWORD); "" for KFP's metadata service, else SQLite under the pipeline root.
        """
        lineage = lineage_args(FILE_INGEST, mlmd)
        gen = step(c.file_example_gen(
            source_format=source_format,
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            range_config=range_config,
            source_options=source_options,
            num_shards=num_shards,
            force=force,
            **engine_args(engine, beam_pipeline_args),
            **lineage,
        ), "File ExampleGen")
        step(c.ingestion_report(examples=gen.outputs["examples"], **lineage), "Ingestion report")

    @dsl.pipeline(
        name=QUERY_INGEST,
        description=(
            "Run queries on PostgreSQL, MySQL, BigQuery or Trino (TFX QueryBasedExampleGen configs: "
            "each input split's pattern is a query) into a TFX Examples artifact with each result's "
            "digest as its data version, and write an HTML ingestion report. The database password comes from the "
            f"Kubernetes secret named by db_password_secret (key 'password') as {DB_PASSWORD_ENV}. "
            + note
        ),
    )
    def query_ingest(
        connection: str,
        input_config: dict,
        source_format: str = "sql",
        output_config: dict = {},
        range_config: dict = {},
        source_options: dict = {},
        db_password_secret: str = DEFAULT_DB_PASSWORD_SECRET,
        num_shards: int = 0,
        force: bool = False,
        mlmd: str = "",
    ):
        """Run queries into TFX Examples with a report.

        Args:
            connection: Database URL without password (postgresql://user@host:5432/db, mysql://...,
                bigquery://PROJECT, trino://user@host:8443/catalog/schema).
            input_config: TFX input config; each split's pattern is a query.
            source_format: The query source: sql, bigquery or trino.
            output_config: TFX output config; empty for train/eval 2:1.
            range_config: TFX range config with a static_range; empty for span 0.
            source_options: The source's options (see the README, Query sources); empty for the defaults.
            db_password_secret: Kubernetes secret whose key "password" is the database password.
            num_shards: Output files per split; 0 for one.
            force: Rewrite even when an identical result was ingested before.
            mlmd: Lineage store URL without a password (EXAMPLEGEN_MLMD_PASSWORD); "" for KFP's metadata service, else SQLite under the pipeline root.
        """
        from kfp import kubernetes

        lineage = lineage_args(QUERY_INGEST, mlmd)
        gen = step(c.query_example_gen(
            connection=connection,
            input_config=input_config,
            source_format=source_format,
            output_config=output_config,
            range_config=range_config,
            source_options=source_options,
            num_shards=num_shards,
            force=force,
            **lineage,
        ), "Query ExampleGen")
        kubernetes.use_secret_as_env(gen, secret_name=db_password_secret,
                                     secret_key_to_env={"password": DB_PASSWORD_ENV})
        step(c.ingestion_report(examples=gen.outputs["examples"], **lineage), "Ingestion report")

    @dsl.pipeline(
        name=IMAGE_INGEST,
        description=(
            "Ingest an image folder with labels from paths (input_base/<label>/<file>) into a TFX "
            "Examples artifact, one tf.Example per image, and write an HTML report with thumbnails "
            "and label counts. " + note
        ),
    )
    def image_ingest(
        input_base: str = "",
        input_config: dict = {},
        output_config: dict = {},
        range_config: dict = {},
        source_options: dict = {},
        num_shards: int = 0,
        force: bool = False,
        mlmd: str = "",
    ):
        """Ingest an image folder into TFX Examples with a report.

        Args:
            input_base: Folder with one sub-folder per label; "" for the bundled shapes sample.
            input_config: TFX input config; empty for one split, pattern "*/*".
            output_config: TFX output config; empty for train/eval 2:1.
            range_config: TFX range config; empty for the latest span.
            source_options: Image options (label_map, new_labels, labels, verify, formats); empty for the defaults.
            num_shards: Output files per split; 0 chooses by size.
            force: Rewrite even when identical input was ingested before.
            mlmd: Lineage store URL without a password (EXAMPLEGEN_MLMD_PASSWORD); "" for KFP's metadata service, else SQLite under the pipeline root.
        """
        lineage = lineage_args(IMAGE_INGEST, mlmd)
        gen = step(c.file_example_gen(
            source_format="images",
            input_base=input_base,
            input_config=input_config,
            output_config=output_config,
            range_config=range_config,
            source_options=source_options,
            num_shards=num_shards,
            force=force,
            **lineage,
        ), "Image ExampleGen")
        step(c.ingestion_report(examples=gen.outputs["examples"], **lineage), "Ingestion report")

    return {CSV_INGEST: csv_ingest, IMPORT_AND_RESPLIT: import_and_resplit, FILE_INGEST: file_ingest,
            QUERY_INGEST: query_ingest, IMAGE_INGEST: image_ingest}
