"""The bad-row policy (examplegen.bad_rows): skip bad rows into the artifact's quarantine,
limits, counts everywhere they are reported, and the default that still fails.

Expected rows come from the inputs the tests write: the artifact of a file with bad rows
under ``skip`` must equal, byte for byte, the artifact of the same file with those rows
deleted (converted under the default policy).
"""

from __future__ import annotations

import base64
import gzip
import json
import os

import pytest

from examplegen import bad_rows, cli
from examplegen.errors import ConfigError, SourceError
from examplegen.ingest import ingest, resplit
from examplegen.sources import csv as csv_source
from tests.helpers import read_split, read_tfrecords, shared, split_names, tree_bytes

ONE_SPLIT = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}
TWO_SPLITS = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 1}]}}

GOOD = [b"1,x,1.5\n", b'3,"multi\nline",2.5\n', b"6,w,4.5\n", b"7,v,\n", b"8,u,5\n"]
# (line in the file, bytes, reason): a ragged row, bytes not valid UTF-8, a value the schema
# (c:float) contradicts, a row too long.
BAD = {
    "ragged": (b"2,y\n", "expected 3 fields, got 2"),
    "undecodable": (b"4,\xff\xfe,3\n", "bytes are not valid utf-8"),
    "schema": (b"5,z,abc\n", "column 'c': value b'abc' is not a float (the schema says float)"),
    "long": (b"9,t,1,extra\n", "expected 3 fields, got 4"),
}
ORDER = [GOOD[0], BAD["ragged"][0], GOOD[1], BAD["undecodable"][0], BAD["schema"][0], GOOD[2], GOOD[3],
         BAD["long"][0], GOOD[4]]
SCHEMA = {"schema": "c:float"}


