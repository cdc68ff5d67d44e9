"""The file-ingest pipeline: Parquet/Avro/JSON Lines from a compiled pipeline, run locally."""

import contextlib
import io
import os
import re

import fastavro
import pytest

from examplegen.cli import main
from kfp_examplegen import components
from tests.helpers import REPO, check_tfx_compatible, example_values, read_split

pytestmark = pytest.mark.slow


def test_file_example_gen_interface():
    spec = components.load().file_example_gen.component_spec
    assert spec.outputs["examples"].type == "system.Dataset@0.0.1"
    assert {"source_format", "source_options", "input_base", "input_config", "output_config",
            "range_config", "mlmd"} <= set(spec.inputs)
    assert spec.inputs["source_format"].default == "parquet"


def test_avro_sample_through_the_pipeline(tmp_path, monkeypatch):
    for name in ("EXAMPLEGEN_MLMD", "METADATA_GRPC_SERVICE_HOST", "METADATA_GRPC_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", "file_ingest", "--pipeline-root", str(tmp_path), "--param", "source_format=avro",
                     "--param", 'source_options={"columns": ["fare", "tips", "company", "trip_start_hour"]}'])
    stdout = out.getvalue()
    assert code == 0, stdout[-3000:]
    [uri] = re.findall(r"^  file-example-gen/examples \([\w.]+\): (\S+)", stdout, re.M)
    assert os.path.exists(re.search(r"^report: (.+)$", stdout, re.M).group(1))
    with open(os.path.join(REPO, "examples", "data", "taxi_avro", "data.avro"), "rb") as f:
        rows = [{c: r[c] for c in ("fare", "tips", "company", "trip_start_hour")} for r in fastavro.reader(f)]
    kinds = {"fare": "float_list", "tips": "float_list", "company": "bytes_list", "trip_start_hour": "int64_list"}
    check_tfx_compatible(uri, rows, kinds)
    assert {n for r in read_split(uri, "eval") for n in example_values(r)} == set(kinds)


def test_file_ingest_feeds_its_examples_to_the_report():
    import yaml

    with open(os.path.join(REPO, "pipelines", "compiled", "file_ingest.yaml"), encoding="utf-8") as f:
        tasks = yaml.safe_load(f)["root"]["dag"]["tasks"]
    assert set(tasks) == {"file-example-gen", "ingestion-report"}
    report = tasks["ingestion-report"]["inputs"]["artifacts"]["examples"]["taskOutputArtifact"]
    assert report == {"outputArtifactKey": "examples", "producerTask": "file-example-gen"}
    for name in ("source_format", "source_options"):
        assert tasks["file-example-gen"]["inputs"]["parameters"][name] == {"componentInputParameter": name}
