"""The bigquery query source against bqemulator (REST + the gRPC Storage Read API).

The emulator runs from its own venv (tests/bq_emulator.py); the official
google-cloud-bigquery and google-cloud-bigquery-storage clients of the pinned stack talk
to it unmodified. Tables are created with an explicit schema and seeded with
``insert_rows_json`` (the emulator's CREATE TABLE AS SELECT truncates computed NUMERICs).
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime
import decimal
import json
import os
import random
import subprocess
import sys
import uuid

import pytest

from examplegen.errors import ConfigError, SourceError
from examplegen.query_ingest import ingest_query
from examplegen.sources import bigquery as bq_source
from examplegen.sources.query import Connection, ResolvedQuery
from tests.bq_emulator import PROJECT, bq_emulator, bq_venv  # noqa: F401 - fixtures
from tests.helpers import (REPO, canonical, example_values, expected_values, plain_values, read_split,
                           run_query_pipeline)

URL = f"bigquery://{PROJECT}"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
SCHEMA = [("id", "INT64", "NULLABLE"), ("amount", "NUMERIC", "NULLABLE"), ("f", "FLOAT64", "NULLABLE"),
          ("ok", "BOOL", "NULLABLE"), ("s", "STRING", "NULLABLE"), ("b", "BYTES", "NULLABLE"),
          ("d", "DATE", "NULLABLE"), ("dt", "DATETIME", "NULLABLE"), ("ts", "TIMESTAMP", "NULLABLE"),
          ("j", "JSON", "NULLABLE"), ("tags", "INT64", "REPEATED"), ("words", "STRING", "REPEATED"),
          ("t", "TIME", "NULLABLE"), ("rec", "RECORD", "NULLABLE", [("a", "INT64", "NULLABLE"),
                                                                  ("b", "STRING", "NULLABLE")])]
KINDS = {"id": "int64_list", "amount": "float_list", "f": "float_list", "ok": "int64_list", "s": "bytes_list",
         "b": "bytes_list", "d": "int64_list", "dt": "int64_list", "ts": "int64_list", "j": "bytes_list",
         "tags": "int64_list", "words": "bytes_list", "t": "int64_list", "rec.a": "int64_list",
         "rec.b": "bytes_list"}


@pytest.fixture
def dataset(bq_emulator):
    """A dataset of its own for the test; the temporary tables go to ``<name>_tmp``."""
    name = f"t{uuid.uuid4().hex[:12]}"
    client = bq_emulator.client()
    client.create_dataset(name)
    try:
        yield name
    finally:
        for ds in (name, f"{name}_tmp"):
            client.delete_dataset(ds, delete_contents=True, not_found_ok=True)
        client.close()


def _create(emulator, table: str, schema, rows: list[dict]) -> None:
    from google.cloud import bigquery

    client = emulator.client()
    def field(name, kind, mode, children=()):
        return bigquery.SchemaField(name, kind, mode=mode, fields=[field(*child) for child in children])

    fields = [field(*column) for column in schema]
    created = client.create_table(bigquery.Table(f"{PROJECT}.{table}", schema=fields), exists_ok=True)
    for start in range(0, len(rows), 500):
        errors = client.insert_rows_json(created, rows[start:start + 500])
        assert not errors, errors
    client.close()


def _wire(row: dict) -> dict:
    """A Python row as insert_rows_json wants it."""
    out = {}
    for key, value in row.items():
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        elif isinstance(value, (datetime.date, datetime.time)):
            value = value.isoformat()
        elif isinstance(value, decimal.Decimal):
            value = str(value)
        out[key] = value
    return out


def _rows(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    zeros = {"id": 0, "amount": decimal.Decimal("0"), "f": 0.0, "ok": False, "s": "", "b": b"",
             "d": datetime.date(1970, 1, 1), "dt": datetime.datetime(1970, 1, 1), "ts": EPOCH, "j": "0",
             "tags": [0], "words": [""], "t": datetime.time(0), "rec": {"a": 0, "b": ""}}
    nulls = {key: ([] if mode == "REPEATED" else None) for key, _, mode, *_ in SCHEMA}
    nulls["id"] = 1
    rows = [zeros, nulls]
    for i in range(2, n):
        rows.append({
            "id": i, "amount": decimal.Decimal(rng.randint(-10**12, 10**12)).scaleb(-9),
            "f": rng.uniform(-1e6, 1e6), "ok": rng.random() < 0.5, "s": f"text {i} é",
            "b": bytes(rng.getrandbits(8) for _ in range(5)),
            "d": datetime.date(2020, 1, 1) + datetime.timedelta(days=rng.randint(0, 2000)),
            "dt": datetime.datetime(2021, 5, 6, 7, 8, 9, rng.randint(0, 999_999)),
            "ts": EPOCH + datetime.timedelta(microseconds=rng.randint(0, 2 * 10**15)),
            "j": json.dumps({"k": i}, separators=(",", ":")) if i % 3 else None,
            "tags": [rng.randint(-5, 5) for _ in range(i % 4)], "words": [f"w{i}"] * (i % 3),
            "t": datetime.time(i % 24, i % 60, 7, i * 3), "rec": {"a": i, "b": None if i % 4 else f"r{i}"},
        })
        if i % 5 == 0:  # NULL-heavy: most scalar columns null in every fifth row
            rows[-1].update({k: None for k in ("amount", "f", "ok", "s", "b", "d", "dt", "ts", "t", "rec")})
    return rows


def _config(query: str) -> dict:
    return {"splits": [{"name": "single_split", "pattern": query}]}


def _examples(artifact: str) -> collections.Counter:
    return collections.Counter(canonical(example_values(r)) for split in ("train", "eval")
                               for r in read_split(artifact, split))


def _tables(emulator, dataset: str) -> list[str]:
    client = emulator.client()
    try:
        return [t.table_id for t in client.list_tables(dataset)]
    except Exception:  # noqa: BLE001 - the dataset was never made
        return []
    finally:
        client.close()


def test_every_type_and_null_heavy_columns_read_back_and_the_table_is_dropped(bq_emulator, dataset, tmp_path):
    rows = _rows(300)
    _create(bq_emulator, f"{dataset}.t", SCHEMA, [_wire(r) for r in rows])
    opts = bq_emulator.options(dataset=f"{dataset}_tmp", max_streams=3)
    result = ingest_query(URL, str(tmp_path / "out"), source_format="bigquery", source_options=opts,
                          input_config=_config(f"SELECT * FROM `{PROJECT}.{dataset}.t`;"))
    assert result.rows_written == 300 and sum(result.counts.values()) == 300
    assert _examples(str(tmp_path / "out")) == collections.Counter(
        canonical(expected_values(plain_values(dict(r, rec=r["rec"] or {"a": None, "b": None})), KINDS))
        for r in rows)
    zeros = next(example_values(r) for s in ("train", "eval") for r in read_split(str(tmp_path / "out"), s)
                 if example_values(r)["id"] == ("int64_list", (0,)))
    assert zeros["ok"] == ("int64_list", (0,)) and zeros["s"] == ("bytes_list", (b"",))
    assert zeros["f"] == ("float_list", (0.0,)) and zeros["d"] == ("int64_list", (0,))
    nulls = next(example_values(r) for s in ("train", "eval") for r in read_split(str(tmp_path / "out"), s)
                 if example_values(r)["id"] == ("int64_list", (1,)))
    assert nulls["amount"] == ("float_list", ()) and nulls["ts"] == ("int64_list", ())
    assert nulls["b"] == ("bytes_list", ()) and nulls["tags"] == ("int64_list", ())
    assert _tables(bq_emulator, f"{dataset}_tmp") == []  # the temporary result table is gone


def test_one_work_unit_per_stream_and_the_digest_is_the_same_for_any_stream_count(bq_emulator, dataset, tmp_path):
    # Above 1 MB the emulator splits a session into streams (below it: one).
    rows = [{"id": i, "pad": f"{i:06d}" + "x" * 600} for i in range(2000)]
    _create(bq_emulator, f"{dataset}.t", [("id", "INT64", "NULLABLE"), ("pad", "STRING", "NULLABLE")], rows)
    query = ResolvedQuery("single_split", 0, f"SELECT * FROM {dataset}.t", bq_source.connection(URL))
    options = bq_source.Options.from_dict(bq_emulator.options(dataset=f"{dataset}_tmp", max_streams=4))
    plan = bq_source.plan("single_split", [query], options)
    try:
        units = list(plan.units)
        assert len(units) == 4 and len({u.extra[0] for u in units}) == 4  # one unit per stream
        notes, ids = [], []
        for unit in units:
            reader = bq_source.read(unit, options)
            while True:
                try:
                    ids += next(reader).column("id").to_pylist()
                except StopIteration as stop:
                    notes.append(stop.value)
                    break
        plan.review(notes)
    finally:
        plan.close()
    assert sorted(ids) == list(range(2000)) and _tables(bq_emulator, f"{dataset}_tmp") == []
    one = ingest_query(URL, str(tmp_path / "one"), source_format="bigquery", input_config=_config(query.query),
                       source_options=bq_emulator.options(dataset=f"{dataset}_tmp", max_streams=1))
    assert one.rows_written == 2000 and one.sources[0].digest == plan.info["query_results"][0]["digest"]
    # An empty result has no stream: no unit, no example, and still its columns.
    empty = bq_source.plan("single_split", [dataclasses.replace(query, query=query.query + " WHERE id < 0")],
                           options)
    empty.close()
    assert list(empty.units) == [] and list(empty.columns) == ["id", "pad"]


def test_rerun_is_cached_and_a_changed_table_a_new_version(bq_emulator, dataset, tmp_path):
    mlmd = f"sqlite:///{tmp_path}/mlmd.sqlite"
    _create(bq_emulator, f"{dataset}.t", SCHEMA[:5], [_wire({k: r[k] for k in ("id", "amount", "f", "ok", "s")})
                                                     for r in _rows(40)])
    args = dict(source_format="bigquery", input_config=_config(f"SELECT id, amount, s FROM {dataset}.t"),
                source_options=bq_emulator.options(dataset=f"{dataset}_tmp"), mlmd=mlmd)
    first = ingest_query(URL, str(tmp_path / "a"), **args)
    again = ingest_query(URL, str(tmp_path / "a"), **args)
    assert not first.cached and again.cached and again.input_fingerprint == first.input_fingerprint
    _create(bq_emulator, f"{dataset}.t", SCHEMA[:5], [{"id": 99, "s": "new"}])
    changed = ingest_query(URL, str(tmp_path / "a"), **args)
    assert not changed.cached and changed.input_fingerprint != first.input_fingerprint
    assert changed.sources[0].rows == 41 and changed.sources[0].uri == URL
    assert changed.sources[0].query == f"SELECT id, amount, s FROM {dataset}.t"


def test_span_placeholders_select_the_span(bq_emulator, dataset, tmp_path):
    day = 19000  # 2022-01-08
    times = [EPOCH + datetime.timedelta(days=d, hours=h) for d in (day - 1, day, day + 1) for h in (0, 23)]
    _create(bq_emulator, f"{dataset}.events", [("id", "INT64", "NULLABLE"), ("ts", "TIMESTAMP", "NULLABLE")],
            [{"id": i, "ts": t.isoformat()} for i, t in enumerate(times)])
    query = (f"SELECT id, @span_yyyymmdd_utc AS day FROM {dataset}.events WHERE ts >= "
             "TIMESTAMP_SECONDS(@span_begin_timestamp) AND ts < TIMESTAMP_SECONDS(@span_end_timestamp)")
    result = ingest_query(URL, str(tmp_path / "out"), source_format="bigquery", input_config=_config(query),
                          range_config={"static_range": {"start_span_number": day, "end_span_number": day}},
                          source_options=bq_emulator.options(dataset=f"{dataset}_tmp"))
    assert result.span == day and result.rows_written == 2
    values = [example_values(r) for s in ("train", "eval") for r in read_split(str(tmp_path / "out"), s)]
    assert sorted(v["id"][1][0] for v in values) == [2, 3]
    assert {v["day"] for v in values} == {("bytes_list", (b"20220108",))}
    assert "1641600000" in result.sources[0].query and "'20220108'" in result.sources[0].query


def test_errors_name_the_query_and_the_temporary_table_is_dropped_on_failure(bq_emulator, dataset, tmp_path):
    _create(bq_emulator, f"{dataset}.t", SCHEMA[:2], [{"id": 1, "amount": "1.5"}])
    opts = bq_emulator.options(dataset=f"{dataset}_tmp")
    with pytest.raises(SourceError, match=r"bigquery://test input split 'single_split' span 0: BigQuery "
                                          r"rejected the query: .*no_such_table"):
        ingest_query(URL, str(tmp_path / "bad"), source_format="bigquery", source_options=opts,
                     input_config=_config(f"SELECT * FROM {dataset}.no_such_table"))
    # The query ran into a table, then the split feature is missing: the table is dropped.
    with pytest.raises(ConfigError, match="split feature 'nope' is not a column"):
        ingest_query(URL, str(tmp_path / "bad"), source_format="bigquery", source_options=opts,
                     input_config=_config(f"SELECT * FROM {dataset}.t"),
                     output_config={"split_config": {"splits": [{"name": "train", "hash_buckets": 1}],
                                                     "partition_feature_name": "nope"}})
    # A value the conversion rejects in a worker (text as an int): the table is dropped too.
    with pytest.raises(SourceError, match=r"column 'amount'"):
        ingest_query(URL, str(tmp_path / "bad"), source_format="bigquery",
                     source_options=dict(opts, schema={"amount": "int"}),
                     input_config=_config(f"SELECT CONCAT('x', CAST(id AS STRING)) AS amount FROM {dataset}.t"))
    assert _tables(bq_emulator, f"{dataset}_tmp") == []
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="bigquery://PROJECT"):
        bq_source.connection("bigquery://user:secret@test/ds")
    with pytest.raises(ConfigError, match="option max_streams"):
        bq_source.Options.from_dict({"max_streams": -1})


def test_cli_ingests_a_bigquery_query(bq_emulator, dataset, tmp_path):
    _create(bq_emulator, f"{dataset}.t", SCHEMA[:3], [{"id": i, "amount": f"{i}.25", "f": i / 2} for i in range(30)])
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "examplegen.cli", "ingest", "--format", "bigquery", "--connection", URL,
         "--input-config", json.dumps(_config(f"SELECT * FROM {dataset}.t")), "--source-options",
         json.dumps(bq_emulator.options(dataset=f"{dataset}_tmp", location="US")), "--output", str(out), "--json"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    assert proc.returncode == 0, proc.stderr
    assert sum(json.loads(proc.stdout)["counts"].values()) == 30
    amounts = sorted(example_values(r)["amount"][1][0] for s in ("train", "eval") for r in read_split(str(out), s))
    assert amounts == [i + 0.25 for i in range(30)]


def test_query_pipeline_runs_bigquery_and_reruns_cached(bq_emulator, dataset, tmp_path, monkeypatch, capsys):
    from examplegen.lineage import open_store

    monkeypatch.setenv("EXAMPLEGEN_DB_PASSWORD", "unused-by-bigquery")  # the pipeline's secret; ADC is used
    monkeypatch.delenv("EXAMPLEGEN_MLMD", raising=False)
    _create(bq_emulator, f"{dataset}.t", SCHEMA[:4], [{"id": i, "amount": f"{i}.5", "f": i / 4, "ok": i % 2 == 0}
                                                     for i in range(60)])
    root = tmp_path / "root"
    params = ["--param", f"connection={URL}", "--param", "source_format=bigquery", "--param",
              f"input_config={json.dumps(_config(f'SELECT * FROM {dataset}.t'))}", "--param",
              f"source_options={json.dumps(bq_emulator.options(dataset=f'{dataset}_tmp'))}"]
    examples, _ = run_query_pipeline(root, params, capsys)
    assert sum(1 for s in ("train", "eval") for _ in read_split(examples, s)) == 60
    run_query_pipeline(root, params, capsys)
    ingests = open_store(f"sqlite:///{root}/mlmd.sqlite").call("get_executions_by_type", "examplegen.Ingest")
    assert [e.last_known_state for e in ingests] == [3, 5]  # COMPLETE, then CACHED
    assert _tables(bq_emulator, f"{dataset}_tmp") == []
