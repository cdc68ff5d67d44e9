"""Image folders and text corpora end to end (API and CLI): outputs read back with TensorFlow
and compared with the inputs read independently (Pillow, plain file reads)."""

import gzip
import json
import os

import pytest
from PIL import Image

from examplegen import cli
from examplegen.errors import SourceError, SpanResolutionError
from examplegen.ingest import ingest
from tests.helpers import REPO, read_split

IMAGES = os.path.join(REPO, "examples", "data", "images")
TEXT = os.path.join(REPO, "examples", "data", "text")
CORPUS = os.path.join(REPO, "examples", "data", "text_corpus")
ONE_SPLIT = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}


def examples(artifact, split="all"):
    """The split's examples, parsed by TensorFlow, as {feature: list of values}."""
    import tensorflow as tf

    out = []
    for record in read_split(artifact, split):
        example = tf.train.Example.FromString(record)
        row = {}
        for name, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            row[name] = list(getattr(feature, kind).value) if kind else []
        out.append(row)
    return out


def metadata(artifact):
    return json.load(open(os.path.join(artifact, "examples_metadata.json")))


def make_image(path, color=(200, 10, 10), size=(6, 4), fmt="PNG"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt)


def test_image_folder_examples_match_the_files(tmp_path):
    out = str(tmp_path / "out")
    result = ingest(IMAGES, out, source_format="images", output_config=ONE_SPLIT)
    rows = examples(out)
    files = sorted(os.path.join(d, n) for d, _, names in os.walk(IMAGES) for n in names)
    assert result.counts == {"all": len(files)} and len(rows) == len(files)
    labels = sorted(os.listdir(IMAGES))
    for path, row in zip(files, rows):  # input order is kept
        label = os.path.basename(os.path.dirname(path))
        with Image.open(path) as image:
            width, height = image.size
            fmt = image.format.lower().encode()
        assert row["image/encoded"] == [open(path, "rb").read()]
        assert row["image/format"] == [fmt]
        assert row["image/width"] == [width] and row["image/height"] == [height]
        assert row["image/filename"] == [os.path.basename(path).encode()]
        assert row["image/class/label"] == [labels.index(label)]
        assert row["image/class/text"] == [label.encode()]
        assert row["image/channels"][0] in (1, 3, 4)
    assert json.loads(metadata(out)["label_map"]) == labels == json.loads(result.metadata()["label_map"])


def test_label_map_is_recorded_in_ml_metadata_and_kept_on_reuse(tmp_path):
    from examplegen.lineage import open_store

    url = f"sqlite:///{tmp_path}/mlmd.sqlite"
    ingest(IMAGES, str(tmp_path / "out"), source_format="images", mlmd=url)
    store = open_store(url, create=False).mlmd
    [artifact] = [a for a in store.get_artifacts() if a.uri == str(tmp_path / "out")]
    recorded = artifact.custom_properties["label_map"].string_value or artifact.properties["label_map"].string_value
    assert json.loads(recorded) == ["circle", "square", "triangle"]
    # The second run takes the recorded map (its options differ from the first's); the
    # third is identical to the second and reuses its artifact, label map included.
    second = ingest(IMAGES, str(tmp_path / "second"), source_format="images", mlmd=url)
    assert not second.cached and second.metadata()["label_map"] == recorded
    third = ingest(IMAGES, str(tmp_path / "third"), source_format="images", mlmd=url)
    assert third.cached and third.metadata()["label_map"] == recorded
    assert metadata(str(tmp_path / "third"))["label_map"] == recorded


def _span(root, span, labels):
    for i, label in enumerate(labels):
        make_image(os.path.join(root, f"span-{span}", label, f"{i}.png"), color=(10 * span, 20 * i, 5))


SPANS = {"splits": [{"name": "images", "pattern": "span-{SPAN}/*/*"}]}


def _ids(artifact):
    return {row["image/class/text"][0].decode(): row["image/class/label"][0] for row in examples(artifact)}