def _write_csv(path, rows, repeat=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a,b,c\n" + b"".join(rows) * repeat)
    return path


def _lines_of(rows, repeat=1):
    """The file line where each row begins (the header is line 1)."""
    out, line = [], 2
    for _ in range(repeat):
        for row in rows:
            out.append(line)
            line += row.count(b"\n")
    return out


def quarantine(artifact) -> list[dict]:
    with gzip.open(os.path.join(artifact, "Quarantine", "bad_rows.jsonl.gz"), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _artifact_records(artifact):
    return {split: read_split(str(artifact), split) for split in split_names(str(artifact))}


@pytest.mark.parametrize("repeat,chunk_bytes,workers", [(1, None, 1), (300, 997, 2)])
def test_skip_keeps_exactly_the_good_csv_rows_and_quarantines_the_bad_ones(
        tmp_path, monkeypatch, repeat, chunk_bytes, workers):
    if chunk_bytes:  # many chunks, converted by two worker processes
        monkeypatch.setattr("examplegen.ingest.CHUNK_BYTES", chunk_bytes)
    data = _write_csv(tmp_path / "in" / "d.csv", ORDER, repeat)
    clean = _write_csv(tmp_path / "clean" / "d.csv", [r for r in ORDER if r in GOOD], repeat)
    out = tmp_path / "out"
    result = ingest(str(data.parent), str(out), csv_options=SCHEMA, output_config=TWO_SPLITS,
                    bad_rows="skip", workers=workers, record_lineage=False)
    expected = ingest(str(clean.parent), str(tmp_path / "expected"), csv_options=SCHEMA,
                      output_config=TWO_SPLITS, workers=workers, record_lineage=False)

    assert _artifact_records(out) == _artifact_records(tmp_path / "expected")
    assert sum(len(r) for r in _artifact_records(out).values()) == len(GOOD) * repeat
    n_bad = len(BAD) * repeat
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (len(ORDER) * repeat, len(GOOD) * repeat,
                                                                             n_bad)
    assert result.rows_read == result.rows_written + result.rows_rejected
    assert result.counts == expected.counts

    entries = quarantine(out)
    lines = _lines_of(ORDER, repeat)
    bad_at = [(line, row) for line, row in zip(lines, ORDER * repeat) if row not in GOOD]
    assert [(e["line"], base64.b64decode(e["raw_base64"])) for e in entries] == bad_at
    assert {e["file"] for e in entries} == {str(data)}
    reasons = {row: reason for row, reason in BAD.values()}
    for entry, (_, row) in zip(entries, bad_at):
        assert reasons[row] in entry["reason"]

    md = json.loads((out / "examples_metadata.json").read_text())
    assert (md["rows_rejected"], md["quarantine_file"]) == (n_bad, "Quarantine/bad_rows.jsonl.gz")
    assert result.metadata()["rows_rejected"] == n_bad


def test_types_are_inferred_from_the_good_rows_only(tmp_path):
    # The one row with text in column b is bad (c contradicts the schema): b stays an integer.
    data = _write_csv(tmp_path / "in" / "d.csv", [b"1,10,1.5\n", b"2,text,oops\n", b"3,30,2\n"])
    result = ingest(str(data.parent), str(tmp_path / "out"), csv_options=SCHEMA, output_config=ONE_SPLIT,
                    bad_rows="skip", record_lineage=False)
    assert result.config["column_types"]["single_split"] == {"a": "INT", "b": "INT", "c": "FLOAT"}
    import tensorflow as tf

    b = [tf.train.Example.FromString(r).features.feature["b"].int64_list.value[0]
         for r in read_split(str(tmp_path / "out"), "all")]
    assert b == [10, 30]


def test_a_second_conversion_pass_does_not_quarantine_rows_twice(tmp_path, monkeypatch):
    # The sampled types are too narrow for column b, so the split is converted twice.
    monkeypatch.setattr(csv_source, "sample_types", lambda layout, options, *a, **k: [csv_source.ColumnType.INT] * 3)
    data = _write_csv(tmp_path / "in" / "d.csv", [b"1,2,3\n", b"4,5\n", b"7,eight,9\n"])
    result = ingest(str(data.parent), str(tmp_path / "out"), output_config=ONE_SPLIT, bad_rows="skip",
                    record_lineage=False)
    assert [e["line"] for e in quarantine(tmp_path / "out")] == [3]
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (3, 2, 1)
    assert result.config["column_types"]["single_split"]["b"] == "STRING"


@pytest.mark.parametrize("mode,feature_row", [("value", b"9,,1\n"), ("partition", b"x,,1\n")])
def test_rows_without_a_split_feature_value_are_skipped(tmp_path, mode, feature_row):
    data = _write_csv(tmp_path / "in" / "d.csv", [b"1,5,1\n", feature_row, b"2,7,1\n"])
    config = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 1}]}}
    if mode == "value":
        config["split_config"]["value_split"] = {"feature_name": "b", "boundaries": [6]}
    else:
        config["split_config"]["partition_feature_name"] = "b"
    result = ingest(str(data.parent), str(tmp_path / "out"), output_config=config, bad_rows="skip",
                    record_lineage=False)
    [entry] = quarantine(tmp_path / "out")
    what = "value-split feature" if mode == "value" else "partition feature"
    assert (entry["line"], entry["reason"]) == (3, f"{what} 'b' has no value")
    assert base64.b64decode(entry["raw_base64"]) == feature_row
    assert sum(result.counts.values()) == 2


