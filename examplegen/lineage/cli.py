"""`examplegen versions` and `examplegen lineage`, and the shared `--mlmd` option."""

from __future__ import annotations

import argparse
import json
import sys

from examplegen.lineage.store import ENV_URL, open_store

MLMD_HELP = (
    "ML Metadata store: sqlite:///path, mysql://user[:password]@host[:port]/db, "
    "postgresql://user[:password]@host[:port]/db or grpc://host:port "
    f"(default: ${ENV_URL}, else KFP's METADATA_GRPC_SERVICE_HOST/_PORT, else sqlite:///mlmd.sqlite)"
)


def add_mlmd_argument(parser: argparse.ArgumentParser) -> None:
    """Add `--mlmd URL` (every command that records or reads lineage takes it)."""
    parser.add_argument("--mlmd", metavar="URL", default=None, help=MLMD_HELP)


def register(subparsers) -> None:
    versions = subparsers.add_parser(
        "versions",
        help="list the data versions (spans/versions with content digests) read from an input base",
        description=(
            "List the spans/versions of the files under INPUT_BASE that ingestion runs read, "
            "with their content digests and input fingerprints, when they were seen, and the "
            "Examples they produced. A changed file (even with the same size and mtime) is a "
            "new version."
        ),
    )
    versions.add_argument("--input-base", required=True, metavar="DIR", help="the input base directory or URL")
    versions.add_argument("--input-config", metavar="JSON",
                          help='only files matching these splits\' patterns, e.g. '
                               '\'{"splits":[{"name":"train","pattern":"span-{SPAN}/train/*"}]}\'')
    versions.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_mlmd_argument(versions)
    versions.set_defaults(func=_versions)

    lineage = subparsers.add_parser(
        "lineage",
        help="show what produced an artifact and what consumed it",
        description=(
            "Print the upstream (source files with digests, configs, executions) and the "
            "downstream (executions that consumed it, their outputs) of an artifact."
        ),
    )
    lineage.add_argument("target", metavar="TARGET",
                         help="an artifact URI (source file or Examples directory) or MLMD artifact id")
    lineage.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_mlmd_argument(lineage)
    lineage.set_defaults(func=_lineage)


def _versions(args: argparse.Namespace) -> int:
    from examplegen.lineage.query import data_versions, format_versions

    store = open_store(args.mlmd, create=False)
    report = data_versions(store, args.input_base, args.input_config)
    _print(report, args.json, format_versions)
    return 0


def _lineage(args: argparse.Namespace) -> int:
    from examplegen.lineage.query import format_lineage, lineage

    store = open_store(args.mlmd, create=False)
    report = lineage(store, args.target)
    _print(report, args.json, format_lineage)
    return 0


def _print(report, as_json: bool, formatter) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(formatter(report))
