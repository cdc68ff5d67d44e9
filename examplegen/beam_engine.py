"""The Beam engine: the local engine's work units, scheduled by an Apache Beam runner.

``ingest(..., engine="beam", beam_pipeline_args=[...])`` plans exactly as the local engine
does (spans, files, CSV type sampling, work units: all in the launcher, this process), then
runs one Beam pipeline per conversion pass::

    Create(unit indices) | Reshuffle (fan the units out to workers) | ParDo(ConvertUnit)

Records never become Beam elements: one element is one work unit (a CSV byte range, Parquet
row groups, a file), and ``ConvertUnit`` runs the engine's own conversion on it
(examplegen.convert.run_unit). The units themselves are pickled to the staging folder
(``<output>/.staging-<id>/beam-<pass>/units.pkl``), so the pipeline graph holds only their
indices. A unit converts into a folder of its own attempt, then moves its part files to
their deterministic names in the writer's parts folder (a retried or duplicated unit
overwrites them with the same bytes, never adds to them) and writes its result, one file
per attempt. The launcher reads the results back, verifies them (examplegen.unit_check:
every unit once, rows read = written + rejected, the part files hold the reported records)
and only then lets the writer commit.

Workers must see the staging folder at the same path as the launcher (the local runners,
a shared mount) and the input files. Beam is imported only when this engine is used.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pickle
import shutil
import socket
import uuid
from typing import Iterable, Sequence

from examplegen.convert import ChunkResult, UnitTask, run_unit
from examplegen.errors import ConfigError, ExampleGenError

INSTALL_HINT = ("engine='beam' needs Apache Beam, which is not installed here: pip install 'kfp-examplegen[beam]' "
                "(apache-beam[gcp]==2.66.0, the version this engine is tested with; the component image leaves "
                "it out), or use engine='local'")
_UNITS_FILE = "units.pkl"
_RESULTS = "results"  # <unit>.<attempt>.pkl: a ChunkResult per finished attempt
_ERRORS = "errors"  # <unit>.pkl: the ExampleGenError a unit failed with (bad input), for the launcher
_ATTEMPTS = "attempts"  # <unit>.<attempt>/: part files while an attempt writes them


def _unit_name(task: UnitTask) -> str:
    return f"{task.input_split:03d}-{task.chunk:07d}"


def _write_atomically(path: str, data: bytes) -> None:
    """Writes ``path`` under a temporary name first, so a reader never sees half of it."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def convert_unit(task: UnitTask, pass_dir: str) -> ChunkResult:
    """One attempt at one unit, as a Beam worker runs it: converts into the attempt's own
    folder, then moves the part files to their final names and writes the result last."""
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


def pipeline_elements(num_units: int) -> list[int]:
    """The pipeline's elements: one per planned unit (tests replace this to drop or repeat units)."""
    return list(range(num_units))


def _convert_fn(pass_dir: str):
    import apache_beam as beam

    class ConvertUnit(beam.DoFn):
        """Converts the work unit with the element's index (its result goes to a file)."""

        def __init__(self, pass_dir: str):
            self.pass_dir = pass_dir
            self.tasks: Sequence[UnitTask] = ()

        def setup(self):
            path = os.path.join(self.pass_dir, _UNITS_FILE)
            try:
                with open(path, "rb") as f:
                    self.tasks = pickle.load(f)
            except FileNotFoundError:
                raise ExampleGenError(
                    f"{path} is not visible on this Beam worker ({socket.gethostname()}): engine='beam' needs "
                    "the output folder and the input files on storage that the launcher and every worker see "
                    "at the same path (see the README, Apache Beam)") from None

        def process(self, index: int):
            convert_unit(self.tasks[index], self.pass_dir)
            yield index

    return ConvertUnit(pass_dir)


class BeamRunner:
    """Runs work units as a Beam pipeline; ``run`` returns every attempt's result (the
    launcher deduplicates and verifies them, examplegen.unit_check)."""

    def __init__(self, pipeline_args: Sequence[str], staging: str):
        try:
            import apache_beam  # noqa: F401
        except ImportError:
            raise ConfigError(INSTALL_HINT) from None
        self.pipeline_args = list(pipeline_args)
        self.staging = staging
        self.passes = 0

    def run(self, tasks: Iterable[UnitTask]) -> list[ChunkResult]:
        tasks = list(tasks)
        pass_dir = os.path.join(self.staging, f"beam-{self.passes}")
        self.passes += 1
        for sub in (_RESULTS, _ERRORS, _ATTEMPTS):
            os.makedirs(os.path.join(pass_dir, sub))
        _write_atomically(os.path.join(pass_dir, _UNITS_FILE), pickle.dumps(tasks))
        self._run_pipeline(pass_dir, pipeline_elements(len(tasks)))
        results = []
        for path in sorted(glob.glob(os.path.join(pass_dir, _RESULTS, "*.pkl"))):
            with open(path, "rb") as f:
                results.append(pickle.load(f))
        return results

    def _run_pipeline(self, pass_dir: str, elements: list[int]) -> None:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
        from apache_beam.runners.runner import PipelineState

        options = PipelineOptions(self.pipeline_args)
        runner = options.view_as(StandardOptions).runner or "DirectRunner"
        pipeline = beam.Pipeline(options=options)
        _ = (pipeline
             | "Units" >> beam.Create(elements, reshuffle=False)
             | "FanOut" >> beam.Reshuffle()
             | "Convert" >> beam.ParDo(_convert_fn(pass_dir)))
        try:
            state = pipeline.run().wait_until_finish()
        except Exception as exc:
            self._raise_unit_error(pass_dir)
            raise ExampleGenError(f"the Beam pipeline failed on {runner}; nothing was committed: "
                                  f"{_last_line(exc)}") from exc
        if state != PipelineState.DONE:
            self._raise_unit_error(pass_dir)
            raise ExampleGenError(f"the Beam pipeline ended {state} on {runner}; nothing was committed")

    @staticmethod
    def _raise_unit_error(pass_dir: str) -> None:
        """Raises the error a unit failed with on bad input (the first by unit order), as is."""
        for path in sorted(glob.glob(os.path.join(pass_dir, _ERRORS, "*.pkl"))):
            with open(path, "rb") as f:
                raise pickle.load(f)

    def close(self) -> None:
        pass


def _last_line(exc: BaseException, limit: int = 500) -> str:
    """The gist of an exception from a runner (they wrap the worker's traceback in text)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
