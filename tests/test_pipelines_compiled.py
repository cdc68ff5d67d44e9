"""The compiled pipeline YAML in pipelines/compiled/: current, valid, and portable.

Valid means what the KFP API server and Vertex AI check: the file parses strictly as a
kfp-pipeline-spec PipelineSpec, schemaVersion 2.1.0, the pipeline name is a lowercase DNS
label, KFP's own loader accepts it, and it uses no kfp-kubernetes-only feature except
query-ingest's database password secret.
"""

import ast
import filecmp
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kfp_examplegen import components
from kfp_examplegen.pipelines.compile import (
    COMPILED_DIR,
    COMPONENTS_DIR,
    compile_components,
    compile_pipelines,
    component_spec_path,
    yaml_file_name,
)
from kfp_examplegen.pipelines.definitions import PIPELINE_NAMES

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
VERTEX_SCHEMA_TITLE = re.compile(r"^[a-z][a-z0-9-_]{2,20}[.][A-Z][a-zA-Z0-9-_]{2,49}$")
YAML_FILES = [os.path.join(COMPILED_DIR, yaml_file_name(name)) for name in PIPELINE_NAMES]


def _documents(path):
    with open(path, encoding="utf-8") as f:
        return list(yaml.safe_load_all(f))


def _spec(path) -> dict:
    return _documents(path)[0]


@pytest.fixture(scope="module")
def fresh_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    compile_pipelines(str(out), image=components.DEFAULT_IMAGE)
    return out


def test_description_names_the_image(fresh_dir):
    for path in YAML_FILES:
        description = _spec(path)["pipelineInfo"]["description"]
        assert f"Runs in the container image {components.DEFAULT_IMAGE}" in description
        assert "--image" in description


def test_checked_in_yaml_is_current(fresh_dir):
    written = sorted(os.listdir(fresh_dir))
    assert written == sorted(os.path.basename(p) for p in YAML_FILES)
    stale = [name for name in written
             if not filecmp.cmp(fresh_dir / name, os.path.join(COMPILED_DIR, name), shallow=False)]
    assert not stale, f"{stale} differ from a fresh compile: run `examplegen compile` and commit"


@pytest.mark.parametrize("path", YAML_FILES, ids=os.path.basename)
def test_parses_strictly_as_pipeline_spec(path):
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(_spec(path), spec)  # unknown fields raise
    assert spec.schema_version == "2.1.0"
    assert spec.sdk_version == "kfp-2.13.0"
    assert spec.deployment_spec  # executors present


@pytest.mark.parametrize("path", YAML_FILES, ids=os.path.basename)
def test_pipeline_name_is_a_dns_label(path):
    name = _spec(path)["pipelineInfo"]["name"]
    assert DNS_LABEL.match(name) and len(name) <= 63, name
    assert name in PIPELINE_NAMES


@pytest.mark.parametrize("path", YAML_FILES, ids=os.path.basename)
def test_kfp_loads_it_as_a_component(path):
    from kfp import components as kfp_components

    loaded = kfp_components.load_component_from_file(path)
    assert loaded.name == _spec(path)["pipelineInfo"]["name"]
    source = "connection" if path.endswith("query_ingest.yaml") else "input_base"
    assert source in loaded.component_spec.inputs
    assert "mlmd" in loaded.component_spec.inputs


@pytest.mark.parametrize("path", YAML_FILES, ids=os.path.basename)
def test_no_kubernetes_only_features(path):
    docs = _documents(path)
    # kfp-kubernetes settings (volumes, secrets, node selectors, ...) compile into a second
    # YAML document, the PlatformSpec, which Vertex AI does not run. query-ingest's one
    # setting is the database password from a secret (test_query_password_comes_from_a_secret).
    assert len(docs) == (2 if path.endswith("query_ingest.yaml") else 1)
    spec = docs[0]
    assert "platforms" not in spec and "platformSpec" not in spec
    for name, executor in spec["deploymentSpec"]["executors"].items():
        assert set(executor) == {"container"}, name
        assert set(executor["container"]) <= {"image", "command", "args", "env", "resources"}, name


