"""Content digests ("sha256:<hex>") of input files.

Input fingerprints and lineage records are built from these digests, not from sizes and
mtimes, so a changed file is always noticed.

There is deliberately no digest cache, not even within one process: a key such as
(size, mtime_ns, ctime_ns) cannot see a same-size rewrite inside one tick of the
kernel's coarse file-time clock (a few ms on many kernels), which would bring back the
staleness digests exist to prevent. The engine hashes each file once per run anyway.

Remote inputs (gs://, s3://) are hashed from a stream of the object's bytes, read
through examplegen.fs; ETags and CRCs are never used as digests (an ETag is not a content
hash for multipart uploads, and CRC32C is not collision-resistant).

Speed, measured on a 200 MB file (file in the page cache, 2-core VM with SHA-NI):
about 1,000-1,100 MB/s (hashlib.sha256, 1 MiB reads; readinto() or hashlib.file_digest
were no faster). Reading from disk or network is usually the limit, not hashing.
"""

from __future__ import annotations

import hashlib

from examplegen import fs
from examplegen.errors import SourceError

BLOCK_SIZE = fs.BLOCK_SIZE  # 1 MiB


def file_digest(path: str) -> str:
    """The "sha256:<hex>" digest of the bytes of `path` (a local path or a gs:// / s3://
    URL), read in 1 MiB blocks. Errors are SourceError/ConfigError naming the path."""
    sha = hashlib.sha256()
    try:
        fs.stream_to(path, _Hasher(sha))
    except OSError as exc:
        raise SourceError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    return "sha256:" + sha.hexdigest()


class _Hasher:
    """A write-only sink that feeds a hash."""

    def __init__(self, sha):
        self._sha = sha

    def write(self, block: bytes) -> int:
        self._sha.update(block)
        return len(block)
