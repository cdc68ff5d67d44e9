"""The file-system layer the engine uses to list and read input files.

Every input path goes through the functions at the bottom of this module. They pick a
back-end by the path's URL scheme from `_BACKENDS`: plain paths and `file://` URLs are
local, `gs://bucket/key` is Google Cloud Storage and `s3://bucket/key` is Amazon S3 (or an
S3-compatible store). A new back-end is a class with the methods of `LocalFileSystem`,
registered in `_BACKENDS`.

Glob semantics follow TFX (tf.io.gfile.glob) everywhere: `*` and `?` never cross `/`,
`[...]` classes work, and names starting with a dot are matched like any other name.
Object stores have no directories; a glob on them lists the objects under the pattern's
literal prefix and matches each object name, and its parent "directories", segment by
segment with fnmatch, as the local glob does.

Credentials, as the client libraries find them:
- gs://: Application Default Credentials. With STORAGE_EMULATOR_HOST set (an emulator
  URL such as http://127.0.0.1:9023) requests go there with anonymous credentials.
- s3://: the standard boto3 chain (env keys, AWS_PROFILE, ~/.aws, instance role).
  EXAMPLEGEN_S3_ENDPOINT_URL, else AWS_ENDPOINT_URL, selects another endpoint.
Client errors become SourceError (missing bucket/object, access denied, unreachable
service) or ConfigError (no or rejected credentials) naming the URL; credentials never
appear in messages.

The built-in sources read remote inputs in place with `open_input` (a seekable file over
ranged reads: a worker fetches only its byte range or row groups); for a source that needs
local files, `localize` downloads remote inputs into a cache directory first. Within
`expect_digests` (a work unit, examplegen.convert), a file that `open_input` serves from
its first byte to its end is checked against the digest taken when it was resolved.

Writing (the Examples artifact on gs:// or s3://) goes through `pyarrow.fs` (Arrow's C++
GCS and S3 clients, streaming uploads): `open_write`, `listdir`, `move`, `remove`,
`remove_tree`. Each works on local paths too, with the same results. An object appears
only when its upload completes, so a reader never sees half an object; a "move" on an
object store is a copy and a delete. Arrow's S3 client is made for each bucket's own
region (`_s3_region`: found with a boto3 HeadBucket, else AWS_REGION / AWS_DEFAULT_REGION).
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import functools
import glob as _glob
import hashlib
import io
import os
import posixpath
import re
import tempfile
from typing import BinaryIO, Iterator, Mapping, Optional

from examplegen.errors import ConfigError, ExampleGenError, SourceError

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_MAGIC_RE = re.compile(r"[*?[]")
BLOCK_SIZE = 1 << 20  # 1 MiB: read size for local files
NETWORK_BLOCK_SIZE = 256 << 10  # read size for HTTP response bodies (fewer copies in memory)
GCS_CHUNK_SIZE = 16 << 20  # bytes per ranged GET when streaming a GCS object


class LocalFileSystem:
    """Local disk (plain paths)."""

    def glob(self, pattern: str) -> list[str]:
        return sorted(_glob.glob(pattern, include_hidden=True))

    def open_read(self, path: str) -> BinaryIO:
        return open(path, "rb")

    def stream_to(self, path: str, out) -> None:
        with self.open_read(path) as stream:
            _copy(stream, out)

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def is_file(self, path: str) -> bool:
        return os.path.isfile(path)

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def absolute(self, path: str) -> str:
        return os.path.abspath(path)

    def escape_glob(self, path: str) -> str:
        return _glob.escape(path)


# ---------------------------------------------------------------- object stores


class ObjectStoreFileSystem:
    """What gs:// and s3:// share: URL parsing, glob matching, existence rules.

    Subclasses implement the primitives (`_list`, `_stat`, `_version`, `_open`, `_error`) with
    their client library. Paths are full URLs (`scheme://bucket/key`).
    """

    scheme = ""
    service = ""  # human-readable name for messages

    # -- primitives

    def _list(self, bucket: str, prefix: str, limit: Optional[int] = None) -> Iterator[str]:
        """Names of the objects whose name starts with `prefix`."""
        raise NotImplementedError

    def _stat(self, bucket: str, key: str) -> Optional[int]:
        """Size of the object, or None if there is none with this exact name."""
        raise NotImplementedError

    def _version(self, bucket: str, key: str) -> Optional[str]:
        """What changes whenever the object is replaced (GCS: generation; S3: ETag), or None
        if there is no such object."""
        raise NotImplementedError

    def _open(self, bucket: str, key: str) -> Optional[BinaryIO]:
        """A stream of the object's bytes (one version of it), or None if it is missing."""
        raise NotImplementedError

    def _error(
        self, exc: Exception, url: str, not_found: SourceError
    ) -> Optional[ExampleGenError]:
        """The user-facing error for a client exception (None: not a client error);
        `not_found` is the error for a 404 in this context."""
        raise NotImplementedError

    # -- the file-system interface

    def glob(self, pattern: str) -> list[str]:
        bucket, key_pattern = self._split(pattern)
        if _MAGIC_RE.search(bucket):
            raise ConfigError(f"{pattern}: wildcards in bucket names are not supported")
        if not key_pattern:
            return [self._url(bucket, "")] if self._bucket_exists(bucket, pattern) else []
        # As the local glob: a trailing '/' matches directories only and is kept.
        dirs_only = pattern.endswith("/")
        parts = key_pattern.split("/")
        magic = _MAGIC_RE.search(key_pattern)
        prefix = key_pattern[: magic.start()] if magic else key_pattern
        found = set()
        for key in self._listing(bucket, prefix, pattern):
            segments = key.split("/")
            is_dir = len(segments) > len(parts)  # a parent "directory" of the object
            segments = segments[: len(parts)]
            if (
                len(segments) == len(parts)
                and (is_dir or not dirs_only)
                and all(segments)
                and all(fnmatch.fnmatchcase(s, p) for s, p in zip(segments, parts))
            ):
                found.add("/".join(segments) + ("/" if dirs_only else ""))
        return sorted(self._url(bucket, key) for key in found)

    def open_read(self, url: str) -> BinaryIO:
        bucket, key = self._object(url)
        with self._translated(url, SourceError(f"{url}: no such object")):
            stream = self._open(bucket, key)
        if stream is None:
            raise self._missing(bucket, key, url)
        return io.BufferedReader(_ErrorMappingReader(stream, self, url), NETWORK_BLOCK_SIZE)

    def stream_to(self, url: str, out) -> None:
        with self.open_read(url) as stream:
            _copy(stream, out, NETWORK_BLOCK_SIZE)

    def size(self, url: str) -> int:
        return self._of_object(url, self._stat)

    def version(self, url: str) -> str:
        """What changes whenever the object is replaced (see `_version`)."""
        return self._of_object(url, self._version)

    def _of_object(self, url: str, primitive):
        """`primitive(bucket, key)` of the object at `url`; a missing one is a SourceError."""
        bucket, key = self._object(url)
        with self._translated(url, SourceError(f"{url}: no such object")):
            value = primitive(bucket, key)
        if value is None:
            raise self._missing(bucket, key, url)
        return value

    def exists(self, url: str) -> bool:
        """True for an object, a bucket, or a "directory" (a prefix followed by '/')."""
        bucket, key = self._split(url)
        if not key:
            return self._bucket_exists(bucket, url)
        if any(True for _ in self._listing(bucket, key + "/", url, limit=1)):
            return True
        return self.is_file(url)

    def is_file(self, url: str) -> bool:
        bucket, key = self._split(url)
        if not key or key.endswith("/"):
            return False
        with self._translated(url, SourceError(f"{url}: no such object")):
            return self._stat(bucket, key) is not None

    def join(self, *parts: str) -> str:
        return posixpath.join(*parts)

    def absolute(self, url: str) -> str:
        """The URL with the scheme in lower case and no trailing '/'."""
        bucket, key = self._split(url)
        return self._url(bucket, key)

    def escape_glob(self, url: str) -> str:
        bucket, key = self._split(url)
        return self._url(bucket, _glob.escape(key))

    # -- helpers

    def _split(self, url: str) -> tuple[str, str]:
        """(bucket, key) of `scheme://bucket/key`; the key has no trailing '/'."""
        rest = _SCHEME_RE.sub("", url, count=1)
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ConfigError(f"{url}: no bucket name (expected {self.scheme}://bucket/path)")
        return bucket, key.rstrip("/")

    def _object(self, url: str) -> tuple[str, str]:
        bucket, key = self._split(url)
        if not key:
            raise SourceError(f"{url}: is a bucket, not an object")
        return bucket, key

    def _url(self, bucket: str, key: str) -> str:
        return f"{self.scheme}://{bucket}/{key}" if key else f"{self.scheme}://{bucket}"

    def _listing(
        self, bucket: str, prefix: str, url: str, limit: Optional[int] = None
    ) -> Iterator[str]:
        """`_list` with errors translated; a missing bucket is a SourceError."""
        with self._translated(url, self._no_bucket(bucket, url)):
            yield from self._list(bucket, prefix, limit)

    def _no_bucket(self, bucket: str, url: str) -> "_NoSuchBucket":
        return _NoSuchBucket(f"{url}: bucket {bucket!r} does not exist ({self.service})")

    def _bucket_exists(self, bucket: str, url: str) -> bool:
        try:
            for _ in self._listing(bucket, "", url, limit=1):
                break
        except _NoSuchBucket:
            return False
        return True

    def _missing(self, bucket: str, key: str, url: str) -> SourceError:
        """The error for an object that is not there, telling a missing bucket apart."""
        if not self._bucket_exists(bucket, url):
            return self._no_bucket(bucket, url)
        return SourceError(f"{url}: no such object")

    @contextlib.contextmanager
    def _translated(self, url: str, not_found: SourceError):
        """Turn the client library's exceptions into ExampleGenError naming `url`."""
        try:
            yield
        except ExampleGenError:
            raise
        except Exception as exc:
            error = self._error(exc, url, not_found)
            if error is None:
                raise
            raise error from exc


