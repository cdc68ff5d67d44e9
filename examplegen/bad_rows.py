"""The bad-row policy: what happens to a row (or record) that cannot become an example.

- ``fail`` (the default, TFX's behaviour): the first bad row fails the run with an error
  naming the file and line (CSV) or record (TFRecord).
- ``skip``: bad rows are left out of the splits and written to the artifact's quarantine
  file, ``<output>/Quarantine/bad_rows.jsonl.gz``: gzip JSON Lines, one object per row::

      {"file": "/in/data.csv", "line": 7, "reason": "expected 3 fields, got 2: '7,8'",
       "raw_base64": "Nyw4Cg=="}

  The position and ``raw_base64`` by source: CSV, JSON Lines, text lines: ``"line"`` (1-based)
  and the line's bytes exactly as in the file (decompressed), line break included;
  TFRecord: ``"record"`` (0-based) and the record's payload; Avro: ``"record"`` (0-based
  in its file) and Parquet: ``"row"`` (0-based in its file), with the row as JSON text
  (base.row_json: the values as read, which these binary formats have no text of); images:
  no position (the file is the row) and the file's bytes; text files (``unit="file"``):
  ``"line"`` of the first invalid text and the file's bytes. ``max_bad_rows`` /
  ``max_bad_ratio`` bound the skipped rows: exceeding either fails the run and nothing is
  committed.

A source that takes a ``rejects`` argument in ``read`` (see examplegen.sources) reports
each row-level problem to its work unit's ``RowRejects`` (made by the engine, which gives it
the unit's quarantine part file) as
``rejects.reject(path, "line" or "record", index, reason, raw_bytes)``, drops the row,
calls ``rejects.locate(fn)`` before yielding a batch (``fn(i)`` -> (file, "line" or
"record", index, raw bytes) of the batch's row i, so that the engine can reject rows too:
no value in the split feature) and ``rejects.flush()`` after each block of rows; the
engine adds up the units' counts in a ``RejectTally`` that applies the limits. Framing errors
(a bad TFRecord CRC or length, a truncated or corrupt gzip file, a corrupt Avro block, an
unreadable Parquet file) are not row-level and always fail: after a bad length the record
boundaries are unknown.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import numbers
from typing import Callable, Iterable, Optional

import numpy as np

from examplegen.errors import ConfigError, SourceError

MODES = ("fail", "skip")
QUARANTINE_DIR = "Quarantine"
QUARANTINE_FILE = "bad_rows.jsonl.gz"
QUARANTINE_PATH = f"{QUARANTINE_DIR}/{QUARANTINE_FILE}"  # relative to the artifact
FIRST_REASONS = 5  # reasons kept for error messages and reports


class TooManyBadRows(SourceError):
    """More rows were rejected than max_bad_rows / max_bad_ratio allow."""


@dataclasses.dataclass(frozen=True)
class BadRowPolicy:
    """What to do with bad rows (picklable: work units carry it to the workers)."""

    mode: str = "fail"
    max_rows: Optional[int] = None  # most rows that may be skipped; None: no limit
    max_ratio: Optional[float] = None  # most rejected / read; None: no limit

    @classmethod
    def create(cls, bad_rows: Optional[str] = "fail", max_bad_rows: Optional[int] = None,
               max_bad_ratio: Optional[float] = None) -> "BadRowPolicy":
        """The policy from the user's options, each checked with a message naming it."""
        mode = (bad_rows or "fail").strip().lower() if isinstance(bad_rows, str) else bad_rows
        if mode not in MODES:
            raise ConfigError(f"bad_rows (--bad-rows) {bad_rows!r} is unknown; use fail or skip")
        if max_bad_rows is not None and (isinstance(max_bad_rows, bool)
                                         or not isinstance(max_bad_rows, numbers.Integral)
                                         or max_bad_rows < 0):
            raise ConfigError(f"max_bad_rows (--max-bad-rows) must be a whole number >= 0, got {max_bad_rows!r}")
        if max_bad_ratio is not None and (isinstance(max_bad_ratio, bool)
                                          or not isinstance(max_bad_ratio, numbers.Real)
                                          or math.isnan(max_bad_ratio) or not 0 <= max_bad_ratio <= 1):
            raise ConfigError(f"max_bad_ratio (--max-bad-ratio) must be a number from 0 to 1, got {max_bad_ratio!r}")
        if mode == "fail" and (max_bad_rows is not None or max_bad_ratio is not None):
            raise ConfigError("max_bad_rows (--max-bad-rows) and max_bad_ratio (--max-bad-ratio) apply with "
                              "bad_rows='skip' (--bad-rows skip) only; with 'fail' the first bad row fails the run")
        return cls(mode, None if max_bad_rows is None else int(max_bad_rows),
                   None if max_bad_ratio is None else float(max_bad_ratio))

    @property
    def skip(self) -> bool:
        return self.mode == "skip"

    def to_dict(self) -> dict:
        return {"mode": self.mode, "max_bad_rows": self.max_rows, "max_bad_ratio": self.max_ratio}


