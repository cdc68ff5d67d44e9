"""End to end: `examplegen run` runs both pipelines with kfp.local on the bundled samples.

Asserts on what a user gets: the Examples (read back with TensorFlow), the HTML report,
and the ML Metadata records (one run context per run, an execution per task, the
artifacts linked from task to task). Both pipelines share one pipeline root, so the
lineage store is the default one under it.
"""

import collections
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import warnings

import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb

from examplegen.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAXI_CSV = os.path.join(REPO, "examples", "data", "taxi", "data.csv")
TAXI_TFRECORD = os.path.join(REPO, "examples", "data", "taxi_tfrecord", "data.tfrecord.gz")

pytestmark = pytest.mark.slow


def _run_cli(*argv) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def pipeline_root(tmp_path_factory):
    return tmp_path_factory.mktemp("pipeline_root")


@pytest.fixture(scope="module")
def runs(pipeline_root):
    """Run both pipelines once (module scope: each run takes seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("EXAMPLEGEN_MLMD", "METADATA_GRPC_SERVICE_HOST", "METADATA_GRPC_SERVICE_PORT"):
            mp.delenv(name, raising=False)  # use the default store under the pipeline root
        outputs = {}
        for pipeline in ("csv_ingest", "import_and_resplit"):
            code, stdout = _run_cli("run", pipeline, "--pipeline-root", str(pipeline_root))
            assert code == 0, stdout[-3000:]
            outputs[pipeline] = _parse_run_output(stdout)
    return outputs


def _parse_run_output(stdout: str) -> dict:
    summary = stdout[stdout.rindex("pipeline ") :]
    run = {"stdout": summary, "artifacts": {}}
    run["run_dir"] = re.search(r"^run folder: (.+)$", summary, re.M).group(1)
    run["report"] = re.search(r"^report: (.+)$", summary, re.M).group(1)
    run["lineage"] = re.search(r"^lineage: (.+)$", summary, re.M).group(1)
    for task, name, title, uri in re.findall(r"^  ([\w-]+)/(\w+) \(([\w.]+)\): (\S+)", summary, re.M):
        run["artifacts"][f"{task}/{name}"] = (title, uri)
    return run


def _executor_output(run_dir: str, task: str) -> dict:
    with open(os.path.join(run_dir, task, "executor_output.json"), encoding="utf-8") as f:
        return json.load(f)


def _read_split(examples_uri: str, split: str) -> list[bytes]:
    files = tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*"))
    assert files, f"no files in {examples_uri}/Split-{split}"
    return [r.numpy() for r in tf.data.TFRecordDataset(sorted(files), compression_type="GZIP")]


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()


def _text(html_path: str) -> str:
    with open(html_path, encoding="utf-8") as f:
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", f.read()))


class Lineage:
    """The run's records, read with ml-metadata directly."""

    def __init__(self, store_url: str, pipeline_name: str):
        assert store_url.startswith("sqlite:///")
        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = store_url[len("sqlite:///"):]
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
        self.store = metadata_store.MetadataStore(config)
        [pipeline] = [c for c in self.store.get_contexts_by_type("system.Pipeline") if c.name == pipeline_name]
        self.runs = self.store.get_children_contexts_by_context(pipeline.id)
        types = {t.id: t.name for t in self.store.get_execution_types()}
        self.executions = collections.defaultdict(list)
        for run in self.runs:
            for execution in self.store.get_executions_by_context(run.id):
                self.executions[types[execution.type_id]].append(execution)
        ids = [e.id for group in self.executions.values() for e in group]
        self.events = self.store.get_events_by_execution_ids(ids)
        self.artifact_types = {t.id: t.name for t in self.store.get_artifact_types()}

    def artifacts(self, execution, event_type) -> list:
        ids = [e.artifact_id for e in self.events if e.execution_id == execution.id and e.type == event_type]
        return self.store.get_artifacts_by_id(ids)

    def one(self, execution_type):
        [execution] = self.executions[execution_type]
        return execution


# --------------------------------------------------------------------------- csv_ingest


