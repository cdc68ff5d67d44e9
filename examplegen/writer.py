"""The Examples artifact on disk, written atomically.

Layout (TFX's)::

    <output>/Split-<name>/data_tfrecord-SSSSS-of-NNNNN.gz   gzip TFRecords
    <output>/examples_metadata.json                         written last

A split gets ``num_shards`` files, or fewer when it has fewer examples than that (no empty
shard files, except one for an empty split).

Workers write gzip members into part files under a hidden staging directory
(``<output>/.staging-<id>/``); ``commit`` concatenates each shard's parts in input order
(a gzip file may hold several members; every TFRecord reader accepts that), then swaps the
new splits in and writes ``examples_metadata.json`` last. An artifact is complete exactly
when that file exists: a run that dies earlier leaves no metadata file (an earlier
artifact's is removed before anything is replaced), and the next run into the same output
clears the leftovers and succeeds.

The metadata file lists every data file (``files``: relative path, size, SHA-256, hashed
while the shards are assembled) and ``files_digest``, the SHA-256 of that list, which is
also recorded on the Examples artifact in ML Metadata. ``verify_files`` checks an
artifact against them before it is reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from typing import Iterable, Optional

from examplegen.liveness import ALIVE, staging_state, write_owner
from examplegen.tfrecord import gzip_member

METADATA_FILE = "examples_metadata.json"
FILE_PREFIX = "data_tfrecord"
STAGING_PREFIX = ".staging-"
SPLIT_PREFIX = "Split-"
_EMPTY_GZIP = gzip_member(b"")


def shard_file_name(shard: int, num_shards: int) -> str:
    return f"{FILE_PREFIX}-{shard:05d}-of-{num_shards:05d}.gz"


def part_file_name(input_split: int, chunk: int, split: int, shard: int) -> str:
    """Name of the part file a worker writes for one chunk and one (split, shard)."""
    return f"{input_split:03d}-{chunk:07d}-{split:04d}-{shard:05d}.gz"


def split_dir(output_uri: str, split: str) -> str:
    return os.path.join(output_uri, f"{SPLIT_PREFIX}{split}")


def is_complete(output_uri: str) -> bool:
    return os.path.isfile(os.path.join(output_uri, METADATA_FILE))


def read_metadata(output_uri: str) -> dict:
    with open(os.path.join(output_uri, METADATA_FILE)) as f:
        return json.load(f)


def files_digest(files: list[dict]) -> str:
    """"sha256:<hex>" of a file list (the ``files`` of examples_metadata.json)."""
    canonical = json.dumps(sorted(files, key=lambda f: f["path"]), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _hash_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_files(output_uri: str, expected_digest: Optional[str] = None) -> Optional[str]:
    """None if the artifact at ``output_uri`` holds exactly the files its metadata lists
    (same sizes and SHA-256) and, when given, that list's digest is ``expected_digest``
    (as recorded in ML Metadata); else what is wrong, naming the file."""
    marker = os.path.join(output_uri, METADATA_FILE)
    if expected_digest is None and not os.path.exists(marker):
        return None  # not written by this engine: nothing recorded to compare with
    try:
        metadata = read_metadata(output_uri)
    except (OSError, ValueError) as exc:
        return f"cannot read {marker}: {exc}"
    files = metadata.get("files")
    if files is None:  # written before file lists were recorded: nothing to compare
        return None if expected_digest is None else f"{marker} lists no files"
    if expected_digest is not None and files_digest(files) != expected_digest:
        return f"{marker} does not list the files recorded in ML Metadata for this artifact"
    listed = {f["path"] for f in files}
    for name in sorted(os.listdir(output_uri)):
        if name.startswith(SPLIT_PREFIX) and os.path.isdir(os.path.join(output_uri, name)):
            for child in sorted(os.listdir(os.path.join(output_uri, name))):
                if f"{name}/{child}" not in listed:
                    return f"{os.path.join(output_uri, name, child)} is not one of the artifact's files"
    for entry in files:
        path = os.path.join(output_uri, entry["path"])
        if not os.path.isfile(path):
            return f"{path} is missing"
        size = os.path.getsize(path)
        if size != entry["size"]:
            return f"{path} has {size:,} bytes, {entry['size']:,} were written"
        if _hash_file(path) != entry["sha256"]:
            return f"{path} was modified (its SHA-256 differs from the one recorded at commit)"
    return None


class ExamplesWriter:
    """Stages part files for (chunk, split, shard) and commits them as one artifact."""

    def __init__(self, output_uri: str, split_names: Iterable[str], num_shards: int):
        self.output_uri = os.path.abspath(output_uri)
        self.split_names = list(split_names)
        self.num_shards = num_shards
        self._created_output = not os.path.exists(self.output_uri)
        self.had_artifact = is_complete(self.output_uri)
        self.replacing = False  # set once commit starts to remove the earlier artifact
        os.makedirs(self.output_uri, exist_ok=True)
        self._clear_stale_staging()
        self.staging = os.path.join(self.output_uri, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
        self.parts_dir = os.path.join(self.staging, "parts")
        os.makedirs(self.parts_dir)
        write_owner(self.staging)  # who is writing here (examplegen.liveness)
        self.files: Optional[list[dict]] = None  # set by _assemble: path, size, sha256

    def _clear_stale_staging(self) -> None:
        """Removes the staging folders of runs that died or whose owner cannot be told;
        a live process's folder is left alone."""
        for name in os.listdir(self.output_uri):
            path = os.path.join(self.output_uri, name)
            if name.startswith(STAGING_PREFIX) and staging_state(path) != ALIVE:
                shutil.rmtree(path, ignore_errors=True)

    def discard_parts(self, input_split: int) -> None:
        """Drops what was written for one input split (to convert it again)."""
        prefix = f"{input_split:03d}-"
        for name in os.listdir(self.parts_dir):
            if name.startswith(prefix):
                os.remove(os.path.join(self.parts_dir, name))

    def _assemble(self) -> None:
        """Concatenates part files into staged shard files, in (input split, chunk) order,
        hashing each shard as it is written."""
        by_shard: dict[tuple[int, int], list[str]] = {}
        for name in sorted(os.listdir(self.parts_dir)):
            _, _, split, shard = name[:-3].split("-")
            by_shard.setdefault((int(split), int(shard)), []).append(name)
        self.files = []
        for s, split in enumerate(self.split_names):
            target_dir = os.path.join(self.staging, f"{SPLIT_PREFIX}{split}")
            os.makedirs(target_dir, exist_ok=True)
            shards = _shards_with_files(s, by_shard, self.num_shards)
            for number, shard in enumerate(shards):
                file_name = shard_file_name(number, len(shards))
                parts = by_shard.get((s, shard), [])
                blocks = _blocks([os.path.join(self.parts_dir, n) for n in parts]) if parts else [_EMPTY_GZIP]
                digest, size = hashlib.sha256(), 0
                with open(os.path.join(target_dir, file_name), "wb") as out:
                    for block in blocks:
                        out.write(block)
                        digest.update(block)
                        size += len(block)
                    out.flush()
                    os.fsync(out.fileno())
                self.files.append({"path": f"{SPLIT_PREFIX}{split}/{file_name}", "size": size,
                                   "sha256": digest.hexdigest()})
        shutil.rmtree(self.parts_dir)

    def commit(self, metadata: dict) -> None:
        """Makes the staged splits the artifact's content; metadata file last."""
        self._assemble()
        if self.files is not None:
            metadata = {**metadata, "files": self.files, "files_digest": files_digest(self.files)}
        marker = os.path.join(self.output_uri, METADATA_FILE)
        self.replacing = True
        if os.path.exists(marker):
            os.remove(marker)  # from here on the old artifact no longer looks complete
        for name in os.listdir(self.output_uri):
            path = os.path.join(self.output_uri, name)
            if name.startswith(SPLIT_PREFIX) and os.path.isdir(path):
                shutil.rmtree(path)
        for split in self.split_names:
            _move_dir(os.path.join(self.staging, f"{SPLIT_PREFIX}{split}"), split_dir(self.output_uri, split))
        tmp = os.path.join(self.staging, METADATA_FILE)
        with open(tmp, "w") as f:
            json.dump(metadata, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, marker)
        shutil.rmtree(self.staging, ignore_errors=True)
        _fsync_dir(self.output_uri)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._created_output:  # leave no empty output directory behind
            try:
                os.rmdir(self.output_uri)
            except OSError:
                pass


def _shards_with_files(split: int, by_shard: dict, num_shards: int) -> list[int]:
    """The shards of one split that become files: all of them, except that shards no example
    went to (a split with fewer examples than shards) get none -- the files are numbered
    over the others -- and an empty split gets one empty file. Never more files than examples."""
    filled = sorted(shard for s, shard in by_shard if s == split)
    return list(range(num_shards)) if len(filled) == num_shards else filled or [0]


def _blocks(paths: list[str], size: int = 1 << 20):
    """The bytes of the files at ``paths``, in order, in blocks of ``size``."""
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(size):
                yield block


def _move_dir(source: str, target: str) -> None:
    """Renames a directory; where the file system refuses directory renames (Cloud Storage
    FUSE mounts such as Vertex AI's /gcs/ do by default), moves its files one by one."""
    try:
        os.rename(source, target)
        return
    except OSError:
        if os.path.exists(target) and os.listdir(target):
            raise
    os.makedirs(target, exist_ok=True)
    for name in sorted(os.listdir(source)):
        shutil.move(os.path.join(source, name), os.path.join(target, name))
    os.rmdir(source)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
