"""Stand-ins for examplegen.convert.run_task that worker processes import by name (the
pool pickles functions by reference), to put workers in a known state from a test."""

import os
import threading


def announce_and_block(task):
    """Writes ``<pid>`` into $EXAMPLEGEN_TEST_WORKER_DIR and blocks for good: the worker is
    busy until something kills it."""
    folder = os.environ["EXAMPLEGEN_TEST_WORKER_DIR"]
    path = os.path.join(folder, str(os.getpid()))
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    threading.Event().wait()


def announce_and_wait_for_go(task):
    """Like announce_and_block, then waits until the file $EXAMPLEGEN_TEST_GO exists and
    converts the task for real (the run is held mid-conversion, then completes)."""
    import time

    from examplegen.convert import run_task

    folder = os.environ["EXAMPLEGEN_TEST_WORKER_DIR"]
    with open(os.path.join(folder, f"{os.getpid()}-{task.chunk}"), "w"):
        pass
    while not os.path.exists(os.environ["EXAMPLEGEN_TEST_GO"]):
        time.sleep(0.05)
    return run_task(task)


def _launcher() -> bool:
    return os.getpid() == int(os.environ["EXAMPLEGEN_TEST_LAUNCHER_PID"])


def fail_in_launcher(task):
    """Fails the units the launching process converts (its own thread); workers convert."""
    from examplegen.convert import run_task

    if _launcher():
        raise RuntimeError(f"unit {task.chunk} failed in the launcher")
    return run_task(task)


def fail_in_worker(task):
    """Fails the units a worker process converts; the launcher converts its own."""
    from examplegen.convert import run_task

    if not _launcher():
        raise RuntimeError(f"unit {task.chunk} failed in a worker")
    return run_task(task)


def note_pid_and_convert(task):
    """Writes an empty file ``<pid>-<chunk>`` into $EXAMPLEGEN_TEST_WORKER_DIR, then converts."""
    from examplegen.convert import run_task

    open(os.path.join(os.environ["EXAMPLEGEN_TEST_WORKER_DIR"], f"{os.getpid()}-{task.chunk}"), "w").close()
    return run_task(task)