@pytest.mark.parametrize("compress", [True, False])
def test_every_row_of_every_batch_knows_its_line_and_bytes(tmp_path, compress):
    # Small batches: a gzip file is cut into many blocks, a plain range parsed into many batches.
    rows = [b"%d,r%d,%d\n" % (i, i, i) if i % 97 else b"%d,only-two\n" % i for i in range(3000)]
    rows[500] = b'500,"two\nlines",500\n'
    path = tmp_path / "d.csv.gz"
    data = b"a,b,c\n" + b"".join(rows)
    path.write_bytes(gzip.compress(data) if compress else data)
    options = csv_source.CsvOptions()
    layout = csv_source.read_layout(str(path), options)
    [(start, end, line)] = csv_source.plan_chunks(layout, options, 1 << 20)
    rejects = bad_rows.RowRejects(bad_rows.BadRowPolicy.create("skip"))
    good = []
    for batch in csv_source.read_rows(layout, options, start, end, line, batch_bytes=1000, rejects=rejects):
        good += batch.batch.column("a").to_pylist()
        # every good row knows its line and bytes
        assert [batch.raw(i) for i in range(batch.batch.num_rows)] == [
            rows[int(a)] for a in batch.batch.column("a").to_pylist()]
        assert [batch.line(i) for i in range(batch.batch.num_rows)] == [
            int(a) + 2 + (int(a) > 500) for a in batch.batch.column("a").to_pylist()]
    assert good == [str(i) for i in range(3000) if i % 97]
    assert rejects.count == len(range(0, 3000, 97))
    assert rejects.reasons[1].endswith(": line 99: expected 3 fields, got 2: '97,only-two'")


def _examples(n):
    return read_tfrecords([os.path.join(shared("external", "tfrecord"), f)
                           for f in sorted(os.listdir(shared("external", "tfrecord")))])[:n]


def _write_tfrecord(path, records):
    from examplegen.tfrecord import frame_records

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(frame_records(records)))


def test_skip_drops_records_that_are_not_the_payload_type(tmp_path):
    records = _examples(1600)
    bad = {3: b"plain text, not a tf.Example", 1400: b"\xff\x00 binary junk", 1599: b"\x0a\x05abc"}
    mixed = [bad.get(i, r) for i, r in enumerate(records)]
    _write_tfrecord(tmp_path / "in" / "mixed.gz", mixed)
    result = ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="tfrecord",
                    output_config=ONE_SPLIT, bad_rows="skip", record_lineage=False)
    assert read_split(str(tmp_path / "out"), "all") == [r for i, r in enumerate(records) if i not in bad]
    entries = quarantine(tmp_path / "out")
    assert [(e["record"], base64.b64decode(e["raw_base64"])) for e in entries] == sorted(bad.items())
    assert all("not a serialized tf.train.Example" in e["reason"] for e in entries)
    assert (result.rows_read, result.rows_written, result.rows_rejected) == (1600, 1597, 3)

    # resplit takes the same policy; the default still fails on the first bad record
    artifact = tmp_path / "artifact" / "Split-x"
    _write_tfrecord(artifact / "data.gz", mixed)
    with pytest.raises(SourceError, match=r"data\.gz: record 3: not a serialized tf\.train\.Example"):
        resplit(str(artifact.parent), str(tmp_path / "re"), output_config=TWO_SPLITS, record_lineage=False)
    result = resplit(str(artifact.parent), str(tmp_path / "re"), output_config=TWO_SPLITS, bad_rows="skip",
                     max_bad_rows=3, record_lineage=False)
    assert (result.rows_written, result.rows_rejected) == (1597, 3)
    assert [e["record"] for e in quarantine(tmp_path / "re")] == [3, 1400, 1599]


def test_skip_drops_records_without_the_split_feature(tmp_path):
    import tensorflow as tf

    records = _examples(20)
    no_value = tf.train.Example()
    no_value.CopyFrom(tf.train.Example.FromString(records[5]))
    del no_value.features.feature["payment_type"]
    records[5] = no_value.SerializeToString()
    _write_tfrecord(tmp_path / "in" / "d.gz", records)
    config = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 1}],
                               "partition_feature_name": "payment_type"}}
    with pytest.raises(SourceError, match=r"d\.gz: record 5: partition feature 'payment_type' does not exist"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="tfrecord", output_config=config,
               record_lineage=False)
    result = ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="tfrecord", output_config=config,
                    bad_rows="skip", record_lineage=False)
    assert [e["record"] for e in quarantine(tmp_path / "out")] == [5]
    assert sorted(read_split(str(tmp_path / "out"), "a") + read_split(str(tmp_path / "out"), "b")) == sorted(
        r for i, r in enumerate(records) if i != 5)
    assert result.rows_rejected == 1


