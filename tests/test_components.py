"""The KFP components: their interface, image setting and argument handling."""

import json
import os

import pytest

from kfp_examplegen import components
from kfp_examplegen.components import _common
from examplegen.errors import ConfigError, ExampleGenError, SourceError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- image


def test_image_setting_precedence(monkeypatch):
    monkeypatch.delenv(components.IMAGE_ENV, raising=False)
    assert components.image() == components.DEFAULT_IMAGE
    assert components.DEFAULT_IMAGE.endswith(":" + __import__("examplegen").__version__)
    monkeypatch.setenv(components.IMAGE_ENV, "env.example/eg:1")
    assert components.image() == "env.example/eg:1"
    assert components.image("cli.example/eg:2") == "cli.example/eg:2"


def test_load_builds_every_component_for_the_image():
    built = components.load("registry.example/examplegen:3")
    for name in components.COMPONENT_NAMES:
        container = getattr(built, name).component_spec.implementation.container
        assert container.image == "registry.example/examplegen:3", name
        command = " ".join(container.command)
        assert "pip install" not in command, name  # nothing installed at run time
    assert components.load("registry.example/examplegen:3") is built  # cached per image


def test_component_interfaces():
    built = components.load()
    gen = built.csv_example_gen.component_spec
    assert gen.outputs["examples"].type == "tfx.Examples@0.0.1"
    assert {"input_base", "input_config", "output_config", "range_config", "csv_options",
            "mlmd", "expected_fingerprint"} <= set(gen.inputs)
    span = built.resolve_span.component_spec
    assert {k: v.type for k, v in span.outputs.items()} == {
        "span": "Integer", "version": "Integer", "input_config": "String", "fingerprint": "String"}
    split = built.split_examples.component_spec
    assert split.inputs["input_examples"].type == "tfx.Examples@0.0.1"
    assert split.outputs["examples"].type == "tfx.Examples@0.0.1"
    report = built.ingestion_report.component_spec
    assert report.inputs["examples"].type == "tfx.Examples@0.0.1"
    assert report.outputs["report"].type == "system.HTML@0.0.1"


def test_examples_artifact_type_matches_tfx():
    from kfp_examplegen.components.artifacts import Examples

    assert (Examples.schema_title, Examples.schema_version) == ("tfx.Examples", "0.0.1")


def test_tfx_namespace_is_allowed_only_inside_the_block():
    from kfp.dsl.types import type_utils

    from kfp_examplegen.components._kfp_compat import allow_tfx_artifact_types

    with pytest.raises(TypeError, match="namespace"):
        type_utils.validate_bundled_artifact_type("tfx.Examples@0.0.1")
    with allow_tfx_artifact_types():
        type_utils.validate_bundled_artifact_type("tfx.Examples@0.0.1")
        with pytest.raises(TypeError):
            type_utils.validate_bundled_artifact_type("acme.Examples@0.0.1")
        with pytest.raises(TypeError):  # Vertex AI rejects a lower-case type name
            type_utils.validate_bundled_artifact_type("tfx.examples@0.0.1")
    with pytest.raises(TypeError):
        type_utils.validate_bundled_artifact_type("tfx.Examples@0.0.1")


# ----------------------------------------------------------------------------- arguments


def test_optional_and_json_parameters():
    assert _common.optional("") is None and _common.optional("  ") is None
    assert _common.optional(" x ") == "x"
    assert _common.json_object("", "csv_options") is None
    assert _common.json_object('{"delimiter": ";"}', "csv_options") == {"delimiter": ";"}
    with pytest.raises(ConfigError, match="csv_options: not valid JSON"):
        _common.json_object("{delimiter", "csv_options")
    with pytest.raises(ConfigError, match="csv_options: expected a JSON object, got list"):
        _common.json_object("[1]", "csv_options")


def test_string_list_parameter():
    assert _common.string_list("", "input_splits") is None
    assert _common.string_list("train, eval", "input_splits") == ["train", "eval"]
    assert _common.string_list('["train"]', "input_splits") == ["train"]
    with pytest.raises(ConfigError, match="input_splits: expected a JSON list of strings"):
        _common.string_list("[1, 2]", "input_splits")


def test_gcs_uris_are_read_through_the_mount(tmp_path):
    mount = tmp_path / "gcs"
    assert _common.local_path("gs://bucket/data", str(mount)) == "gs://bucket/data"  # no mount
    mount.mkdir()
    assert _common.local_path("gs://bucket/data", str(mount)) == str(mount / "bucket" / "data")
    assert _common.local_path("/data/x", str(mount)) == "/data/x"


def test_empty_input_base_means_the_bundled_sample(monkeypatch, tmp_path):
    monkeypatch.delenv("EXAMPLEGEN_SAMPLE_DATA", raising=False)
    assert _common.input_base_or_sample("", "taxi") == os.path.join(REPO, "examples", "data", "taxi")
    assert os.path.isfile(os.path.join(_common.input_base_or_sample("", "taxi"), "data.csv"))
    assert os.listdir(_common.input_base_or_sample("", "taxi_tfrecord")) == ["data.tfrecord.gz"]
    assert _common.input_base_or_sample("/my/data", "taxi") == "/my/data"
    (tmp_path / "taxi").mkdir()
    monkeypatch.setenv("EXAMPLEGEN_SAMPLE_DATA", str(tmp_path))  # as set in the image
    assert _common.input_base_or_sample("", "taxi") == str(tmp_path / "taxi")
    with pytest.raises(ConfigError, match="no input_base given and the sample data .*absent"):
        _common.input_base_or_sample("", "absent")


