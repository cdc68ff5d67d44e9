"""The Examples artifact on disk, written atomically.

Layout (TFX's)::

    <output>/Split-<name>/data_tfrecord-SSSSS-of-NNNNN.gz   gzip TFRecords
    <output>/Quarantine/bad_rows.jsonl.gz                   skipped bad rows (bad_rows="skip")
    <output>/examples_metadata.json                         written last

A split gets ``num_shards`` files, or fewer when it has fewer examples than that (no empty
shard files, except one for an empty split).

Workers write gzip members into part files under a hidden staging directory
(``<output>/.staging-<id>/``); ``commit`` concatenates each shard's parts in input order
(a gzip file may hold several members; every TFRecord reader accepts that) and the chunks'
quarantine parts into one file, then swaps the new splits and quarantine in and writes
``examples_metadata.json`` last. An artifact is complete exactly
when that file exists: a run that dies earlier leaves no metadata file (an earlier
artifact's is removed before anything is replaced), and the next run into the same output
clears the leftovers and succeeds.

On gs:// and s3:// (where a rename is a copy) workers write their part files under
``<output>/.staging-<id>/parts/`` too; ``commit`` removes the old metadata object and
Split-* objects, streams each shard's parts straight into its final object (the same bytes
as a local run), writes ``examples_metadata.json`` last and deletes the staging prefix. The
output-folder lock (examplegen.output_lock) does not apply there: one writer per output
prefix (see the README); a commit refuses to start when another run committed to the
prefix since this one started (the metadata object's generation or ETag changed). The
staging prefix's ``owner.json`` is its first object and its last removed; the launcher
rewrites it every minute (a heartbeat, examplegen.liveness.Heartbeat), and a later run
into the same output removes the staging prefixes of runs that are provably dead or whose
heartbeat stopped longer ago than the limit (examplegen.liveness.remote_staging_verdict);
a run whose own staging prefix was removed that way refuses to commit. Readers take an
artifact without metadata but with a staging prefix as incomplete (``is_interrupted``).

The metadata file lists every data file (``files``: relative path, size, SHA-256, hashed
while the shards are assembled) and ``files_digest``, the SHA-256 of that list, which is
also recorded on the Examples artifact in ML Metadata. ``verify_files`` checks an
artifact against them before it is reused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import shutil
import time
import uuid
from typing import Iterable, Optional

from examplegen import fs
from examplegen.bad_rows import QUARANTINE_DIR, QUARANTINE_FILE
from examplegen.errors import ExampleGenError, OutputError, VerificationError
from examplegen.liveness import (ALIVE, OWNER_FILE, Heartbeat, read_owner, remote_staging_verdict, stale_after,
                                 staging_state, write_owner)
from examplegen.tfrecord import gzip_member

log = logging.getLogger(__name__)

METADATA_FILE = "examples_metadata.json"
FILE_PREFIX = "data_tfrecord"
STAGING_PREFIX = ".staging-"
SPLIT_PREFIX = "Split-"
_QUARANTINE_PARTS = "quarantine-parts"
_EMPTY_GZIP = gzip_member(b"")


def shard_file_name(shard: int, num_shards: int) -> str:
    return f"{FILE_PREFIX}-{shard:05d}-of-{num_shards:05d}.gz"


def part_file_name(input_split: int, chunk: int, split: int, shard: int) -> str:
    """Name of the part file a worker writes for one chunk and one (split, shard)."""
    return f"{input_split:03d}-{chunk:07d}-{split:04d}-{shard:05d}.gz"


def quarantine_part_name(input_split: int, chunk: int) -> str:
    """Name of the file a worker writes one chunk's skipped bad rows to (examplegen.bad_rows)."""
    return f"{input_split:03d}-{chunk:07d}.jsonl.gz"


def split_dir(output_uri: str, split: str) -> str:
    return fs.join(output_uri, f"{SPLIT_PREFIX}{split}")


def is_complete(output_uri: str) -> bool:
    """Whether the artifact at ``output_uri`` (a local path, gs:// or s3://) was committed."""
    return fs.is_file(fs.join(output_uri, METADATA_FILE))


def is_interrupted(output_uri: str) -> bool:
    """Whether the artifact at ``output_uri`` is a commit that never finished: no metadata
    file, and a staging folder (prefix) of a run that wrote there."""
    return not is_complete(output_uri) and bool(fs.glob(fs.join(fs.escape_glob(output_uri), f"{STAGING_PREFIX}*")))


def incomplete_message(output_uri: str) -> str:
    return (f"examples artifact {output_uri!r} is incomplete: it has no {METADATA_FILE} and holds a staging "
            "folder (a run was interrupted); run the step that writes it again")