@pytest.mark.parametrize("limits,message", [
    ({"max_bad_rows": 3}, r"too many bad rows: [45] of the \d+ rows read so far .* more than max_bad_rows=3"),
    ({"max_bad_ratio": 0.25}, r"too many bad rows: 4 of 9 rows read \(44.4%\) were rejected, more than "
                              r"max_bad_ratio=0.25"),
])
def test_exceeding_a_limit_fails_and_commits_nothing(tmp_path, limits, message):
    data = _write_csv(tmp_path / "in" / "d.csv", ORDER)
    out = tmp_path / "out"
    earlier = ingest(str(data.parent), str(out), csv_options=SCHEMA, bad_rows="skip", record_lineage=False)
    assert earlier.rows_rejected == 4
    before = tree_bytes(str(out))
    with pytest.raises(bad_rows.TooManyBadRows, match=message) as failure:
        ingest(str(data.parent), str(out), csv_options=SCHEMA, bad_rows="skip", record_lineage=False, **limits)
    assert f"{data}: line 3: expected 3 fields, got 2" in str(failure.value)  # the first reasons
    assert "nothing was written" in str(failure.value)
    assert tree_bytes(str(out)) == before  # the earlier artifact is untouched, no staging left
    with pytest.raises(bad_rows.TooManyBadRows):
        ingest(str(data.parent), str(tmp_path / "new"), csv_options=SCHEMA, bad_rows="skip",
               record_lineage=False, **limits)
    assert not (tmp_path / "new").exists()
    # at the limit the run passes
    allowed = {"max_bad_rows": 4} if "max_bad_rows" in limits else {"max_bad_ratio": 4 / 9}
    assert ingest(str(data.parent), str(tmp_path / "ok"), csv_options=SCHEMA, bad_rows="skip",
                  record_lineage=False, **allowed).rows_rejected == 4


def test_default_fails_on_the_first_bad_row_and_leaves_no_quarantine(tmp_path):
    data = _write_csv(tmp_path / "in" / "d.csv", ORDER)
    with pytest.raises(SourceError, match=rf"{data}: line 3: expected 3 fields, got 2: '2,y'"):
        ingest(str(data.parent), str(tmp_path / "out"), csv_options=SCHEMA, record_lineage=False)
    assert not (tmp_path / "out").exists()
    good = _write_csv(tmp_path / "good" / "d.csv", GOOD)
    result = ingest(str(good.parent), str(tmp_path / "out"), csv_options=SCHEMA, record_lineage=False)
    assert not (tmp_path / "out" / "Quarantine").exists() and "rows_rejected" not in result.metadata()
    # a later skip run replaces the artifact with its quarantine; a default run removes it again
    ingest(str(data.parent), str(tmp_path / "out"), csv_options=SCHEMA, bad_rows="skip", record_lineage=False)
    assert len(quarantine(tmp_path / "out")) == 4
    ingest(str(good.parent), str(tmp_path / "out"), csv_options=SCHEMA, record_lineage=False)
    assert not (tmp_path / "out" / "Quarantine").exists()


