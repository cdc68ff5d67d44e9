"""One run at a time per output folder.

``lock_output(output)`` holds an exclusive ``flock`` on ``<output>/.examplegen.lock`` for
the whole run, so a second run into the same folder cannot clear the first one's staging
folder from under it. The second run fails at once with a message naming the holder's pid,
or with ``timeout`` > 0 waits up to that many seconds. The lock file holds the holder's pid,
host and start time (for that message) and is removed when the run ends; the kernel drops
the lock of a run that dies, so a killed run never leaves the folder locked.

The lock is effective between runs on one machine, and across machines only on file
systems with working ``flock`` (e.g. NFSv4; not Cloud Storage FUSE).

On gs:// and s3:// there is no lock: one run at a time per output prefix is the caller's
duty (a KFP pipeline gives every run its own output URI). ``lock_output`` only checks that
the prefix is new, empty or an earlier artifact. Two runs committing into one prefix at
once could interleave their Split-* objects; the metadata object, written last, then
lists the files of one of them and ``verify_files`` reports the difference.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import logging
import os
import socket
import time
from typing import Iterator

from examplegen import fs
from examplegen.errors import OutputError, SourceError, os_error_message
from examplegen.writer import METADATA_FILE

LOCK_FILE = ".examplegen.lock"
_POLL_SECONDS = 0.2

log = logging.getLogger(__name__)


def lock_path(output_uri: str) -> str:
    return os.path.join(os.path.abspath(output_uri), LOCK_FILE)


@contextlib.contextmanager
def lock_output(output_uri: str, timeout: float = 0) -> Iterator[None]:
    """Holds the output folder's lock (creating the folder) for the ``with`` block."""
    if not output_uri:
        raise OutputError("the output path is empty: give the folder to write the Examples artifact to")
    if fs.is_remote(output_uri):
        _check_remote_output(output_uri)
        yield
        return
    output = os.path.abspath(output_uri)
    fd, created = _acquire(output, timeout)
    try:
        yield
    finally:
        _release(output, fd, created)


def _make_output_dir(output: str) -> bool:
    """Creates the output folder; True when it did not exist. Paths that cannot be a
    folder, and folders that hold other things than an Examples artifact, are an OutputError."""
    if os.path.isdir(output):
        _check_artifact_folder(output)
        return False
    if os.path.isfile(output):
        raise OutputError(f"output {output} is an existing file, not a folder: give the path of a new "
                          "folder or of an earlier Examples artifact")
    try:
        os.makedirs(output)
        return True
    except FileExistsError:
        if not os.path.isdir(output):
            raise OutputError(f"output {output} exists and is not a folder: choose another path") from None
        return False
    except OSError as exc:
        raise OutputError(f"cannot create the output folder: {os_error_message(exc, output)}") from exc


def _check_remote_output(output: str) -> None:
    """The checks of ``_make_output_dir`` for a gs:// or s3:// prefix (which needs no creating)."""
    try:
        if fs.is_file(output):
            raise OutputError(f"output {output} is an existing object, not a folder: give the URI of a new "
                              "prefix or of an earlier Examples artifact")
        if not fs.exists(output):  # names the output in the error for a missing bucket
            return
        names = {path.rstrip("/").rsplit("/", 1)[-1] for path in fs.glob(fs.join(fs.escape_glob(output), "*"))}
    except SourceError as exc:  # no such bucket, access denied, service unreachable
        raise OutputError(f"cannot write the Examples artifact: {exc}") from None
    _check_names(output, sorted(names))


def _check_artifact_folder(output: str) -> None:
    """An existing output folder must be empty, an earlier artifact or the leftovers of one
    (a staging folder, Split-* folders): never, say, the current directory by mistake."""
    try:
        names = os.listdir(output)
    except OSError as exc:
        raise OutputError(f"cannot read the output folder: {os_error_message(exc, output)}") from exc
    _check_names(output, names)


def _check_names(output: str, names: list[str]) -> None:
    artifact_like = [n for n in names if n == METADATA_FILE or n.startswith(("Split-", ".staging-"))]
    others = sorted(n for n in names if n != LOCK_FILE)
    if others and not artifact_like:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise OutputError(f"output folder {output} is not empty and holds no Examples artifact ({shown}): "
                          "give the path of a new or empty folder or of an earlier artifact")


def _acquire(output: str, timeout: float) -> tuple[int, bool]:
    """(locked file descriptor, whether this run created the output folder)."""
    path = lock_path(output)
    deadline = time.monotonic() + max(0.0, timeout)
    announced = False
    created = False
    while True:
        # Again on every attempt: a holder that created the folder removes it when it ends empty.
        created = _make_output_dir(output) or created
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue  # the folder was removed in between: create it again
        except OSError as exc:
            raise OutputError(f"cannot write to the output folder: {os_error_message(exc, output)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            if time.monotonic() >= deadline:
                waited = f" (waited {timeout:g} s)" if timeout > 0 else ""
                raise OutputError(
                    f"output folder {output} is in use by another examplegen run ({holder}){waited}: "
                    "wait for it to finish, choose another --output, or pass --lock-timeout SECONDS "
                    "to wait for it") from None
            if not announced:
                log.warning("output folder %s is in use by another examplegen run (%s); waiting up to "
                            "%g s for it", output, holder, timeout)
                announced = True
            time.sleep(_POLL_SECONDS)
            continue
        if _is_current(fd, path):
            try:
                _write_holder(fd)
            except OSError as exc:
                _release(output, fd, created)
                raise OutputError(f"cannot write to the output folder: {os_error_message(exc, path)}") from exc
            return fd, created
        os.close(fd)  # locked a file its holder had already removed: lock the new one


def _is_current(fd: int, path: str) -> bool:
    """Whether ``fd`` is still the file at ``path`` (a finishing holder removes the file)."""
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _write_holder(fd: int) -> None:
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode(), 0)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown"


def _release(output: str, fd: int, created: bool) -> None:
    with contextlib.suppress(OSError):
        os.remove(lock_path(output))  # while still holding it: see _is_current
    os.close(fd)
    if created:  # a run that wrote nothing leaves no empty folder behind
        with contextlib.suppress(OSError):
            os.rmdir(output)