def test_a_new_span_keeps_label_ids_at_the_same_output(tmp_path):
    data, out = str(tmp_path / "data"), str(tmp_path / "out")
    _span(data, 1, ["dog", "cat"])
    first = ingest(data, out, source_format="images", input_config=SPANS, output_config=ONE_SPLIT)
    assert first.span == 1 and _ids(out) == {"cat": 0, "dog": 1}
    _span(data, 2, ["ant", "cat", "dog", "bee"])  # new labels sort before the old ones
    second = ingest(data, out, source_format="images", input_config=SPANS, output_config=ONE_SPLIT)
    assert second.span == 2
    assert _ids(out) == {"cat": 0, "dog": 1, "ant": 2, "bee": 3}
    assert json.loads(metadata(out)["label_map"]) == ["cat", "dog", "ant", "bee"]
    # Into a fresh output, with the previous artifact's map given: the same ids.
    fresh = str(tmp_path / "fresh")
    ingest(data, fresh, source_format="images", input_config=SPANS, output_config=ONE_SPLIT,
           source_options={"label_map": out})
    assert _ids(fresh) == _ids(out)
    # Without a previous map (no artifact at the output, no lineage): the sorted labels.
    plain = str(tmp_path / "plain")
    ingest(data, plain, source_format="images", input_config=SPANS, output_config=ONE_SPLIT,
           record_lineage=False)
    assert _ids(plain) == {"ant": 0, "bee": 1, "cat": 2, "dog": 3}


def test_a_new_output_keeps_the_label_ids_that_ml_metadata_recorded(tmp_path):
    """A KFP run writes each span to a new artifact: the map comes from the newest Examples
    that ML Metadata records for the same input base and format."""
    data = str(tmp_path / "data")
    _span(data, 1, ["dog", "cat"])
    ingest(data, str(tmp_path / "run1"), source_format="images", input_config=SPANS, output_config=ONE_SPLIT)
    _span(data, 2, ["ant", "dog"])
    ingest(data, str(tmp_path / "run2"), source_format="images", input_config=SPANS, output_config=ONE_SPLIT)
    assert _ids(str(tmp_path / "run2")) == {"dog": 1, "ant": 2}
    assert json.loads(metadata(str(tmp_path / "run2"))["label_map"]) == ["cat", "dog", "ant"]
    # Another input base has its own labels.
    other = str(tmp_path / "other")
    _span(other, 2, ["ant", "dog"])
    ingest(other, str(tmp_path / "run3"), source_format="images", input_config=SPANS, output_config=ONE_SPLIT)
    assert _ids(str(tmp_path / "run3")) == {"ant": 0, "dog": 1}


def test_input_splits_share_one_label_map(tmp_path):
    data = tmp_path / "data"
    for split, labels in (("train", ["cat", "dog", "eel"]), ("eval", ["dog"])):
        for label in labels:
            make_image(str(data / split / label / "x.png"))
    config = {"splits": [{"name": "train", "pattern": "train/*/*"}, {"name": "eval", "pattern": "eval/*/*"}]}
    out = str(tmp_path / "out")
    ingest(str(data), out, source_format="images", input_config=config)
    assert [r["image/class/label"] for r in examples(out, "eval")] == [[1]]  # dog is 1 in both splits
    assert {r["image/class/text"][0]: r["image/class/label"][0] for r in examples(out, "train")} == {
        b"cat": 0, b"dog": 1, b"eel": 2}


def test_partition_split_on_the_label(tmp_path):
    out = str(tmp_path / "out")
    config = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 1}],
                               "partition_feature_name": "image/class/text"}}
    result = ingest(IMAGES, out, source_format="images", output_config=config)
    by_split = {s: {r["image/class/text"][0] for r in examples(out, s)} for s in ("a", "b")}
    assert not by_split["a"] & by_split["b"]  # all images of a label land in one split
    assert sum(result.counts.values()) == 18