class _NoSuchBucket(SourceError):
    """The bucket of a URL does not exist."""


class _ErrorMappingReader(io.RawIOBase):
    """A raw stream over a client's object stream that translates its errors."""

    def __init__(self, stream, backend: ObjectStoreFileSystem, url: str):
        self._stream = stream
        self._backend = backend
        self._url = url

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with self._backend._translated(
            self._url,
            SourceError(f"{self._url}: the object was deleted or replaced while being read"),
        ):
            data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            finally:
                super().close()


def _limit(message: str, length: int = 300) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= length else message[: length - 3] + "..."


class GcsFileSystem(ObjectStoreFileSystem):
    """Google Cloud Storage (gs://) through google-cloud-storage."""

    scheme = "gs"
    service = "Google Cloud Storage"

    def _client(self):
        return _gcs_client(os.environ.get("STORAGE_EMULATOR_HOST", ""))

    def _list(self, bucket: str, prefix: str, limit: Optional[int] = None) -> Iterator[str]:
        blobs = self._client().list_blobs(
            bucket, prefix=prefix or None, max_results=limit, fields="items(name),nextPageToken"
        )
        for blob in blobs:
            yield blob.name

    def _stat(self, bucket: str, key: str) -> Optional[int]:
        blob = self._client().bucket(bucket).get_blob(key)
        return None if blob is None else blob.size

    def _version(self, bucket: str, key: str) -> Optional[str]:
        blob = self._client().bucket(bucket).get_blob(key)
        return None if blob is None else f"generation {blob.generation}"

    def _open(self, bucket: str, key: str) -> Optional[BinaryIO]:
        from google.cloud.storage.fileio import BlobReader

        # get_blob loads the generation, so every ranged read gets that same version.
        blob = self._client().bucket(bucket).get_blob(key)
        if blob is None:
            return None
        # raw_download: the stored bytes, never decompressed (matches the object's size).
        return BlobReader(blob, chunk_size=GCS_CHUNK_SIZE, raw_download=True)

    def stream_to(self, url: str, out) -> None:
        """One streaming GET (resumed on retries), checked against the object's CRC32C."""
        bucket, key = self._object(url)
        not_found = SourceError(f"{url}: no such object")
        with self._translated(url, not_found):
            blob = self._client().bucket(bucket).get_blob(key)  # pins the generation
        if blob is None:
            raise self._missing(bucket, key, url)
        with self._translated(
            url, SourceError(f"{url}: the object was deleted or replaced while being read")
        ):
            blob.download_to_file(out, raw_download=True, checksum="crc32c")

    def _error(
        self, exc: Exception, url: str, not_found: SourceError
    ) -> Optional[ExampleGenError]:
        import google.auth.exceptions as auth_errors
        import requests
        from google.api_core import exceptions as api_errors
        from google.resumable_media import DataCorruption

        if isinstance(exc, DataCorruption):
            return SourceError(f"{url}: the download was corrupted ({_limit(exc, 200)})")
        if isinstance(exc, auth_errors.DefaultCredentialsError):
            return ConfigError(
                f"{url}: no Google Cloud credentials found ({_limit(exc)}); set up "
                "Application Default Credentials (`gcloud auth application-default login` "
                "or GOOGLE_APPLICATION_CREDENTIALS), or set STORAGE_EMULATOR_HOST for an "
                "emulator"
            )
        if isinstance(exc, auth_errors.GoogleAuthError):
            return ConfigError(
                f"{url}: the Google Cloud credentials could not be used "
                f"({type(exc).__name__}: {_limit(exc, 200)})"
            )
        if isinstance(exc, api_errors.NotFound):
            return not_found
        if isinstance(exc, api_errors.Unauthorized):
            return ConfigError(f"{url}: the Google Cloud credentials were rejected (401)")
        if isinstance(exc, api_errors.Forbidden):
            return SourceError(f"{url}: access denied (403: {_limit(exc.message)})")
        if isinstance(exc, api_errors.GoogleAPICallError):
            return SourceError(f"{url}: {self.service} error {exc.code}: {_limit(exc.message)}")
        if isinstance(exc, (api_errors.GoogleAPIError, requests.RequestException)):
            endpoint = os.environ.get("STORAGE_EMULATOR_HOST") or "storage.googleapis.com"
            return SourceError(
                f"{url}: cannot reach {self.service} at {endpoint} "
                f"({type(exc).__name__}: {_limit(exc, 200)})"
            )
        return None


