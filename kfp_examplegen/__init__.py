"""kfp-examplegen's Kubeflow Pipelines layer: `kfp_examplegen.components` and
`kfp_examplegen.pipelines`.

The code lives in the repository's top-level `components/` and `pipelines/` folders;
installing the package maps them here (pyproject.toml, `[tool.setuptools] package-dir`),
so site-packages gets no top-level `components` or `pipelines` package of its own. In a
source checkout used without installing (PYTHONPATH=<repository>), the lines below let
the same folders be found under this name.
"""

import os as _os

_REPOSITORY = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_REPOSITORY, "pyproject.toml")) and _os.path.isfile(
    _os.path.join(_REPOSITORY, "components", "__init__.py")
):
    __path__.append(_REPOSITORY)  # noqa: F821 - a package's own __path__
