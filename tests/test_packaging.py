"""The pinned environment and the package layout rules."""

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib

from tests.helpers import REPO


def _lock() -> dict[str, str]:
    pins = {}
    lines = open(os.path.join(REPO, "requirements.lock")).readlines()
    lines += open(os.path.join(REPO, "requirements-test.lock")).readlines()
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_pinned_in_the_lock_with_the_same_version():
    project = tomllib.load(open(os.path.join(REPO, "pyproject.toml"), "rb"))["project"]
    lock = _lock()
    wanted = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    for requirement in wanted:
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(?:==\s*([^;,\s]+))?", requirement)
        name, version = _normal(match.group(1)), match.group(2)
        assert name in lock, f"{name} is not pinned in requirements.lock"
        if version:
            assert lock[name] == version, f"pyproject pins {name}=={version}, the lock {lock[name]}"


def test_the_runtime_lock_has_no_test_tools_and_no_unused_heavy_stack():
    runtime = open(os.path.join(REPO, "requirements.lock")).read().lower()
    for name in ("pytest==", "moto==", "gcp-storage-emulator==", "tensorflow-cpu==", "apache-beam==",
                 "keras==", "tensorboard==", "google-cloud-aiplatform=="):
        assert f"\n{name}" not in runtime, name


def test_the_runtime_lock_is_exactly_what_the_runtime_requires():
    """requirements.lock = the closure of pyproject's dependencies (plus the build tools the
    image's `pip install --no-build-isolation` needs: setuptools, wheel and its packaging): nothing missing, nothing extra."""
    from packaging.requirements import Requirement

    project = tomllib.load(open(os.path.join(REPO, "pyproject.toml"), "rb"))["project"]
    closure, todo = set(), [Requirement(r) for r in project["dependencies"]]
    while todo:
        requirement = todo.pop()
        name = _normal(requirement.name)
        if name in closure:
            continue
        closure.add(name)
        for text in importlib.metadata.requires(name) or []:
            dependency = Requirement(text)
            extras = [{"extra": e} for e in (requirement.extras or {""})]
            if dependency.marker is None or any(dependency.marker.evaluate(e) for e in extras):
                todo.append(dependency)
    runtime = set()
    for line in open(os.path.join(REPO, "requirements.lock")):
        if line.strip() and not line.startswith("#"):
            runtime.add(_normal(line.split("==")[0]))
    assert closure - runtime == set(), "missing from requirements.lock"
    assert runtime - closure <= {"setuptools", "wheel", "packaging"}, "not required by the runtime"


def test_the_stack_is_the_protobuf_4_set():
    lock = _lock()
    assert lock["kfp"] == "2.13.0" and lock["tensorflow-cpu"] == "2.17.1"
    assert lock["ml-metadata"] == "1.17.1" and lock["apache-beam"] == "2.66.0"
    assert lock["pyarrow"] == "18.1.0" and lock["protobuf"].startswith("4.25.")


def test_installed_environment_matches_the_lock():
    lock = _lock()
    different = {}
    for name, version in lock.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            different[name] = (version, None)
            continue
        if installed != version:
            different[name] = (version, installed)
    assert not different, f"installed packages differ from requirements.lock: {different}"


def test_the_engine_never_imports_kfp_or_tensorflow():
    code = ("import sys, examplegen.cli, examplegen.ingest, examplegen.convert, examplegen.lineage, "
            "examplegen.report; examplegen.cli.build_parser(); "
            "bad = [m for m in ('kfp', 'tensorflow') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _source_files(folder: str) -> set[str]:
    out = set()
    for root, dirs, files in os.walk(os.path.join(REPO, folder)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out |= {os.path.relpath(os.path.join(root, f), os.path.join(REPO, folder))
                for f in files if f.endswith(".py") or f == "component.yaml" or root.endswith("compiled")}
    return out


def test_the_wheel_installs_only_this_projects_own_top_level_names(tmp_path):
    """No `components` / `pipelines` package in site-packages: they live under kfp_examplegen."""
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path), REPO], check=True, capture_output=True, cwd=tmp_path)
    [wheel] = list(tmp_path.glob("kfp_examplegen-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/", 1)[0] for n in names} == {
        "examplegen", "kfp_examplegen", "-".join(wheel.name.split("-")[:2]) + ".dist-info"}
    # the one C extension is built into the wheel (a platform wheel, then)
    assert any(n.startswith("examplegen/_framing.") and n.endswith(".so") for n in names)
    [top_level] = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["examplegen", "kfp_examplegen"]
    # Every source file (and the compiled YAML, the component specs) is in the wheel.
    packaged = set(names)
    for folder, target in (("examplegen", "examplegen"), ("components", "kfp_examplegen/components"),
                           ("pipelines", "kfp_examplegen/pipelines")):
        missing = {f for f in _source_files(folder) if f"{target}/{f}" not in packaged}
        assert not missing, f"{folder}/: {sorted(missing)} not in the wheel (pyproject.toml packages)"