@functools.lru_cache(maxsize=4)
def _gcs_client(emulator_host: str):
    """One client per emulator setting ("" = the real service with ADC)."""
    from google.cloud import storage

    if emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="examplegen-emulator", credentials=AnonymousCredentials())
    # project=None: reading objects needs no project, so none has to be configured.
    return storage.Client(project=None)


class S3FileSystem(ObjectStoreFileSystem):
    """Amazon S3 or an S3-compatible store (s3://) through boto3."""

    scheme = "s3"
    service = "S3"

    def _endpoint(self) -> str:
        """The endpoint URL from the environment ("" = AWS)."""
        return os.environ.get("EXAMPLEGEN_S3_ENDPOINT_URL") or os.environ.get(
            "AWS_ENDPOINT_URL", ""
        )

    def _client(self):
        return _s3_client(self._endpoint())

    def _list(self, bucket: str, prefix: str, limit: Optional[int] = None) -> Iterator[str]:
        paginator = self._client().get_paginator("list_objects_v2")
        config = {"MaxItems": limit, "PageSize": limit} if limit else {}
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig=config):
            for item in page.get("Contents", ()):
                yield item["Key"]

    def _head(self, bucket: str, key: str) -> Optional[dict]:
        from botocore.exceptions import ClientError

        try:
            return self._client().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if _s3_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _stat(self, bucket: str, key: str) -> Optional[int]:
        head = self._head(bucket, key)
        return None if head is None else head["ContentLength"]

    def _version(self, bucket: str, key: str) -> Optional[str]:
        head = self._head(bucket, key)
        return None if head is None else f"ETag {head['ETag']}"

    def _open(self, bucket: str, key: str) -> Optional[BinaryIO]:
        from botocore.exceptions import ClientError

        try:
            # One GET streams one version of the object, read as the body arrives.
            return self._client().get_object(Bucket=bucket, Key=key)["Body"]
        except ClientError as exc:
            if _s3_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _error(
        self, exc: Exception, url: str, not_found: SourceError
    ) -> Optional[ExampleGenError]:
        from botocore import exceptions as boto_errors

        if isinstance(exc, (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError)):
            return ConfigError(
                f"{url}: no usable AWS credentials found; configure the standard AWS chain "
                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials "
                "or an instance role)"
            )
        if isinstance(exc, boto_errors.ProfileNotFound):
            return ConfigError(f"{url}: {_limit(exc, 200)} (check AWS_PROFILE)")
        if isinstance(exc, boto_errors.ParamValidationError):
            return ConfigError(f"{url}: not a valid S3 bucket/key ({_limit(exc, 200)})")
        if isinstance(exc, boto_errors.ClientError):
            code = _s3_code(exc)
            message = _limit(exc.response.get("Error", {}).get("Message") or "")
            detail = f"{code}: {message}" if message else code
            if code == "NoSuchBucket":
                return self._no_bucket(self._split(url)[0], url)
            if code in ("404", "NoSuchKey", "NotFound"):
                return not_found
            if code in _S3_REJECTED_CREDENTIALS:
                return ConfigError(f"{url}: the AWS credentials were rejected ({code})")
            if code in ("403", "AccessDenied", "AllAccessDisabled", "Forbidden"):
                return SourceError(f"{url}: access denied ({detail})")
            return SourceError(f"{url}: S3 error {detail}")
        if isinstance(exc, (boto_errors.ConnectionError, boto_errors.HTTPClientError)):
            endpoint = self._endpoint() or "AWS"
            return SourceError(f"{url}: cannot reach S3 at {endpoint} ({_limit(exc, 200)})")
        if isinstance(exc, boto_errors.BotoCoreError):
            return SourceError(f"{url}: S3 client error ({_limit(exc, 200)})")
        return None


