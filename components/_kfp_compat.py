"""Let the KFP SDK accept TFX's artifact types ("tfx.Examples").

KFP's SDK (2.13) only accepts artifact schema titles in the `system` and `google`
namespaces (kubeflow/pipelines#11505, where the maintainers agreed `tfx.*` is fine). The
KFP backend and Vertex AI accept other namespaces (Vertex requires titles to match
^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$, which "tfx.Examples" does), and TFX's
own KFP v2 compiler emits tfx.* types. So while our components and pipelines are built,
the SDK's check additionally lets `tfx.<Name>` through; everything else is still checked.
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterator

from kfp.dsl.types import type_utils

ALLOWED_EXTRA_NAMESPACES = ("tfx",)
# Vertex AI's rule for schema titles (the strictest consumer of the compiled YAML).
VERTEX_SCHEMA_TITLE = re.compile(r"^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$")


@contextlib.contextmanager
def allow_tfx_artifact_types() -> Iterator[None]:
    """Within this block, KFP accepts schema titles `tfx.<Name>` (see module docstring)."""
    original = type_utils.validate_schema_title

    def validate_schema_title(schema_title: str) -> None:
        namespace = schema_title.split(".", 1)[0]
        if namespace in ALLOWED_EXTRA_NAMESPACES and VERTEX_SCHEMA_TITLE.match(schema_title):
            return
        original(schema_title)

    type_utils.validate_schema_title = validate_schema_title
    try:
        yield
    finally:
        type_utils.validate_schema_title = original