def test_lineage_store_defaults():
    env: dict = {}
    assert _common.lineage_store("mysql://root@127.0.0.1:3306/m", "/root", env) == "mysql://root@127.0.0.1:3306/m"
    assert _common.lineage_store("", "/pipeline/root", env) == "sqlite:////pipeline/root/mlmd.sqlite"
    # KFP left the placeholder unresolved, or the root is remote without a mount: engine default.
    assert _common.lineage_store("", "{{$.pipeline_root}}", env) is None
    assert _common.lineage_store("", "s3://bucket/root", env) is None
    assert _common.lineage_store("", "", env) is None
    # A store named by the environment (KFP's injected MLMD service) wins over the default.
    grpc = {"METADATA_GRPC_SERVICE_HOST": "metadata-grpc-service.kubeflow", "METADATA_GRPC_SERVICE_PORT": "8080"}
    assert _common.lineage_store("", "/pipeline/root", grpc) is None
    assert _common.lineage_store("", "/pipeline/root", {"EXAMPLEGEN_MLMD": "sqlite:///x"}) is None


def test_lineage_store_none_resolves_to_kfp_grpc_service():
    from examplegen.lineage import StoreConfig

    grpc = {"METADATA_GRPC_SERVICE_HOST": "metadata-grpc-service.kubeflow", "METADATA_GRPC_SERVICE_PORT": "8080"}
    url = _common.lineage_store("", "/pipeline/root", grpc)
    assert StoreConfig.resolve(url, grpc).url() == "grpc://metadata-grpc-service.kubeflow:8080"


def test_run_name_placeholder_left_unresolved_is_ignored():
    assert _common.run_name_or_none("{{$.pipeline_job_uuid}}") is None
    assert _common.run_name_or_none("") is None
    assert _common.run_name_or_none("8d0c-run") == "8d0c-run"


def test_artifact_metadata_never_holds_none():
    assert _common.artifact_metadata({"span": 0, "version": None, "split_names": "[]"}) == {
        "span": 0, "split_names": "[]"}


def test_fingerprint_check():
    class Result:
        input_fingerprint = "sha256:bbb"

    _common.check_fingerprint(Result(), "")  # not requested
    _common.check_fingerprint(Result(), "sha256:bbb")
    with pytest.raises(SourceError, match="changed between resolve_span and ingestion.*sha256:aaa"):
        _common.check_fingerprint(Result(), "sha256:aaa")


def test_resolve_and_record_matches_ingest_fingerprint(tmp_path):
    from examplegen.lineage import open_store
    from examplegen.lineage.query import lineage

    data = tmp_path / "in"
    data.mkdir()
    (data / "a.csv").write_text("x,y\n1,a\n2,b\n")
    store = f"sqlite:///{tmp_path}/m.sqlite"
    resolutions, fingerprint = _common.resolve_and_record(
        str(data), None, None, mlmd=store, pipeline_name="p", run_name="r1")
    assert [r.span for r in resolutions] == [0]
    assert fingerprint == resolutions[0].fingerprint
    # The execution is recorded with the file (and its digest) as input.
    found = lineage(open_store(store), str(data / "a.csv"))
    [match] = found["matches"]
    [execution] = match["downstream"]["executions"]
    assert (execution["type"], execution["state"], execution["run"]) == ("examplegen.ResolveSpan", "COMPLETE", "r1")
    assert execution["properties"]["input_fingerprint"] == fingerprint


def test_resolve_errors_are_engine_errors(tmp_path):
    with pytest.raises(ExampleGenError, match="does not exist"):
        _common.resolve_and_record(str(tmp_path / "missing"), None, None,
                                   mlmd=f"sqlite:///{tmp_path}/m.sqlite", pipeline_name="p", run_name="r")


# ----------------------------------------------------------------------------- functions


def test_resolve_span_function_outputs(tmp_path):
    """The component's Python function, called as the KFP executor would."""
    from kfp_examplegen.components.functions import resolve_span

    data = tmp_path / "in"
    (data / "span-03").mkdir(parents=True)
    (data / "span-07").mkdir(parents=True)
    (data / "span-03" / "a.csv").write_text("x\n1\n")
    (data / "span-07" / "a.csv").write_text("x\n2\n")
    config = json.dumps({"splits": [{"name": "all", "pattern": "span-{SPAN}/*.csv"}]})
    span, version, resolved, fingerprint = resolve_span(
        input_base=str(data), input_config=config, mlmd=f"sqlite:///{tmp_path}/m.sqlite",
        run_name="{{$.pipeline_job_uuid}}")
    assert (span, version) == (7, -1)
    assert json.loads(resolved) == {"splits": [{"name": "all", "pattern": "span-07/*.csv"}]}
    assert fingerprint.startswith("sha256:")