_S3_REJECTED_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
}


def _s3_code(exc) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@functools.lru_cache(maxsize=4)
def _s3_client(endpoint_url: str):
    """One client per endpoint ("" = AWS)."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 5})
    try:
        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, config=config
        )
    except ValueError as exc:  # a malformed endpoint URL
        raise ConfigError(
            f"S3 endpoint {endpoint_url!r} (EXAMPLEGEN_S3_ENDPOINT_URL / AWS_ENDPOINT_URL) "
            f"is not valid: {exc}"
        ) from exc


def reset_clients() -> None:
    """Forget the cached GCS/S3 clients (after changing credentials in this process)."""
    _gcs_client.cache_clear()
    _s3_client.cache_clear()
    _arrow_fs.cache_clear()
    _S3_REGIONS.clear()


_LOCAL = LocalFileSystem()

# URL scheme -> back-end. Plain paths use "" (local).
_BACKENDS: dict[str, object] = {
    "": _LOCAL,
    "file": _LOCAL,
    "gs": GcsFileSystem(),
    "s3": S3FileSystem(),
}


def scheme(path: str) -> str:
    """The URL scheme of `path` in lower case ("" for a plain path)."""
    match = _SCHEME_RE.match(os.fspath(path))
    return match.group(1).lower() if match else ""


def is_remote(path: str) -> bool:
    """True for paths that are not on the local disk (any scheme except file://)."""
    return scheme(path) not in ("", "file")


def _resolve(path: str):
    """The back-end for `path` and the path as that back-end expects it."""
    path = os.fspath(path)
    name = scheme(path)
    backend = _BACKENDS.get(name)
    if backend is None:
        supported = ", ".join(sorted(f"{s}://" for s in _BACKENDS if s)) or "none"
        raise ConfigError(
            f"{path}: file system '{name}://' is not supported yet "
            f"(supported: local paths, {supported})"
        )
    if name == "file":
        path = path[len("file://") :]
    return backend, path


def glob(pattern: str) -> list[str]:
    """Paths matching `pattern` (files and directories), sorted."""
    backend, pattern = _resolve(pattern)
    return backend.glob(pattern)


def open_read(path: str) -> BinaryIO:
    """Open `path` for reading bytes (remote objects are streamed)."""
    backend, path = _resolve(path)
    return backend.open_read(path)


def stream_to(path: str, out) -> None:
    """Write the bytes of `path` to `out` (anything with a write(bytes) method), in
    blocks of at most 1 MiB; the fastest way to read a whole remote object."""
    backend, path = _resolve(path)
    backend.stream_to(path, out)


def _copy(stream: BinaryIO, out, block_size: int = BLOCK_SIZE) -> None:
    while block := stream.read(block_size):
        out.write(block)


def size(path: str) -> int:
    """Size of the file in bytes."""
    backend, path = _resolve(path)
    return backend.size(path)


def exists(path: str) -> bool:
    """True for a file or directory (for object stores: object, bucket or prefix + '/')."""
    backend, path = _resolve(path)
    return backend.exists(path)


def is_file(path: str) -> bool:
    """True if `path` is a regular file / an object (not a directory)."""
    backend, path = _resolve(path)
    return backend.is_file(path)


def join(base: str, *parts: str) -> str:
    """Join path parts; URLs are joined with '/'."""
    if is_remote(base):
        return posixpath.join(base, *parts)
    backend, _ = _resolve(base)
    return backend.join(base, *parts)


def absolute(path: str) -> str:
    """`path` made absolute and normalised; a file:// URL becomes a plain local path."""
    backend, local = _resolve(path)
    return backend.absolute(local)


def escape_glob(path: str) -> str:
    """`path` with glob wildcards escaped, so it matches only itself."""
    backend, path = _resolve(path)
    return backend.escape_glob(path)


# ---------------------------------------------------------------- local copies


def localize(
    paths: list[str], cache_dir: str, digests: Optional[Mapping[str, str]] = None
) -> dict[str, str]:
    """Local files for `paths`: {path: local path}.

    Local paths map to themselves (file:// URLs to their plain path). Each remote object
    is downloaded once into `cache_dir` (streamed in 1 MiB blocks to a temporary name,
    then renamed). A file already in the cache is reused only if its size matches the
    object's. With `digests` ({url: "sha256:<hex>"}, e.g. from span resolution) reused
    and downloaded files must also have that digest, so the engine reads exactly the
    bytes that were fingerprinted; a mismatch is a SourceError.
    """
    from examplegen.digest import file_digest

    digests = digests or {}
    local: dict[str, str] = {}
    for path in paths:
        if path in local:
            continue
        if not is_remote(path):
            local[path] = _resolve(path)[1]
            continue
        target = os.path.join(cache_dir, _cache_name(path))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        expected_size = size(path)
        expected_digest = digests.get(path)
        if (
            os.path.isfile(target)
            and os.path.getsize(target) == expected_size
            and (expected_digest is None or file_digest(target) == expected_digest)
        ):
            local[path] = target
            continue
        _download(path, target, expected_size, expected_digest)
        local[path] = target
    return local


def _cache_name(url: str) -> str:
    """A unique relative path for `url` that ends with its folder's name and its base name
    (``<hash>/<folder>/<name>``), so what reads names from paths (labels from folders,
    file names, extensions) sees the same names as for local files."""
    folder, _, base = url.rstrip("/").rpartition("/")
    names = [_cache_part(posixpath.basename(folder)), _cache_part(base)]
    return os.path.join(hashlib.sha256(url.encode("utf-8")).hexdigest()[:20], *names)


def _cache_part(name: str) -> str:
    """A path component as it is when the local file system can hold it, else made safe."""
    if name in ("", ".", "..") or len(name.encode("utf-8")) > 200 or "\0" in name:
        return re.sub(r"[^A-Za-z0-9._-]", "_", name)[-80:].strip(".") or "_"
    return name


class _HashingWriter:
    """Writes to a local file, hashing and counting the bytes."""

    def __init__(self, out: BinaryIO, url: str, path: str):
        self.sha = hashlib.sha256()
        self.written = 0
        self._out, self._url, self._path = out, url, path

    def write(self, block: bytes) -> int:
        self.sha.update(block)
        try:
            self._out.write(block)
        except OSError as exc:
            raise SourceError(
                f"{self._url}: cannot write the local copy {self._path}: {exc.strerror or exc}"
            ) from exc
        self.written += len(block)
        return len(block)


def _download(url: str, target: str, expected_size: int, expected_digest: Optional[str]) -> None:
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".download-", suffix=".part")
    try:
        with os.fdopen(fd, "wb", buffering=BLOCK_SIZE) as out:
            writer = _HashingWriter(out, url, temp)
            stream_to(url, writer)
        written, sha = writer.written, writer.sha
        if written != expected_size:
            raise SourceError(
                f"{url}: downloaded {written} bytes but the object has {expected_size}; "
                "it changed during the download"
            )
        if expected_digest is not None and "sha256:" + sha.hexdigest() != expected_digest:
            raise SourceError(
                f"{url}: the object changed after its digest was taken "
                f"(expected {expected_digest}); run again"
            )
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise


