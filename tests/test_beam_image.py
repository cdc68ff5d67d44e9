"""The Beam flavour of the component image (images/Dockerfile, target `beam`), without Docker.

Static checks: requirements-beam.lock is exactly what apache-beam[gcp] (the `beam` extra)
needs beyond requirements.lock, at the requirements-test.lock pins, read from the installed
metadata; the Dockerfile's beam target installs it, takes Beam's worker boot program from
the Beam SDK image of the locks' Beam and Python versions and makes it the entrypoint, while
the default target stays Beam-free; the Makefile tags it as components.beam_image() names it.

Then the beam target's install steps in a clean virtual environment (requirements.lock, the
package, requirements-beam.lock, `pip check`), and a Beam job on it: Beam's local job service
and a worker pool (--environment_type=EXTERNAL) run from that environment's Python, with no
access to this checkout, and csv_example_gen runs from its component spec, verbatim, with
engine="beam" and the PortableRunner: the image's Python environment as the KFP task and as
the Beam worker. What this cannot run is the boot program itself (a Go binary inside the Beam
SDK image; no Docker engine here).
"""

import fnmatch
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from tests.cloud_servers import start_servers
from tests.helpers import REPO, dockerfile_stages, tree_bytes
from tests.test_beam_engine import _worker_pool_stop
from tests.test_runtime_image import LOCK, Launcher, _run, build_image_env

DOCKERFILE = os.path.join(REPO, "images", "Dockerfile")
BEAM_LOCK = os.path.join(REPO, "requirements-beam.lock")
TEST_LOCK = os.path.join(REPO, "requirements-test.lock")


