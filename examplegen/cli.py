"""The `examplegen` command line.

Each command group lives beside the code it drives and contributes its sub-commands
through a `register(subparsers)` function; this module only assembles them and turns
failures into one message on stderr and an exit code (see EXIT_CODES): no traceback
unless --debug or EXAMPLEGEN_DEBUG=1 asks for it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from examplegen import __version__, worker_pool
from examplegen.errors import ExampleGenError, os_error_message

DEBUG_ENV = "EXAMPLEGEN_DEBUG"
EXIT_ERROR = 1  # a failure the user can fix: input, config, output path, store, disk
EXIT_USAGE = 2  # a malformed command line (argparse)
EXIT_INTERNAL = 3  # a bug in examplegen
EXIT_INTERRUPTED = 130
_EPILOG = (
    "Exit codes: 0 success; 1 error (one message on stderr naming the file, line, record or "
    "path and what to do); 2 malformed command line; 3 internal error (a bug: rerun with "
    f"--debug and report it); 130 interrupted. --debug or {DEBUG_ENV}=1 also prints the "
    "traceback of any error."
)

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
            "TFX-compatible ExampleGen: turn CSV, TFRecord, Parquet, Avro, JSON Lines, image "
            "and text files or SQL query results into split, gzip TFRecords of tf.Example with "
            "span/version resolution and ML Metadata lineage."
        ),
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"print the traceback of an error (also: {DEBUG_ENV}=1)")
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
    for sub in subparsers.choices.values():  # `examplegen COMMAND ... --debug` works too
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help=f"print the traceback of an error (also: {DEBUG_ENV}=1)")
        sub.epilog = sub.epilog or _EPILOG
    return parser


def _debug_wanted(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = _debug_wanted(args)
    try:
        return int(args.func(args) or 0)
    except ExampleGenError as exc:
        failure, message, code = exc, f"error: {exc}", EXIT_ERROR
    except OSError as exc:  # a path the user chose, or their machine: permissions, full disk
        failure, message, code = exc, f"error: {os_error_message(exc)}", EXIT_ERROR
    except KeyboardInterrupt as exc:
        failure, message, code = exc, "interrupted", EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug, said as such
        failure, code = exc, EXIT_INTERNAL
        message = (f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in examplegen: rerun "
                   f"with --debug (or {DEBUG_ENV}=1) and report the traceback.")
    if debug:
        traceback.print_exception(failure, file=sys.stderr)
    print(f"examplegen {args.command}: {message}", file=sys.stderr)
    return code


class _Peek(argparse.ArgumentParser):
    def error(self, message):  # never print or exit: the real parser reports it
        raise ValueError(message)


def _local_workers_wanted(argv: list[str]) -> int:
    """How many worker processes a command line will convert with on this machine, as far
    as can be told before parsing it properly (0: none, or not sure): ingest and resplit of
    files on the local engine, with one per core unless --workers says otherwise."""
    peek = _Peek(add_help=False)
    peek.add_argument("command", nargs="?")
    for option in ("--workers", "--engine", "--connection"):
        peek.add_argument(option)
    peek.add_argument("-h", "--help", action="store_true")
    try:
        known, _ = peek.parse_known_args(argv)
        workers = int(known.workers or 0)
    except ValueError:
        return 0
    if known.command not in ("ingest", "resplit") or known.help or known.connection is not None \
            or (known.engine or "local") != "local" or workers < 0:
        return 0
    return workers or worker_pool.default_workers()


def run() -> int:
    """The ``examplegen`` command: ``main`` with sys.argv, the worker processes of a local
    conversion started first, so that their start-up overlaps this process's own
    (examplegen.worker_pool). A run with N workers converts in this process and N - 1
    worker processes (examplegen.ingest._Runner); it takes the started ones when it
    converts with that many workers (inputs of 64 MiB and more, or --workers) and shuts
    them down otherwise. This process converts with the workers' Arrow memory pool
    (examplegen.arrow_memory), set before anything imports pyarrow."""
    from examplegen import arrow_memory

    arrow_memory.retain_freed_pages()
    argv = sys.argv[1:]
    workers = _local_workers_wanted(argv)
    if workers > 1:
        worker_pool.prestart(workers - 1)
    try:
        return main(argv)
    finally:
        worker_pool.discard()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