def read_metadata(output_uri: str) -> dict:
    with fs.open_read(fs.join(output_uri, METADATA_FILE)) as f:
        return json.load(f)


def files_digest(files: list[dict]) -> str:
    """"sha256:<hex>" of a file list (the ``files`` of examples_metadata.json)."""
    canonical = json.dumps(sorted(files, key=lambda f: f["path"]), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _hash_file(path: str) -> str:
    with fs.open_read(path) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_files(output_uri: str, expected_digest: Optional[str] = None) -> Optional[str]:
    """None if the artifact at ``output_uri`` holds exactly the files its metadata lists
    (same sizes and SHA-256) and, when given, that list's digest is ``expected_digest``
    (as recorded in ML Metadata); else what is wrong, naming the file."""
    marker = fs.join(output_uri, METADATA_FILE)
    if expected_digest is None and not fs.is_file(marker):
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
    for folder in split_folders(output_uri):
        name = fs.join(output_uri, folder)
        for child in sorted(fs.glob(fs.join(fs.escape_glob(name), "*"))):
            if f"{folder}/{child.rsplit('/', 1)[-1]}" not in listed:
                return f"{child} is not one of the artifact's files"
    for entry in files:
        path = fs.join(output_uri, entry["path"])
        if not fs.is_file(path):
            return f"{path} is missing"
        size = fs.size(path)
        if size != entry["size"]:
            return f"{path} has {size:,} bytes, {entry['size']:,} were written"
        if _hash_file(path) != entry["sha256"]:
            return f"{path} was modified (its SHA-256 differs from the one recorded at commit)"
    return None


def split_folders(output_uri: str) -> list[str]:
    """Names of the Split-* folders at ``output_uri`` (for object stores: prefixes)."""
    found = fs.glob(fs.join(fs.escape_glob(output_uri), f"{SPLIT_PREFIX}*"))
    return sorted(path.rstrip("/").rsplit("/", 1)[-1] for path in found
                  if fs.is_remote(path) or os.path.isdir(path))


class ExamplesWriter:
    """Stages part files for (chunk, split, shard) and commits them as one artifact."""

    def __init__(self, output_uri: str, split_names: Iterable[str], num_shards: int, quarantine: bool = False):
        self.remote = fs.is_remote(output_uri)
        self.output_uri = fs.absolute(output_uri)
        self.split_names = list(split_names)
        self.num_shards = num_shards
        self.quarantine = quarantine  # the artifact gets a Quarantine/ file (bad_rows="skip")
        self._created_output = not self.remote and not os.path.exists(self.output_uri)
        self.had_artifact = is_complete(self.output_uri)
        self.replacing = False  # set once commit starts to remove the earlier artifact
        self.staging = fs.join(self.output_uri, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
        self.parts_dir = fs.join(self.staging, "parts")
        # Remote: the metadata object's version now; a different one at commit means another
        # run committed here meanwhile, and this one refuses to overwrite it.
        self._marker_version = _marker_version(self.output_uri) if self.remote else None
        self._heartbeat: Optional[Heartbeat] = None
        if self.remote:
            limit = stale_after()
            self._clear_stale_remote_staging(limit)
            self._stale_after = limit
            # owner.json first: a staging prefix is never without one while its run lasts
            self._heartbeat = Heartbeat(fs.join(self.staging, OWNER_FILE))
            self._heartbeat.start()
        else:
            os.makedirs(self.output_uri, exist_ok=True)
            self._clear_stale_staging()
            os.makedirs(self.parts_dir)
            write_owner(self.staging)  # who is writing here (examplegen.liveness)
        self.files: Optional[list[dict]] = None  # set by _assemble: path, size, sha256
        # The part files (and quarantine parts) the commit assembles, when the engine has
        # verified them (expect_parts); otherwise whatever the parts folder lists.
        self.expected_parts: Optional[list[str]] = None
        self.expected_quarantine: Optional[list[str]] = None
        self.part_digests: dict = {}
        # where workers write the chunks' quarantine parts ("": no quarantine)
        self.quarantine_parts = fs.join(self.staging, _QUARANTINE_PARTS) if quarantine else ""
        if quarantine and not self.remote:
            os.makedirs(self.quarantine_parts)

    def _clear_stale_staging(self) -> None:
        """Removes the staging folders of runs that died or whose owner cannot be told;
        a live process's folder is left alone."""
        for name in os.listdir(self.output_uri):
            path = os.path.join(self.output_uri, name)
            if name.startswith(STAGING_PREFIX) and staging_state(path) != ALIVE:
                shutil.rmtree(path, ignore_errors=True)

    def _clear_stale_remote_staging(self, limit: float) -> None:
        """Removes the staging prefixes of runs that are over (remote_staging_verdict); a
        prefix whose owner is alive, whose heartbeat is fresh or that has no owner.json
        stays. A prefix that cannot be removed is a warning: this run goes on."""
        now = time.time()
        for path in fs.glob(fs.join(fs.escape_glob(self.output_uri), f"{STAGING_PREFIX}*")):
            path = path.rstrip("/")
            owner = read_owner(path)
            why = remote_staging_verdict(owner, now, limit)
            if why is None:
                if owner is None:
                    log.warning("%s has no %s (written by an older version?); it is left alone: delete it "
                                "once no run writes there", path, OWNER_FILE)
                continue
            log.warning("removing the staging prefix %s: %s", path, why)
            try:
                fs.remove_tree(path, last=OWNER_FILE)
            except ExampleGenError as exc:
                log.warning("could not remove the staging prefix %s: %s", path, exc)

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()

    def discard_parts(self, input_split: int) -> None:
        """Drops what was written for one input split (to convert it again)."""
        prefix = f"{input_split:03d}-"
        for folder in (self.parts_dir, self.quarantine_parts) if self.quarantine else (self.parts_dir,):
            for name in fs.listdir(folder):
                if name.startswith(prefix):
                    fs.remove(fs.join(folder, name))

    def expect_parts(self, parts: Iterable[str], quarantine: Iterable[str] = (),
                     digests: Optional[dict] = None) -> None:
        """The commit assembles exactly these part files (names in the parts folder) and
        quarantine parts: the ones the engine's unit check verified. A listing of the
        folder is not trusted for this (on an object store a listing taken while workers
        upload may miss an object; a missed part would be data silently left out).
        ``digests`` (part name -> (size, SHA-256 hex)): each part is hashed again as the
        commit copies it into its shard, so bytes read differently the second time fail
        the commit instead of landing in the artifact."""
        self.expected_parts = list(parts)
        self.expected_quarantine = list(quarantine)
        self.part_digests = dict(digests or {})

    def _assemble(self, into: Optional[str] = None) -> None:
        """Concatenates part files into shard files under ``into`` (default: the staging
        folder), in (input split, chunk) order, hashing each shard as it is written; the
        same for the quarantine parts."""
        by_shard: dict[tuple[int, int], list[str]] = {}
        names = sorted(self.expected_parts) if self.expected_parts is not None else fs.listdir(self.parts_dir)
        for name in names:
            _, _, split, shard = name[:-3].split("-")
            by_shard.setdefault((int(split), int(shard)), []).append(name)
        self.files = []
        for s, split in enumerate(self.split_names):
            target_dir = fs.join(into or self.staging, f"{SPLIT_PREFIX}{split}")
            fs.makedirs(target_dir)
            shards = _shards_with_files(s, by_shard, self.num_shards)
            for number, shard in enumerate(shards):
                file_name = shard_file_name(number, len(shards))
                parts = by_shard.get((s, shard), [])
                blocks = _blocks([fs.join(self.parts_dir, n) for n in parts], expected=self.part_digests) \
                    if parts else [_EMPTY_GZIP]
                self._write_file(into or self.staging, f"{SPLIT_PREFIX}{split}/{file_name}", blocks)
        if not self.remote:  # remote: the staging prefix stays until the metadata is written
            fs.remove_tree(self.parts_dir)
        if self.quarantine:
            fs.makedirs(fs.join(into or self.staging, QUARANTINE_DIR))
            names = self.expected_quarantine if self.expected_quarantine is not None \
                else fs.listdir(self.quarantine_parts)
            parts = [fs.join(self.quarantine_parts, n) for n in sorted(names)]
            # an empty gzip member first: an empty quarantine is still a valid gzip file
            self._write_file(into or self.staging, f"{QUARANTINE_DIR}/{QUARANTINE_FILE}",
                             itertools.chain([_EMPTY_GZIP], _blocks(parts)))
            if not self.remote:
                fs.remove_tree(self.quarantine_parts)

    def _write_file(self, root: str, path: str, blocks: Iterable[bytes]) -> None:
        """Writes ``blocks`` to the file ``path`` (relative to ``root``), synced, and lists it
        in ``files`` with its size and SHA-256."""
        digest, size = hashlib.sha256(), 0
        with fs.open_write(fs.join(root, path)) as out:
            for block in blocks:
                out.write(block)
                digest.update(block)
                size += len(block)
            if not self.remote:
                out.flush()
                os.fsync(out.fileno())
        self.files.append({"path": path, "size": size, "sha256": digest.hexdigest()})

    def _with_files(self, metadata: dict) -> dict:
        if self.files is None:
            return metadata
        return {**metadata, "files": self.files, "files_digest": files_digest(self.files)}

    def _commit_remote(self, metadata: dict) -> None:
        """The commit on an object store: no renames, the shards are assembled in place
        between removing the old metadata object and writing the new one."""
        if _marker_version(self.output_uri) != self._marker_version:
            raise OutputError(f"another run committed an Examples artifact to {self.output_uri} while this one "
                              "ran; nothing was committed (on gs:// and s3:// give each run its own output)")
        if not fs.is_file(fs.join(self.staging, OWNER_FILE)):
            raise OutputError(f"the staging prefix {self.staging} of this run was removed while it ran (by another "
                              f"run, when this run's heartbeat had stopped for over {self._stale_after:g} s, "
                              "or by hand); nothing was committed, run again")
        self.replacing = True
        fs.remove(fs.join(self.output_uri, METADATA_FILE))  # the old artifact is incomplete from here
        for name in split_folders(self.output_uri):
            fs.remove_tree(fs.join(self.output_uri, name))
        self._assemble(self.output_uri)
        text = json.dumps(self._with_files(metadata), indent=2, sort_keys=True) + "\n"
        with fs.open_write(fs.join(self.output_uri, METADATA_FILE)) as out:
            out.write(text.encode())
        self._stop_heartbeat()
        fs.remove_tree(self.staging, last=OWNER_FILE)

    def commit(self, metadata: dict) -> None:
        """Makes the staged splits the artifact's content; metadata file last."""
        if self.remote:
            self._commit_remote(metadata)
            return
        self._assemble()
        metadata = self._with_files(metadata)
        marker = os.path.join(self.output_uri, METADATA_FILE)
        self.replacing = True
        if os.path.exists(marker):
            os.remove(marker)  # from here on the old artifact no longer looks complete
        for name in os.listdir(self.output_uri):
            path = os.path.join(self.output_uri, name)
            if (name.startswith(SPLIT_PREFIX) or name == QUARANTINE_DIR) and os.path.isdir(path):
                shutil.rmtree(path)
        for split in self.split_names:
            _move_dir(os.path.join(self.staging, f"{SPLIT_PREFIX}{split}"), split_dir(self.output_uri, split))
        if os.path.isdir(os.path.join(self.staging, QUARANTINE_DIR)):
            _move_dir(os.path.join(self.staging, QUARANTINE_DIR), os.path.join(self.output_uri, QUARANTINE_DIR))
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
        if self.remote:
            self._stop_heartbeat()
            try:
                fs.remove_tree(self.staging, last=OWNER_FILE)
            except ExampleGenError as exc:  # the run's own error matters more
                log.warning("could not remove the staging objects %s: %s", self.staging, exc)
            return
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._created_output:  # leave no empty output directory behind
            try:
                os.rmdir(self.output_uri)
            except OSError:
                pass


def _marker_version(output_uri: str) -> Optional[str]:
    marker = fs.join(output_uri, METADATA_FILE)
    return fs.version(marker) if fs.is_file(marker) else None


def _shards_with_files(split: int, by_shard: dict, num_shards: int) -> list[int]:
    """The shards of one split that become files: all of them, except that shards no example
    went to (a split with fewer examples than shards) get none -- the files are numbered
    over the others -- and an empty split gets one empty file. Never more files than examples."""
    filled = sorted(shard for s, shard in by_shard if s == split)
    return list(range(num_shards)) if len(filled) == num_shards else filled or [0]


def _blocks(paths: list[str], size: int = 1 << 20, expected: Optional[dict] = None):
    """The bytes of the files at ``paths``, in order, in blocks of ``size``. A file whose
    name ``expected`` holds must have that (size, SHA-256 hex) once read to its end, or a
    VerificationError stops the commit before its metadata is written."""
    for path in paths:
        want = (expected or {}).get(path.rsplit("/", 1)[-1])
        digest, length = hashlib.sha256(), 0
        with fs.open_read(path) as f:
            while block := f.read(size):
                if want:
                    digest.update(block)
                    length += len(block)
                yield block
        if want and (length, digest.hexdigest()) != tuple(want):
            raise VerificationError(f"part file {path} holds {length:,} bytes with SHA-256 {digest.hexdigest()[:12]}… "
                                    f"as the commit reads it, not the {want[0]:,} bytes with SHA-256 {want[1][:12]}… "
                                    "the unit check verified; nothing was committed")


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