def test_csv_run_prints_where_everything_went(runs, pipeline_root):
    run = runs["csv_ingest"]
    assert run["run_dir"].startswith(str(pipeline_root) + "/csv-ingest-")
    assert set(run["artifacts"]) == {"csv-example-gen/examples", "ingestion-report/report"}
    title, uri = run["artifacts"]["csv-example-gen/examples"]
    assert title == "system.Dataset" and os.path.isdir(uri)
    assert run["report"] == run["artifacts"]["ingestion-report/report"][1] and os.path.isfile(run["report"])
    assert run["lineage"] == f"sqlite:///{pipeline_root}/mlmd.sqlite"
    assert "examples per split" in run["stdout"]


def test_csv_examples_hold_every_row_typed_as_tfx_does(runs):
    run = runs["csv_ingest"]
    uri = run["artifacts"]["csv-example-gen/examples"][1]
    with open(TAXI_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    examples = []
    for split in ("train", "eval"):
        examples += [tf.train.Example.FromString(r) for r in _read_split(uri, split)]
    assert len(examples) == len(rows) == 10000
    first = examples[0].features.feature
    assert set(first) == set(rows[0])
    assert first["trip_start_hour"].HasField("int64_list")
    assert first["fare"].HasField("float_list")
    assert first["company"].HasField("bytes_list")
    ingested = sorted(e.features.feature["trip_start_timestamp"].int64_list.value[0] for e in examples)
    assert ingested == sorted(int(r["trip_start_timestamp"]) for r in rows)


def test_csv_examples_metadata_is_tfx_named_and_matches_resolve_span(runs):
    run_dir = runs["csv_ingest"]["run_dir"]
    span = _executor_output(run_dir, "resolve-span")["parameterValues"]
    assert span["span"] == 0 and span["version"] == -1
    assert span["input_config"] == {"splits": [{"name": "single_split", "pattern": "*"}]}
    assert span["range_config"] == {} and span["files"] == [TAXI_CSV]
    [artifact] = _executor_output(run_dir, "csv-example-gen")["artifacts"]["examples"]["artifacts"]
    md = artifact["metadata"]
    assert None not in md.values()
    assert json.loads(md["split_names"]) == ["train", "eval"]
    assert md["span"] == 0 and "version" not in md
    assert md["input_fingerprint"] == span["fingerprint"]
    assert (md["payload_format"], md["file_format"]) == ("FORMAT_TF_EXAMPLE", "tfrecords_gzip")
    counts = json.loads(md["example_counts"])
    uri = runs["csv_ingest"]["artifacts"]["csv-example-gen/examples"][1]
    assert counts == {s: len(_read_split(uri, s)) for s in ("train", "eval")}
    assert 0.6 < counts["train"] / 10000 < 0.73  # hash buckets 2:1


def test_csv_report(runs):
    run = runs["csv_ingest"]
    text = _text(run["report"])
    uri = run["artifacts"]["csv-example-gen/examples"][1]
    counts = {s: len(_read_split(uri, s)) for s in ("train", "eval")}
    assert re.search(rf"train {counts['train']:,} ", text) and re.search(rf"eval {counts['eval']:,} ", text)
    assert re.search(r"Examples 10,000 ", text)
    assert re.search(r"fare FLOAT 1 ", text) and re.search(r"company STRING ", text)
    assert re.search(r"trip_start_hour INT 1 10,000 0 \(0\.0%\) 0 … 23", text)
    # Missing counts, computed here from the CSV: empty cells become empty lists.
    with open(TAXI_CSV, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    empty = sum(1 for r in rows if r["dropoff_census_tract"] == "")
    assert 0 < empty < 10000
    assert re.search(rf"dropoff_census_tract FLOAT 1 {10000 - empty:,} {empty:,} ", text)
    # A column empty in every row is an empty Feature() (TFX): no type, all missing.
    assert all(r["pickup_census_tract"] == "" for r in rows)
    assert re.search(r"pickup_census_tract UNKNOWN 0 0 10,000 \(100\.0%\)", text)
    assert "Sample rows" in text
    assert TAXI_CSV in text and _sha256(TAXI_CSV) in text  # lineage: the source and its digest


def test_csv_lineage_records(runs):
    run = runs["csv_ingest"]
    lineage = Lineage(run["lineage"], "csv-ingest")
    [run_context] = lineage.runs
    assert run_context.name.isdigit()  # kfp.local's run id ({{$.pipeline_job_uuid}})
    assert {k: len(v) for k, v in lineage.executions.items()} == {
        "examplegen.ResolveSpan": 1, "examplegen.Ingest": 1, "examplegen.Report": 1}
    for group in lineage.executions.values():
        assert group[0].last_known_state == pb.Execution.COMPLETE
    resolve, ingest, report = (lineage.one(t) for t in
                               ("examplegen.ResolveSpan", "examplegen.Ingest", "examplegen.Report"))
    [examples] = lineage.artifacts(ingest, pb.Event.OUTPUT)
    assert examples.uri == run["artifacts"]["csv-example-gen/examples"][1]
    assert examples.state == pb.Artifact.LIVE
    assert [a.id for a in lineage.artifacts(report, pb.Event.INPUT)] == [examples.id]
    [source] = lineage.artifacts(resolve, pb.Event.INPUT)
    assert source.uri == TAXI_CSV and source.custom_properties["digest"].string_value == _sha256(TAXI_CSV)
    assert source.id in [a.id for a in lineage.artifacts(ingest, pb.Event.INPUT)]  # one artifact, reused


# ------------------------------------------------------------------- import_and_resplit


def test_import_and_resplit_examples(runs):
    run = runs["import_and_resplit"]
    assert set(run["artifacts"]) == {
        "import-example-gen/examples", "split-examples/examples", "ingestion-report/report"}
    source = sorted(r.numpy() for r in tf.data.TFRecordDataset(TAXI_TFRECORD, compression_type="GZIP"))
    imported = run["artifacts"]["import-example-gen/examples"][1]
    resplit = run["artifacts"]["split-examples/examples"][1]
    assert sorted(_read_split(imported, "train") + _read_split(imported, "eval")) == source
    splits = {s: _read_split(resplit, s) for s in ("train", "eval", "test")}
    assert sorted(r for records in splits.values() for r in records) == source
    assert len(splits["train"]) > len(splits["eval"]) > 0 and len(splits["test"]) > 0
    [artifact] = _executor_output(run["run_dir"], "split-examples")["artifacts"]["examples"]["artifacts"]
    assert json.loads(artifact["metadata"]["split_names"]) == ["train", "eval", "test"]
    assert json.loads(artifact["metadata"]["example_counts"]) == {s: len(r) for s, r in splits.items()}


def test_import_and_resplit_report_and_lineage(runs):
    run = runs["import_and_resplit"]
    text = _text(run["report"])
    assert re.search(r"Examples 2,000 ", text)
    assert re.search(r"Splits train, eval, test ", text)
    imported = run["artifacts"]["import-example-gen/examples"][1]
    assert imported in text and _sha256(TAXI_TFRECORD) in text  # upstream through the split

    lineage = Lineage(run["lineage"], "import-and-resplit")
    assert len(lineage.runs) == 1
    assert {k: len(v) for k, v in lineage.executions.items()} == {
        "examplegen.Ingest": 1, "examplegen.Split": 1, "examplegen.Report": 1}
    ingest, split, report = (lineage.one(t) for t in ("examplegen.Ingest", "examplegen.Split", "examplegen.Report"))
    [imported_artifact] = lineage.artifacts(ingest, pb.Event.OUTPUT)
    assert imported_artifact.uri == imported
    assert [a.id for a in lineage.artifacts(split, pb.Event.INPUT)] == [imported_artifact.id]
    [resplit_artifact] = lineage.artifacts(split, pb.Event.OUTPUT)
    assert [a.id for a in lineage.artifacts(report, pb.Event.INPUT)] == [resplit_artifact.id]


# --------------------------------------------------------------------------- reruns, errors


def test_rerun_on_same_data_reuses_the_examples(runs, pipeline_root, monkeypatch):
    """KFP's step cache is off; the engine recognises identical input from MLMD instead."""
    monkeypatch.delenv("EXAMPLEGEN_MLMD", raising=False)
    code, stdout = _run_cli("run", "csv_ingest", "--pipeline-root", str(pipeline_root))
    assert code == 0
    rerun = _parse_run_output(stdout)
    assert rerun["run_dir"] != runs["csv_ingest"]["run_dir"]
    lineage = Lineage(rerun["lineage"], "csv-ingest")
    assert len(lineage.runs) == 2
    states = sorted(pb.Execution.State.Name(e.last_known_state) for e in lineage.executions["examplegen.Ingest"])
    assert states == ["CACHED", "COMPLETE"]
    first = _read_split(runs["csv_ingest"]["artifacts"]["csv-example-gen/examples"][1], "train")
    assert _read_split(rerun["artifacts"]["csv-example-gen/examples"][1], "train") == first
    assert os.path.isfile(rerun["report"])


def test_failed_task_is_a_clear_error(tmp_path, capsys):
    code = main(["run", "csv_ingest", "--pipeline-root", str(tmp_path),
                 "--param", f"input_base={tmp_path}/missing"])
    assert code == 1
    err = capsys.readouterr().err
    assert "pipeline csv-ingest failed" in err and "resolve-span" in err


def test_bad_param_is_rejected_before_running(tmp_path, capsys):
    assert main(["run", "csv_ingest", "--pipeline-root", str(tmp_path), "--param", "num_shards=two"]) == 1
    assert "--param num_shards='two': expected an integer" in capsys.readouterr().err
    assert main(["run", "csv_ingest", "--pipeline-root", str(tmp_path), "--param", "colour=red"]) == 1
    assert "pipeline csv-ingest has no parameter 'colour'" in capsys.readouterr().err
    assert main(["run", "csv_ingest", "--pipeline-root", str(tmp_path), "--param", "input_config={splits"]) == 1
    assert "--param input_config: not valid JSON" in capsys.readouterr().err
    # A password in a parameter would be logged and stored: refused, with how to pass it.
    assert main(["run", "csv_ingest", "--pipeline-root", str(tmp_path),
                 "--param", "mlmd=mysql://root:s3cret@127.0.0.1:3306/mlmd"]) == 1
    err = capsys.readouterr().err
    assert "s3cret" not in err and "holds a password" in err and "EXAMPLEGEN_MLMD_PASSWORD" in err
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ a user's own pipeline


def test_user_pipeline_chains_our_spec_into_a_dataset_component(tmp_path, monkeypatch):
    """As the README shows: load csv_example_gen's spec by file, feed its Examples to a
    component of the user's typed Input[Dataset] (no import of this project in the user's
    code, no SDK patch), compile, and run it end to end with kfp.local."""
    from kfp import compiler, dsl, local
    from kfp.components import load_component_from_file
    from kfp.dsl import Dataset, Input

    monkeypatch.delenv("EXAMPLEGEN_MLMD", raising=False)
    # The spec names the project's image; kfp.local's subprocess runner runs it in this environment.
    warnings.filterwarnings("ignore", message=".*non-Python base image.*", category=RuntimeWarning)
    csv_example_gen = load_component_from_file(os.path.join(REPO, "components", "csv_example_gen", "component.yaml"))

    @dsl.component(base_image="python:3.11")
    def count_examples(examples: Input[Dataset]) -> str:
        import glob
        import json
        import os

        import tensorflow as tf

        counts = {}
        for split in json.loads(examples.metadata["split_names"]):
            files = sorted(glob.glob(os.path.join(examples.path, f"Split-{split}", "*")))
            counts[split] = sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))
        return json.dumps({"counts": counts, "recorded": json.loads(examples.metadata["example_counts"]),
                           "span": examples.metadata["span"]})

    @dsl.pipeline(name="user-ingest")
    def user_ingest(input_base: str) -> str:
        gen = csv_example_gen(input_base=input_base,
                              output_config={"split_config": {"splits": [
                                  {"name": "train", "hash_buckets": 3}, {"name": "eval", "hash_buckets": 1}]}})
        gen.set_caching_options(False)
        return count_examples(examples=gen.outputs["examples"]).output

    compiler.Compiler().compile(user_ingest, str(tmp_path / "user_ingest.yaml"))
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"),
               raise_on_error=True)
    result = json.loads(user_ingest(input_base=os.path.dirname(TAXI_CSV)).output)
    assert result["counts"] == result["recorded"]
    assert sum(result["counts"].values()) == 10000 and set(result["counts"]) == {"train", "eval"}
    assert 0.7 < result["counts"]["train"] / 10000 < 0.8 and result["span"] == 0