@pytest.mark.parametrize("options,message", [
    ({"bad_rows": "drop"}, r"bad_rows \(--bad-rows\) 'drop' is unknown; use fail or skip"),
    ({"bad_rows": "skip", "max_bad_rows": -1}, r"max_bad_rows \(--max-bad-rows\) must be a whole number >= 0, got -1"),
    ({"bad_rows": "skip", "max_bad_rows": 2.5}, r"max_bad_rows .* got 2.5"),
    ({"bad_rows": "skip", "max_bad_ratio": 1.5}, r"max_bad_ratio \(--max-bad-ratio\) must be a number from 0 to 1"),
    ({"max_bad_rows": 5}, r"apply with bad_rows='skip' \(--bad-rows skip\) only"),
])
def test_options_are_checked_with_messages_naming_them(tmp_path, options, message):
    data = _write_csv(tmp_path / "in" / "d.csv", GOOD)
    with pytest.raises(ConfigError, match=message):
        ingest(str(data.parent), str(tmp_path / "out"), record_lineage=False, **options)
    with pytest.raises(ConfigError, match=message):
        resplit(str(tmp_path), str(tmp_path / "re"), output_config=TWO_SPLITS, record_lineage=False, **options)
    assert not (tmp_path / "out").exists()


def test_counts_in_ml_metadata_and_the_report(tmp_path):
    from examplegen.lineage import open_store, schema
    from examplegen.lineage.schema import properties
    from examplegen.report import report_with_lineage

    data = _write_csv(tmp_path / "in" / "d.csv", ORDER)
    url = f"sqlite:///{tmp_path / 'mlmd.sqlite'}"
    out = tmp_path / "out"
    ingest(str(data.parent), str(out), csv_options=SCHEMA, bad_rows="skip", max_bad_ratio=0.5, mlmd=url)
    mlmd = open_store(url, create=False).mlmd
    [execution] = mlmd.get_executions_by_type(schema.INGEST)
    p = properties(execution)
    assert (p["rows_read"], p["rows_written"], p["rows_rejected"]) == (9, 5, 4)
    assert json.loads(p["config"])["bad_rows"] == {"mode": "skip", "max_bad_rows": None, "max_bad_ratio": 0.5}
    [artifact] = mlmd.get_artifacts_by_type(schema.EXAMPLES)
    a = properties(artifact)
    assert (a["rows_rejected"], a["quarantine_file"]) == (4, "Quarantine/bad_rows.jsonl.gz")

    # an identical run is reused with its quarantine, also when copied to another output
    again = ingest(str(data.parent), str(tmp_path / "copy"), csv_options=SCHEMA, bad_rows="skip",
                   max_bad_ratio=0.5, mlmd=url)
    assert again.cached and again.rows_rejected == 4 and again.metadata()["rows_rejected"] == 4
    assert quarantine(tmp_path / "copy") == quarantine(out)
    # a default-policy run is not the same run: it converts (and fails on the first bad row)
    with pytest.raises(SourceError, match="line 3"):
        ingest(str(data.parent), str(tmp_path / "default"), csv_options=SCHEMA, mlmd=url)

    page = tmp_path / "report.html"
    summary = report_with_lineage(str(out), str(page), mlmd=url)
    assert summary.rows_rejected == 4 and [e["line"] for e in summary.rejected_rows] == [3, 6, 7, 10]
    html = page.read_text()
    assert "Bad rows skipped" in html and "Quarantine/bad_rows.jsonl.gz" in html
    assert "expected 3 fields, got 2: &#x27;2,y&#x27;" in html
    assert "column &#x27;c&#x27;: value b&#x27;abc&#x27; is not a float" in html


