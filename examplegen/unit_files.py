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
    Where one attempt at a unit writes its part files (and its quarantine part, under
    ``quarantine/``). Only an attempt that finished moves them to their deterministic names
    in the writer's parts (and quarantine parts) folder (a retried or
    duplicated unit overwrites them with the same bytes, never adds to them); a killed
    attempt leaves only its own folder, which the commit never reads.
``results/<unit>.<attempt>.pkl``
    What a finished attempt reports (examplegen.convert.ChunkResult), written after its
    part files are in place. ``read_results`` returns every attempt's; the launcher
    deduplicates and verifies them (examplegen.unit_check) before the writer commits.
``errors/<unit>.pkl``
    The ExampleGenError a unit failed with (bad input); ``raise_unit_error`` raises it in
    the launcher, so the user sees the local engine's message, not the engine's wrapping.

Workers must see the staging folder and the input files at the launcher's paths: a shared
file system, or gs:// / s3:// (examplegen.fs; there an object appears only once its upload
completes, so every file here is written whole or not at all, and a move is a copy).
"""

from __future__ import annotations

import dataclasses
import pickle
import socket
import uuid
from typing import Sequence

from examplegen import fs
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
    if fs.is_remote(path):  # an object is written whole or not at all
        with fs.open_write(path) as f:
            f.write(data)
        return
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with fs.open_write(tmp) as f:
        f.write(data)
    fs.move(tmp, path)


def write_units(pass_dir: str, tasks: Sequence[UnitTask]) -> None:
    """Prepares a pass folder holding the planned units (in the launcher)."""
    for sub in (_RESULTS, _ERRORS, _ATTEMPTS):
        fs.makedirs(fs.join(pass_dir, sub))
    _write_atomically(fs.join(pass_dir, _UNITS_FILE), pickle.dumps(list(tasks)))


def read_units(pass_dir: str) -> list[UnitTask]:
    """The planned units of a pass (on a worker); a clear error where the worker cannot see them."""
    path = fs.join(pass_dir, _UNITS_FILE)
    if not fs.is_file(path):
        raise ExampleGenError(
            f"{path} is not visible on this worker ({socket.gethostname()}): engine='beam' needs the output "
            "folder and the input files on storage that the launcher and every worker see at the same path "
            "(see the README, Apache Beam)")
    with fs.open_read(path) as f:
        return pickle.load(f)


def convert_unit(task: UnitTask, pass_dir: str) -> ChunkResult:
    """One attempt at one unit (on a worker): converts into the attempt's own folder, then
    moves the part files to their final names and writes the result last."""
    attempt = uuid.uuid4().hex[:12]
    attempt_dir = fs.join(pass_dir, _ATTEMPTS, f"{_unit_name(task)}.{attempt}")
    fs.makedirs(attempt_dir)
    try:
        quarantine_dir = fs.join(attempt_dir, "quarantine") if task.quarantine_dir else ""
        if quarantine_dir:
            fs.makedirs(quarantine_dir)
        result = run_unit(dataclasses.replace(task, parts_dir=attempt_dir, quarantine_dir=quarantine_dir))
    except ExampleGenError as exc:  # bad input: the launcher raises the same error
        _write_atomically(fs.join(pass_dir, _ERRORS, f"{_unit_name(task)}.pkl"), pickle.dumps(exc))
        raise
    for name in result.parts:
        fs.move(fs.join(attempt_dir, name), fs.join(task.parts_dir, name))
    if result.quarantine:
        fs.move(fs.join(quarantine_dir, result.quarantine), fs.join(task.quarantine_dir, result.quarantine))
    _write_atomically(fs.join(pass_dir, _RESULTS, f"{_unit_name(task)}.{attempt}.pkl"), pickle.dumps(result))
    fs.remove_tree(attempt_dir)
    return result


def read_results(pass_dir: str) -> list[ChunkResult]:
    """Every finished attempt's result (in the launcher, after the pass)."""
    return [_load(pass_dir, _RESULTS, name) for name in fs.listdir(fs.join(pass_dir, _RESULTS))
            if name.endswith(".pkl")]


def _load(pass_dir: str, sub: str, name: str):
    with fs.open_read(fs.join(pass_dir, sub, name)) as f:
        return pickle.load(f)


def raise_unit_error(pass_dir: str) -> None:
    """Raises the error a unit failed with on bad input (the first by unit order), as is."""
    for name in fs.listdir(fs.join(pass_dir, _ERRORS)):
        if name.endswith(".pkl"):
            raise _load(pass_dir, _ERRORS, name)