class RowRejects:
    """The bad rows of one work unit. Under ``fail`` the first one raises SourceError;
    under ``skip`` each is counted and, when ``path`` is given, written there as one line
    of the quarantine. Lines are held until ``flush`` (the source calls it after each
    block of rows) and written in row order as one gzip member; the writer concatenates
    the units' files in input order."""

    def __init__(self, policy: BadRowPolicy, path: Optional[str] = None,
                 file_names: Optional[dict[str, str]] = None):
        self.policy = policy
        self.path = path
        self.file_names = file_names or {}  # file -> the name to report it under (e.g. its URI)
        self.count = 0
        self.reasons: list[str] = []
        self._pending: list[tuple[int, bytes]] = []
        self._file = None
        self.wrote = False  # whether the quarantine part file was written
        self._locate: Optional[Callable[[int], tuple[str, str, int, bytes]]] = None

    def locate(self, fn: Optional[Callable[[int], tuple[str, str, int, bytes]]]) -> None:
        """Where the rows of the batch the source yields next come from (see the module doc)."""
        self._locate = fn

    @property
    def located(self) -> bool:
        return self._locate is not None

    def where(self, row: int) -> str:
        """``"<file>: line N"`` (record N, row N; or ``"<file>"`` when the file is the row)
        of the current batch's row (needs ``locate``)."""
        file, position, index, _ = self._locate(row)
        file = self.file_names.get(file, file)
        return file if position is None else f"{file}: {position} {index}"

    def narrow(self, keep: np.ndarray) -> None:
        """The current batch keeps only the rows where ``keep`` is True (the engine left
        rejected rows out): row i is then the i-th kept row (needs ``locate``)."""
        located, kept = self._locate, np.flatnonzero(keep)
        self._locate = lambda i: located(int(kept[i]))

    def reject_rows(self, problems: Iterable[tuple[int, str]]) -> None:
        """Rejects rows of the current batch: (row, reason) pairs (needs ``locate``)."""
        for row, reason in problems:
            file, position, index, raw = self._locate(int(row))
            self.reject(file, position, index, reason, raw)

    def reject(self, file: str, position: Optional[str], index: int, reason: str, raw: bytes) -> None:
        """Row ``index`` (``position`` "line", "record" or "row") of ``file`` is bad for
        ``reason``. ``position`` None: the whole file is the row (an image); ``index`` then
        only orders the unit's entries and is not written."""
        file = self.file_names.get(file, file)
        message = f"{file}: {reason}" if position is None else f"{file}: {position} {index}: {reason}"
        if not self.policy.skip:
            raise SourceError(message)
        self.count += 1
        if len(self.reasons) < FIRST_REASONS:
            self.reasons.append(message)
        if self.path is None:
            return
        entry = {"file": file} if position is None else {"file": file, position: int(index)}
        entry.update(reason=reason, raw_base64=base64.b64encode(raw).decode("ascii"))
        line = json.dumps(entry).encode() + b"\n"
        self._pending.append((int(index), line))

    def flush(self) -> None:
        """Writes the rows rejected since the last flush, in row order."""
        if not self._pending:
            return
        from examplegen import fs
        from examplegen.tfrecord import gzip_member

        if self._file is None:
            self._file = fs.open_write(self.path)
            self.wrote = True
        self._pending.sort(key=lambda entry: entry[0])
        self._file.write(gzip_member(b"".join(line for _, line in self._pending)))
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


def keep_mask(n: int, bad: Iterable[int]) -> np.ndarray:
    """Boolean mask over n rows: False at the ``bad`` indices."""
    mask = np.ones(n, dtype=bool)
    mask[np.fromiter(bad, dtype=np.int64)] = False
    return mask


class RejectTally:
    """Rows read and rejected over a run, by input split; fails the run when the policy's
    limits are exceeded.

    The launcher adds each verified work unit (``add``, which checks max_bad_rows at once);
    ``restart(split)`` forgets an input split that is converted again (its rows are
    rejected again in the next pass); ``finish`` checks max_bad_ratio once every row is
    counted."""

    def __init__(self, policy: BadRowPolicy):
        self.policy = policy
        self._splits: dict[int, list] = {}  # input split -> [rows, rejected, reasons]

    @property
    def rows(self) -> int:
        return sum(entry[0] for entry in self._splits.values())

    @property
    def rejected(self) -> int:
        return sum(entry[1] for entry in self._splits.values())

    @property
    def reasons(self) -> list[str]:
        return [reason for split in sorted(self._splits) for reason in self._splits[split][2]][:FIRST_REASONS]

    def add(self, split: int, rows: int, rejected: int, reasons: list[str]) -> None:
        entry = self._splits.setdefault(split, [0, 0, []])
        entry[0] += rows
        entry[1] += rejected
        entry[2].extend(reasons[: FIRST_REASONS - len(entry[2])])
        limit = self.policy.max_rows
        if limit is not None and self.rejected > limit:
            self._fail(f"max_bad_rows={limit}", so_far=True)

    def restart(self, split: int) -> None:
        self._splits.pop(split, None)

    def finish(self) -> None:
        limit = self.policy.max_ratio
        if limit is not None and self.rows and self.rejected / self.rows > limit:
            self._fail(f"max_bad_ratio={limit:g}", so_far=False)

    def _fail(self, limit: str, so_far: bool) -> None:
        share = f" ({100.0 * self.rejected / self.rows:.3g}%)" if self.rows else ""
        read = f"of the {self.rows:,} rows read so far" if so_far else f"of {self.rows:,} rows read"
        raise TooManyBadRows(
            f"too many bad rows: {self.rejected:,} {read}{share} were rejected, more than {limit} "
            f"allows; nothing was written. First reasons: " + "; ".join(self.reasons)
            + ". Fix the input, or raise the limit (max_bad_rows / max_bad_ratio).")
