"""Kubeflow Pipelines v2 components of kfp-examplegen.

The component functions live in components/functions.py; `load(image)` turns them into
KFP components that run in the project's image, and `examplegen compile` writes each one's
spec to components/<name>/component.yaml (KFP's layout; load it with
kfp.components.load_component_from_file). The image is one setting: the `image`
argument (`examplegen compile --image`), else the EXAMPLEGEN_IMAGE environment
variable, else DEFAULT_IMAGE -- the tag `make image` builds. beam_image() names the image's
Beam worker flavour (`make image-beam`) after it. Components install nothing
at run time (no packages_to_install, no kfp install), so air-gapped clusters work.

Importing this package does not import kfp; `load()` does.
"""

from __future__ import annotations

import functools
import os
import types

from examplegen import __version__

IMAGE_ENV = "EXAMPLEGEN_IMAGE"
DEFAULT_IMAGE = f"kfp-examplegen:{__version__}"
BEAM_TAG_SUFFIX = "-beam"

COMPONENT_NAMES = (
    "resolve_span",
    "csv_example_gen",
    "file_example_gen",
    "import_example_gen",
    "query_example_gen",
    "split_examples",
    "ingestion_report",
)


def image(override: str | None = None) -> str:
    """The component image reference: `override`, else $EXAMPLEGEN_IMAGE, else DEFAULT_IMAGE."""
    return override or os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def beam_image(override: str | None = None) -> str:
    """The Beam flavour of the component image (images/Dockerfile, target `beam`: the same
    image plus apache-beam and Beam's worker boot entrypoint; `make image-beam` builds it):
    image(override) with BEAM_TAG_SUFFIX appended to its tag, e.g. kfp-examplegen:0.1.0-beam.
    A reference whose tag already ends with the suffix is returned as it is."""
    ref = image(override)
    name, _, tag = ref.rpartition(":")
    if "@" in ref or not name or not tag or "/" in tag:
        raise ValueError(f"cannot name the Beam image after {ref!r}: that needs a NAME:TAG reference "
                         f"(not a digest, not a bare name); give the Beam image's reference itself")
    return ref if tag.endswith(BEAM_TAG_SUFFIX) else ref + BEAM_TAG_SUFFIX


def image_note(image_ref: str) -> str:
    """The sentence every compiled spec's description ends with: which image it runs."""
    return (f"Runs in the container image {image_ref} (build and push images/Dockerfile, then "
            f"compile with `examplegen compile --image REGISTRY/kfp-examplegen:{__version__}`).")


@functools.lru_cache(maxsize=None)
def _load(image_ref: str) -> types.SimpleNamespace:
    from kfp import dsl

    from kfp_examplegen.components import functions

    def make(func):
        component = dsl.component(func, base_image=image_ref, install_kfp_package=False)
        spec = component.component_spec
        spec.description = component.description = f"{spec.description}\n\n{image_note(image_ref)}"
        return component

    built = {name: make(getattr(functions, name)) for name in COMPONENT_NAMES}
    return types.SimpleNamespace(image=image_ref, **built)


def load(image_ref: str | None = None) -> types.SimpleNamespace:
    """The KFP components, built for `image_ref` (see image()); attributes named as COMPONENT_NAMES."""
    return _load(image(image_ref))