# ---------------------------------------------------------------- writing (pyarrow.fs)


@functools.lru_cache(maxsize=16)
def _arrow_fs(name: str, endpoint: str, region: str = ""):
    """Arrow's file system for a scheme, endpoint setting ("" = the real service) and, for
    S3, region (see _s3_region)."""
    import pyarrow.fs as pafs

    if name == "gs":
        if endpoint:  # an emulator: STORAGE_EMULATOR_HOST=http://host:port
            emulated = endpoint.split("://", 1)
            return pafs.GcsFileSystem(
                endpoint_override=emulated[-1].rstrip("/"),
                scheme=emulated[0] if len(emulated) == 2 else "http",
                anonymous=True,
            )
        return pafs.GcsFileSystem()  # Application Default Credentials
    if name == "s3":
        return pafs.S3FileSystem(endpoint_override=endpoint or None, region=region or None)
    raise ConfigError(f"writing to {name}:// is not supported (only local paths, gs:// and s3://)")


_S3_REGIONS: dict[tuple[str, str], str] = {}  # (endpoint, bucket) -> the bucket's region, once found


def _s3_region(endpoint: str, bucket: str) -> str:
    """The region of an S3 bucket, for Arrow's S3 client (which, unlike boto3, does not
    follow a request to a bucket of another region): the ``x-amz-bucket-region`` of a
    HeadBucket made with boto3 (the same credentials and endpoint; AWS sends the header
    with a redirect or an access-denied answer too), as pyarrow.fs.resolve_s3_region does
    on AWS itself. Where the store names none (an unreachable service, a missing bucket):
    $AWS_REGION, else $AWS_DEFAULT_REGION, else "" (Arrow's default, us-east-1)."""
    cached = _S3_REGIONS.get((endpoint, bucket))
    if cached:
        return cached
    region = ""
    try:
        head = _s3_client(endpoint).head_bucket(Bucket=bucket)
        region = head.get("BucketRegion") or head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region", "")
    except ExampleGenError:  # a malformed endpoint setting
        raise
    except Exception as exc:  # the header may come with an error answer; else Arrow's own call reports the error
        response = getattr(exc, "response", None) or {}
        region = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region", "")
    if region:
        _S3_REGIONS[(endpoint, bucket)] = region
        return region
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""


