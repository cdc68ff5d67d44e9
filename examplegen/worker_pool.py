"""The local engine's worker processes, and starting them early from the command line.

A run with N workers converts in its own process (a thread, examplegen.ingest._Runner)
and in N - 1 worker processes from here.

Workers are started with multiprocessing's spawn method (a fresh interpreter each: they
must not inherit a forked TensorFlow/gRPC state from a caller such as a notebook), and
each imports the conversion code (pyarrow, numpy: ~0.25 s of CPU) before its first unit.
A run of the ``examplegen`` command spends about as long importing the same modules and
planning before it can hand out work, on one core. ``prestart`` lets the command start
the workers first, so that both start-ups overlap on the otherwise idle cores (in a run of
1M Parquet rows on 2 cores the first unit started at 0.49 s instead of 0.58 s, see
bench/README.md); ``take`` hands
the started pool to the run that needs it. A library caller never gets a prestarted pool
unless it asks for one.

This module imports no more than the standard library, so the command can call
``prestart`` before anything heavy is imported.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Optional

_prestarted: Optional[tuple[int, ProcessPoolExecutor]] = None


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this worker as soon as the process that started it is gone
    (killed with SIGKILL, it cannot shut the pool down), instead of converting on for
    minutes. Linux delivers SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); a
    watchdog thread that polls the parent pid covers other systems and the moment before
    prctl took effect."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent_pid:  # the parent died before prctl
        os._exit(1)
    threading.Thread(target=watch, name="examplegen-parent-watchdog", daemon=True).start()


def init_worker(parent_pid: int) -> None:
    """Worker initializer: ``exit_with_parent``; an Arrow memory pool that keeps freed pages
    for the next unit (examplegen.arrow_memory); then the conversion code is imported and
    its objects are moved out of the garbage collector's reach (gc.freeze: a collection
    then scans only what units allocate, not the ~100k objects of the imports)."""
    import gc

    exit_with_parent(parent_pid)
    from examplegen import arrow_memory

    arrow_memory.retain_freed_pages()
    warm_up()
    gc.freeze()


def warm_up() -> None:
    """The import of the conversion code, the slow part of a worker's start (submitted once
    per worker by ``start``, which makes the pool start its processes at once)."""
    import examplegen.convert  # noqa: F401


def start(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, each already importing the conversion code."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_worker, initargs=(os.getpid(),))
    for _ in range(workers):
        pool.submit(warm_up)
    return pool


def prestart(processes: int) -> None:
    """Starts ``processes`` worker processes for the next ``take`` in this process."""
    global _prestarted
    discard()
    if processes >= 1:
        _prestarted = (processes, start(processes))


def prestarted() -> int:
    """How many processes a ``take`` would get now (0: none are started)."""
    return _prestarted[0] if _prestarted else 0


def take(processes: int) -> Optional[ProcessPoolExecutor]:
    """The prestarted pool if it has ``processes`` processes (then it is the caller's to
    shut down); otherwise None, and a prestarted pool of another size is shut down."""
    global _prestarted
    if _prestarted and _prestarted[0] == processes:
        pool, _prestarted = _prestarted[1], None
        return pool
    discard()
    return None


def discard() -> None:
    """Shuts down a prestarted pool that no run took."""
    global _prestarted
    if _prestarted:
        pool, _prestarted = _prestarted[1], None
        pool.shutdown(wait=False, cancel_futures=True)


atexit.register(discard)
