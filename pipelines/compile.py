"""Compile the pipelines and the components to KFP v2 YAML (what the KFP UI, Vertex AI
and `kfp.components.load_component_from_file` take)."""

from __future__ import annotations

import os
from typing import Iterable, Optional

from kfp_examplegen.pipelines.definitions import PIPELINE_NAMES, build, canonical_name

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUTPUT_DIR = os.path.join("pipelines", "compiled")
DEFAULT_COMPONENTS_DIR = "components"
COMPILED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compiled")
# The checked-in component specs: components/<name>/component.yaml (KFP's own layout).
COMPONENTS_DIR = os.path.join(REPOSITORY, "components")
COMPONENT_SPEC = "component.yaml"


def yaml_file_name(pipeline_name: str) -> str:
    """'csv-ingest' -> 'csv_ingest.yaml'."""
    return canonical_name(pipeline_name).replace("-", "_") + ".yaml"


def component_spec_path(components_dir: str, name: str) -> str:
    """<components_dir>/<name>/component.yaml."""
    return os.path.join(components_dir, name, COMPONENT_SPEC)


def compile_pipelines(
    output_dir: str = DEFAULT_OUTPUT_DIR,
    *,
    image: Optional[str] = None,
    names: Optional[Iterable[str]] = None,
) -> list[str]:
    """Write one YAML file per pipeline into `output_dir`; returns the paths written.

    `image` is the component image (default: components.image()).
    """
    from kfp import compiler

    pipelines = build(image)
    wanted = [canonical_name(n) for n in names] if names else list(PIPELINE_NAMES)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    for name in wanted:
        path = os.path.join(output_dir, yaml_file_name(name))
        compiler.Compiler().compile(pipelines[name], package_path=path)
        written.append(path)
    return written


def compile_components(components_dir: str = DEFAULT_COMPONENTS_DIR, *, image: Optional[str] = None) -> list[str]:
    """Write every component's spec to <components_dir>/<name>/component.yaml; returns the paths."""
    from kfp import compiler

    from kfp_examplegen import components

    built = components.load(image)
    written = []
    for name in components.COMPONENT_NAMES:
        path = component_spec_path(components_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        compiler.Compiler().compile(getattr(built, name), package_path=path)
        written.append(path)
    return written
