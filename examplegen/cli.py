"""The `examplegen` command line.

Each command group lives beside the code it drives and contributes its sub-commands
through a `register(subparsers)` function; this module only assembles them and turns
ExampleGenError into a clear message and exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from examplegen import __version__
from examplegen.errors import ExampleGenError

# Modules that add sub-commands. None of them imports kfp at import time.
_COMMAND_MODULES = (
    "examplegen.commands",  # ingest, resplit, resolve
    "examplegen.lineage.cli",  # versions, lineage
    "kfp_examplegen.pipelines.cli",  # compile, run
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="examplegen",
        description=(
            "TFX-compatible ExampleGen: turn CSV / TFRecord data into split, gzip "
            "TFRecords of tf.Example with span/version resolution and ML Metadata lineage."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name and name.startswith(exc.name):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ExampleGenError as exc:
        print(f"examplegen {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"examplegen {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