def _arrow(url: str):
    """(pyarrow file system, its "bucket/key" path) for a gs:// or s3:// URL."""
    name = scheme(url)
    if name not in ("gs", "s3"):
        raise ConfigError(f"{url}: writing is supported to local paths, gs:// and s3:// only")
    backend = _BACKENDS[name]
    endpoint = os.environ.get("STORAGE_EMULATOR_HOST", "") if name == "gs" else backend._endpoint()
    bucket, key = backend._split(url)
    region = _s3_region(endpoint, bucket) if name == "s3" else ""
    return _arrow_fs(name, endpoint, region), f"{bucket}/{key}" if key else bucket


@contextlib.contextmanager
def _writing(url: str):
    """Arrow's errors (OSError with the service's message) as an OutputError naming `url`."""
    from examplegen.errors import OutputError

    try:
        yield
    except ExampleGenError:
        raise
    except (OSError, ValueError) as exc:
        raise OutputError(f"{url}: cannot write: {_limit(exc)}") from exc


def open_write(path: str) -> BinaryIO:
    """A new file (an object, streamed in parts) for writing bytes; it replaces any file
    of that name when closed. Local parent folders must exist."""
    if not is_remote(path):
        return open(_resolve(path)[1], "wb")
    arrow, key = _arrow(path)
    with _writing(path):
        return arrow.open_output_stream(key, compression=None, metadata={})  # bytes as given, even for .gz


