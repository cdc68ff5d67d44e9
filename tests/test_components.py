"""The KFP components: their interface, image setting and argument handling."""

import json
import os

import pytest

from kfp_examplegen import components
from kfp_examplegen.components import _common
from examplegen.errors import ConfigError, ExampleGenError, LineageError, SourceError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- image


def test_image_setting_precedence(monkeypatch):
    monkeypatch.delenv(components.IMAGE_ENV, raising=False)
    assert components.image() == components.DEFAULT_IMAGE
    assert components.DEFAULT_IMAGE.endswith(":" + __import__("examplegen").__version__)
    monkeypatch.setenv(components.IMAGE_ENV, "env.example/eg:1")
    assert components.image() == "env.example/eg:1"
    assert components.image("cli.example/eg:2") == "cli.example/eg:2"


def test_beam_image_is_named_after_the_component_image(monkeypatch):
    """`make image-beam` tags the beam target so: the component image's tag plus -beam."""
    monkeypatch.delenv(components.IMAGE_ENV, raising=False)
    version = __import__("examplegen").__version__
    assert components.beam_image() == f"kfp-examplegen:{version}-beam"
    monkeypatch.setenv(components.IMAGE_ENV, "registry.example:5000/team/eg:1")
    assert components.beam_image() == "registry.example:5000/team/eg:1-beam"
    assert components.beam_image("cli.example/eg:2") == "cli.example/eg:2-beam"
    assert components.beam_image("cli.example/eg:2-beam") == "cli.example/eg:2-beam"  # already the Beam image
    for ref in ("registry.example:5000/team/eg", "eg", "eg@sha256:" + "0" * 64):
        with pytest.raises(ValueError, match="needs a NAME:TAG reference"):
            components.beam_image(ref)


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
    assert gen.outputs["examples"].type == "system.Dataset@0.0.1"
    assert {"input_base", "input_config", "output_config", "range_config", "csv_options",
            "mlmd", "expected_fingerprint"} <= set(gen.inputs)
    assert {k: gen.inputs[k].type for k in ("input_config", "output_config", "range_config", "csv_options")} == {
        "input_config": "Dict", "output_config": "Dict", "range_config": "Dict", "csv_options": "Dict"}
    span = built.resolve_span.component_spec
    assert {k: v.type for k, v in span.outputs.items()} == {
        "span": "Integer", "version": "Integer", "input_config": "Dict", "range_config": "Dict",
        "fingerprint": "String", "files": "List"}
    split = built.split_examples.component_spec
    assert split.inputs["input_examples"].type == "system.Dataset@0.0.1"
    assert split.outputs["examples"].type == "system.Dataset@0.0.1"
    assert split.inputs["input_splits"].type == "List"
    report = built.ingestion_report.component_spec
    assert report.inputs["examples"].type == "system.Dataset@0.0.1"
    assert report.outputs["report"].type == "system.HTML@0.0.1"
    assert "kfp-examplegen:" in built.csv_example_gen.description  # names the image it runs


def test_the_sdk_is_not_patched():
    """Building the components leaves KFP's artifact-type check as it is."""
    from kfp.dsl.types import type_utils

    components.load("registry.example/examplegen:4")
    with pytest.raises(TypeError, match="namespace"):
        type_utils.validate_bundled_artifact_type("tfx.Examples@0.0.1")


# ----------------------------------------------------------------------------- arguments


def test_config_parameters_take_a_dict_or_its_json_text():
    assert _common.optional("") is None and _common.optional("  ") is None
    assert _common.optional(" x ") == "x"
    for empty in ("", None, {}, "  "):
        assert _common.struct(empty, "csv_options") is None
    assert _common.struct('{"delimiter": ";"}', "csv_options") == {"delimiter": ";"}
    assert _common.struct({"delimiter": ";"}, "csv_options") == {"delimiter": ";"}
    with pytest.raises(ConfigError, match="csv_options: not valid JSON"):
        _common.struct("{delimiter", "csv_options")
    with pytest.raises(ConfigError, match="csv_options: expected a JSON object .dict., got list"):
        _common.struct("[1]", "csv_options")


def test_string_list_parameter():
    assert _common.string_list("", "input_splits") is None
    assert _common.string_list([], "input_splits") is None
    assert _common.string_list("train, eval", "input_splits") == ["train", "eval"]
    assert _common.string_list('["train"]', "input_splits") == ["train"]
    assert _common.string_list(["train"], "input_splits") == ["train"]
    with pytest.raises(ConfigError, match="input_splits: expected a list of strings"):
        _common.string_list("[1, 2]", "input_splits")


