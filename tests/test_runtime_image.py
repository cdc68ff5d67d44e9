"""What the component image runs, runs (no Docker engine on these machines).

The tests repeat images/Dockerfile's install steps in a clean virtual environment -- the
runtime lock, requirements.lock, alone, without dependency resolution, then this package
without dependencies, then `pip check` -- and run from there, the way KFP starts a task in
the image: `python3` from the image's PATH, the working directory outside the source tree,
EXAMPLEGEN_SAMPLE_DATA as the image sets it. The container contract test runs every
component spec's command and args verbatim with an executor_input shaped like KFP's
launcher's and checks the executor output and the artifacts. Outputs are read back with
TensorFlow in the test process (TensorFlow is not in the runtime set).

pip's cache is used as configured; byte-code compilation is skipped (--no-compile), which
changes no behaviour.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.helpers import dockerfile_stages
from tests.cloud_servers import cloud_servers, gcs_server, s3_server  # noqa: F401 (fixtures)
from tests.lineage_fixtures import postgres_url  # noqa: F401 (fixture)
from tests.test_fs_remote import stores  # noqa: F401 (fixture)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(REPO, "images", "Dockerfile")
LOCK = os.path.join(REPO, "requirements.lock")
PACKAGE_FILES = ["pyproject.toml", "setup.py", "README.md", "examplegen", "kfp_examplegen", "components", "pipelines"]

pytestmark = pytest.mark.slow


def _run(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def test_dockerfile_installs_what_this_test_installs():
    text = open(DOCKERFILE, encoding="utf-8").read()
    stages = dockerfile_stages(DOCKERFILE)
    assert re.search(r"^FROM --platform=linux/amd64 \$\{PYTHON_IMAGE\} AS build$", text, re.M)
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    build = "\n".join(stages["build"]["lines"])
    assert "pip install --no-deps -r /src/requirements.lock" in build
    assert "pip install --no-deps --no-build-isolation /src" in build
    for name in PACKAGE_FILES:
        assert re.search(rf"^COPY .*\b{re.escape(name)}\b", build, re.M), name
    # The default target (the last stage): the runtime venv on the shared base, non-root.
    assert list(stages)[-1] == "runtime" and stages["runtime"]["from"] == "base"
    final = "\n".join(stages["base"]["lines"] + stages["runtime"]["lines"])
    assert "build-essential" not in final and "apt-get" not in final  # no build tools
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert re.search(r"^USER 10001", final, re.M)  # non-root
    assert "EXAMPLEGEN_SAMPLE_DATA=/opt/examplegen/sample-data" in final


def build_image_env(root, locks=(LOCK,)) -> dict:
    """A clean venv under `root` with the stack and the package installed as the Dockerfile
    does: requirements.lock, the package, then any further lock (the beam target's), pip check."""
    src = root / "src"
    src.mkdir()
    for name in PACKAGE_FILES:  # COPY ... /src/
        source = os.path.join(REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so"))
        else:
            shutil.copy(source, src / name)
    for name in ("taxi", "taxi_tfrecord", "taxi_parquet", "taxi_avro", "taxi_jsonl", "images", "text_corpus"):  # COPY examples/data/<name> ...
        shutil.copytree(os.path.join(REPO, "examples", "data", name), root / "sample-data" / name)
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_NO_CACHE_DIR", "PYTHONPATH", "VIRTUAL_ENV")}
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    runtime_lock, *more_locks = locks
    _run(pip + ["install", "--no-deps", "--no-compile", "-r", runtime_lock], env=env)
    _run(pip + ["install", "--no-deps", "--no-build-isolation", str(src)], env=env)
    for lock in more_locks:
        _run(pip + ["install", "--no-deps", "--no-compile", "-r", lock], env=env)
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


@pytest.fixture(scope="module")
def image_env(tmp_path_factory):
    """A clean venv with the stack and the package installed as the Dockerfile does."""
    return build_image_env(tmp_path_factory.mktemp("image"))


def test_the_package_imports_from_site_packages_without_the_heavy_stack(image_env):
    code = ("import importlib.util, kfp_examplegen.components as c, examplegen, examplegen._framing; print(c.__file__); "
            "print([m for m in ('tensorflow', 'apache_beam', 'keras', 'components', 'pipelines') "
            "if importlib.util.find_spec(m)])")
    proc = _run(["python3", "-c", code], env=image_env["environ"], cwd=image_env["workdir"])
    path, absent = proc.stdout.strip().splitlines()
    assert str(image_env["venv"]) in path and REPO not in path
    assert absent == "[]"
    # the C extension was built from source by the install, not copied from the checkout
    proc = _run(["python3", "-c", "import examplegen._framing as f; print(f.__file__)"],
                env=image_env["environ"], cwd=image_env["workdir"])
    assert proc.stdout.startswith(str(image_env["venv"]))


def test_the_cli_ingests_in_the_runtime_environment(image_env):
    import tensorflow as tf

    out = image_env["root"] / "cli_out"
    _run(["examplegen", "ingest", "--input-base", str(image_env["root"] / "sample-data" / "taxi"),
          "--output", str(out), "--mlmd", f"sqlite:///{image_env['root']}/cli_mlmd.sqlite"],
         env=image_env["environ"], cwd=image_env["workdir"])
    files = tf.io.gfile.glob(str(out / "Split-*" / "*"))
    assert sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP")) == 10000


# ------------------------------------------------------------------ the container contract


def _spec(name: str) -> dict:
    with open(os.path.join(REPO, "components", name, "component.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


# The components the contract tests below run; a new component needs a contract test too.
CONTRACT_TESTED = {"resolve_span", "csv_example_gen", "split_examples", "ingestion_report", "import_example_gen",
                   "file_example_gen", "query_example_gen"}


def test_every_component_spec_has_a_contract_test():
    from kfp_examplegen.components import COMPONENT_NAMES

    specs = {d for d in os.listdir(os.path.join(REPO, "components"))
             if os.path.isfile(os.path.join(REPO, "components", d, "component.yaml"))}
    assert specs == set(COMPONENT_NAMES) == CONTRACT_TESTED


def test_pipeline_executors_are_the_component_specs_executors():
    """What the contract test runs (the component specs) is what the pipelines run."""
    for pipeline in ("csv_ingest.yaml", "import_and_resplit.yaml", "file_ingest.yaml", "image_ingest.yaml"):
        with open(os.path.join(REPO, "pipelines", "compiled", pipeline), encoding="utf-8") as f:
            executors = yaml.safe_load(f)["deploymentSpec"]["executors"]
        for key, executor in executors.items():
            name = key[len("exec-"):].replace("-", "_")
            [own] = _spec(name)["deploymentSpec"]["executors"].values()
            assert executor == own, key


class Launcher:
    """Runs a component as KFP's launcher starts it in the image: the spec's command and args
    verbatim, {{$}} replaced by an executor_input JSON of the launcher's shape. Output
    artifact URIs lie under a folder that stands for gs://bucket/pipeline-root."""

    def __init__(self, image_env, root, environ):
        self.image_env, self.root, self.environ = image_env, root, environ
        self.gs_root = root / "gs" / "bucket" / "pipeline-root"

    def run(self, name: str, params: dict, inputs: dict | None = None) -> dict:
        spec = _spec(name)
        [component] = spec["components"].values()
        [executor] = spec["deploymentSpec"]["executors"].values()
        task_dir = self.root / "tasks" / name
        outputs = component.get("outputDefinitions", {})
        executor_input = {
            "inputs": {"parameterValues": params,
                       "artifacts": {k: {"artifacts": [v]} for k, v in (inputs or {}).items()}},
            "outputs": {
                "parameters": {k: {"outputFile": str(task_dir / "parameters" / k)}
                               for k in outputs.get("parameters", {})},
                "artifacts": {k: {"artifacts": [{
                    "name": f"projects/p/locations/l/metadataStores/default/artifacts/{name}-{k}",
                    "type": {"schemaTitle": d["artifactType"]["schemaTitle"],
                             "schemaVersion": d["artifactType"]["schemaVersion"]},
                    "uri": str(self.gs_root / name / k), "metadata": {}}]}
                    for k, d in outputs.get("artifacts", {}).items()},
                "outputFile": str(task_dir / "kfp_outputs" / "output_metadata.json"),
            },
        }
        container = executor["container"]
        args = [json.dumps(executor_input) if a == "{{$}}" else a for a in container["args"]]
        proc = subprocess.run(container["command"] + args, env=self.environ, cwd=self.image_env["workdir"],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{name}: " + proc.stdout[-3000:] + proc.stderr[-3000:]
        with open(executor_input["outputs"]["outputFile"], encoding="utf-8") as f:
            return json.load(f)


def _artifact(output: dict, key: str) -> dict:
    [artifact] = output["artifacts"][key]["artifacts"]
    assert None not in artifact["metadata"].values()
    return {**artifact, "type": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}}


def _count(uri: str, split: str) -> int:
    import tensorflow as tf

    files = tf.io.gfile.glob(os.path.join(uri, f"Split-{split}", "*"))
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


@pytest.mark.parametrize("mount", ["no /gcs", "empty /gcs"])
def test_container_contract(image_env, gcs_server, stores, tmp_path, mount):  # noqa: F811
    """Each component from its spec, chained as csv-ingest and a re-split chain them, the
    input on gs:// (the Cloud Storage emulator) read with the client; an empty /gcs
    (open-source KFP's scratch volume) is not taken for the bucket."""
    bucket = stores["gs"].bucket()
    taxi_csv = image_env["root"] / "sample-data" / "taxi" / "data.csv"
    stores["gs"].put(bucket, "taxi/span-4/data.csv", taxi_csv.read_bytes())
    gcs_mount = tmp_path / "gcs"
    if mount == "empty /gcs":
        gcs_mount.mkdir()
    environ = {**image_env["environ"], "STORAGE_EMULATOR_HOST": gcs_server.url,
               "EXAMPLEGEN_GCS_MOUNT": str(gcs_mount)}
    launcher = Launcher(image_env, tmp_path, environ)
    workdir_store = image_env["workdir"] / "mlmd.sqlite"
    if workdir_store.exists():
        workdir_store.unlink()
    lineage = {"mlmd": "", "pipeline_name": "contract", "run_name": "run-1",
               "pipeline_root": f"gs://{bucket}/pipeline-root"}
    input_config = {"splits": [{"name": "single_split", "pattern": "span-{SPAN}/*.csv"}]}

    span = launcher.run("resolve_span", {"input_base": f"gs://{bucket}/taxi", "input_config": input_config,
                                         **lineage})["parameterValues"]
    assert (span["span"], span["version"]) == (4, -1)
    assert span["files"] == [f"gs://{bucket}/taxi/span-4/data.csv"]
    assert span["range_config"] == {"static_range": {"start_span_number": 4, "end_span_number": 4}}

    gen = launcher.run("csv_example_gen", {
        "input_base": f"gs://{bucket}/taxi", "input_config": json.dumps(input_config),  # JSON text works too
        "range_config": span["range_config"], "expected_fingerprint": span["fingerprint"],
        "num_shards": 2, **lineage})
    examples = _artifact(gen, "examples")
    md = examples["metadata"]
    assert examples["uri"] == str(launcher.gs_root / "csv_example_gen" / "examples")
    assert json.loads(md["split_names"]) == ["train", "eval"] and md["span"] == 4
    assert md["input_fingerprint"] == span["fingerprint"]
    assert (md["payload_format"], md["file_format"]) == ("FORMAT_TF_EXAMPLE", "tfrecords_gzip")
    counts = json.loads(md["example_counts"])
    assert counts == {s: _count(examples["uri"], s) for s in ("train", "eval")} and sum(counts.values()) == 10000

    split = launcher.run("split_examples", {
        "output_config": {"split_config": {"splits": [{"name": "a", "hash_buckets": 1},
                                                      {"name": "b", "hash_buckets": 1}]}},
        "input_splits": ["train"], **lineage}, inputs={"input_examples": examples})
    resplit = _artifact(split, "examples")
    resplit_counts = json.loads(resplit["metadata"]["example_counts"])
    assert sum(resplit_counts.values()) == counts["train"]
    assert resplit_counts == {s: _count(resplit["uri"], s) for s in ("a", "b")}

    report = launcher.run("ingestion_report", {"sample_rows": 2, **lineage}, inputs={"examples": examples})
    [html] = report["artifacts"]["report"]["artifacts"]
    assert "Examples" in open(html["uri"], encoding="utf-8").read()

    if mount == "empty /gcs":
        assert os.listdir(gcs_mount) == []  # nothing taken from or written into the scratch volume
    # No store in the environment and the pipeline root not mounted: the engine's default
    # SQLite file in the working directory holds the run.
    assert workdir_store.is_file()


def test_engine_beam_in_the_default_image_names_the_beam_image(image_env, tmp_path):
    """The default image has no Beam: a component asked for engine="beam" fails and says
    which image has it."""
    spec = _spec("csv_example_gen")
    [executor] = spec["deploymentSpec"]["executors"].values()
    executor_input = {"inputs": {"parameterValues": {"input_base": "", "engine": "beam",
                                                     "mlmd": f"sqlite:///{tmp_path}/m.sqlite"}},
                      "outputs": {"artifacts": {"examples": {"artifacts": [{
                          "name": "examples", "type": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"},
                          "uri": str(tmp_path / "examples"), "metadata": {}}]}},
                          "outputFile": str(tmp_path / "output_metadata.json")}}
    args = [json.dumps(executor_input) if a == "{{$}}" else a for a in executor["container"]["args"]]
    proc = subprocess.run(executor["container"]["command"] + args, env=image_env["environ"],
                          cwd=image_env["workdir"], capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "engine='beam' needs Apache Beam" in proc.stderr and "`make image-beam`" in proc.stderr
    assert not (tmp_path / "examples").exists() or not os.listdir(tmp_path / "examples")


def test_import_example_gen_contract_on_the_bundled_sample(image_env, tmp_path):
    launcher = Launcher(image_env, tmp_path, image_env["environ"])
    output = launcher.run("import_example_gen", {"input_base": "", "num_shards": 1,
                                                 "mlmd": f"sqlite:///{tmp_path}/m.sqlite"})
    examples = _artifact(output, "examples")
    counts = json.loads(examples["metadata"]["example_counts"])
    assert sum(counts.values()) == 2000 == sum(_count(examples["uri"], s) for s in counts)


@pytest.mark.parametrize("source_format", ["parquet", "avro", "jsonl"])
def test_file_example_gen_contract_on_the_bundled_samples(image_env, tmp_path, source_format):
    launcher = Launcher(image_env, tmp_path, image_env["environ"])
    output = launcher.run("file_example_gen", {
        "source_format": source_format, "input_base": "", "num_shards": 1,
        "source_options": {"columns": ["fare", "company"]}, "mlmd": f"sqlite:///{tmp_path}/m.sqlite"})
    examples = _artifact(output, "examples")
    counts = json.loads(examples["metadata"]["example_counts"])
    assert sum(counts.values()) == 2000 == sum(_count(examples["uri"], s) for s in counts)


def test_file_example_gen_contract_on_the_bundled_images(image_env, tmp_path):
    """Pillow is in the runtime set: the bundled shapes become one example per image, with the
    label map in the artifact's metadata, and the report shows their thumbnails."""
    import tensorflow as tf

    launcher = Launcher(image_env, tmp_path, image_env["environ"])
    lineage = {"mlmd": f"sqlite:///{tmp_path}/m.sqlite"}
    output = launcher.run("file_example_gen", {"source_format": "images", "input_base": "",
                                               "source_options": {"verify": "decode"}, **lineage})
    examples = _artifact(output, "examples")
    assert json.loads(examples["metadata"]["label_map"]) == ["circle", "square", "triangle"]
    images = image_env["root"] / "sample-data" / "images"
    expected = sorted(p.read_bytes() for p in images.glob("*/*"))
    files = tf.io.gfile.glob(os.path.join(examples["uri"], "Split-*", "*"))
    got = sorted(tf.train.Example.FromString(r.numpy()).features.feature["image/encoded"].bytes_list.value[0]
                 for r in tf.data.TFRecordDataset(files, compression_type="GZIP"))
    assert got == expected and len(got) == 18
    report = launcher.run("ingestion_report", lineage, inputs={"examples": examples})
    [html] = report["artifacts"]["report"]["artifacts"]
    assert open(html["uri"], encoding="utf-8").read().count('src="data:image/png;base64,') == 9


def test_file_example_gen_contract_on_the_bundled_text_corpus(image_env, tmp_path):
    import gzip

    launcher = Launcher(image_env, tmp_path, image_env["environ"])
    output = launcher.run("file_example_gen", {"source_format": "text", "input_base": "", "num_shards": 1,
                                               "source_options": {"unit": "line"},
                                               "mlmd": f"sqlite:///{tmp_path}/m.sqlite"})
    examples = _artifact(output, "examples")
    corpus = image_env["root"] / "sample-data" / "text_corpus" / "lines.txt.gz"
    lines = gzip.decompress(corpus.read_bytes()).split(b"\n")[:-1]
    counts = json.loads(examples["metadata"]["example_counts"])
    assert sum(counts.values()) == len(lines) == sum(_count(examples["uri"], s) for s in counts)


def test_query_example_gen_contract_with_the_password_from_the_environment(image_env, postgres_url,  # noqa: F811
                                                                          tmp_path):
    import psycopg2

    conn = psycopg2.connect(dbname=postgres_url.rsplit("/", 1)[1], host="127.0.0.1", user="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT g AS id, g * 0.5 AS x FROM generate_series(1, 300) g")
    conn.close()
    password = "Contract-secret-7d1c"  # PostgreSQL here trusts 127.0.0.1: any password works
    launcher = Launcher(image_env, tmp_path, {**image_env["environ"], "EXAMPLEGEN_DB_PASSWORD": password})
    output = launcher.run("query_example_gen", {
        "connection": postgres_url, "num_shards": 1, "mlmd": f"sqlite:///{tmp_path}/m.sqlite",
        "input_config": {"splits": [{"name": "single_split", "pattern": "SELECT id, x FROM t"}]}})
    examples = _artifact(output, "examples")
    counts = json.loads(examples["metadata"]["example_counts"])
    assert sum(counts.values()) == 300 == sum(_count(examples["uri"], s) for s in counts)
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert password.encode() not in written
