"""A user's own source: the README's example module, by module path and by entry point."""

from __future__ import annotations

import os
import re
import sys

import pytest

from examplegen import sources
from examplegen.errors import ConfigError, SourceError
from examplegen.ingest import ingest
from tests.helpers import REPO, example_values, read_split

ONE_SPLIT = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}


def _readme_source() -> str:
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    (block,) = re.findall(r"```python\n# kv_source.py\n(.*?)```", text, re.S)
    return block


@pytest.fixture
def kv_module(tmp_path, monkeypatch):
    """The README's source written as module ``kv_source`` (unique per test) on sys.path."""
    folder = tmp_path / "userpkg"
    folder.mkdir()
    name = f"kv_source_{os.getpid()}_{abs(hash(str(tmp_path)))}"
    (folder / f"{name}.py").write_text(_readme_source())
    monkeypatch.syspath_prepend(str(folder))
    yield name, folder
    sys.modules.pop(name, None)


def _data(tmp_path):
    os.makedirs(tmp_path / "in")
    (tmp_path / "in" / "a.kv").write_text("a=1 b=x\na=2 b=y\n")
    return str(tmp_path / "in")


def test_module_path_source(tmp_path, kv_module):
    name, _ = kv_module
    result = ingest(_data(tmp_path), str(tmp_path / "out"), source_format=name, output_config=ONE_SPLIT,
                    record_lineage=False)
    assert result.rows_read == 2
    got = sorted(map(sorted, (example_values(r).items() for r in read_split(str(tmp_path / "out"), "all"))))
    assert got == [[("a", ("bytes_list", (b"1",))), ("b", ("bytes_list", (b"x",)))],
                   [("a", ("bytes_list", (b"2",))), ("b", ("bytes_list", (b"y",)))]]
    (tmp_path / "in" / "a.kv").write_text("a=1\nbroken\n")
    with pytest.raises(SourceError, match=r"a.kv: line 2: expected key=value fields"):
        ingest(str(tmp_path / "in"), str(tmp_path / "bad"), source_format=name, record_lineage=False)
    (tmp_path / "in" / "a.kv").write_text("a:1\n")
    result = ingest(str(tmp_path / "in"), str(tmp_path / "colon"), source_format=name, record_lineage=False,
                    source_options={"separator": ":"}, output_config=ONE_SPLIT)
    assert [example_values(r) for r in read_split(str(tmp_path / "colon"), "all")] == [
        {"a": ("bytes_list", (b"1",))}]
    assert result.config["source_options"] == {"separator": ":"}


def test_entry_point_source_runs_in_worker_processes(tmp_path, kv_module):
    name, folder = kv_module
    dist = folder / "kvdist-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: kvdist\nVersion: 1.0\n")
    fmt = f"kv{abs(hash(str(tmp_path)))}"
    (dist / "entry_points.txt").write_text(f"[examplegen.sources]\n{fmt} = {name}\n")
    assert fmt in sources.formats()
    result = ingest(_data(tmp_path), str(tmp_path / "out"), source_format=fmt, output_config=ONE_SPLIT,
                    record_lineage=False, workers=2)
    assert result.rows_read == 2 and result.counts == {"all": 2}


def test_unknown_format_and_incomplete_module(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"source format 'nope' is unknown; use one of .*csv.*parquet"):
        ingest(_data(tmp_path), str(tmp_path / "out"), source_format="nope", record_lineage=False)
    (tmp_path / "half_source.py").write_text("FORMAT = 'half'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"does not follow the source contract .*lacks Options, plan, read"):
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), source_format="half_source", record_lineage=False)


@pytest.mark.parametrize("yielded,works", [("pa.Table.from_pylist(rows)", True), ("{'not': 'a batch'}", False)],
                         ids=["table", "dict"])
def test_a_source_may_yield_tables_and_other_things_are_named(tmp_path, monkeypatch, yielded, works):
    folder = tmp_path / "pkg"
    folder.mkdir()
    module = _readme_source().replace("yield pa.RecordBatch.from_pylist(rows)", f"yield {yielded}")
    name = f"yielding_source_{abs(hash(str(tmp_path)))}"
    (folder / f"{name}.py").write_text(module)
    monkeypatch.syspath_prepend(str(folder))
    try:
        if works:
            result = ingest(_data(tmp_path), str(tmp_path / "out"), source_format=name, record_lineage=False)
            assert result.rows_read == 2
        else:
            with pytest.raises(SourceError, match=rf"a.kv: source '{name}' yielded a dict; its read\(\) must "
                                                  "yield pyarrow RecordBatches"):
                ingest(_data(tmp_path), str(tmp_path / "out"), source_format=name, record_lineage=False)
            assert not os.path.exists(tmp_path / "out" / "examples_metadata.json")
    finally:
        sys.modules.pop(name, None)