def test_cli_flags_and_summary(tmp_path, capsys):
    data = _write_csv(tmp_path / "in" / "d.csv", ORDER)
    out = tmp_path / "out"
    code = cli.main(["ingest", "--input-base", str(data.parent), "--output", str(out), "--schema", "c:float",
                     "--no-lineage", "--bad-rows", "skip", "--max-bad-rows", "4", "--max-bad-ratio", "0.5"])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert f"4 bad rows skipped, listed in {out}/Quarantine/bad_rows.jsonl.gz" in text
    code = cli.main(["ingest", "--input-base", str(data.parent), "--output", str(out), "--schema", "c:float",
                     "--no-lineage", "--bad-rows", "skip", "--json", "--force"])
    text, err = capsys.readouterr()
    result = json.loads(text)
    assert (result["rows_read"], result["rows_written"], result["rows_rejected"]) == (9, 5, 4)
    assert result["quarantine"] == f"{out}/Quarantine/bad_rows.jsonl.gz"

    code = cli.main(["ingest", "--input-base", str(data.parent), "--output", str(tmp_path / "o2"),
                     "--schema", "c:float", "--no-lineage", "--bad-rows", "skip", "--max-bad-rows", "1"])
    text, err = capsys.readouterr()
    assert code == 1 and "error: too many bad rows" in err and "Traceback" not in err
    code = cli.main(["ingest", "--input-base", str(data.parent), "--output", str(tmp_path / "o2"),
                     "--no-lineage", "--max-bad-ratio", "0.1"])
    text, err = capsys.readouterr()
    assert code == 1 and "apply with bad_rows='skip'" in err

    artifact = tmp_path / "artifact" / "Split-x"
    _write_tfrecord(artifact / "data.gz", [b"junk"] + _examples(5))
    code = cli.main(["resplit", "--examples", str(artifact.parent), "--output", str(tmp_path / "re"),
                     "--output-config", json.dumps(TWO_SPLITS), "--no-lineage", "--bad-rows", "skip"])
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "1 bad rows skipped" in text and [e["record"] for e in quarantine(tmp_path / "re")] == [0]


def test_component_parameters_reach_the_engine(tmp_path):
    from kfp_examplegen.components import _common
    from kfp_examplegen.components.functions import csv_example_gen

    assert _common.bad_row_options("", -1, -1.0) == {"bad_rows": "fail", "max_bad_rows": None,
                                                      "max_bad_ratio": None}

    class Output:
        def __init__(self, path):
            self.path, self.metadata = str(path), {}

    data = _write_csv(tmp_path / "in" / "d.csv", ORDER)
    examples = Output(tmp_path / "examples")
    csv_example_gen(examples, input_base=str(data.parent), csv_options=SCHEMA, bad_rows="skip", max_bad_rows=4,
                    mlmd=f"sqlite:///{tmp_path / 'm.sqlite'}")
    assert examples.metadata["rows_rejected"] == 4
    assert len(quarantine(examples.path)) == 4
    with pytest.raises(bad_rows.TooManyBadRows):
        csv_example_gen(Output(tmp_path / "e2"), input_base=str(data.parent), csv_options=SCHEMA,
                        bad_rows="skip", max_bad_ratio=0.1, mlmd=f"sqlite:///{tmp_path / 'm.sqlite'}")


def test_a_commit_that_dies_leaves_no_complete_looking_quarantine(tmp_path, monkeypatch):
    from examplegen import writer

    data = _write_csv(tmp_path / "in" / "d.csv", ORDER)
    out = tmp_path / "out"
    ingest(str(data.parent), str(out), csv_options=SCHEMA, bad_rows="skip", record_lineage=False)
    real_move = writer._move_dir

    def dies_at_the_quarantine(source, target):
        if target.endswith("Quarantine"):
            raise OSError("disk gone")
        real_move(source, target)

    monkeypatch.setattr(writer, "_move_dir", dies_at_the_quarantine)
    with pytest.raises(OSError, match="disk gone"):
        ingest(str(data.parent), str(out), csv_options=SCHEMA, bad_rows="skip", record_lineage=False)
    # the earlier artifact is no longer complete, and no staged quarantine is left behind
    assert not (out / "examples_metadata.json").exists() and not (out / "Quarantine").exists()
    assert not [n for n in os.listdir(out) if n.startswith(".staging-")]
    monkeypatch.setattr(writer, "_move_dir", real_move)
    ingest(str(data.parent), str(out), csv_options=SCHEMA, bad_rows="skip", record_lineage=False)
    assert [e["line"] for e in quarantine(out)] == [3, 6, 7, 10]