@pytest.mark.parametrize("path", YAML_FILES, ids=os.path.basename)
def test_components_run_the_project_image_without_installing(path):
    for name, executor in _spec(path)["deploymentSpec"]["executors"].items():
        container = executor["container"]
        assert container["image"] == components.DEFAULT_IMAGE, name
        command = " ".join(container["command"])
        assert "pip install" not in command and "ensurepip" not in command, name
        assert "kfp.dsl.executor_main" in command, name


@pytest.mark.parametrize("path", YAML_FILES, ids=os.path.basename)
def test_embedded_component_sources_are_valid_python(path):
    for name, executor in _spec(path)["deploymentSpec"]["executors"].items():
        source = executor["container"]["command"][-1]
        tree = ast.parse(source)
        functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert functions == [executor["container"]["args"][-1]], name
        # Only KFP's own types: a user's environment needs nothing of this project to load it.
        assert "kfp_examplegen" not in source.split(f"def {functions[0]}", 1)[0], name


@pytest.mark.parametrize("path", YAML_FILES, ids=os.path.basename)
def test_artifact_types_are_kfp_system_types(path):
    titles = set()
    for component in _spec(path)["components"].values():
        for io in ("inputDefinitions", "outputDefinitions"):
            for artifact in component.get(io, {}).get("artifacts", {}).values():
                title = artifact["artifactType"]["schemaTitle"]
                assert VERTEX_SCHEMA_TITLE.match(title), title
                titles.add((title, artifact["artifactType"]["schemaVersion"]))
    assert titles == {("system.Dataset", "0.0.1"), ("system.HTML", "0.0.1")}


@pytest.mark.parametrize("path", YAML_FILES, ids=os.path.basename)
def test_kfp_step_cache_is_off_and_lineage_gets_run_id(path):
    tasks = _spec(path)["root"]["dag"]["tasks"]
    assert len(tasks) >= 2
    for name, task in tasks.items():
        assert not task.get("cachingOptions", {}).get("enableCache"), name
        params = task["inputs"]["parameters"]
        assert params["run_name"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
        assert params["pipeline_root"]["runtimeValue"]["constant"] == "{{$.pipeline_root}}"
        assert params["mlmd"]["componentInputParameter"] == "mlmd"


def test_csv_ingest_wires_resolve_span_into_ingestion():
    tasks = _spec(YAML_FILES[0])["root"]["dag"]["tasks"]
    gen = tasks["csv-example-gen"]
    assert gen["dependentTasks"] == ["resolve-span"]
    # The ingest step gets what resolve_span resolved: the pinned spans and the files' fingerprint.
    for param, output in (("expected_fingerprint", "fingerprint"), ("range_config", "range_config")):
        wired = gen["inputs"]["parameters"][param]["taskOutputParameter"]
        assert wired == {"outputParameterKey": output, "producerTask": "resolve-span"}
    report = tasks["ingestion-report"]["inputs"]["artifacts"]["examples"]["taskOutputArtifact"]
    assert report == {"outputArtifactKey": "examples", "producerTask": "csv-example-gen"}


def test_import_and_resplit_wires_the_resplit_into_the_report():
    tasks = _spec(YAML_FILES[1])["root"]["dag"]["tasks"]
    split = tasks["split-examples"]["inputs"]["artifacts"]["input_examples"]["taskOutputArtifact"]
    assert split == {"outputArtifactKey": "examples", "producerTask": "import-example-gen"}
    report = tasks["ingestion-report"]["inputs"]["artifacts"]["examples"]["taskOutputArtifact"]
    assert report == {"outputArtifactKey": "examples", "producerTask": "split-examples"}


def test_compile_image_option_sets_every_component_image(tmp_path):
    from examplegen.cli import main

    assert main(["compile", "--output-dir", str(tmp_path), "--image", "registry.example/eg:7"]) == 0
    specs = [tmp_path / yaml_file_name(name) for name in PIPELINE_NAMES]
    # The component specs go beside them (never over the checked-in ones).
    specs += [component_spec_path(str(tmp_path / "components"), name) for name in components.COMPONENT_NAMES]
    for path in specs:
        executors = _spec(path)["deploymentSpec"]["executors"]
        assert {e["container"]["image"] for e in executors.values()} == {"registry.example/eg:7"}
        assert "Runs in the container image registry.example/eg:7" in open(path, encoding="utf-8").read()


def test_compile_image_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(components.IMAGE_ENV, "env.example/eg:8")
    compile_pipelines(str(tmp_path), names=["csv_ingest"])
    executors = _spec(tmp_path / "csv_ingest.yaml")["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {"env.example/eg:8"}


def test_query_password_comes_from_a_secret():
    path = os.path.join(COMPILED_DIR, "query_ingest.yaml")
    spec, platform = _documents(path)
    assert "password" not in spec["root"]["inputDefinitions"]["parameters"]
    assert spec["root"]["inputDefinitions"]["parameters"]["db_password_secret"]["defaultValue"] == "examplegen-db"
    assert platform == {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {"exec-query-example-gen": {
        "secretAsEnv": [{"keyToEnv": [{"envVar": "EXAMPLEGEN_DB_PASSWORD", "secretKey": "password"}],
                         "secretNameParameter": {"componentInputParameter": "db_password_secret"}}]}}}}}}
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["ingestion-report"]["inputs"]["artifacts"]["examples"]["taskOutputArtifact"] == {
        "outputArtifactKey": "examples", "producerTask": "query-example-gen"}