def test_a_bad_image_fails_the_run_naming_it_and_leaves_no_artifact(tmp_path):
    data = tmp_path / "data"
    make_image(str(data / "cat" / "ok.png"))
    (data / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    with pytest.raises(SourceError, match=r"cat/broken\.jpg: not a decodable image"):
        ingest(str(data), str(out), source_format="images")
    assert not (out / "examples_metadata.json").exists()


def test_cli_images_and_text(tmp_path, capsys):
    out = str(tmp_path / "img")
    code = cli.main(["ingest", "--format", "images", "--input-base", IMAGES, "--output", out, "--json",
                     "--source-options", '{"verify": "header", "label_map": ["triangle"]}', "--no-lineage"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and sum(result["counts"].values()) == 18
    assert json.loads(metadata(out)["label_map"]) == ["triangle", "circle", "square"]

    out = str(tmp_path / "lines")
    code = cli.main(["ingest", "--format", "text", "--input-base", CORPUS, "--output", out, "--no-lineage",
                     "--source-options", '{"unit": "line"}', "--output-config", json.dumps(ONE_SPLIT)])
    assert code == 0
    with gzip.open(os.path.join(CORPUS, "lines.txt.gz"), "rb") as f:
        assert [r["text"] for r in examples(out)] == [[line] for line in f.read().split(b"\n")[:-1]]
    assert "label_map" not in metadata(out)

    bad = tmp_path / "bad"
    (bad / "pos").mkdir(parents=True)
    (bad / "pos" / "x.txt").write_bytes(b"fine\n\xe9t\xe9\n")
    code = cli.main(["ingest", "--format", "text", "--input-base", str(bad), "--output", str(tmp_path / "o"),
                     "--source-options", '{"labels": true}', "--no-lineage"])
    assert code == 1
    assert "pos/x.txt: line 2: not valid utf-8 text" in capsys.readouterr().err
    code = cli.main(["ingest", "--format", "text", "--input-base", str(bad), "--output", str(tmp_path / "o"),
                     "--source-options", '{"labels": true, "encoding": "latin-1"}', "--no-lineage",
                     "--output-config", json.dumps(ONE_SPLIT)])
    assert code == 0
    assert examples(str(tmp_path / "o")) == [{"text": ["fine\n\u00e9t\u00e9\n".encode()], "label": [0],
                                              "label_text": [b"pos"]}]


def test_labelled_text_files_one_example_each(tmp_path):
    out = str(tmp_path / "out")
    ingest(TEXT, out, source_format="text", source_options={"labels": True}, output_config=ONE_SPLIT)
    files = sorted(os.path.join(d, n) for d, _, names in os.walk(TEXT) for n in names)
    expected = [{"text": [open(f, "rb").read()], "label": [["neg", "pos"].index(os.path.basename(os.path.dirname(f)))],
                 "label_text": [os.path.basename(os.path.dirname(f)).encode()]} for f in files]
    assert examples(out) == expected
    assert json.loads(metadata(out)["label_map"]) == ["neg", "pos"]


def test_help_lists_the_media_formats(capsys):
    with pytest.raises(SystemExit):
        cli.main(["ingest", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "images" in text and "text" in text


def test_many_units_on_two_workers_give_the_same_records_as_one(tmp_path, monkeypatch):
    from examplegen.sources import images
    from tests.helpers import tree_bytes

    ingest(IMAGES, str(tmp_path / "one"), source_format="images", workers=1, record_lineage=False)
    monkeypatch.setattr(images, "UNIT_FILES", 4)  # planning runs here: 5 units
    assert len(images.plan("s", sorted(os.path.join(d, n) for d, _, ns in os.walk(IMAGES) for n in ns),
                           images.ImageOptions()).units) == 5
    ingest(IMAGES, str(tmp_path / "many"), source_format="images", workers=2, record_lineage=False)
    # Units change how shards are cut into gzip members, never the records or their order.
    for split in ("train", "eval"):
        assert read_split(str(tmp_path / "one"), split) == read_split(str(tmp_path / "many"), split)
    assert tree_bytes(str(tmp_path / "one")).keys() == tree_bytes(str(tmp_path / "many")).keys()


def test_empty_text_files_are_left_out_in_line_mode(tmp_path, caplog):
    import gzip as gz

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"one\ntwo\n")
    (data / "empty.txt").write_bytes(b"")
    (data / "empty.txt.gz").write_bytes(gz.compress(b""))
    result = ingest(str(data), str(tmp_path / "lines"), source_format="text", source_options={"unit": "line"},
                    output_config=ONE_SPLIT, record_lineage=False)
    assert result.counts == {"all": 2}
    assert "empty.txt: no lines; skipped" in caplog.text
    files = ingest(str(data), str(tmp_path / "files"), source_format="text", output_config=ONE_SPLIT,
                   record_lineage=False)
    assert sorted(r["text"][0] for r in examples(str(tmp_path / "files"))) == [b"", b"", b"one\ntwo\n"]
    assert files.counts == {"all": 3}
    (data / "a.txt").write_bytes(b"")
    with pytest.raises(SourceError, match=r"input split 'single_split': no lines in .*a\.txt"):
        ingest(str(data), str(tmp_path / "none"), source_format="text", source_options={"unit": "line"},
               record_lineage=False)


def test_the_beam_engine_writes_the_same_image_examples(tmp_path):
    local = ingest(IMAGES, str(tmp_path / "local"), source_format="images", record_lineage=False)
    beam = ingest(IMAGES, str(tmp_path / "beam"), source_format="images", engine="beam", record_lineage=False)
    assert beam.counts == local.counts and beam.extra_metadata == local.extra_metadata
    for split in ("train", "eval"):
        assert read_split(str(tmp_path / "beam"), split) == read_split(str(tmp_path / "local"), split)


def test_resolve_uses_the_default_pattern_of_the_format(tmp_path, capsys):
    # Images (and labelled text) read '*/*' when no input config is given: resolving with
    # the format must find the same files, and the fingerprint ingest checks.
    from examplegen.ingest import resolve
    from kfp_examplegen.components.functions import resolve_span

    files = sorted(os.path.join(IMAGES, label, name) for label in os.listdir(IMAGES)
                   for name in os.listdir(os.path.join(IMAGES, label)))
    [resolution], fingerprint = resolve(IMAGES, source_format="images", record_lineage=False)
    assert [s.name for s in resolution.splits] == ["single_split"]
    assert resolution.splits[0].pattern == "*/*"
    assert sorted(resolution.splits[0].files) == files
    result = ingest(IMAGES, str(tmp_path / "out"), source_format="images", record_lineage=False,
                    expected_fingerprint=fingerprint)
    assert result.rows_read == len(files) and metadata(str(tmp_path / "out"))["input_fingerprint"] == fingerprint
    # the CSV default '*' matches the label folders only (a directory is not a file)
    with pytest.raises(SpanResolutionError, match=r"no file matches pattern '\*'"):
        resolve(IMAGES, record_lineage=False)

    assert cli.main(["resolve", "--input-base", IMAGES, "--format", "images", "--no-lineage"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["splits"] == [{"name": "single_split", "pattern": "*/*"}]
    assert printed["fingerprint"] == fingerprint
    store = f"sqlite:///{tmp_path}/m.sqlite"
    outputs = resolve_span(input_base=IMAGES, source_format="images", mlmd=store)
    assert outputs[2] == {"splits": [{"name": "single_split", "pattern": "*/*"}]}
    assert (sorted(outputs[5]), outputs[4]) == (files, fingerprint)
    # text without labels reads '*', with labels '*/*'
    [plain], _ = resolve(CORPUS, source_format="text", record_lineage=False)
    assert plain.splits[0].pattern == "*"
    [labelled], _ = resolve(TEXT, source_format="text", source_options={"labels": True}, record_lineage=False)
    assert labelled.splits[0].pattern == "*/*"