def _ingest_arguments(**overrides):
    values = dict(input_base="", sample="taxi", source_format="csv", input_config={}, output_config={},
                  range_config={}, csv_options={}, num_shards=0, force=False, lineage={})
    values.update(overrides)
    return _common.ingest_arguments(**values)


@pytest.mark.parametrize("overrides, message", [
    ({"input_config": {"splits": [{"name": "a"}]}}, r"^input_config\.splits\[0\]"),
    ({"input_config": "{"}, r"^input_config: not valid JSON"),
    ({"output_config": {"split_config": {"splits": [{"name": "a", "hash_buckets": "2x"}]}}},
     r"^output_config\.split_config\.splits\[0\]\.hash_buckets"),
    ({"range_config": {"static_range": {"start_span_number": "x"}}}, r"^range_config\.static_range"),
    ({"range_config": [1]}, r"^range_config: expected a JSON object"),
    ({"csv_options": {"delimiter": ";", "colour": "red"}}, r"^csv_options: csv option 'colour' is unknown"),
    ({"num_shards": -1}, r"^num_shards: expected an integer >= 0, got -1"),
    ({"num_shards": "2"}, r"^num_shards: expected an integer"),
    ({"force": "yes"}, r"^force: expected true or false"),
    ({"expected_fingerprint": "abc"}, r"^expected_fingerprint: expected sha256:"),
    ({"source_format": "tfrecord", "sample": "taxi_tfrecord", "payload_format": "FORMAT_CSV"},
     r"^payload_format: payload format 'FORMAT_CSV' is unknown"),
    ({"input_base": 7}, r"^input_base: expected a string"),
    ({"sample": "absent"}, r"^input_base: not given and the sample data"),
])
def test_every_ingest_parameter_is_checked_and_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        _ingest_arguments(**overrides)


def test_ingest_arguments_are_the_engines(tmp_path):
    from examplegen.config import InputConfig, InputSplit

    arguments = _ingest_arguments(input_base=str(tmp_path), input_config='{"splits": [{"name": "a", "pattern": "*"}]}',
                                  csv_options={"delimiter": ";"}, num_shards=3, expected_fingerprint="")
    assert arguments["input_base"] == str(tmp_path)
    assert arguments["input_config"] == InputConfig((InputSplit("a", "*"),))
    assert arguments["range_config"] is None and arguments["expected_fingerprint"] is None
    assert (arguments["csv_options"], arguments["num_shards"]) == ({"delimiter": ";"}, 3)


def test_lineage_arguments_are_checked():
    with pytest.raises(ConfigError, match="^pipeline_name: must not be empty"):
        _common.lineage_arguments("", " ", "", "")
    with pytest.raises(LineageError, match="the mlmd parameter"):
        _common.lineage_arguments("mysql:/nowhere", "p", "", "")


# ----------------------------------------------------------------------------- secrets


def test_a_password_in_the_mlmd_parameter_is_refused_with_how_to_pass_it():
    for url in ("mysql://root:s3cret@db:3306/mlmd", "postgresql://u:s3cret@db/mlmd"):
        with pytest.raises(ConfigError) as caught:
            _common.mlmd_url(url)
        message = str(caught.value)
        assert "s3cret" not in message and ":***@" in message
        assert message.startswith("mlmd: ") and "EXAMPLEGEN_MLMD_PASSWORD" in message
        assert "use_secret_as_env" in message and "Secret Manager" in message
    assert _common.mlmd_url("mysql://root@db:3306/mlmd") == "mysql://root@db:3306/mlmd"
    assert _common.mlmd_url("") is None


# ----------------------------------------------------------------------------- Cloud Storage


def test_gcs_uris_use_the_mount_only_when_the_bucket_is_there(tmp_path, monkeypatch):
    mount = tmp_path / "gcs"
    monkeypatch.setenv(_common.GCS_MOUNT_ENV, str(mount))
    assert _common.local_path("gs://bucket/data") == "gs://bucket/data"  # no mount at all
    mount.mkdir()  # open-source KFP: an empty scratch volume at /gcs in every pod
    assert _common.local_path("gs://bucket/data") == "gs://bucket/data"
    assert _common.lineage_store("", "gs://bucket/root", {}) is None  # not a SQLite file in the scratch volume
    (mount / "bucket").mkdir()  # Vertex AI: the bucket is visible through the FUSE mount
    assert _common.local_path("gs://bucket/data") == str(mount / "bucket" / "data")
    assert _common.lineage_store("", "gs://bucket/root", {}) == f"sqlite:///{mount}/bucket/root/mlmd.sqlite"
    assert _common.local_path("/data/x") == "/data/x"
    assert _common.gcs_mount() == str(mount)
    monkeypatch.delenv(_common.GCS_MOUNT_ENV)
    assert _common.gcs_mount() == "/gcs"


