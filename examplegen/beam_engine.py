"""The Beam engine: the local engine's work units, scheduled by an Apache Beam runner.

``ingest(..., engine="beam", beam_pipeline_args=[...])`` plans exactly as the local engine
does (spans, files, CSV type sampling, work units: all in the launcher, this process), then
runs one Beam pipeline per conversion pass::

    Create(unit indices) | Reshuffle (fan the units out to workers) | ParDo(ConvertUnit)

Records never become Beam elements: one element is one work unit (a CSV byte range, Parquet
row groups, a file), and ``ConvertUnit`` runs the engine's own conversion on it through
the staging folder's files (examplegen.unit_files: the units, one folder per attempt,
deterministic part names, a result per attempt). The launcher reads the results back,
verifies them (examplegen.unit_check) and only then lets the writer commit.

Beam is imported only when this engine is used.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from examplegen import fs, unit_files
from examplegen.convert import ChunkResult, UnitTask
from examplegen.errors import ConfigError, ExampleGenError

INSTALL_HINT = ("engine='beam' needs Apache Beam, which is not installed here: pip install 'kfp-examplegen[beam]' "
                "(apache-beam[gcp]==2.66.0, the version this engine is tested with); components need the Beam "
                "image for it (`make image-beam`, the component image's tag + '-beam'; the default image leaves "
                "Beam out), or use engine='local'")


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
            self.tasks = unit_files.read_units(self.pass_dir)

        def process(self, index: int):
            unit_files.convert_unit(self.tasks[index], self.pass_dir)
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
        pass_dir = fs.join(self.staging, f"beam-{self.passes}")
        self.passes += 1
        unit_files.write_units(pass_dir, tasks)
        self._run_pipeline(pass_dir, pipeline_elements(len(tasks)))
        return unit_files.read_results(pass_dir)

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
            unit_files.raise_unit_error(pass_dir)
            raise ExampleGenError(f"the Beam pipeline failed on {runner}; nothing was committed: "
                                  f"{_last_line(exc)}") from exc
        if state != PipelineState.DONE:
            unit_files.raise_unit_error(pass_dir)
            raise ExampleGenError(f"the Beam pipeline ended {state} on {runner}; nothing was committed")

    def close(self, wait: bool = True) -> None:
        pass


def _last_line(exc: BaseException, limit: int = 500) -> str:
    """The gist of an exception from a runner (they wrap the worker's traceback in text)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[-1] if lines else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