def _beam_lock_module():
    spec = importlib.util.spec_from_file_location("beam_lock", os.path.join(REPO, "images", "beam_lock.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


beam_lock = _beam_lock_module()


def _python_version_of_image() -> str:
    [default] = re.findall(r"^ARG PYTHON_IMAGE=python:(\d+\.\d+)-", open(DOCKERFILE, encoding="utf-8").read(), re.M)
    return default


# ------------------------------------------------------------------ the lock


def test_beam_lock_is_the_derived_one():
    """The file is what images/beam_lock.py derives from the installed metadata (`make lock-beam`)."""
    assert open(BEAM_LOCK, encoding="utf-8").read() == beam_lock.render(beam_lock.derive())


def test_beam_lock_pins_are_the_test_lock_pins_and_add_to_the_runtime_lock():
    runtime, test, beam = (beam_lock.read_lock(p) for p in (LOCK, TEST_LOCK, BEAM_LOCK))
    assert beam and not beam.keys() & runtime.keys()
    for key, (name, version) in beam.items():
        assert test[key] == (name, version), key


def test_both_locks_cover_the_beam_extras_closure_and_nothing_more():
    """Every distribution apache-beam[gcp] needs (transitively, its gcp extra included) is in
    requirements.lock or requirements-beam.lock at the installed version; the Beam lock has
    nothing else."""
    runtime, beam = beam_lock.read_lock(LOCK), beam_lock.read_lock(BEAM_LOCK)
    needed = beam_lock.closure(beam_lock.beam_requirement())
    assert {"apache-beam", "google-cloud-pubsub", "google-apitools"} <= needed.keys()  # the gcp extra is followed
    pinned = {key: version for key, (_, version) in {**runtime, **beam}.items()}
    assert {key: pinned.get(key) for key in needed} == needed
    assert beam.keys() == needed.keys() - runtime.keys()


def test_the_beam_extra_is_the_locked_beam():
    [(_, beam_version)] = [v for k, v in beam_lock.read_lock(BEAM_LOCK).items() if k == "apache-beam"]
    assert str(beam_lock.beam_requirement()) == f"apache-beam[gcp]=={beam_version}"
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        requires_python = tomllib.load(f)["project"]["requires-python"]
    assert requires_python == f"=={_python_version_of_image()}.*"
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == _python_version_of_image()


def test_lock_derivation_errors_name_the_cause(tmp_path):
    from packaging.requirements import Requirement

    bad = tmp_path / "bad.lock"
    bad.write_text("# comment\nsix==1.17.0\napache-beam>=2\n")
    with pytest.raises(ValueError, match=r"bad.lock:3: not a `name==version` pin: 'apache-beam>=2'"):
        beam_lock.read_lock(str(bad))
    bad.write_text("six==1.17.0\nSix==1.16.0\n")
    with pytest.raises(ValueError, match=r"bad.lock:2: Six is pinned twice"):
        beam_lock.read_lock(str(bad))
    with pytest.raises(LookupError, match=r"no-such-dist-i11==1 \(required by pyproject.toml \[beam\]\) is not installed"):
        beam_lock.closure(Requirement("no-such-dist-i11==1"))
    with pytest.raises(LookupError, match=r"requires six==0.1, installed is 1.17.0"):
        beam_lock.closure(Requirement("six==0.1"))


# ------------------------------------------------------------------ the Dockerfile


def test_the_beam_target_installs_the_lock_and_boots_beams_worker():
    stages = dockerfile_stages(DOCKERFILE)
    beam_version = beam_lock.read_lock(BEAM_LOCK)["apache-beam"][1]
    python = _python_version_of_image()
    # The Beam layer: on the runtime build stage, the Beam lock without resolution, pip check.
    assert stages["build-beam"]["from"] == "build"
    [install] = stages["build-beam"]["lines"][1:]
    assert stages["build-beam"]["lines"][0] == "COPY requirements-beam.lock /src/requirements-beam.lock"
    assert install.startswith("RUN pip install --no-deps -r /src/requirements-beam.lock && pip check && ")
    # The boot program: from the Beam SDK image of the locks' Beam and the image's Python.
    assert stages["beam-sdk"] == {"from": f"apache/beam_python{python}_sdk:{beam_version}",
                                  "platform": "linux/amd64", "lines": []}
    beam = stages["beam"]
    assert beam["from"] == "base"
    assert beam["lines"] == [
        "COPY --from=build-beam /opt/venv /opt/venv",
        "COPY --from=beam-sdk /opt/apache/beam /opt/apache/beam",
        "ENV RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1",
        "ARG BEAM_USER=10001:10001",  # non-root unless built otherwise (Dataflow, see README)
        "USER ${BEAM_USER}",
        'ENTRYPOINT ["/opt/apache/beam/boot"]',
    ]
    # The shared base puts /opt/venv/bin first on PATH: the boot's `python`.
    assert any(line.startswith("ENV PATH=/opt/venv/bin:$PATH ") for line in stages["base"]["lines"])
    assert not any(line.split()[0] in ("USER", "ENTRYPOINT", "CMD") for line in stages["base"]["lines"])


def test_the_default_target_stays_beam_free():
    stages = dockerfile_stages(DOCKERFILE)
    assert list(stages)[-1] == "runtime"  # `docker build` without --target
    assert stages["runtime"]["lines"] == ["COPY --from=build /opt/venv /opt/venv", "USER 10001:10001",
                                          'CMD ["examplegen", "--help"]']
    assert "beam" not in "\n".join(stages["build"]["lines"]).lower()


def test_the_build_context_has_the_beam_lock():
    patterns = [line.strip() for line in open(os.path.join(REPO, ".dockerignore"), encoding="utf-8")
                if line.strip() and not line.startswith("#")]
    assert not any(fnmatch.fnmatch("requirements-beam.lock", p) for p in patterns)


def test_kfp_replaces_the_beam_entrypoint():
    """The beam image's entrypoint is Beam's boot; a KFP task runs the spec's `command`
    instead (Kubernetes' command replaces the image's entrypoint): every spec sets one."""
    for name in os.listdir(os.path.join(REPO, "components")):
        path = os.path.join(REPO, "components", name, "component.yaml")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                [executor] = yaml.safe_load(f)["deploymentSpec"]["executors"].values()
            assert executor["container"]["command"][:2] == ["sh", "-ec"], name


def test_make_image_beam_builds_the_beam_target_under_the_derived_tag(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text('#!/bin/sh\necho "docker $*"\n')
    (fake / "docker").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}", PYTHONPATH=REPO)
    env.pop("EXAMPLEGEN_IMAGE", None)
    make = ["make", "--no-print-directory", "-o", "venv", f"VENV={sys.prefix}", "image-beam"]
    out = _run(make + ["IMAGE=registry.example/eg:7", "BEAM_USER=0:0"], cwd=REPO, env=env).stdout
    assert ("docker build --platform linux/amd64 -f images/Dockerfile --target beam --build-arg BEAM_USER=0:0 "
            "-t registry.example/eg:7-beam .") in out
    from kfp_examplegen import components

    out = _run(make, cwd=REPO, env=env).stdout
    assert f"--target beam -t {components.DEFAULT_IMAGE}-beam ." in out and "--build-arg" not in out


# ------------------------------------------------------------------ the beam target's environment, running


@pytest.fixture(scope="module")
def beam_image_env(tmp_path_factory):
    """The beam target's /opt/venv, built as the Dockerfile builds it."""
    return build_image_env(tmp_path_factory.mktemp("beam-image"), locks=(LOCK, BEAM_LOCK))


@pytest.mark.slow
def test_why_the_boot_runs_in_the_default_environment(beam_image_env, tmp_path):
    """Beam's boot, left to itself, makes a venv with `python -m venv --system-site-packages`
    and runs the worker there; made from the image's venv, that venv sees the base
    interpreter's site-packages, not /opt/venv's: no apache_beam, no examplegen. Hence
    RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1 in the beam target."""
    environ = beam_image_env["environ"]
    code = "import apache_beam, examplegen.beam_engine; print(apache_beam.__version__)"
    assert _run(["python", "-c", code], env=environ).stdout.strip() == beam_lock.read_lock(BEAM_LOCK)["apache-beam"][1]
    _run(["python", "-m", "venv", "--system-site-packages", "--without-pip", str(tmp_path / "boot-venv")], env=environ)
    proc = subprocess.run([str(tmp_path / "boot-venv" / "bin" / "python"), "-c", code], env=environ,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "No module named 'apache_beam'" in proc.stderr


@pytest.fixture(scope="module")
def image_workers(beam_image_env, tmp_path_factory):
    """Beam's local job service and a worker pool, both from the beam environment's Python
    (its PATH, no PYTHONPATH, working directory outside the checkout); yields the pipeline
    args for them and their logs."""
    environ = beam_image_env["environ"]
    python = str(beam_image_env["venv"] / "bin" / "python")
    servers = start_servers({
        "job_service": lambda port: ["-m", "apache_beam.runners.portability.local_job_service_main",
                                     "--port", str(port)],
        "worker_pool": lambda port: ["-m", "apache_beam.runners.worker.worker_pool_main",
                                     "--service_port", str(port)],
    }, str(tmp_path_factory.mktemp("beam-image-services")), env=environ, python=python,
        cwd=str(beam_image_env["workdir"]))
    try:
        yield {"args": ["--runner=PortableRunner", f"--job_endpoint=localhost:{servers['job_service'].port}",
                        "--environment_type=EXTERNAL",
                        f"--environment_config=localhost:{servers['worker_pool'].port}"],
               "logs": {name: server.log_path for name, server in servers.items()}}
    finally:
        _worker_pool_stop(servers["worker_pool"])
        servers["job_service"].stop()


@pytest.mark.slow
def test_csv_example_gen_on_beam_workers_of_the_beam_environment(beam_image_env, image_workers, tmp_path):
    """csv_example_gen from its spec with engine="beam": the KFP task and the Beam workers
    both run the beam environment; the artifact is the local engine's, byte for byte."""
    params = {"input_base": "", "num_shards": 2,
              "output_config": {"split_config": {"splits": [{"name": "train", "hash_buckets": 3},
                                                            {"name": "eval", "hash_buckets": 1}]}}}
    outputs = {}
    for engine, extra in (("local", {}), ("beam", {"beam_pipeline_args": json.dumps(image_workers["args"])})):
        launcher = Launcher(beam_image_env, tmp_path / engine, beam_image_env["environ"])
        output = launcher.run("csv_example_gen", {**params, "engine": engine, **extra,  # own stores: no reuse
                                                  "mlmd": f"sqlite:///{tmp_path}/{engine}.sqlite"})
        [outputs[engine]] = output["artifacts"]["examples"]["artifacts"]
    beam, local = outputs["beam"], outputs["local"]
    assert json.loads(beam["metadata"]["example_counts"]) == json.loads(local["metadata"]["example_counts"])
    assert sum(json.loads(beam["metadata"]["example_counts"]).values()) == 10000
    assert tree_bytes(beam["uri"]) == tree_bytes(local["uri"])
    # The job ran on the job service, and the pool's workers (its `python`: the beam environment's) ran it.
    with open(image_workers["logs"]["job_service"], encoding="utf-8", errors="replace") as log:
        assert "Completed job in" in log.read()
    with open(image_workers["logs"]["worker_pool"], encoding="utf-8", errors="replace") as log:
        assert "Starting worker with command ['python'" in log.read()
