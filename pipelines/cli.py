"""`examplegen compile` and `examplegen run`: the KFP pipelines from the command line.

kfp is imported inside the handlers only, so `examplegen --help` and the other commands
stay fast.
"""

from __future__ import annotations

import argparse
import os

from kfp_examplegen.pipelines.compile import DEFAULT_COMPONENTS_DIR, DEFAULT_OUTPUT_DIR
from kfp_examplegen.pipelines.definitions import PIPELINE_NAMES
from kfp_examplegen.pipelines.local_run import DEFAULT_PIPELINE_ROOT

_PIPELINE_CHOICES = PIPELINE_NAMES + tuple(n.replace("-", "_") for n in PIPELINE_NAMES)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compile",
        help="compile the KFP pipelines and components to YAML",
        description=(
            "Write one KFP v2 pipeline YAML per pipeline (csv_ingest.yaml, "
            "import_and_resplit.yaml, file_ingest.yaml), ready to upload in the KFP UI or "
            "submit to Vertex AI, and one spec per component (<name>/component.yaml, for "
            "kfp.components.load_component_from_file)."
        ),
    )
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR,
                   help=f"folder to write the pipeline YAML files to (default: {DEFAULT_OUTPUT_DIR})")
    p.add_argument("--components-dir", default=None,
                   help=f"folder to write <name>/component.yaml to (default: {DEFAULT_COMPONENTS_DIR}/ "
                        "with the default --output-dir, else OUTPUT_DIR/components)")
    p.add_argument("--image", default=None,
                   help="component image (default: $EXAMPLEGEN_IMAGE, else kfp-examplegen:<version>)")
    p.set_defaults(func=_compile)

    p = subparsers.add_parser(
        "run",
        help="run a pipeline locally with kfp.local",
        description=(
            "Run a pipeline on this machine with KFP's local runner (SubprocessRunner, in the "
            "current Python environment). Without --param input_base=... it reads the bundled "
            "sample data. Prints where the artifacts, the report and the lineage went."
        ),
    )
    p.add_argument("pipeline", choices=_PIPELINE_CHOICES, metavar="PIPELINE",
                   help="pipeline to run: csv_ingest or import_and_resplit (dashes work too)")
    p.add_argument("--pipeline-root", default=DEFAULT_PIPELINE_ROOT,
                   help=f"folder for the run's outputs (default: ./{DEFAULT_PIPELINE_ROOT})")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="pipeline parameter, e.g. input_base=/data/taxi or "
                        "output_config='{\"split_config\": ...}' (JSON for dict parameters; "
                        "repeatable). mlmd takes no password: set EXAMPLEGEN_MLMD_PASSWORD")
    p.set_defaults(func=_run)


def _compile(args: argparse.Namespace) -> int:
    from kfp_examplegen.components import image
    from kfp_examplegen.pipelines.compile import compile_components, compile_pipelines

    components_dir = args.components_dir
    if components_dir is None:
        default_output = os.path.normpath(args.output_dir) == os.path.normpath(DEFAULT_OUTPUT_DIR)
        components_dir = DEFAULT_COMPONENTS_DIR if default_output else os.path.join(args.output_dir, "components")
    for path in compile_pipelines(args.output_dir, image=args.image):
        print(f"wrote {path}")
    for path in compile_components(components_dir, image=args.image):
        print(f"wrote {path}")
    print(f"component image: {image(args.image)}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from kfp_examplegen.pipelines.local_run import describe, parse_params, run_pipeline

    params = parse_params(args.pipeline, args.param)
    run = run_pipeline(args.pipeline, pipeline_root=args.pipeline_root, params=params)
    print(describe(run))
    return 0