def test_reuse_verifies_the_quarantine_like_the_splits(tmp_path):
    data = _write_csv(tmp_path / "in" / "d.csv", ORDER)
    url = f"sqlite:///{tmp_path / 'mlmd.sqlite'}"
    out = tmp_path / "out"
    ingest(str(data.parent), str(out), csv_options=SCHEMA, bad_rows="skip", mlmd=url)
    listed = {f["path"] for f in json.loads((out / "examples_metadata.json").read_text())["files"]}
    assert "Quarantine/bad_rows.jsonl.gz" in listed
    assert ingest(str(data.parent), str(out), csv_options=SCHEMA, bad_rows="skip", mlmd=url).cached
    good = quarantine(out)
    path = out / "Quarantine" / "bad_rows.jsonl.gz"
    path.write_bytes(gzip.compress(b"{}\n"))  # someone edited the quarantine
    again = ingest(str(data.parent), str(out), csv_options=SCHEMA, bad_rows="skip", mlmd=url)
    assert not again.cached and quarantine(out) == good


def test_lines_are_right_when_a_quote_sits_inside_an_unquoted_field(tmp_path):
    # Quote parity (the fast way to find rows) is fooled by ab"c; Python's csv module is not.
    rows = [b'1,ab"c,1\n', b"2,d,x\n", b"3,e,2\n", b"4,f\n", b'5,"g\nh",3\n', b"6,i,4\n"]
    data = _write_csv(tmp_path / "in" / "d.csv", rows)
    result = ingest(str(data.parent), str(tmp_path / "out"), csv_options={"schema": "c:int"},
                    output_config=ONE_SPLIT, bad_rows="skip", record_lineage=False)
    assert [(e["line"], base64.b64decode(e["raw_base64"])) for e in quarantine(tmp_path / "out")] == [
        (3, b"2,d,x\n"), (5, b"4,f\n")]
    import tensorflow as tf

    kept = [tf.train.Example.FromString(r).features.feature["a"].int64_list.value[0]
            for r in read_split(str(tmp_path / "out"), "all")]
    assert kept == [1, 3, 5, 6] and result.rows_rejected == 2


USER_SOURCE = '''
import dataclasses, os
import pyarrow as pa
from examplegen.sources.base import Plan, WorkUnit

FORMAT = "pairs"


@dataclasses.dataclass(frozen=True)
class Options:
    @classmethod
    def from_dict(cls, d):
        return cls()

    def to_dict(self):
        return {}


def plan(split_name, files, options, chunk_bytes=0):
    return Plan([WorkUnit(path, os.path.getsize(path)) for path in files])


def read(unit, options, rejects):
    good, lines, raws = [], [], []
    with open(unit.path, "rb") as f:
        for number, raw in enumerate(f, 1):
            key, sep, value = raw.strip().partition(b"=")
            if not sep:
                rejects.reject(unit.path, "line", number, "no '='", raw)
                continue
            good.append((key.decode(), value.decode() or None))
            lines.append(number)
            raws.append(raw)
    rejects.locate(lambda i: (unit.path, "line", lines[i], raws[i]))
    yield pa.RecordBatch.from_pydict({"k": [k for k, _ in good], "v": [v for _, v in good]})
'''


