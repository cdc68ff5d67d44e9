"""Input sources: one module per format, all behind one small contract.

The engine (examplegen.ingest, examplegen.convert) resolves spans and files, splits,
shards, frames, writes and records lineage; it knows no format. A source only turns the
files of one input split into work units, and one work unit into typed rows.

The contract: a source is a module (or any object) with

``FORMAT: str``
    The format name (``--format``).
``Options``
    Its options type: ``Options.from_dict(dict | None) -> Options`` validates them (a
    ConfigError naming the bad key and what to do), ``options.to_dict() -> dict`` gives
    them back (JSON-able; recorded in ML Metadata, part of the cache key). Options are
    pickled to the worker processes. An optional ``schema`` attribute (pairs of column,
    type) is the per-column schema override the shared converter applies
    (examplegen.typemap: ``int``, ``float``, ``string``, ``int_s``/``int_ms``/``int_us``/
    ``int_ns`` for times); column names of struct children are ``parent.child``.
``plan(split_name, files, options, chunk_bytes) -> Plan``
    Runs in the launcher, once per input split, with the split's local files (spans
    ascending, names sorted); ``chunk_bytes`` is the input size a work unit should have
    when the format can cut files (a hint; a whole file is a fine unit). Cross-file
    checks belong here (files of one split with different schemas: a SourceError naming
    both files and the difference). Returns a ``Plan`` (examplegen.sources.base): its
    ``units`` are picklable ``WorkUnit`` s with ``path`` and ``size`` (input bytes, for
    progress) and ``where(row)`` naming the file and line/row of the unit's ``row``-th
    row (for errors).
``read(unit, options[, rejects]) -> Iterator[pyarrow.RecordBatch]``
    Runs in a worker process. Yields typed Arrow record batches (or tables), the rows in
    file order. The shared converter (examplegen.typemap, see the README's type table)
    turns each column into tf.Example features. A records-as-read source yields
    ``Records`` instead (serialized payloads and their frames, written unchanged). Bad
    input is a SourceError naming the file and the line, row or record
    (``unit.where(row)``). The generator's return value, if any, is handed to
    ``Plan.review`` in the launcher.

    Row-level rejection (the bad-row policy, examplegen.bad_rows) is optional: a ``read``
    with a ``rejects`` parameter receives the unit's ``RowRejects``. It hands each bad row
    to ``rejects.reject(file, "line" | "record" | "row" | None, index, reason, raw_bytes)``
    (which raises the SourceError under the default ``fail`` policy; None: the file is the
    row) and leaves it out, calls ``rejects.locate(fn)`` before yielding a batch (``fn(i)``
    -> (file, position, index, raw bytes) of the batch's row i: the engine rejects rows
    through it, those with a value the type map rejects and those without a split value,
    and names rows in errors with it) and ``rejects.flush()`` at the start of each block of
    rows (the quarantine is written in row order per block). Every built-in file format
    takes it. A ``read`` without it fails on the first bad row under every policy.

Optional: ``work_bytes(path, options) -> int``, how much work a file is, in bytes of text
it would roughly be (default: its size; Parquet files are far smaller than their rows):
the engine picks the number of workers and of shards from the sum, and units' ``size``
use the same scale. ``has_rows(path, options) -> bool``: files without rows are left out
with a warning (``ROWS_NAME``, e.g. "records", names them), and a split with none is an
error. ``READS_URLS = True``: the source reads gs:// and s3:// paths itself (through
examplegen.fs: ``open_input``, ``size``), so remote inputs reach its workers as URLs and are
never downloaded first; without it the engine downloads them and passes local paths.

Optional, for sources whose options depend on the whole run (images and text: the label
map over every split, kept from the previous artifact at the output):

``default_input_pattern(options) -> str``
    The input split pattern when no input config is given (TFX's default is ``*``).
``for_output(options, previous) -> Options``
    Runs first, before the options are recorded (they are part of the cache key); may
    take settings from the previous artifact: ``previous()`` returns its metadata (the
    committed artifact at the output, else the newest Examples that ML Metadata records
    for the same input base and format) or None. Images/text keep its label map.
``prepare(options, split_files) -> Options``
    Runs in the launcher once per run, after span resolution and before any ``plan``, with
    every input split's local files (``{split name: [files]}``); returns the options the
    run uses.
``artifact_metadata(options) -> dict``
    Extra properties (strings or ints) of the Examples artifact: written to
    ``examples_metadata.json`` and recorded in ML Metadata. Every key it may record is
    present (None: no value yet), so that a reused artifact's values can be found.

A query source (``sql``; see examplegen.sources.query) follows the same contract with
``QUERY = True`` and ``connection(url) -> examplegen.sources.query.Connection``; its
``plan`` receives the split's ``ResolvedQuery`` s (one per span) instead of files, and
its ``read`` returns a ``UnitNote`` with the unit's result digest. The engine's entry
point for them is examplegen.query_ingest.ingest_query (``--connection``).

Built-in formats are listed in ``BUILTIN``. A user's own source needs no change to this
package: pass ``--format package.module`` (or ``package.module:attribute`` for an object in
it), or register a name in the ``examplegen.sources`` entry point group of an installed
distribution (``myformat = "mypackage.mysource"``). ``get(format)`` finds a source by any of
these, in workers too.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from examplegen.errors import ConfigError
from examplegen.sources.base import Plan, Records, WorkUnit

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "Plan", "Records", "WorkUnit", "formats", "get"]

ENTRY_POINT_GROUP = "examplegen.sources"

# format name -> module implementing it
BUILTIN = {
    "csv": "examplegen.sources.csv",
    "tfrecord": "examplegen.sources.tfrecord",
    "parquet": "examplegen.sources.parquet",
    "avro": "examplegen.sources.avro",
    "jsonl": "examplegen.sources.jsonl",
    "images": "examplegen.sources.images",
    "text": "examplegen.sources.text",
    "sql": "examplegen.sources.sql",
    "bigquery": "examplegen.sources.bigquery",
    "trino": "examplegen.sources.trino",
}

_REQUIRED = ("FORMAT", "Options", "plan", "read")

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint


def _entry_points() -> dict[str, EntryPoint]:
    from importlib import metadata  # ~27 ms to import: only when a format is not built in

    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def formats() -> list[str]:
    """The built-in format names and those registered through entry points."""
    return sorted(set(BUILTIN) | set(_entry_points()))


@functools.lru_cache(maxsize=None)
def get(name: str) -> Any:
    """The source for a format name, an entry point name, ``module`` or ``module:attribute``."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"source format must be a non-empty string, got {name!r}")
    try:
        if name in BUILTIN:
            source = importlib.import_module(BUILTIN[name])
        elif name in (eps := _entry_points()):
            source = eps[name].load()
        else:
            module_name, _, attribute = name.partition(":")
            try:
                source = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name.split(".")[0] and exc.name != module_name:
                    raise
                raise ConfigError(f"source format {name!r} is unknown; use one of {', '.join(formats())}, "
                                  "a module path (package.module[:attribute]) or an entry point in the "
                                  f"{ENTRY_POINT_GROUP!r} group") from None
            for part in attribute.split(".") if attribute else ():
                source = getattr(source, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"source format {name!r} could not be loaded: {exc}") from None
    missing = [attr for attr in _REQUIRED if not hasattr(source, attr)]
    if missing:
        raise ConfigError(f"source {name!r} does not follow the source contract (examplegen.sources): "
                          f"it lacks {', '.join(missing)}")
    return source
