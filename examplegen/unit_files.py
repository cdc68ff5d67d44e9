"""Work units run by another engine's workers, through files in the staging folder.

Engine-neutral: the Beam engine (examplegen.beam_engine) uses it, and an adapter for
another distributed engine (Spark, Ray, Dask) would need only to call ``convert_unit`` for
every index of a pass on its workers. One conversion pass lives in a folder of the
writer's staging folder (``<output>/.staging-<id>/<pass>/``):

``units.pkl``
    The planned units (examplegen.convert.UnitTask), written by the launcher
    (``write_units``), read once by each worker (``read_units``); the engine's own job
    description holds only their indices.
``attempts/<unit>.<attempt>/``
    Where one attempt at a unit writes its part files. Only an attempt that finished moves
    them to their deterministic names in the writer's parts folder (a retried or
    duplicated unit overwrites them with the same bytes, never adds to them); a killed
    attempt leaves only its own folder, which the commit never reads.
``results/<unit>.<attempt>.pkl``
    What a finished attempt reports (examplegen.convert.ChunkResult), written after its
    part files are in place. ``read_results`` returns every attempt's; the launcher
    deduplicates and verifies them (examplegen.unit_check) before the writer commits.
``errors/<unit>.pkl``
    The ExampleGenError a unit failed with (bad input); ``raise_unit_error`` raises it in
    the launcher, so the user sees the local engine's message, not the engine's wrapping.

Workers must see the staging folder and the input files at the launcher's paths.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pickle
import shutil
import socket
import uuid
from typing import Sequence

from examplegen.convert import ChunkResult, UnitTask, run_unit
from examplegen.errors import ExampleGenError

_UNITS_FILE = "units.pkl"
_RESULTS = "results"
_ERRORS = "errors"
_ATTEMPTS = "attempts"


def _unit_name(task: UnitTask) -> str:
    return f"{task.input_split:03d}-{task.chunk:07d}"


def _write_atomically(path: str, data: bytes) -> None:
    """Writes ``path`` under a temporary name first, so a reader never sees half of it."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_units(pass_dir: str, tasks: Sequence[UnitTask]) -> None:
    """Prepares a pass folder holding the planned units (in the launcher)."""
    for sub in (_RESULTS, _ERRORS, _ATTEMPTS):
        os.makedirs(os.path.join(pass_dir, sub))
    _write_atomically(os.path.join(pass_dir, _UNITS_FILE), pickle.dumps(list(tasks)))


def read_units(pass_dir: str) -> list[UnitTask]:
    """The planned units of a pass (on a worker); a clear error where the worker cannot see them."""
    path = os.path.join(pass_dir, _UNITS_FILE)
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        raise ExampleGenError(
            f"{path} is not visible on this worker ({socket.gethostname()}): engine='beam' needs the output "
            "folder and the input files on storage that the launcher and every worker see at the same path "
            "(see the README, Apache Beam)") from None


def convert_unit(task: UnitTask, pass_dir: str) -> ChunkResult:
    """One attempt at one unit (on a worker): converts into the attempt's own folder, then
    moves the part files to their final names and writes the result last."""
    attempt = uuid.uuid4().hex[:12]
    attempt_dir = os.path.join(pass_dir, _ATTEMPTS, f"{_unit_name(task)}.{attempt}")
    os.makedirs(attempt_dir)
    try:
        result = run_unit(dataclasses.replace(task, parts_dir=attempt_dir))
    except ExampleGenError as exc:  # bad input: the launcher raises the same error
        _write_atomically(os.path.join(pass_dir, _ERRORS, f"{_unit_name(task)}.pkl"), pickle.dumps(exc))
        raise
    for name in result.parts:
        os.replace(os.path.join(attempt_dir, name), os.path.join(task.parts_dir, name))
    _write_atomically(os.path.join(pass_dir, _RESULTS, f"{_unit_name(task)}.{attempt}.pkl"), pickle.dumps(result))
    shutil.rmtree(attempt_dir, ignore_errors=True)
    return result


def read_results(pass_dir: str) -> list[ChunkResult]:
    """Every finished attempt's result (in the launcher, after the pass)."""
    results = []
    for path in sorted(glob.glob(os.path.join(pass_dir, _RESULTS, "*.pkl"))):
        with open(path, "rb") as f:
            results.append(pickle.load(f))
    return results


def raise_unit_error(pass_dir: str) -> None:
    """Raises the error a unit failed with on bad input (the first by unit order), as is."""
    for path in sorted(glob.glob(os.path.join(pass_dir, _ERRORS, "*.pkl"))):
        with open(path, "rb") as f:
            raise pickle.load(f)
