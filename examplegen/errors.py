"""Errors the engine raises. Every message names the file, line or record at fault."""

import errno


class ExampleGenError(Exception):
    """Base class: a user-facing error with a clear message (the CLI prints it and exits 1)."""


class ConfigError(ExampleGenError):
    """An input/output/range config or an option is invalid."""


class SpanResolutionError(ExampleGenError):
    """Span/version/date patterns could not be resolved against the files present."""


class SourceError(ExampleGenError):
    """A source file or record is malformed (the message names file and line/record)."""


class LineageError(ExampleGenError):
    """The ML Metadata store is misconfigured or unreachable."""


class OutputError(ExampleGenError):
    """The output folder cannot be written: a file is in the way, it is read-only, the disk
    is full, or another run holds its lock."""


# What to do about the OSErrors a user can cause (by the path they chose or their machine).
_OS_ERROR_HINTS = {
    errno.ENOSPC: "the file system is full: free space or choose a location with more room",
    errno.EDQUOT: "the disk quota is used up: free space or choose another location",
    errno.EFBIG: "the file is larger than this file system or the file size limit (ulimit -f) allows",
    errno.EROFS: "the file system is read-only: choose a writable location",
    errno.EACCES: "check the permissions of the path or choose another location",
    errno.EPERM: "check the permissions of the path or choose another location",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "the path is a directory, a file was expected",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or use fewer shards",
    errno.EIO: "the storage device reported an error",
}


def os_error_message(exc: OSError, path: str = None) -> str:
    """One line for an OSError: the path, what went wrong and what to do about it."""
    where = exc.filename if exc.filename is not None else path
    reason = exc.strerror or str(exc)
    hint = _OS_ERROR_HINTS.get(exc.errno)
    text = f"{where}: {reason}" if where is not None else reason
    if exc.filename2 is not None:
        text += f" (and {exc.filename2})"
    return text + (f"; {hint}" if hint else "")


class VerificationError(ExampleGenError):
    """The work units' output does not add up (a unit missing, run twice differently, rows
    unaccounted for, a part file missing or holding other records); nothing was committed."""
