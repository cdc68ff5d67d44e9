"""Lineage and data versions in ML Metadata (MLMD).

- `store`: choose, probe and open the store from one URL (`--mlmd`, $EXAMPLEGEN_MLMD).
- `recorder`: record one component run (execution, inputs, outputs, state) and find an
  earlier identical run to reuse.
- `query`: data versions of an input base and the lineage of an artifact.
- `schema`: what is recorded and under which names (KFP-compatible).
- `cli`: the `examplegen versions` and `examplegen lineage` commands.

This package imports ml-metadata lazily: importing it costs nothing until a store is used.
"""

from examplegen.lineage.recorder import Recorder, generate_run_name, redact_config
from examplegen.lineage.schema import (
    EXAMPLES,
    INGEST,
    PIPELINE_CONTEXT,
    RESOLVE_SPAN,
    RUN_CONTEXT,
    SOURCE_FILE,
    SPLIT,
)
from examplegen.lineage.store import LineageStore, StoreConfig, open_store, redact_url

__all__ = [
    "EXAMPLES",
    "INGEST",
    "PIPELINE_CONTEXT",
    "RESOLVE_SPAN",
    "RUN_CONTEXT",
    "SOURCE_FILE",
    "SPLIT",
    "LineageStore",
    "Recorder",
    "StoreConfig",
    "generate_run_name",
    "open_store",
    "redact_config",
    "redact_url",
]
