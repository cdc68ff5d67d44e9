"""What the component image would run, runs (no Docker engine on these machines).

The test repeats images/Dockerfile's install steps in a clean virtual environment -- the
pinned stack from requirements.lock without dependency resolution, then this package
without dependencies, then `pip check` -- and runs a compiled component from there, the
way KFP starts it in the image: the YAML's own command line, `python3` from the image's
PATH, the working directory outside the source tree, and EXAMPLEGEN_SAMPLE_DATA as the
image sets it.

Runtime: about 2.5 minutes on the 2-core dev machine, nearly all of it unpacking the stack
(TensorFlow, Beam, ...) into the venv. pip's cache is used as configured (not disabled
here); byte-code compilation is skipped (--no-compile), which changes no behaviour and
saves about 1.5 minutes.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(REPO, "images", "Dockerfile")
LOCK = os.path.join(REPO, "requirements.lock")
PACKAGE_FILES = ["pyproject.toml", "README.md", "examplegen", "kfp_examplegen", "components", "pipelines"]

pytestmark = pytest.mark.slow


def _run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_dockerfile_installs_what_this_test_installs():
    text = open(DOCKERFILE, encoding="utf-8").read()
    assert re.search(r"^FROM --platform=linux/amd64 \$\{PYTHON_IMAGE\} AS build$", text, re.M)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "pip install --no-deps -r /src/requirements.lock" in text
    assert "pip install --no-deps --no-build-isolation /src" in text
    for name in PACKAGE_FILES:
        assert re.search(rf"^COPY .*\b{re.escape(name)}\b", text, re.M), name
    final = text.split("AS build", 1)[1].split("\nFROM ", 1)[1]
    assert "build-essential" not in final and "apt-get" not in final  # no build tools
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert re.search(r"^USER 10001", final, re.M)  # non-root
    assert "EXAMPLEGEN_SAMPLE_DATA=/opt/examplegen/sample-data" in final


@pytest.fixture(scope="module")
def image_env(tmp_path_factory):
    """A clean venv with the stack and the package installed as the Dockerfile does."""
    root = tmp_path_factory.mktemp("image")
    src = root / "src"
    src.mkdir()
    for name in PACKAGE_FILES:  # COPY ... /src/
        source = os.path.join(REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, src / name)
    for name in ("taxi", "taxi_tfrecord"):  # COPY examples/data/<name> /opt/examplegen/sample-data/
        shutil.copytree(os.path.join(REPO, "examples", "data", name), root / "sample-data" / name)
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_NO_CACHE_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    _run(pip + ["install", "--no-deps", "--no-compile", "-r", LOCK], env=env)
    _run(pip + ["install", "--no-deps", "--no-build-isolation", str(src)], env=env)
    _run(pip + ["check"], env=env)
    image_environ = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(root),
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "EXAMPLEGEN_SAMPLE_DATA": str(root / "sample-data"),
    }
    workdir = root / "work"
    workdir.mkdir()
    return {"root": root, "venv": venv, "environ": image_environ, "workdir": workdir}


def _executor(pipeline_yaml: str, component: str) -> dict:
    with open(os.path.join(REPO, "pipelines", "compiled", pipeline_yaml), encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    return spec["deploymentSpec"]["executors"][f"exec-{component}"]["container"]


def test_the_package_imports_from_site_packages(image_env):
    proc = _run(["python3", "-c", "import kfp_examplegen.components as c, examplegen; print(c.__file__)"],
                env=image_env["environ"], cwd=image_env["workdir"])
    assert str(image_env["venv"]) in proc.stdout and REPO not in proc.stdout


def test_csv_example_gen_runs_from_the_compiled_yaml(image_env):
    """Run exec-csv-example-gen's command from csv_ingest.yaml, as KFP would in the image."""
    import tensorflow as tf

    root = image_env["root"]
    container = _executor("csv_ingest.yaml", "csv-example-gen")
    examples_uri = str(root / "outputs" / "examples")
    output_file = str(root / "outputs" / "executor_output.json")
    executor_input = {
        "inputs": {"parameterValues": {
            "input_base": "", "input_config": "", "output_config": "", "range_config": "",
            "csv_options": "", "num_shards": 2, "expected_fingerprint": "", "force": False,
            "mlmd": f"sqlite:///{root}/mlmd.sqlite", "pipeline_name": "csv-ingest",
            "run_name": "image-test", "pipeline_root": str(root),
        }},
        "outputs": {
            "artifacts": {"examples": {"artifacts": [{
                "name": "examples", "type": {"schemaTitle": "tfx.Examples", "schemaVersion": "0.0.1"},
                "uri": examples_uri, "metadata": {},
            }]}},
            "outputFile": output_file,
        },
    }
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
    proc = subprocess.run(container["command"] + args, env=image_env["environ"], cwd=image_env["workdir"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    with open(output_file, encoding="utf-8") as f:
        output = json.load(f)
    [artifact] = output["artifacts"]["examples"]["artifacts"]
    metadata = artifact["metadata"]
    assert None not in metadata.values()
    assert json.loads(metadata["split_names"]) == ["train", "eval"]
    counts = json.loads(metadata["example_counts"])
    assert sum(counts.values()) == 10000  # data rows of the bundled taxi CSV
    for split, count in counts.items():
        files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*.gz"))
        assert len(files) == 2
        assert sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP")) == count
