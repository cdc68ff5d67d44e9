"""Issue 7 item 1: strings with backslashes and quotes round-trip exactly on SQLite, MariaDB
and PostgreSQL (whose ml-metadata source cannot write a backslash; see
examplegen.lineage.postgres_text), read back through the recorder, the queries and the CLI.
"""

from __future__ import annotations

import json

import pytest

from examplegen.cli import main
from examplegen.lineage import Recorder, open_store, schema
from examplegen.lineage.postgres_text import PREFIX, decode_text, encode_text, is_plain
from examplegen.lineage.query import data_versions, lineage
from examplegen.lineage.schema import properties
from tests.lineage_fixtures import (  # noqa: F401 - fixtures
    REPO_ROOT,
    make_result,
    mysql_url,
    postgres_url,
    sqlite_url,
    store_url,
    write_source,
)

HOSTILE = [
    '"\\""',  # the CSV default quote char as JSON
    "C:\\data\\x",
    "it's \"quoted\"",
    "SELECT * FROM t WHERE a = 'x\\'y' -- \\",
    "trailing\\",
    "\\\\server\\share",
    PREFIX + "%5C looks encoded",
    "100% \\%5C",
    "tab\there\nnew line",
    "ünï©ødé ☃ \\u00e9",
]


def test_encoding_is_exact_and_leaves_plain_strings_alone():
    for text in HOSTILE + ["a\0b", "", "%", PREFIX]:
        assert decode_text(encode_text(text)) == text
        assert "\\" not in encode_text(text) and "\0" not in encode_text(text)
    for text in ("plain", "it's", 'a "b"', "100%", "/data/taxi/data.csv", "sha256:00ff"):
        assert encode_text(text) == text == decode_text(text)
    assert encode_text("C:\\data") == PREFIX + "C:%5Cdata"  # readable in other MLMD clients
    assert is_plain("sha256:00ff") and not is_plain("it's") and not is_plain("a\\b")


def test_hostile_strings_round_trip_through_recorder_and_queries(store_url, tmp_path):
    store = open_store(store_url)
    base = tmp_path / "in\\put 'q'"
    sources = [write_source(base / "a\\b.csv", b"x\n1\n", split="train")]
    config = {"values": HOSTILE, "input_base": str(base), HOSTILE[1]: HOSTILE[0]}
    out = tmp_path / "out\\put"
    with Recorder(store, config=config, run_name="run\\1 'x'", pipeline_name="pipe\\line") as rec:
        rec.record_inputs(sources)
        rec.set_properties(note=HOSTILE[3])
        rec.complete(make_result(out, sources, {"train": 1}, config=config))
    with pytest.raises(RuntimeError):
        with Recorder(store, config={"other": HOSTILE[4]}) as failing:
            raise RuntimeError(f"cannot read {HOSTILE[1]}: {HOSTILE[2]}")

    [execution] = store.mlmd.get_executions_by_id([rec.execution_id])
    assert json.loads(properties(execution)["config"]) == config
    assert properties(execution)["note"] == HOSTILE[3]
    contexts = {c.type: c.name for c in store.mlmd.get_contexts_by_execution(rec.execution_id)}
    assert contexts == {schema.PIPELINE_CONTEXT: "pipe\\line", schema.RUN_CONTEXT: "run\\1 'x'"}
    [failed] = store.mlmd.get_executions_by_id([failing.execution_id])
    assert properties(failed)["error_message"] == f"RuntimeError: cannot read {HOSTILE[1]}: {HOSTILE[2]}"

    report = lineage(store, str(out))
    [match] = report["matches"]
    assert match["artifact"]["uri"] == str(out)
    [producer] = match["upstream"]["executions"]
    assert producer["config"] == config and producer["run"] == "run\\1 'x'"
    assert [a["uri"] for a in match["upstream"]["artifacts"]] == [sources[0].uri]

    [version] = data_versions(store, str(base))["versions"]
    assert [f["uri"] for f in version["files"]] == [sources[0].uri]
    assert [e["uri"] for e in version["examples"]] == [str(out)]

    again = Recorder(store, config=config)
    with again:
        cached = again.find_cached(make_result(out, sources, {"train": 1}).input_fingerprint)
        assert cached is not None and cached.output_uri == str(out) and cached.config == config
        assert [s.uri for s in cached.sources] == [sources[0].uri]
        again.complete_cached(cached)


def test_cli_ingest_of_the_taxi_csv_on_postgresql(postgres_url, tmp_path, capsys):
    """The issue's case: the default CSV config holds `"\\""` in its JSON."""
    out = tmp_path / "out"
    args = ["ingest", "--input-base", str(REPO_ROOT / "examples" / "data" / "taxi"), "--output", str(out),
            "--mlmd", postgres_url]
    assert main(args) == 0
    assert main(args) == 0  # the second run finds the first through the recorded config
    assert "reused an identical earlier run" in capsys.readouterr().out

    assert main(["lineage", str(out), "--json", "--mlmd", postgres_url]) == 0
    report = json.loads(capsys.readouterr().out)
    executions = [ex for m in report["matches"] for ex in m["upstream"]["executions"]]
    assert executions and all(ex["config"]["csv_options"]["quote_char"] == '"' for ex in executions)
    assert main(["versions", "--input-base", str(REPO_ROOT / "examples" / "data" / "taxi"), "--json",
                 "--mlmd", postgres_url]) == 0
    [version] = json.loads(capsys.readouterr().out)["versions"]
    assert [r["state"] for r in version["runs"]] == ["COMPLETE", "CACHED"]