def listdir(path: str) -> list[str]:
    """Names of the files directly in the folder (or under the prefix + '/') `path`, sorted;
    [] when there is none."""
    if not is_remote(path):
        local = _resolve(path)[1]
        return sorted(n for n in os.listdir(local) if os.path.isfile(os.path.join(local, n))) \
            if os.path.isdir(local) else []
    import pyarrow.fs as pafs

    arrow, key = _arrow(path)
    with _writing(path):
        infos = arrow.get_file_info(pafs.FileSelector(key, allow_not_found=True))
    return sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.File)


def move(source: str, target: str) -> None:
    """Renames a file (on an object store: a copy, then a delete)."""
    if not is_remote(source):
        os.replace(_resolve(source)[1], _resolve(target)[1])
        return
    arrow, source_key = _arrow(source)
    with _writing(target):
        arrow.move(source_key, _arrow(target)[1])


def remove(path: str) -> None:
    """Deletes a file; nothing when there is none."""
    if not is_remote(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(_resolve(path)[1])
        return
    arrow, key = _arrow(path)
    if is_file(path):
        with _writing(path):
            arrow.delete_file(key)


def remove_tree(path: str, last: str = "") -> None:
    """Deletes a folder (every object under the prefix + '/') and all in it; nothing when
    there is none. ``last``: the name of a file directly in it to delete after all others
    (a staging prefix's owner.json)."""
    if not is_remote(path):
        import shutil

        shutil.rmtree(_resolve(path)[1], ignore_errors=True)
        return
    import pyarrow.fs as pafs

    arrow, key = _arrow(path)
    with _writing(path):
        infos = arrow.get_file_info(pafs.FileSelector(key, recursive=True, allow_not_found=True))
        final = f"{key.rstrip('/')}/{last}" if last else None
        for info in sorted(infos, key=lambda i: i.path == final):  # stable: ``last`` moves to the end
            if info.type == pafs.FileType.File:
                with contextlib.suppress(FileNotFoundError):
                    arrow.delete_file(info.path)
        with contextlib.suppress(OSError):
            if arrow.get_file_info(key).type == pafs.FileType.Directory:
                arrow.delete_dir(key)  # an S3 "directory" marker object, where one was made


def makedirs(path: str) -> None:
    """Creates a local folder and its parents; nothing on object stores (no folders there)."""
    if not is_remote(path):
        os.makedirs(_resolve(path)[1], exist_ok=True)


# ---------------------------------------------------------------- reading in place (workers)


def open_input(path: str) -> BinaryIO:
    """A seekable binary file for reading `path` where it is: local files are opened, remote
    objects are read with ranged GETs as the reader seeks (pyarrow.fs), never downloaded
    whole. Errors are SourceError naming the URL.

    Inside ``expect_digests`` a file with an expected digest is read through a hashing
    layer that checks its bytes when the reader reaches the end (see there)."""
    expected = _EXPECTED_DIGESTS.get().get(path)
    if not is_remote(path):
        local = _resolve(path)[1]
        if expected is None:
            return open(local, "rb")
        return io.BufferedReader(_DigestCheckingReader(open(local, "rb", buffering=0), path, expected), BLOCK_SIZE)
    arrow, key = _arrow(path)
    try:
        stream = arrow.open_input_file(key)
    except FileNotFoundError:
        raise SourceError(f"{path}: no such object") from None
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {_limit(exc)}") from exc
    if expected is None:
        return stream
    return io.BufferedReader(_DigestCheckingReader(stream, path, expected), NETWORK_BLOCK_SIZE)


# {path as the worker opens it: "sha256:<hex>"} of the work unit running in this thread
_EXPECTED_DIGESTS: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "examplegen_expected_digests", default={})


