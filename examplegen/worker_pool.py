"""The local engine's worker processes, and starting them early from the command line.

Workers are forked from multiprocessing's fork server, a fresh interpreter that has
imported the conversion code (pyarrow, numpy: ~0.25 s of CPU) once: they inherit nothing
from the caller (no forked TensorFlow/gRPC state from a notebook) but its environment
variables as they are when the pool starts, and none of them imports the engine again. The pool's processes are started in a background thread, so
the caller goes on planning while the fork server imports. A run of the ``examplegen``
command spends about as long importing and planning before it can hand out work, on one
core: ``prestart`` lets the command start the workers first, so that both start-ups
overlap on the otherwise idle cores; ``take`` hands the started pool to the run that
needs it. A library caller never gets a prestarted pool unless it asks for one. Measured
on 1M Parquet rows, 2 cores (bench/README.md): the first unit starts at 0.58 s with
spawned workers started by the run, 0.49 s prestarted, and ~0.35 s prestarted from the
fork server.

This module imports no more than the standard library, so the command can call
``prestart`` before anything heavy is imported.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Optional

_prestarted: Optional[tuple[int, ProcessPoolExecutor]] = None


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def init_worker(environ: dict[str, str]) -> None:
    """Worker initializer: the run's environment, and an exit when the run's process dies.

    A forked worker inherits the fork server's environment, which is the one of the first
    run in this process: a notebook that sets credentials or an endpoint later (or a test
    that starts another server) would have workers that do not see it. So each worker
    takes the environment of the process that created its pool (the modules the fork
    server imported read none of ours at import time)."""
    os.environ.clear()
    os.environ.update(environ)
    exit_with_parent()


def exit_with_parent() -> None:
    """Worker initializer: end this worker as soon as the run's process that started it is
    gone (killed with SIGKILL, it cannot shut the pool down), instead of converting on for
    minutes. A watchdog thread waits on multiprocessing's sentinel of the parent process
    (the run's process, also when the fork server forked the worker), which becomes ready
    the moment that process dies; prctl(PR_SET_PDEATHSIG) also ends the worker if the
    fork server itself goes."""
    import ctypes
    import signal
    from multiprocessing.connection import wait

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - not started by multiprocessing
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    if not parent.is_alive():  # the run's process died before the watchdog started
        os._exit(1)
    threading.Thread(target=watch, name="examplegen-parent-watchdog", daemon=True).start()


def warm_up() -> None:
    """Runs in a fresh worker: the import of the conversion code is the slow part."""
    import examplegen.convert  # noqa: F401


def start(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes that are being started (in a background thread,
    this one goes on), each already importing the conversion code."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["examplegen.convert"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker,
                               initargs=(dict(os.environ),))

    def warm_all() -> None:
        try:
            for _ in range(workers):
                pool.submit(warm_up)
        except RuntimeError:  # shut down before it started
            pass

    threading.Thread(target=warm_all, name="examplegen-worker-start", daemon=True).start()
    return pool


def prestart(workers: int = 0) -> None:
    """Starts ``workers`` processes (0: one per core) for the next ``take`` in this process."""
    global _prestarted
    discard()
    workers = workers or default_workers()
    if workers > 1:
        _prestarted = (workers, start(workers))


def prestarted() -> int:
    """How many workers a ``take`` would get now (0: none are started)."""
    return _prestarted[0] if _prestarted else 0


def take(workers: int) -> Optional[ProcessPoolExecutor]:
    """The prestarted pool if it has ``workers`` processes (then it is the caller's to shut
    down); otherwise None, and a prestarted pool of another size is shut down."""
    global _prestarted
    if _prestarted and _prestarted[0] == workers:
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
