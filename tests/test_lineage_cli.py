"""`examplegen versions` and `examplegen lineage`, run through examplegen.cli.main."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from examplegen.cli import main
from examplegen.lineage import Recorder, open_store, schema
from tests.lineage_fixtures import fingerprint, make_result, mysql_url, write_source  # noqa: F401

CONFIG = {"input_config": {"splits": [{"name": "train", "pattern": "span-{SPAN}/train/*"},
                                      {"name": "eval", "pattern": "span-{SPAN}/eval/*"}]}}


def _ingest(store, out, sources, span, cached=False):
    with Recorder(store, config=CONFIG) as rec:
        rec.record_inputs(sources)
        hit = rec.find_cached(fingerprint(sources))
        assert (hit is not None) == cached
        if hit:
            rec.complete_cached(hit)
        else:
            rec.complete(make_result(out, sources, {"train": 3, "eval": 1}, span=span))
    return rec


@pytest.fixture
def history(tmp_path):
    """Span 0 ingested, re-run (cached), changed in place (same size and mtime) and ingested
    again; span 1 ingested and then re-split."""
    data, out = tmp_path / "data", tmp_path / "out"
    url = f"sqlite:///{tmp_path / 'mlmd.sqlite'}"
    store = open_store(url)
    train0 = write_source(data / "span-0" / "train" / "a.csv", b"x\n1\n2\n3\n", "train", 0)
    eval0 = write_source(data / "span-0" / "eval" / "b.csv", b"x\n4\n", "eval", 0)
    first = _ingest(store, out / "ingest-0", [train0, eval0], 0)
    cached = _ingest(store, out / "ingest-0", [train0, eval0], 0, cached=True)

    stat = os.stat(train0.uri)
    train0b = write_source(data / "span-0" / "train" / "a.csv", b"x\n7\n8\n9\n", "train", 0)
    os.utime(train0.uri, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = _ingest(store, out / "ingest-0b", [train0b, eval0], 0)

    train1 = write_source(data / "span-1" / "train" / "a.csv", b"x\n5\n", "train", 1)
    eval1 = write_source(data / "span-1" / "eval" / "b.csv", b"x\n6\n", "eval", 1)
    span1 = _ingest(store, out / "ingest-1", [train1, eval1], 1)
    with Recorder(store, schema.SPLIT, config={"split": "re"}) as split:
        split.record_input_examples(str(out / "ingest-1"))
        split.complete(make_result(out / "split-1", [], {"train": 1, "eval": 1}, span=1))
    return SimpleNamespace(url=url, data=data, out=out, train0=train0, eval0=eval0, train0b=train0b,
                           train1=train1, eval1=eval1, first=first, cached=cached, changed=changed,
                           span1=span1, split=split)


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _short(digest):
    return digest[: len("sha256:") + 16]


def test_versions_json_lists_each_data_version_with_digests_runs_and_examples(history, capsys):
    code, out, _ = _run(capsys, "versions", "--input-base", str(history.data), "--mlmd", history.url, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["input_base"] == str(history.data)
    versions = report["versions"]
    assert [(v["span"], v["version"]) for v in versions] == [(0, None), (0, None), (1, None)]

    original, changed, span1 = versions
    assert {(f["uri"], f["digest"]) for f in original["files"]} == {
        (history.train0.uri, history.train0.digest), (history.eval0.uri, history.eval0.digest)}
    assert {(f["uri"], f["digest"]) for f in changed["files"]} == {
        (history.train0b.uri, history.train0b.digest), (history.eval0.uri, history.eval0.digest)}
    assert history.train0.digest != history.train0b.digest

    assert [(r["id"], r["state"]) for r in original["runs"]] == [
        (history.first.execution_id, "COMPLETE"), (history.cached.execution_id, "CACHED")]
    assert original["input_fingerprints"] == [fingerprint([history.train0, history.eval0])]
    assert changed["input_fingerprints"] == [fingerprint([history.train0b, history.eval0])]
    assert [e["uri"] for e in original["examples"]] == [str(history.out / "ingest-0")]
    assert [e["uri"] for e in changed["examples"]] == [str(history.out / "ingest-0b")]
    assert [(e["artifact_id"], e["state"], e["example_counts"]) for e in span1["examples"]] == [
        (history.span1.output_artifact_id, "LIVE", {"train": 3, "eval": 1})]
    assert {f["split"] for f in span1["files"]} == {"train", "eval"}


def test_versions_table(history, capsys):
    code, out, _ = _run(capsys, "versions", "--input-base", str(history.data), "--mlmd", history.url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Data versions under {history.data}  (MLMD store {history.url})"
    header = next(line for line in lines if line.startswith("SPAN"))
    assert header.split() == ["SPAN", "VERSION", "FIRST", "SEEN", "LAST", "SEEN", "RUNS", "FILES", "INPUT",
                              "FINGERPRINT"]
    rows = [line.split() for line in lines if line[:1].isdigit()]
    assert [(r[0], r[1], r[4], r[5]) for r in rows] == [
        ("0", "-", "2", "2"), ("0", "-", "1", "2"), ("1", "-", "1", "2")]
    for source in (history.train0, history.train0b, history.eval0, history.train1, history.eval1):
        assert any(_short(source.digest) in line and source.uri in line for line in lines), source
    examples = [line.split() for line in lines if line.strip().startswith("examples")]
    assert [(e[1], e[2], e[-1]) for e in examples] == [
        (f"#{history.first.output_artifact_id}", "LIVE", str(history.out / "ingest-0")),
        (f"#{history.changed.output_artifact_id}", "LIVE", str(history.out / "ingest-0b")),
        (f"#{history.span1.output_artifact_id}", "LIVE", str(history.out / "ingest-1"))]


def test_versions_input_config_selects_files_by_split_pattern(history, capsys):
    only_eval = json.dumps({"splits": [{"name": "eval", "pattern": "span-{SPAN}/eval/*.csv"}]})
    code, out, _ = _run(capsys, "versions", "--input-base", str(history.data), "--input-config", only_eval,
                        "--mlmd", history.url, "--json")
    assert code == 0
    versions = json.loads(out)["versions"]
    # The eval file of span 0 never changed: all three span-0 runs read the same version of it.
    assert [(v["span"], [f["uri"] for f in v["files"]], len(v["runs"])) for v in versions] == [
        (0, [history.eval0.uri], 3), (1, [history.eval1.uri], 1)]


def test_versions_of_an_unknown_base_and_bad_input_config(history, tmp_path, capsys):
    code, out, _ = _run(capsys, "versions", "--input-base", str(tmp_path / "elsewhere"), "--mlmd", history.url)
    assert code == 0 and "No runs have read files under this input base." in out
    code, _, err = _run(capsys, "versions", "--input-base", str(history.data), "--input-config", "{not json",
                        "--mlmd", history.url)
    assert code == 1 and "--input-config is not valid JSON" in err


def test_lineage_of_examples_shows_sources_configs_and_consumers(history, capsys):
    code, out, _ = _run(capsys, "lineage", str(history.out / "ingest-1"), "--mlmd", history.url, "--json")
    assert code == 0
    [match] = json.loads(out)["matches"]
    assert match["artifact"]["id"] == history.span1.output_artifact_id
    assert match["artifact"]["type"] == "tfx.Examples" and match["artifact"]["state"] == "LIVE"

    [producer] = match["upstream"]["executions"]
    assert (producer["id"], producer["type"], producer["state"]) == (
        history.span1.execution_id, "examplegen.Ingest", "COMPLETE")
    assert producer["config"] == CONFIG and producer["run"] == history.span1.run_name
    assert producer["pipeline"] == "examplegen"
    upstream = {a["id"]: a for a in match["upstream"]["artifacts"]}
    assert {(upstream[i]["uri"], upstream[i]["properties"]["digest"]) for i in producer["inputs"]} == {
        (history.train1.uri, history.train1.digest), (history.eval1.uri, history.eval1.digest)}

    [consumer] = match["downstream"]["executions"]
    assert (consumer["id"], consumer["type"]) == (history.split.execution_id, "examplegen.Split")
    [split_output] = match["downstream"]["artifacts"]
    assert split_output["uri"] == str(history.out / "split-1") and consumer["outputs"] == [split_output["id"]]


def test_lineage_text_of_examples(history, capsys):
    code, out, _ = _run(capsys, "lineage", str(history.span1.output_artifact_id), "--mlmd", history.url)
    assert code == 0
    upstream, downstream = out.split("Downstream (consumed it):")
    assert out.startswith(f"Artifact #{history.span1.output_artifact_id} tfx.Examples LIVE  {history.out / 'ingest-1'}")
    assert f"execution #{history.span1.execution_id} examplegen.Ingest COMPLETE" in upstream
    assert "rows read=5 written=4 rejected=1" in upstream
    assert "config: " + json.dumps(CONFIG, sort_keys=True) in upstream
    for source in (history.train1, history.eval1):
        [line] = [line for line in upstream.splitlines() if source.uri in line]
        assert line.split()[0] == "in" and "examplegen.SourceFile LIVE" in line and _short(source.digest) in line
    assert f"execution #{history.split.execution_id} examplegen.Split COMPLETE" in downstream
    assert f"out #{history.split.output_artifact_id} tfx.Examples LIVE  {history.out / 'split-1'}" in downstream


def test_lineage_of_a_changed_file_shows_each_version_and_its_consumers(history, capsys, monkeypatch):
    monkeypatch.setenv("EXAMPLEGEN_MLMD", history.url)  # no --mlmd: the environment selects the store
    code, out, _ = _run(capsys, "lineage", history.train0.uri, "--json")
    assert code == 0
    matches = json.loads(out)["matches"]
    by_digest = {m["artifact"]["properties"]["digest"]: m for m in matches}
    assert set(by_digest) == {history.train0.digest, history.train0b.digest}
    old, new = by_digest[history.train0.digest], by_digest[history.train0b.digest]
    assert old["upstream"]["executions"] == []
    assert [e["id"] for e in old["downstream"]["executions"]] == [history.first.execution_id,
                                                                   history.cached.execution_id]
    assert [e["id"] for e in new["downstream"]["executions"]] == [history.changed.execution_id]
    assert [a["uri"] for a in new["downstream"]["artifacts"] if a["type"] == "tfx.Examples"] == [
        str(history.out / "ingest-0b")]


def test_lineage_errors_are_clear(history, tmp_path, capsys):
    code, _, err = _run(capsys, "lineage", "999999", "--mlmd", history.url)
    assert code == 1 and "no artifact with id or URI '999999'" in err
    code, _, err = _run(capsys, "lineage", "1", "--mlmd", f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert code == 1 and "no MLMD store at" in err and not (tmp_path / "none.sqlite").exists()
    code, _, err = _run(capsys, "versions", "--input-base", "x", "--mlmd", "mysql://root:topsecret@127.0.0.1:1/db")
    assert code == 1 and "root:***@127.0.0.1:1" in err and "topsecret" not in err
    code, _, err = _run(capsys, "lineage", "1", "--mlmd", "ftp://host/x")
    assert code == 1 and "unknown scheme 'ftp'" in err


def test_versions_and_lineage_on_mariadb(mysql_url, tmp_path, capsys):
    store = open_store(mysql_url)
    source = write_source(tmp_path / "data" / "span-0" / "train" / "a.csv", b"x\n1\n", "train", 0)
    rec = _ingest(store, tmp_path / "out", [source], 0)
    code, out, _ = _run(capsys, "versions", "--input-base", str(tmp_path / "data"), "--mlmd", mysql_url, "--json")
    assert code == 0
    [version] = json.loads(out)["versions"]
    assert [f["digest"] for f in version["files"]] == [source.digest]
    assert [e["artifact_id"] for e in version["examples"]] == [rec.output_artifact_id]
    code, out, _ = _run(capsys, "lineage", str(tmp_path / "out"), "--mlmd", mysql_url, "--json")
    assert code == 0
    assert json.loads(out)["matches"][0]["upstream"]["executions"][0]["id"] == rec.execution_id
