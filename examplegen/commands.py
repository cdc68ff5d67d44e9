"""The engine's sub-commands: ingest, resplit, resolve."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from examplegen.errors import ConfigError

_CONFIG_HELP = "JSON text, or the path of a .json file, in the JSON form of TFX's proto"


def _add_store_argument(parser: argparse.ArgumentParser) -> None:
    try:
        from examplegen.lineage.cli import add_mlmd_argument
    except ImportError:  # pragma: no cover - lineage package missing
        parser.add_argument("--mlmd", default=None, help="ML Metadata store URL")
        return
    add_mlmd_argument(parser)


def _add_config_arguments(parser: argparse.ArgumentParser, output_required: bool = False) -> None:
    parser.add_argument("--input-config", default=None,
                        help=f"input splits ({_CONFIG_HELP} Input), e.g. "
                             '\'{"splits": [{"name": "train", "pattern": "span-{SPAN}/train/*"}]}\'; '
                             "default: one split 'single_split' with pattern '*'. Patterns stay inside "
                             "the input base (no '..') and never match an Examples artifact or staging "
                             "folder of examplegen unless they name its Split- folder literally")
    parser.add_argument("--range-config", default=None,
                        help=f"which spans ({_CONFIG_HELP} RangeConfig): "
                             '\'{"static_range": {"start_span_number": 1, "end_span_number": 3}}\' '
                             "ingests every span from 1 to 3; default: the latest span")


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-shards", type=int, default=0,
                        help="output files per split, at most 1000 (default 0: one per 256 MiB of input)")
    parser.add_argument("--workers", type=int, default=0,
                        help="units the local engine converts at once, at most 256: this process and N-1 "
                             "worker processes (default 0: one per CPU core from 64 MiB of input, below that "
                             "this process alone; the command starts the worker processes while it plans, "
                             "and shuts them down unused for a small input)")
    parser.add_argument("--lock-timeout", type=float, default=0, metavar="SECONDS",
                        help="another run writing into the same --output holds its lock: wait up to "
                             "this long for it (default 0: fail at once, naming that run's pid)")
    parser.add_argument("--engine", choices=["local", "beam"], default="local",
                        help="what runs the work units: worker processes on this machine (local, default) "
                             "or an Apache Beam pipeline (beam: DirectRunner unless --beam-pipeline-args "
                             "names another runner); the output is the same")
    parser.add_argument("--beam-pipeline-args", action="append", default=None, metavar="ARGS",
                        help="Beam pipeline options for --engine beam, as TFX's beam_pipeline_args, e.g. "
                             "--beam-pipeline-args='--runner=FlinkRunner --flink_master=host:8081 "
                             "--environment_type=EXTERNAL --environment_config=localhost:50000' (split like a "
                             "shell command line; may be repeated; write it with '=' as shown; workers must see "
                             "the output and input paths, see the README, Apache Beam)")
    parser.add_argument("--verify-payload", choices=["structure", "full", "none"], default="structure",
                        help="TFRecord input: check each record's wire structure and parse some "
                             "(default), parse every record and refuse unknown fields (slower), or "
                             "not at all")
    bad = parser.add_argument_group("Bad rows")
    bad.add_argument("--bad-rows", choices=["fail", "skip"], default="fail",
                     help="a row that cannot become an example (CSV: wrong number of fields, bytes not valid "
                          "in the encoding, a value contradicting --schema; a value the type map rejects, e.g. "
                          "uint64 above int64 or a null in a list; a JSON Lines line that does not parse or "
                          "contradicts the types; an image that does not decode; text not valid in the "
                          "encoding; a TFRecord record that is not the payload type; no value in the split "
                          "feature): fail the run (default), or skip it and list it in "
                          "<output>/Quarantine/bad_rows.jsonl.gz (queries refuse skip)")
    bad.add_argument("--max-bad-rows", type=int, default=None, metavar="N",
                     help="with --bad-rows skip: fail when more than N rows are bad (default: no limit)")
    bad.add_argument("--max-bad-ratio", type=float, default=None, metavar="R",
                     help="with --bad-rows skip: fail when more than this share (0-1) of the rows read are "
                          "bad (default: no limit)")
    parser.add_argument("--no-lineage", action="store_true",
                        help="do not record anything in ML Metadata (no cache lookup either)")
    parser.add_argument("--pipeline-name", default="examplegen",
                        help="pipeline context name for the lineage records (default: examplegen)")
    parser.add_argument("--run-name", default=None,
                        help="pipeline run context name (default: generated)")
    _add_store_argument(parser)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest", help="convert CSV, Parquet, Avro, JSON Lines, TFRecord, image or text files, or SQL query "
                       "results, into a split Examples artifact",
        description="Resolve the span, convert the input files to tf.Example, split them and write "
                    "<output>/Split-<name>/data_tfrecord-SSSSS-of-NNNNN.gz plus examples_metadata.json. "
                    "The run, its input files (with content digests) and its output are recorded in "
                    "ML Metadata; an identical earlier run is reused unless --force.")
    p.add_argument("--input-base", default=None,
                   help="directory the input config patterns are relative to (file formats)")
    p.add_argument("--connection", default=None, metavar="URL",
                   help="query formats: the database; --format sql: postgresql://user@host:5432/db or "
                        "mysql://user@host:3306/db; --format bigquery: bigquery://PROJECT (Application Default "
                        "Credentials); --format trino: trino://user@host:8443/catalog/schema or presto://... "
                        "Each input split's pattern is a query. A password comes from the URL or "
                        "$EXAMPLEGEN_DB_PASSWORD (or PGPASSWORD / MYSQL_PWD / TRINO_PASSWORD), a Trino JWT from "
                        "$EXAMPLEGEN_DB_TOKEN; neither is ever recorded (see README, Query sources)")
    p.add_argument("--format", dest="source_format", default="csv", metavar="FORMAT",
                   help="input format: " + ", ".join(_builtin_formats()) + " (default csv), an entry point "
                        "of the 'examplegen.sources' group, or a module path package.module[:attribute] "
                        "that follows the source contract (see README, 'Your own source')")
    p.add_argument("--source-options", default=None,
                   help="the format's options as JSON text or the path of a .json file, e.g. "
                        '\'{"columns": ["fare", "tips"], "schema": {"ts": "int_ms"}}\' '
                        '(see README, "Parquet, Avro, JSON Lines")')
    p.add_argument("--output", required=True,
                   help="artifact directory to write (created; replaced atomically), or a gs:// or s3:// prefix")
    _add_config_arguments(p)
    p.add_argument("--output-config", default=None,
                   help=f"output splits ({_CONFIG_HELP} Output), e.g. "
                        '\'{"split_config": {"splits": [{"name": "train", "hash_buckets": 4}, '
                        '{"name": "eval", "hash_buckets": 1}]}}\'; a value split: '
                        '\'{"split_config": {"splits": [{"name": "train"}, {"name": "eval"}], '
                        '"value_split": {"feature_name": "ts", "boundaries": [1600000000]}}}\'; '
                        "default: train 2 / eval 1 hash buckets")
    csv = p.add_argument_group("CSV options")
    csv.add_argument("--delimiter", default=None, help="field delimiter, one character (default ','; \\t for tab)")
    csv.add_argument("--quote-char", default=None, help="quote character (default '\"'; 'none' disables quoting)")
    csv.add_argument("--encoding", default=None, help="file encoding (default utf-8)")
    csv.add_argument("--no-header", action="store_true", help="files have no header line (needs --column-names)")
    csv.add_argument("--column-names", default=None, help="comma-separated column names")
    csv.add_argument("--schema", default=None,
                     help="column types that replace inference, e.g. 'fare:float,trip_id:string,hour:int'")
    tfr = p.add_argument_group("TFRecord options")
    tfr.add_argument("--payload-format", default="FORMAT_TF_EXAMPLE",
                     help="records are FORMAT_TF_EXAMPLE (default), FORMAT_TF_SEQUENCE_EXAMPLE or FORMAT_PROTO")
    _add_output_arguments(p)
    p.add_argument("--force", action="store_true", help="convert even if an identical run is recorded")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_ingest)

    p = subparsers.add_parser(
        "resplit", help="re-split an existing Examples artifact into new splits",
        description="Pool the chosen splits of an Examples artifact and split them again by hash "
                    "buckets, a partition feature or a value split.")
    p.add_argument("--examples", required=True, help="the Examples artifact directory to read, or its gs:// or s3:// prefix")
    p.add_argument("--output", required=True, help="artifact directory to write, or a gs:// or s3:// prefix")
    p.add_argument("--output-config", required=True, help=f"the new splits ({_CONFIG_HELP} Output)")
    p.add_argument("--input-splits", default=None, help="comma-separated splits to read (default: all)")
    p.add_argument("--payload-format", default=None, help="default: the artifact's payload_format")
    _add_output_arguments(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_resplit)

    p = subparsers.add_parser(
        "resolve", help="print the span, version and files an ingestion would read",
        description='Prints JSON {"span", "version", "splits": [{"name", "pattern"}], "fingerprint"}; '
                    "with a static range over several spans, a JSON list of those. Exits 1 with the "
                    "error on stderr when the patterns do not resolve.")
    p.add_argument("--input-base", required=True, help="directory the input config patterns are relative to")
    p.add_argument("--format", dest="source_format", default="csv", metavar="FORMAT",
                   help="input format (default csv): without --input-config its default pattern is resolved, "
                        "as ingest does ('*'; images, and text with labels: '*/*')")
    p.add_argument("--source-options", default=None,
                   help="the format's options as JSON text or a .json path (e.g. '{\"labels\": false}' "
                        "for images in one folder)")
    _add_config_arguments(p)
    p.add_argument("--no-lineage", action="store_true", help="do not record the resolution in ML Metadata")
    p.add_argument("--pipeline-name", default="examplegen", help="pipeline context name for the lineage records")
    p.add_argument("--run-name", default=None, help="pipeline run context name (default: generated)")
    _add_store_argument(p)
    p.set_defaults(func=_resolve)


def _builtin_formats() -> list[str]:
    from examplegen.sources import BUILTIN

    return list(BUILTIN)


def _csv_options(args) -> dict:
    options = {}
    if args.delimiter is not None:
        options["delimiter"] = "\t" if args.delimiter in ("\\t", "tab") else args.delimiter
    if args.quote_char is not None:
        options["quote_char"] = None if args.quote_char.lower() == "none" else args.quote_char
    if args.encoding is not None:
        options["encoding"] = args.encoding
    if args.no_header:
        options["header"] = False
    if args.column_names is not None:
        options["column_names"] = args.column_names
    if args.schema is not None:
        options["schema"] = args.schema
    return options


def _bad_row_options(args) -> dict:
    return {"bad_rows": args.bad_rows, "max_bad_rows": args.max_bad_rows, "max_bad_ratio": args.max_bad_ratio}


def _beam_pipeline_args(args) -> list[str]:
    """Every --beam-pipeline-args value split like a shell command line, in order."""
    return [arg for value in args.beam_pipeline_args or () for arg in shlex.split(value)]


def _print_result(result, as_json: bool) -> None:
    if as_json:
        payload = {"output": result.output_uri, "split_names": result.split_names, "counts": result.counts,
                   "span": result.span, "version": result.version, "spans": result.spans,
                   "input_fingerprint": result.input_fingerprint, "payload_format": result.payload_format,
                   "rows_read": result.rows_read, "rows_written": result.rows_written,
                   "rows_rejected": result.rows_rejected, "cached": result.cached}
        if result.quarantine_file:
            payload["quarantine"] = os.path.join(result.output_uri, result.quarantine_file)
        print(json.dumps(payload, indent=2))
        return
    spans = f"{result.spans[0]}-{result.spans[-1]}" if len(result.spans) > 1 else str(result.span)
    print(f"span {spans}, version {result.version if result.version is not None else '-'}"
          + ("  (reused an identical earlier run)" if result.cached else ""))
    width = max(len(s) for s in result.split_names)
    for split in result.split_names:
        print(f"  {split:<{width}}  {result.counts.get(split, 0):>10,} examples")
    print(f"  {'total':<{width}}  {sum(result.counts.values()):>10,} examples")
    if result.quarantine_file:
        print(f"  {result.rows_rejected:,} bad rows skipped, listed in "
              f"{os.path.join(result.output_uri, result.quarantine_file)}")
    seconds = result.config.get("elapsed_seconds")
    if seconds and result.rows_read:
        print(f"  {result.rows_read:,} rows in {seconds:.2f} s ({result.rows_read / max(seconds, 1e-9):,.0f} rows/s)")
    print(f"Examples written to {result.output_uri}")


def _ingest(args) -> int:
    from examplegen.ingest import ingest

    options = _csv_options(args)
    if args.source_format != "csv" and options:
        raise ConfigError("CSV options (--delimiter, --quote-char, ...) apply to --format csv only")
    if args.connection is not None:
        return _ingest_query(args)
    if args.input_base is None:
        raise ConfigError("ingest needs --input-base (files) or --connection (a query format such as "
                          "--format sql)")
    result = ingest(args.input_base, args.output, csv_options=options or None, payload_format=args.payload_format,
                    verify_payload=args.verify_payload, engine=args.engine,
                    beam_pipeline_args=_beam_pipeline_args(args), **_ingest_arguments(args))
    _print_result(result, args.json)
    return 0


def _ingest_arguments(args) -> dict:
    """The keyword arguments ingest() and ingest_query() share."""
    return dict(source_format=args.source_format, input_config=args.input_config, output_config=args.output_config,
                range_config=args.range_config, source_options=args.source_options, num_shards=args.num_shards,
                workers=args.workers, mlmd=args.mlmd, record_lineage=not args.no_lineage,
                pipeline_name=args.pipeline_name, run_name=args.run_name, force=args.force,
                progress=sys.stderr.isatty(), lock_timeout=args.lock_timeout, **_bad_row_options(args))


def _ingest_query(args) -> int:
    from examplegen.query_ingest import ingest_query

    if args.input_base is not None:
        raise ConfigError("--input-base and --connection exclude each other: files or a query")
    if args.engine != "local" or args.beam_pipeline_args:
        raise ConfigError("--engine beam and --beam-pipeline-args apply to file inputs (--input-base); a query "
                          "(--connection) runs on the local engine")
    _print_result(ingest_query(args.connection, args.output, **_ingest_arguments(args)), args.json)
    return 0


def _resplit(args) -> int:
    from examplegen.ingest import resplit

    result = resplit(
        args.examples, args.output, output_config=args.output_config,
        input_splits=args.input_splits.split(",") if args.input_splits else None,
        payload_format=args.payload_format, verify_payload=args.verify_payload, num_shards=args.num_shards,
        workers=args.workers, mlmd=args.mlmd, record_lineage=not args.no_lineage,
        pipeline_name=args.pipeline_name, run_name=args.run_name, progress=sys.stderr.isatty(),
        lock_timeout=args.lock_timeout, engine=args.engine, beam_pipeline_args=_beam_pipeline_args(args),
        **_bad_row_options(args))
    _print_result(result, args.json)
    return 0


def _resolve(args) -> int:
    from examplegen.ingest import resolve

    resolutions, _ = resolve(args.input_base, args.input_config, args.range_config,
                             source_format=args.source_format, source_options=args.source_options, mlmd=args.mlmd,
                             record_lineage=not args.no_lineage, pipeline_name=args.pipeline_name,
                             run_name=args.run_name)
    payload = resolutions[0].to_json() if len(resolutions) == 1 else [r.to_json() for r in resolutions]
    print(json.dumps(payload, indent=2))
    return 0
