"""Arrow's memory pool in the local engine's worker processes.

Converting a work unit allocates a few buffers as large as the unit (the framed records,
the same frames in split order, the compressed part). Arrow's default pool (mimalloc)
hands blocks that large back to the operating system as soon as they are freed, so every
unit's buffers are fresh pages, which the kernel zero-fills at first touch. In a run of
1M Parquet rows that was ~397,000 page faults and 1.4 s of system CPU out of ~7.5 s.
jemalloc with purging disabled keeps the freed pages for the next unit instead: ~159,000
faults and 0.7 s (bench/README.md). A worker's footprint is then its largest unit's,
which does not grow with the input.

Only worker processes the engine starts itself call this: it changes the default pool of
the whole process, which is not a library's to change in a caller's interpreter.
"""

from __future__ import annotations

import os
import sys

# Read once, when Arrow's bundled jemalloc initialises: pyarrow.jemalloc_set_decay_ms only
# reaches arenas created after it, not the ones that serve the pool.
JEMALLOC_CONF_VARIABLE = "JE_ARROW_MALLOC_CONF"
NEVER_PURGE = "dirty_decay_ms:-1,muzzy_decay_ms:-1"


def retain_freed_pages() -> bool:
    """Makes jemalloc, never purging, this process's default Arrow pool. Must run before
    pyarrow is imported (else it changes nothing and returns False); also False where
    pyarrow was built without jemalloc (e.g. macOS wheels). A ``JE_ARROW_MALLOC_CONF``
    the user set is kept as it is."""
    if "pyarrow" in sys.modules:
        return False
    os.environ.setdefault(JEMALLOC_CONF_VARIABLE, NEVER_PURGE)
    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:
        return False
    pa.set_memory_pool(pool)
    return True