@contextlib.contextmanager
def expect_digests(digests: Mapping[str, str]) -> Iterator[None]:
    """For the ``with`` block (in this thread): ``open_input`` of a path in ``digests``
    ({path: "sha256:<hex>"}, the digests taken when the span was resolved) hashes the
    bytes as they are read, and when the reader reaches the end of the file having read
    it from its first byte without gaps, compares the digest: a difference is a
    SourceError naming the file ("changed since it was resolved"). A reader that reads
    part of a file (a byte range, Parquet row groups) or skips ahead is not checked and
    stops hashing at the first gap; seeking back over bytes already hashed is fine."""
    token = _EXPECTED_DIGESTS.set(dict(digests))
    try:
        yield
    finally:
        _EXPECTED_DIGESTS.reset(token)


class _DigestCheckingReader(io.RawIOBase):
    """A raw stream over a file that hashes the bytes read from offset 0 on, in order, and
    checks the digest when a read at the end of the hashed bytes finds the end of the file."""

    def __init__(self, stream, path: str, expected: str):
        self._stream, self._path, self._expected = stream, path, expected
        self._sha = hashlib.sha256()
        self._pos = 0  # where the next read starts
        self._hashed = 0  # bytes [0, _hashed) are in the hash
        self._gap = False  # a read started beyond _hashed: the file cannot be checked
        self.verified = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._stream.seek(offset, whence)
        if self._pos is None:  # a stream whose seek returns nothing
            self._pos = self._stream.tell()
        return self._pos

    def readinto(self, buffer) -> int:
        n = self._stream.readinto(buffer)
        start, self._pos = self._pos, self._pos + n
        if self._gap or self.verified:
            return n
        if start > self._hashed:
            self._gap = True
        elif self._pos > self._hashed:
            with memoryview(buffer) as view:
                self._sha.update(view[self._hashed - start:n])
            self._hashed = self._pos
        elif n == 0 and len(buffer) and start == self._hashed:
            self._check()
        return n

    def readall(self) -> bytes:
        out = bytearray()
        while block := self.read(BLOCK_SIZE):
            out += block
        return bytes(out)

    def _check(self) -> None:
        self.verified = True
        digest = "sha256:" + self._sha.hexdigest()
        if digest != self._expected:
            raise SourceError(
                f"{self._path}: the file changed since it was resolved (its bytes now have "
                f"{digest}, {self._expected} when the span was resolved); nothing was committed, run again")

    def close(self) -> None:
        if not self.closed:
            try:
                self._stream.close()
            finally:
                super().close()


def open_gzip(path: str, gzip_file=None) -> BinaryIO:
    """The decompressed bytes of the gzip file `path` (local or remote, see open_input:
    inside ``expect_digests`` the compressed bytes are checked);
    `gzip_file`: the GzipFile class to use (default isal's, the fastest)."""
    if gzip_file is None:
        from isal.igzip import IGzipFile as gzip_file
    raw = open_input(path)

    class _Owning(gzip_file):  # closes the file it reads, as gzip.open(path) does
        def close(self) -> None:
            try:
                super().close()
            finally:
                raw.close()

    return _Owning(fileobj=raw, mode="rb")


def version(path: str) -> Optional[str]:
    """What changes whenever a remote object is replaced (GCS: its generation; S3: its
    ETag); None for local files. Errors as in size()."""
    if not is_remote(path):
        return None
    backend, url = _resolve(path)
    return backend.version(url)
