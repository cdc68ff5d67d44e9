"""Run a pipeline on this machine with KFP's own local runner.

kfp.local's SubprocessRunner runs every task as a subprocess of the current Python
environment (use_venv=False: nothing is installed), in dependency order, with the
pipeline root on the local disk. Each run gets a folder
<pipeline_root>/<pipeline-name>-<timestamp>/ holding one folder per task with its output
artifacts and executor_output.json. Lineage goes to <pipeline_root>/mlmd.sqlite unless the
`mlmd` parameter names another store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import warnings
from typing import Any, Iterator, Mapping, Optional

from examplegen.errors import ConfigError, ExampleGenError
from kfp_examplegen.components._common import connection_without_password, mlmd_url, string_list, struct
from kfp_examplegen.pipelines.definitions import PIPELINE_NAMES, build, canonical_name

DEFAULT_PIPELINE_ROOT = "local_outputs"
EXECUTOR_OUTPUT = "executor_output.json"


@dataclasses.dataclass
class OutputArtifact:
    task: str
    name: str
    schema_title: str
    uri: str
    metadata: dict


@dataclasses.dataclass
class LocalRun:
    """Where a local pipeline run put its outputs."""

    pipeline: str
    pipeline_root: str
    run_dir: str
    artifacts: list[OutputArtifact]
    parameters: dict[str, dict[str, Any]]  # task -> output parameter values
    lineage_store: str

    def artifacts_of_type(self, schema_title: str) -> list[OutputArtifact]:
        return [a for a in self.artifacts if a.schema_title == schema_title]

    @property
    def report(self) -> Optional[str]:
        """Path of the HTML report (the last system.HTML artifact), if any."""
        html = self.artifacts_of_type("system.HTML")
        return html[-1].uri if html else None


def parse_params(pipeline_name: str, pairs: Optional[list[str]]) -> dict[str, Any]:
    """`["k=v", ...]` -> typed pipeline arguments (int/float/bool, JSON for dict and list
    parameters, by the parameter's type); an `mlmd` or `connection` URL holding a password is
    refused."""
    pipeline = build()[canonical_name(pipeline_name)]
    inputs = pipeline.component_spec.inputs or {}
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--param {pair!r}: expected KEY=VALUE")
        if key not in inputs:
            raise ConfigError(
                f"--param {key}: pipeline {canonical_name(pipeline_name)} has no parameter {key!r} "
                f"(parameters: {', '.join(sorted(inputs))})"
            )
        params[key] = _convert(key, value, inputs[key].type)
    mlmd_url(params.get("mlmd"))
    if params.get("connection"):
        connection_without_password(params["connection"])
    return params


def _convert(key: str, value: str, type_name: str) -> Any:
    try:
        if type_name == "Integer":
            return int(value)
        if type_name == "Float":
            return float(value)
    except ValueError:
        expected = "an integer" if type_name == "Integer" else "a number"
        raise ConfigError(f"--param {key}={value!r}: expected {expected}") from None
    if type_name in ("Dict", "List"):
        parse = struct if type_name == "Dict" else string_list
        return parse(value, f"--param {key}")
    if type_name == "Boolean":
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no", ""):
            return False
        raise ConfigError(f"--param {key}={value!r}: expected true or false")
    return value


def run_pipeline(
    pipeline_name: str,
    *,
    pipeline_root: str = DEFAULT_PIPELINE_ROOT,
    params: Optional[Mapping[str, Any]] = None,
) -> LocalRun:
    """Run a pipeline with kfp.local (SubprocessRunner, current environment); see module doc."""
    from kfp import local

    mlmd_url((params or {}).get("mlmd"))  # no password in a parameter: refused before anything runs
    if (params or {}).get("connection"):  # query-ingest: the database password neither
        connection_without_password(params["connection"])
    name = canonical_name(pipeline_name)
    if name not in PIPELINE_NAMES:
        raise ConfigError(f"unknown pipeline {pipeline_name!r}; choose one of {', '.join(PIPELINE_NAMES)}")
    pipeline = build()[name]
    root = os.path.abspath(pipeline_root)
    os.makedirs(root, exist_ok=True)
    before = set(os.listdir(root))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root, raise_on_error=True)
    try:
        with _tasks_see_this_package(), warnings.catch_warnings():
            # The image is ours, not a python:* image; the subprocess uses this environment.
            warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
            pipeline(**dict(params or {}))
    except RuntimeError as exc:
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # kfp.local colours task names
        raise ExampleGenError(f"pipeline {name} failed: {message} (the task's log is above)") from None
    run_dir = _new_run_dir(root, before, name)
    artifacts, parameters = _read_outputs(run_dir, pipeline.pipeline_spec)
    return LocalRun(name, root, run_dir, artifacts, parameters, _store_url((params or {}).get("mlmd", ""), root))


def _store_url(mlmd: str, root: str) -> str:
    """The lineage store the tasks used (as components._common.lineage_store chose it)."""
    from kfp_examplegen.components._common import lineage_store
    from examplegen.lineage import StoreConfig

    return StoreConfig.resolve(lineage_store(mlmd, root)).url()


@contextlib.contextmanager
def _tasks_see_this_package() -> Iterator[None]:
    """Let task subprocesses import this project even when it is not pip-installed."""
    import kfp_examplegen

    project_root = os.path.dirname(os.path.dirname(os.path.abspath(kfp_examplegen.__file__)))
    saved = os.environ.get("PYTHONPATH")
    parts = [p for p in (saved or "").split(os.pathsep) if p]
    if project_root not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([project_root, *parts])
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _new_run_dir(root: str, before: set[str], name: str) -> str:
    created = sorted(d for d in set(os.listdir(root)) - before if d.startswith(name + "-"))
    if not created:
        raise ExampleGenError(f"pipeline {name} finished but wrote no run folder under {root}")
    return os.path.join(root, created[-1])


def _read_outputs(run_dir: str, spec) -> tuple[list[OutputArtifact], dict[str, dict[str, Any]]]:
    """Every task's output artifacts and parameters, in the order the tasks finished."""
    artifacts: list[OutputArtifact] = []
    parameters: dict[str, dict[str, Any]] = {}
    tasks = sorted(
        (os.path.getmtime(os.path.join(run_dir, t, EXECUTOR_OUTPUT)), t)
        for t in os.listdir(run_dir)
        if os.path.exists(os.path.join(run_dir, t, EXECUTOR_OUTPUT))
    )
    for _, task in tasks:
        with open(os.path.join(run_dir, task, EXECUTOR_OUTPUT), encoding="utf-8") as f:
            output = json.load(f)
        parameters[task] = output.get("parameterValues", {})
        for name, listing in sorted(output.get("artifacts", {}).items()):
            for artifact in listing.get("artifacts", []):
                uri = artifact.get("uri") or os.path.join(run_dir, task, name)
                artifacts.append(OutputArtifact(
                    task=task, name=name, schema_title=_schema_title(spec, task, name),
                    uri=uri, metadata=artifact.get("metadata", {}),
                ))
    return artifacts, parameters


def _schema_title(spec, task: str, name: str) -> str:
    """The artifact's type from the PipelineSpec (kfp.local names a task's folder after its
    component, without the "comp-" prefix; executor_output.json omits the type)."""
    component = spec.components.get("comp-" + task)
    if component is None or name not in component.output_definitions.artifacts:
        return ""
    return component.output_definitions.artifacts[name].artifact_type.schema_title


def describe(run: LocalRun) -> str:
    """Human-readable summary of a finished run (what `examplegen run` prints)."""
    lines = [f"pipeline {run.pipeline} finished", f"run folder: {run.run_dir}"]
    for artifact in run.artifacts:
        line = f"  {artifact.task}/{artifact.name} ({artifact.schema_title}): {artifact.uri}"
        counts = artifact.metadata.get("example_counts")
        if counts:
            line += f"  examples per split: {counts}"
        lines.append(line)
    for task, values in run.parameters.items():
        if values:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(values.items()) if k != "input_config")
            lines.append(f"  {task} outputs: {shown}")
    if run.report:
        lines.append(f"report: {run.report}")
    lines.append(f"lineage: {run.lineage_store}")
    return "\n".join(lines)
