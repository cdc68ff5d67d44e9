"""The launcher's check of the work units' output before it commits (both engines).

Every work unit reports what it did (examplegen.convert.ChunkResult): rows read, rows
written per output split, rows rejected, and each part file it wrote with its record
count. Before the writer commits, ``check_units`` proves that

- every planned unit completed, and no unit that was not planned did;
- a unit that completed more than once (a retried or duplicated Beam element) reported the
  same thing every time, and counts once;
- rows read = rows written + rows rejected, for every unit (the unit counts the rows its
  source yields apart from the records its part files receive, so a record lost between
  reading and writing shows here), and a unit that rejected rows under
  ``bad_rows="skip"`` wrote its quarantine part (and only then);
- the part files hold exactly the records the units reported: each unit reports the
  records, size and SHA-256 of every part file as it wrote them, and the launcher finds
  every part file with that size and SHA-256 (so a missing, truncated, replaced or
  half-written part fails the run); the staging folder holds no part file that no unit
  reported.

Why digests rather than counting the records again: a walk over the frames of every part
file (decompress, read every frame header) cost the launcher about 1 s of a 3 s Parquet
run of 1M rows, alone after the workers had finished; hashing the same files costs about
0.03 s, and a file with the bytes its unit wrote holds the records its unit counted.

Any difference is a VerificationError naming the unit and its input, so a run whose
engine lost, repeated or mangled work fails instead of committing wrong counts.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

from examplegen import fs
from examplegen.convert import ChunkResult, UnitTask
from examplegen.errors import VerificationError

UnitId = tuple[int, int]  # (input split, chunk): a unit's place in the plan
_PART_FILE = re.compile(r"(\d{3})-\d{7}-\d{4}-\d{5}\.gz")  # examplegen.writer.part_file_name


def unit_id(unit: UnitTask | ChunkResult) -> UnitId:
    return unit.input_split, unit.chunk


def describe(task: UnitTask) -> str:
    """A unit in words, for messages: its place in the plan and its input."""
    return f"work unit {task.chunk} of input split {task.input_split} ({task.unit.where(0)}, {task.size:,} bytes)"


def _reported(result: ChunkResult) -> tuple:
    return (result.rows, tuple(result.counts), result.rejected, tuple(sorted(result.parts.items())),
            tuple(sorted(result.digests.items())))


def check_units(tasks: Sequence[UnitTask], results: Sequence[ChunkResult], parts_dir: str) -> list[ChunkResult]:
    """The results of ``tasks`` (one per task, in task order) once they are verified (see
    the module doc); a VerificationError otherwise. ``results`` may hold a unit's result
    more than once (retries) and in any order."""
    by_id: dict[UnitId, list[ChunkResult]] = {}
    for result in results:
        by_id.setdefault(unit_id(result), []).append(result)
    planned = {unit_id(task): task for task in tasks}
    unplanned = sorted(set(by_id) - set(planned))
    if unplanned:
        raise VerificationError(f"results came back for work units that were not planned: {unplanned} "
                                "(input split, chunk); nothing was committed")
    verified = []
    for task in tasks:
        reports = by_id.get(unit_id(task))
        if not reports:
            raise VerificationError(f"{describe(task)} never completed; nothing was committed")
        result = reports[0]
        if any(_reported(other) != _reported(result) for other in reports[1:]):
            raise VerificationError(f"{describe(task)} completed {len(reports)} times with different results "
                                    f"({[_reported(r)[:3] for r in reports]}: rows, written per split, "
                                    "rejected); nothing was committed")
        _check_unit(task, result, parts_dir)
        verified.append(result)
    _check_no_strays(planned, verified, parts_dir)
    return verified


def _check_unit(task: UnitTask, result: ChunkResult, parts_dir: str) -> None:
    written = sum(result.counts)
    if result.rows != written + result.rejected:
        raise VerificationError(f"{describe(task)} read {result.rows:,} rows but wrote {written:,} and rejected "
                                f"{result.rejected:,}; nothing was committed")
    per_split = [0] * len(result.counts)
    if set(result.digests) != set(result.parts):
        raise VerificationError(f"{describe(task)} reported part files {sorted(result.parts)} but digests of "
                                f"{sorted(result.digests)}; nothing was committed")
    for name, reported in sorted(result.parts.items()):
        _check_part(task, fs.join(parts_dir, name), reported, *result.digests[name])
        split = int(name.split("-")[2])
        if split not in task.out_index:
            raise VerificationError(f"{describe(task)} wrote part file {name} for output split {split}, which "
                                    "its input split does not feed; nothing was committed")
        per_split[task.out_index.index(split)] += reported
    if task.bad_rows.skip and bool(result.rejected) != bool(result.quarantine):
        raise VerificationError(f"{describe(task)} rejected {result.rejected:,} rows but listed "
                                f"{'a' if result.quarantine else 'no'} quarantine part; nothing was committed")
    if result.quarantine and not fs.is_file(fs.join(task.quarantine_dir, result.quarantine)):
        raise VerificationError(f"{describe(task)} wrote quarantine part {result.quarantine}, which is missing "
                                f"from {task.quarantine_dir}; nothing was committed")
    if per_split != list(result.counts):
        raise VerificationError(f"{describe(task)} reported {list(result.counts)} rows written per output split, "
                                f"its part files hold {per_split}; nothing was committed")


def _check_part(task: UnitTask, path: str, records: int, size: int, sha256: str) -> None:
    """The part file at ``path`` is the one the unit wrote: its size and SHA-256."""
    name = path.rsplit("/", 1)[-1]
    if not fs.is_file(path):
        raise VerificationError(f"{describe(task)} wrote part file {name} ({records:,} records), which is "
                                f"missing from {path[:-len(name) - 1]}; nothing was committed")
    found_size, found = 0, hashlib.sha256()
    with fs.open_read(path) as f:
        while block := f.read(1 << 20):
            found_size += len(block)
            found.update(block)
    if (found_size, found.hexdigest()) != (size, sha256):
        change = f"{found_size:,} bytes instead of {size:,}" if found_size != size else "other bytes of the same size"
        raise VerificationError(f"{describe(task)} wrote part file {name} ({records:,} records, {size:,} bytes, "
                                f"SHA-256 {sha256[:12]}…), the file now holds {change}; nothing was committed")


def _check_no_strays(planned: dict[UnitId, UnitTask], results: list[ChunkResult], parts_dir: str) -> None:
    """No part file of these input splits that no verified result lists (it would be committed)."""
    listed = {name for result in results for name in result.parts}
    input_splits = {input_split for input_split, _ in planned}
    for name in fs.listdir(parts_dir):
        match = _PART_FILE.fullmatch(name)
        if match and int(match.group(1)) in input_splits and name not in listed:
            raise VerificationError(f"part file {name} in {parts_dir} was written by no work unit of this run "
                                    "(input split, chunk, output split, shard); nothing was committed")
