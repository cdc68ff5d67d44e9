"""Plain data passed between the engine's stages and the lineage recorder."""

from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One input that an ingestion read: a file, or a query's result (``query`` set)."""

    uri: str  # absolute path or URL of the file; a query's connection URL (no password)
    size: int  # bytes (a query: bytes of its Arrow result)
    digest: str  # "sha256:<hex>" of the file's bytes; a query's result digest
    split: str  # input split name it belongs to
    span: int = 0
    version: Optional[int] = None
    query: Optional[str] = None  # the query text, placeholders substituted
    rows: Optional[int] = None  # rows of a query's result

    @property
    def identity(self) -> str:
        """What tells two inputs at one URI apart: the digest, and a query's text."""
        return self.digest if self.query is None else f"{self.digest}\0{self.query}"


@dataclasses.dataclass
class IngestResult:
    """What one ingestion (or re-split) produced: an Examples artifact on disk."""

    output_uri: str  # the artifact directory holding Split-<name>/
    split_names: list[str]
    counts: dict[str, int]  # examples per output split
    span: int
    version: Optional[int]
    input_fingerprint: str
    payload_format: str  # "FORMAT_TF_EXAMPLE" | "FORMAT_TF_SEQUENCE_EXAMPLE" | "FORMAT_PROTO"
    file_format: str = "tfrecords_gzip"
    spans: list[int] = dataclasses.field(default_factory=list)
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    sources: list[SourceFile] = dataclasses.field(default_factory=list)
    config: dict = dataclasses.field(default_factory=dict)  # effective configs, JSON-able
    cached: bool = False  # True when an earlier identical run's artifact was reused
    files_digest: Optional[str] = None  # "sha256:<hex>" of the data file list (writer.files_digest)

    def metadata(self) -> dict:
        """Artifact metadata as TFX names it (no None values: KFP rejects null)."""
        import json

        md = {
            "split_names": json.dumps(self.split_names),
            "span": self.span,
            "input_fingerprint": self.input_fingerprint,
            "payload_format": self.payload_format,
            "file_format": self.file_format,
            "example_counts": json.dumps(self.counts, sort_keys=True),
        }
        if self.version is not None:
            md["version"] = self.version
        if len(self.spans) > 1:
            md["spans"] = json.dumps(self.spans)
        if self.files_digest is not None:
            md["files_digest"] = self.files_digest
        return md