# ----------------------------------------------------------------------- component specs

COMPONENT_SPECS = [component_spec_path(COMPONENTS_DIR, name) for name in components.COMPONENT_NAMES]


def test_checked_in_component_specs_are_current(tmp_path):
    written = compile_components(str(tmp_path), image=components.DEFAULT_IMAGE)
    assert sorted(os.path.relpath(p, tmp_path) for p in written) == sorted(
        os.path.relpath(p, COMPONENTS_DIR) for p in COMPONENT_SPECS)
    stale = [p for p in written
             if not filecmp.cmp(p, os.path.join(COMPONENTS_DIR, os.path.relpath(p, tmp_path)), shallow=False)]
    assert not stale, f"{stale} differ from a fresh compile: run `examplegen compile` and commit"


def test_component_specs_load_in_a_fresh_process_with_only_kfp(tmp_path):
    """What a KFP user does with a spec file: kfp only, this project neither imported nor
    importable (no PYTHONPATH, working directory outside the repository)."""
    code = """
import json, sys
from kfp import components, compiler, dsl
from kfp.dsl import Artifact, Dataset, Input
loaded = {}
for path in sys.argv[1:]:
    c = components.load_component_from_file(path)
    loaded[c.name] = {"inputs": sorted(c.component_spec.inputs or {}),
                      "outputs": {k: v.type for k, v in (c.component_spec.outputs or {}).items()},
                      "image": c.component_spec.implementation.container.image,
                      "description": c.description or ""}
gen = components.load_component_from_file(sys.argv[2])

@dsl.component
def count(examples: Input[Dataset]) -> int:
    return 0

@dsl.component
def anything(artifact: Input[Artifact]) -> int:
    return 0

@dsl.pipeline(name="user-pipeline")
def user(input_base: str):
    task = gen(input_base=input_base, input_config={"splits": [{"name": "a", "pattern": "*"}]})
    count(examples=task.outputs["examples"])
    anything(artifact=task.outputs["examples"])

compiler.Compiler().compile(user, "user.yaml")
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("kfp_examplegen", "examplegen", "components", "pipelines"))
print(json.dumps({"loaded": loaded, "bad": bad}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # The dev venv has this package installed; hide it as a user's environment would not have it.
    code = "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]\n" + code
    (tmp_path / "user_pipeline.py").write_text(code)
    done = subprocess.run([sys.executable, "-I", "user_pipeline.py", *COMPONENT_SPECS], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["bad"] == []
    loaded = result["loaded"]
    assert sorted(loaded) == sorted(n.replace("_", "-") for n in components.COMPONENT_NAMES)
    assert loaded["csv-example-gen"]["outputs"] == {"examples": "system.Dataset@0.0.1"}
    assert loaded["split-examples"]["outputs"] == {"examples": "system.Dataset@0.0.1"}
    assert "expected_fingerprint" in loaded["csv-example-gen"]["inputs"]
    for name, spec in loaded.items():
        assert spec["image"] == components.DEFAULT_IMAGE, name
    for path in COMPONENT_SPECS:  # the spec's description (its header) says which image it runs
        header = open(path, encoding="utf-8").read().split("\ncomponents:", 1)[0]
        assert f"Runs in the container image {components.DEFAULT_IMAGE}" in header, path
    assert (tmp_path / "user.yaml").exists()