def test_a_source_of_your_own_reports_bad_rows_through_its_rejects_argument(tmp_path, monkeypatch):
    # The source rejects line 2 itself; the engine rejects line 4 (no value-split value)
    # through the source's locate().
    (tmp_path / "pkg").mkdir()
    name = f"pairs_source_{abs(hash(str(tmp_path)))}"
    (tmp_path / "pkg" / f"{name}.py").write_text(USER_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    data = tmp_path / "in" / "d.kv"
    data.parent.mkdir()
    data.write_bytes(b"a=1\nbroken\nb=2\nc=\nd=3\n")
    config = {"split_config": {"splits": [{"name": "lo", "hash_buckets": 1}, {"name": "hi", "hash_buckets": 1}],
                               "value_split": {"feature_name": "v", "boundaries": ["2"]}}}
    result = ingest(str(data.parent), str(tmp_path / "out"), source_format=name, output_config=config,
                    bad_rows="skip", record_lineage=False)
    assert [(e["line"], e["reason"], base64.b64decode(e["raw_base64"])) for e in quarantine(tmp_path / "out")] == [
        (2, "no '='", b"broken\n"), (4, "value-split feature 'v' has no value", b"c=\n")]
    assert (result.rows_read, result.rows_rejected, result.counts) == (5, 2, {"lo": 1, "hi": 2})
    with pytest.raises(SourceError, match=r"d.kv: line 2: no '='"):
        ingest(str(data.parent), str(tmp_path / "fail"), source_format=name, output_config=config,
               record_lineage=False)


def test_sources_without_row_rejection_fail_on_the_first_bad_row_under_skip(tmp_path, monkeypatch):
    # A source whose read() takes no rejects argument cannot name its rows: the engine's
    # first bad row (no value-split value) fails the run under skip too.
    (tmp_path / "pkg").mkdir()
    name = f"pairs_norejects_{abs(hash(str(tmp_path)))}"
    source = USER_SOURCE.replace("def read(unit, options, rejects):", "def read(unit, options):").replace(
        "    rejects.locate(lambda i: (unit.path, \"line\", lines[i], raws[i]))\n", "")
    assert "rejects" not in source.split("def read", 1)[1].split(":", 1)[0]
    (tmp_path / "pkg" / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    data = tmp_path / "in" / "d.kv"
    data.parent.mkdir()
    data.write_bytes(b"a=1\nb=2\nc=\nd=3\n")
    config = {"split_config": {"splits": [{"name": "lo", "hash_buckets": 1}, {"name": "hi", "hash_buckets": 1}],
                               "value_split": {"feature_name": "v", "boundaries": ["2"]}}}
    with pytest.raises(SourceError, match=r"d.kv: row 2: value-split feature 'v' has no value"):
        ingest(str(data.parent), str(tmp_path / "out"), source_format=name, output_config=config,
               bad_rows="skip", record_lineage=False)
    assert not os.path.exists(tmp_path / "out" / "examples_metadata.json")


def test_query_ingest_refuses_skip(tmp_path):
    from examplegen.query_ingest import ingest_query

    with pytest.raises(ConfigError, match=r"--bad-rows skip\) applies to file formats only.*WHERE clause"):
        ingest_query("postgresql://postgres@127.0.0.1:5432/none", str(tmp_path / "out"),
                     input_config={"splits": [{"name": "all", "pattern": "SELECT 1"}]}, bad_rows="skip",
                     record_lineage=False)


def test_the_beam_engine_quarantines_what_the_local_engine_does(tmp_path, monkeypatch):
    # Many units on the DirectRunner: each attempt writes its quarantine part in its own
    # folder and moves it into the staging folder only when it finishes.
    monkeypatch.setattr("examplegen.ingest.CHUNK_BYTES", 997)
    data = _write_csv(tmp_path / "in" / "d.csv", ORDER, 100)
    common = dict(csv_options=SCHEMA, output_config=TWO_SPLITS, bad_rows="skip", record_lineage=False)
    local = ingest(str(data.parent), str(tmp_path / "local"), workers=1, **common)
    beam = ingest(str(data.parent), str(tmp_path / "beam"), engine="beam",
                  beam_pipeline_args=["--runner=DirectRunner"], **common)
    assert beam.rows_rejected == local.rows_rejected == len(BAD) * 100
    assert tree_bytes(str(tmp_path / "beam")) == tree_bytes(str(tmp_path / "local"))
    assert len(quarantine(tmp_path / "beam")) == len(BAD) * 100
