"""The HTML ingestion report (examplegen.report), on Examples written with TensorFlow."""

import hashlib
import json
import math
import os
import re

import pytest
import tensorflow as tf

from examplegen import report
from examplegen.errors import SourceError


def ints(*values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def floats(*values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def strs(*values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _example(**features) -> tf.train.Example:
    return tf.train.Example(features=tf.train.Features(feature=features))


def _write_examples(root, splits: dict, metadata: dict = None) -> str:
    """An Examples artifact directory: Split-<name>/data_tfrecord-00000-of-00001.gz."""
    for split, records in splits.items():
        folder = os.path.join(root, f"Split-{split}")
        os.makedirs(folder)
        path = os.path.join(folder, "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for record in records:
                writer.write(record if isinstance(record, bytes) else record.SerializeToString())
    if metadata is not None:
        with open(os.path.join(root, report.METADATA_FILE), "w") as f:
            json.dump(metadata, f)
    return str(root)


EMPTY = tf.train.Feature()  # no kind at all, as TFX writes an all-empty CSV column
TRAIN = [
    _example(age=ints(41), score=floats(0.5), name=strs("alice"), tags=strs("a", "b"), empty=EMPTY),
    _example(age=ints(20), score=floats(2.25), name=strs("<b>bob</b>"), tags=strs("a"), empty=EMPTY),
    _example(age=ints(), score=floats(float("nan")), name=strs("alice"), tags=strs("c", "a", "b"), empty=EMPTY),
]
EVAL = [_example(score=floats(-1.0), name=strs("carol"), tags=strs(), empty=EMPTY)]  # no "age" at all
METADATA = {
    "split_names": json.dumps(["train", "eval"]),
    "example_counts": json.dumps({"eval": 1, "train": 3}),
    "span": 3,
    "version": 2,
    "input_fingerprint": "sha256:feedbeef",
    "payload_format": "FORMAT_TF_EXAMPLE",
    "file_format": "tfrecords_gzip",
}


@pytest.fixture
def examples_dir(tmp_path):
    return _write_examples(tmp_path / "examples", {"train": TRAIN, "eval": EVAL}, METADATA)


def test_summary_counts_and_schema(examples_dir):
    summary = report.summarize(examples_dir)
    assert summary.split_names == ["train", "eval"]
    assert summary.counts == {"train": 3, "eval": 1}
    assert summary.examples_read == 4 and not summary.truncated
    f = summary.features
    assert set(f) == {"age", "empty", "name", "score", "tags"}
    assert (f["age"].type_name, f["age"].present, f["age"].missing) == ("INT", 2, 2)
    assert (f["age"].minimum, f["age"].maximum) == (20, 41)
    assert (f["score"].type_name, f["score"].present, f["score"].nan_count) == ("FLOAT", 4, 1)
    assert (f["score"].minimum, f["score"].maximum) == (-1.0, 2.25)
    assert math.isclose(f["score"].mean, (0.5 + 2.25 - 1.0) / 3)
    assert (f["name"].type_name, f["name"].missing) == ("STRING", 0)
    assert f["name"].distinct == {b"alice": 2, b"<b>bob</b>": 1, b"carol": 1}
    assert (f["name"].min_length, f["name"].max_length) == (5, 10)
    assert (f["tags"].present, f["tags"].missing, f["tags"].min_values, f["tags"].max_values) == (3, 1, 1, 3)
    assert (f["empty"].type_name, f["empty"].present, f["empty"].missing) == ("UNKNOWN", 0, 4)
    assert summary.sample_split == "train"
    assert summary.sample_rows[0] == {"age": "41", "empty": "", "name": "alice", "score": "0.5", "tags": "a, b"}


def test_html_page(examples_dir, tmp_path):
    path = str(tmp_path / "out" / "report.html")
    report.write_report(examples_dir, path, lineage={
        "store": "sqlite:////tmp/m.sqlite", "pipeline": "csv-ingest", "run": "run-42", "artifact_id": 7,
        "executions": [{"id": 5, "type": "examplegen.Ingest", "state": "COMPLETE", "run": "run-42",
                        "span": 3, "version": 2, "rows_written": 4}],
        "sources": [{"uri": "/data/span-3/a.csv", "split": "single_split", "span": 3, "version": 2,
                     "size": 1234, "digest": "sha256:abcd"}],
    })
    page = open(path, encoding="utf-8").read()
    text = re.sub(r"<[^>]+>", " ", page)
    # Counts per split and the overview.
    assert re.search(r"train\s+3\s+75\.0%", text) and re.search(r"eval\s+1\s+25\.0%", text)
    assert re.search(r"Span\s+3", text) and re.search(r"Version\s+2", text)
    assert "sha256:feedbeef" in text
    # Schema rows: feature, type, values per example, present, missing, range.
    assert re.search(r"age\s+INT\s+1\s+2\s+2 \(50\.0%\)\s+20 … 41", text)
    assert re.search(r"score\s+FLOAT\s+1\s+4\s+0 \(0\.0%\)\s+-1 … 2\.25 \(mean 0\.583333\), 1 NaN", text)
    assert re.search(r"tags\s+STRING\s+1 … 3\s+3\s+1 \(25\.0%\)\s+3 distinct", text)
    assert re.search(r"empty\s+UNKNOWN\s+0\s+0\s+4 \(100\.0%\)", text)
    assert "top: alice (2)" in text
    # Sample rows, escaped.
    assert "Sample rows" in text and "&lt;b&gt;bob&lt;/b&gt;" in page and "<b>bob</b>" not in page
    # Lineage.
    assert "run-42" in text and "/data/span-3/a.csv" in text and "sha256:abcd" in text
    assert re.search(r"examplegen\.Ingest\s+COMPLETE", text)
    # Self-contained: no scripts, external styles or links.
    assert "<script" not in page and "<link" not in page and not re.search(r"(src|href)=", page)


def test_statistics_cover_at_most_max_examples_per_split(examples_dir):
    summary = report.summarize(examples_dir, max_examples=1, sample_rows=1)
    assert summary.examples_read == 2 and summary.truncated
    assert summary.counts == {"train": 3, "eval": 1}  # exact, from the metadata
    assert summary.features["age"].present == 1
    page = report.render_html(summary)
    assert "Inferred from 2 examples (the first examples of each split; counts above are exact)" in page


def test_counts_are_read_when_metadata_is_missing(tmp_path):
    examples_dir = _write_examples(tmp_path / "ex", {"a": TRAIN, "b": EVAL}, metadata=None)
    summary = report.summarize(examples_dir, max_examples=1)
    assert summary.split_names == ["a", "b"]
    assert summary.counts == {"a": 3, "b": 1}  # every record counted
    assert summary.examples_read == 2


def test_sequence_examples(tmp_path):
    seq = tf.train.SequenceExample()
    seq.context.feature["i"].int64_list.value.append(3)
    seq.feature_lists.feature_list["s"].feature.add().bytes_list.value.append(b"x")
    metadata = dict(METADATA, payload_format="FORMAT_TF_SEQUENCE_EXAMPLE",
                    split_names=json.dumps(["train"]), example_counts=json.dumps({"train": 1}))
    summary = report.summarize(_write_examples(tmp_path / "ex", {"train": [seq]}, metadata))
    assert set(summary.features) == {"i"} and summary.features["i"].type_name == "INT"
    assert summary.sequence_features == ["s"]
    assert "Feature lists (SequenceExample): <code>s</code>" in report.render_html(summary)


def test_raw_proto_payload_reports_counts_only(tmp_path):
    metadata = dict(METADATA, payload_format="FORMAT_PROTO", split_names=json.dumps(["train"]),
                    example_counts=json.dumps({"train": 2}))
    summary = report.summarize(_write_examples(tmp_path / "ex", {"train": [b"\x08\x01", b"\x08\x02"]}, metadata))
    assert summary.counts == {"train": 2} and summary.features == {} and summary.examples_read == 0
    assert "holds arbitrary protos; no schema is inferred" in report.render_html(summary)


def test_unparseable_record_names_file_and_record(tmp_path):
    metadata = dict(METADATA, split_names=json.dumps(["train"]), example_counts=json.dumps({"train": 2}))
    examples_dir = _write_examples(tmp_path / "ex", {"train": [TRAIN[0], b"\xff\xff\xff"]}, metadata)
    with pytest.raises(SourceError, match=r"data_tfrecord-00000-of-00001\.gz: record 1 is not a tf\.Example"):
        report.summarize(examples_dir)


def test_missing_split_folder_is_an_error(tmp_path):
    examples_dir = _write_examples(tmp_path / "ex", {"train": TRAIN}, METADATA)  # no Split-eval
    with pytest.raises(SourceError, match="Split-eval: split folder of split 'eval' does not exist"):
        report.summarize(examples_dir)


def test_report_with_lineage_records_and_shows_upstream(tmp_path):
    """Ingest with the engine, then report: the report execution consumes the same Examples
    artifact and the page shows the source file with its content digest."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from examplegen.ingest import ingest
    from examplegen.lineage import open_store

    data = tmp_path / "in"
    data.mkdir()
    (data / "rows.csv").write_text("a,b\n1,x\n2,y\n3,\n")
    store_url = f"sqlite:///{tmp_path}/lineage.sqlite"
    result = ingest(str(data), str(tmp_path / "examples"), mlmd=store_url, pipeline_name="p", run_name="run-1")
    html_path = str(tmp_path / "report.html")
    summary = report.report_with_lineage(str(tmp_path / "examples"), html_path, mlmd=store_url,
                                         pipeline_name="p", run_name="run-1")
    assert sum(summary.counts.values()) == 3
    page = open(html_path, encoding="utf-8").read()
    digest = "sha256:" + hashlib.sha256((data / "rows.csv").read_bytes()).hexdigest()
    assert digest in page and str(data / "rows.csv") in page and "run-1" in page

    mlmd = open_store(store_url).mlmd
    types = {t.id: t.name for t in mlmd.get_execution_types()}
    executions = {types[e.type_id]: e for e in mlmd.get_executions()}
    assert set(executions) == {"examplegen.Ingest", "examplegen.Report"}
    assert executions["examplegen.Report"].last_known_state == pb.Execution.COMPLETE
    events = mlmd.get_events_by_execution_ids([e.id for e in executions.values()])
    produced = {e.artifact_id for e in events
                if e.type == pb.Event.OUTPUT and e.execution_id == executions["examplegen.Ingest"].id}
    consumed = {e.artifact_id for e in events
                if e.type == pb.Event.INPUT and e.execution_id == executions["examplegen.Report"].id}
    assert produced == consumed and len(produced) == 1
    [run] = mlmd.get_contexts_by_type("system.PipelineRun")
    assert run.name == "run-1"
    assert {e.id for e in mlmd.get_executions_by_context(run.id)} == {e.id for e in executions.values()}
    assert result.output_uri == str(tmp_path / "examples")
    # the report itself is the Report execution's output: a system.HTML artifact at the page
    outputs = [e.artifact_id for e in events
               if e.type == pb.Event.OUTPUT and e.execution_id == executions["examplegen.Report"].id]
    [html] = mlmd.get_artifacts_by_id(outputs)
    assert html.uri == html_path and html.state == pb.Artifact.LIVE
    assert {t.id: t.name for t in mlmd.get_artifact_types()}[html.type_id] == "system.HTML"
