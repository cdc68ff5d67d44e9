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