def test_empty_input_base_means_the_bundled_sample(monkeypatch, tmp_path):
    monkeypatch.delenv("EXAMPLEGEN_SAMPLE_DATA", raising=False)
    assert _common.input_base_or_sample("", "taxi") == os.path.join(REPO, "examples", "data", "taxi")
    assert os.path.isfile(os.path.join(_common.input_base_or_sample("", "taxi"), "data.csv"))
    assert os.listdir(_common.input_base_or_sample("", "taxi_tfrecord")) == ["data.tfrecord.gz"]
    assert _common.input_base_or_sample("/my/data", "taxi") == "/my/data"
    (tmp_path / "taxi").mkdir()
    monkeypatch.setenv("EXAMPLEGEN_SAMPLE_DATA", str(tmp_path))  # as set in the image
    assert _common.input_base_or_sample("", "taxi") == str(tmp_path / "taxi")
    with pytest.raises(ConfigError, match="input_base: not given and the sample data .*absent"):
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


class _Output:
    """Stands in for the Output[Dataset] KFP passes to a component function."""

    def __init__(self, path):
        self.path, self.metadata = str(path), {}


def _spans(tmp_path):
    data = tmp_path / "in"
    for span, value in ((3, 1), (7, 2)):
        (data / f"span-{span:02d}").mkdir(parents=True)
        (data / f"span-{span:02d}" / "a.csv").write_text(f"x\n{value}\n")
    return data


def test_resolve_span_function_outputs(tmp_path):
    """The component's Python function, called as the KFP executor would."""
    from kfp_examplegen.components.functions import resolve_span

    data = _spans(tmp_path)
    config = {"splits": [{"name": "all", "pattern": "span-{SPAN}/*.csv"}]}
    span, version, resolved, range_config, fingerprint, files = resolve_span(
        input_base=str(data), input_config=json.dumps(config), mlmd=f"sqlite:///{tmp_path}/m.sqlite",
        run_name="{{$.pipeline_job_uuid}}")
    assert (span, version) == (7, -1)
    assert resolved == {"splits": [{"name": "all", "pattern": "span-07/*.csv"}]}
    assert range_config == {"static_range": {"start_span_number": 7, "end_span_number": 7}}
    assert fingerprint.startswith("sha256:") and files == [str(data / "span-07" / "a.csv")]
    assert resolve_span(input_base=str(data / "span-03"), mlmd=f"sqlite:///{tmp_path}/m.sqlite")[3] == {}


def test_the_ingest_step_ingests_exactly_what_resolve_span_resolved(tmp_path):
    """A span that appears between the two steps is not ingested; files that change
    between them fail the ingest step before it writes anything."""
    from kfp_examplegen.components.functions import csv_example_gen, resolve_span

    data = _spans(tmp_path)
    store = f"sqlite:///{tmp_path}/m.sqlite"
    config = {"splits": [{"name": "all", "pattern": "span-{SPAN}/*.csv"}]}
    outputs = resolve_span(input_base=str(data), input_config=config, mlmd=store)
    (data / "span-09").mkdir()
    (data / "span-09" / "a.csv").write_text("x\n9\n")  # a newer span arrives
    examples = _Output(tmp_path / "out")
    csv_example_gen(examples, input_base=str(data), input_config=config, range_config=outputs[3],
                    expected_fingerprint=outputs[4], mlmd=store)
    assert examples.metadata["span"] == 7 and examples.metadata["input_fingerprint"] == outputs[4]

    (data / "span-07" / "a.csv").write_text("x\n5\n")  # the resolved file changes
    late = _Output(tmp_path / "late")
    with pytest.raises(SourceError, match="changed since they were resolved.*nothing was written"):
        csv_example_gen(late, input_base=str(data), input_config=config, range_config=outputs[3],
                        expected_fingerprint=outputs[4], mlmd=store)
    assert not os.path.exists(late.path) and late.metadata == {}
