"""Compile the pipelines to KFP v2 pipeline YAML (what the KFP UI and Vertex AI take)."""

from __future__ import annotations

import os
from typing import Iterable, Optional

from kfp_examplegen.pipelines.definitions import PIPELINE_NAMES, build, canonical_name

DEFAULT_OUTPUT_DIR = os.path.join("pipelines", "compiled")
COMPILED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compiled")


def yaml_file_name(pipeline_name: str) -> str:
    """'csv-ingest' -> 'csv_ingest.yaml'."""
    return canonical_name(pipeline_name).replace("-", "_") + ".yaml"


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

    from kfp_examplegen.components._kfp_compat import allow_tfx_artifact_types

    pipelines = build(image)
    wanted = [canonical_name(n) for n in names] if names else list(PIPELINE_NAMES)
    os.makedirs(output_dir, exist_ok=True)
    written = []
    with allow_tfx_artifact_types():
        for name in wanted:
            path = os.path.join(output_dir, yaml_file_name(name))
            compiler.Compiler().compile(pipelines[name], package_path=path)
            written.append(path)
    return written
