"""Errors the engine raises. Every message names the file, line or record at fault."""


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


class VerificationError(ExampleGenError):
    """The work units' output does not add up (a unit missing, run twice differently, rows
    unaccounted for, a part file missing or holding other records); nothing was committed."""
