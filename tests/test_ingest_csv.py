"""CSV ingestion end to end: TFX-identical examples and splits, read back with TensorFlow."""

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from examplegen.config import parse_output_config
from examplegen.errors import ConfigError, SourceError, SpanResolutionError
from examplegen.ingest import ingest
from tests import tfx_reference
from tests.helpers import read_split, shared, split_names, tree_bytes


def _expected_splits(csv_paths, cumulative=(2, 3), names=("train", "eval")):
    expected = {n: [] for n in names}
    for example in tfx_reference.csv_file_examples(csv_paths):
        expected[names[tfx_reference.partition(example, list(cumulative))]].append(example)
    return expected


def test_taxi_csv_is_byte_identical_to_tfx_and_split_as_tfx(tmp_path):
    source = shared("external", "csv")
    result = ingest(source, str(tmp_path / "out"))
    paths = sorted(os.path.join(source, f) for f in os.listdir(source))
    expected = _expected_splits(paths)
    assert result.split_names == ["train", "eval"]
    assert split_names(str(tmp_path / "out")) == ["eval", "train"]
    for split in ("train", "eval"):
        got = read_split(str(tmp_path / "out"), split)
        assert sorted(got) == sorted(expected[split])
        assert result.counts[split] == len(expected[split])
    assert sum(result.counts.values()) == 15000
    metadata = json.load(open(tmp_path / "out" / "examples_metadata.json"))
    assert json.loads(metadata["split_names"]) == ["train", "eval"]
    assert metadata["payload_format"] == "FORMAT_TF_EXAMPLE"
    assert metadata["input_fingerprint"] == result.input_fingerprint.strip() and metadata["span"] == 0


@pytest.mark.parametrize("folder", ["csv_multi_line_string", "csv_empty"])
def test_tfx_edge_case_csvs_are_byte_identical(tmp_path, folder):
    source = shared("external", folder)
    result = ingest(source, str(tmp_path / "out"), output_config={"split_config": {"splits": [
        {"name": "all", "hash_buckets": 1}]}})
    expected = tfx_reference.csv_file_examples([os.path.join(source, "data.csv")])
    assert read_split(str(tmp_path / "out"), "all") == expected
    assert result.counts == {"all": len(expected)}


def test_many_chunks_and_workers_give_the_same_bytes_as_one(tmp_path, monkeypatch):
    import examplegen.ingest as ingest_module

    source = shared("external", "csv")
    ingest(source, str(tmp_path / "one"), workers=1, record_lineage=False)
    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 100_000)
    ingest(source, str(tmp_path / "many"), workers=2, record_lineage=False)
    import examplegen.sources.csv as csv_mod

    assert len(csv_mod.plan_chunks(csv_mod.read_layout(os.path.join(source, "data.csv"), csv_mod.CsvOptions()),
                                   csv_mod.CsvOptions(), ingest_module.CHUNK_BYTES)) > 10
    one, many = tree_bytes(str(tmp_path / "one")), tree_bytes(str(tmp_path / "many"))
    # Chunking changes how shards are cut into gzip members, never the records or their order.
    for split in ("train", "eval"):
        assert read_split(str(tmp_path / "one"), split) == read_split(str(tmp_path / "many"), split)
    assert one.keys() == many.keys()


def test_rerun_gives_byte_identical_files(tmp_path):
    source = shared("external", "csv")
    ingest(source, str(tmp_path / "a"), num_shards=3, record_lineage=False)
    ingest(source, str(tmp_path / "b"), num_shards=3, record_lineage=False)
    a, b = tree_bytes(str(tmp_path / "a")), tree_bytes(str(tmp_path / "b"))
    assert sorted(a) == sorted(b)
    assert sorted(k for k in a if k.startswith("Split-train")) == [
        f"Split-train/data_tfrecord-0000{i}-of-00003.gz" for i in range(3)]
    assert a == b
    # and rerunning into the same output replaces it cleanly
    ingest(source, str(tmp_path / "a"), num_shards=3, record_lineage=False)
    assert tree_bytes(str(tmp_path / "a")) == b


def test_type_sample_too_narrow_is_corrected(tmp_path, monkeypatch):
    """The first MBs say INT; a later row is a float: the whole column becomes FLOAT."""
    import examplegen.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 2000)
    data = tmp_path / "in"
    data.mkdir()
    rows = [f"{i},{i % 7},name{i}" for i in range(2000)] + ["2000,2.5,last"]
    (data / "d.csv").write_text("id,x,name\n" + "\n".join(rows) + "\n")
    import examplegen.sources.csv as csv_mod

    monkeypatch.setattr(csv_mod, "sample_types",
                        lambda layout, options, sample_bytes=0, **_: [csv_mod.ColumnType.INT] * 2 + [csv_mod.ColumnType.STRING])
    ingest(str(data), str(tmp_path / "out"), workers=2, record_lineage=False,
           output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}})
    got = read_split(str(tmp_path / "out"), "all")
    assert sorted(got) == sorted(tfx_reference.csv_file_examples([str(data / "d.csv")]))


def test_value_split_routes_rows_by_timestamp(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("ts,v\n" + "".join(f"{t},{t * 2}\n" for t in range(100)))
    config = {"split_config": {"splits": [{"name": "old"}, {"name": "mid"}, {"name": "new"}],
                               "value_split": {"feature_name": "ts", "boundaries": [50, 90]}}}
    result = ingest(str(data), str(tmp_path / "out"), output_config=config, record_lineage=False)
    assert result.counts == {"old": 50, "mid": 40, "new": 10}
    import tensorflow as tf

    ts = [tf.train.Example.FromString(r).features.feature["ts"].int64_list.value[0]
          for r in read_split(str(tmp_path / "out"), "mid")]
    assert ts == list(range(50, 90))  # order kept, no shuffle


def test_value_split_missing_value_names_file_and_line(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("ts,v\n1,a\n2,b\n,c\n")
    config = {"split_config": {"splits": [{"name": "a"}, {"name": "b"}],
                               "value_split": {"feature_name": "ts", "boundaries": [2]}}}
    with pytest.raises(SourceError, match=r"d\.csv: line 4: value-split feature 'ts' has no value"):
        ingest(str(data), str(tmp_path / "out"), output_config=config, record_lineage=False)
    assert not (tmp_path / "out").exists()  # a failed first run leaves no output directory


def test_partition_feature_split_matches_tfx(tmp_path):
    source = shared("external", "csv")
    config = {"split_config": {"splits": [{"name": "train", "hash_buckets": 3}, {"name": "eval", "hash_buckets": 1}],
                               "partition_feature_name": "payment_type"}}
    result = ingest(source, str(tmp_path / "out"), output_config=config, record_lineage=False)
    import tensorflow as tf

    values = collections.defaultdict(set)
    for split in ("train", "eval"):
        for record in read_split(str(tmp_path / "out"), split):
            feature = tf.train.Example.FromString(record).features.feature["payment_type"]
            key = feature.SerializeToString(deterministic=True)
            assert ("train", "eval")[tfx_reference.partition(key, [3, 4])] == split
            values[split].add(feature.bytes_list.value[0])
    assert values["train"] and values["eval"] and not values["train"] & values["eval"]
    assert sum(result.counts.values()) == 15000


def test_partition_feature_must_have_a_value(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("k,v\na,1\n,2\n")
    config = {"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, {"name": "b", "hash_buckets": 1}],
                               "partition_feature_name": "k"}}
    with pytest.raises(SourceError, match=r"d\.csv: line 3: partition feature 'k' has no value"):
        ingest(str(data), str(tmp_path / "out"), output_config=config, record_lineage=False)
    config["split_config"]["partition_feature_name"] = "v"  # an int column partitions fine
    assert sum(ingest(str(data), str(tmp_path / "out"), output_config=config,
                      record_lineage=False).counts.values()) == 2
    (data / "d.csv").write_text("k,v\na,1.5\n")
    with pytest.raises(SourceError, match="only bytes_list and int64_list"):
        ingest(str(data), str(tmp_path / "out2"), output_config=config, record_lineage=False)


def test_input_splits_pass_through_and_types_are_per_split(tmp_path):
    data = tmp_path / "in"
    (data / "train").mkdir(parents=True)
    (data / "eval").mkdir()
    (data / "train" / "a.csv").write_text("x,y\n1,a\n2,b\n")
    (data / "eval" / "a.csv").write_text("x,y\n1.5,c\n")
    config = {"splits": [{"name": "train", "pattern": "train/*"}, {"name": "eval", "pattern": "eval/*"}]}
    result = ingest(str(data), str(tmp_path / "out"), input_config=config, record_lineage=False)
    assert result.split_names == ["train", "eval"] and result.counts == {"train": 2, "eval": 1}
    assert read_split(str(tmp_path / "out"), "train") == tfx_reference.csv_file_examples([str(data / "train" / "a.csv")])
    assert read_split(str(tmp_path / "out"), "eval") == tfx_reference.csv_file_examples([str(data / "eval" / "a.csv")])


def test_static_range_ingests_every_span_and_records_them(tmp_path):
    data = tmp_path / "in"
    for span in (1, 2, 3, 4):
        (data / f"span-{span:02d}").mkdir(parents=True)
        (data / f"span-{span:02d}" / "d.csv").write_text(f"s,v\n{span},{span * 10}\n{span},{span * 11}\n")
    result = ingest(str(data), str(tmp_path / "out"),
                    input_config={"splits": [{"name": "single_split", "pattern": "span-{SPAN}/*"}]},
                    range_config={"static_range": {"start_span_number": 2, "end_span_number": 3}},
                    output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}},
                    record_lineage=False)
    assert result.spans == [2, 3] and result.span == 3
    import tensorflow as tf

    spans = sorted(tf.train.Example.FromString(r).features.feature["s"].int64_list.value[0]
                   for r in read_split(str(tmp_path / "out"), "all"))
    assert spans == [2, 2, 3, 3]
    metadata = json.load(open(tmp_path / "out" / "examples_metadata.json"))
    assert json.loads(metadata["spans"]) == [2, 3] and metadata["span"] == 3


def test_schema_override_and_error_naming_line(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("zip,fare\n00501,1\n02134,2.5\n")
    one = {"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}
    ingest(str(data), str(tmp_path / "out"), csv_options={"schema": {"zip": "string", "fare": "float"}},
           output_config=one, record_lineage=False)
    import tensorflow as tf

    examples = [tf.train.Example.FromString(r) for r in read_split(str(tmp_path / "out"), "all")]
    assert [e.features.feature["zip"].bytes_list.value[0] for e in examples] == [b"00501", b"02134"]
    assert [e.features.feature["fare"].float_list.value[0] for e in examples] == [1.0, 2.5]
    with pytest.raises(SourceError, match=r"d\.csv: line 3: column 'fare': value b'2.5' is not an integer"):
        ingest(str(data), str(tmp_path / "out2"), csv_options={"schema": {"fare": "int"}},
               output_config=one, record_lineage=False)
    with pytest.raises(ConfigError, match=r"csv schema names column\(s\) \['nope'\]"):
        ingest(str(data), str(tmp_path / "out3"), csv_options={"schema": {"nope": "int"}}, record_lineage=False)


def test_files_in_a_split_must_share_the_header(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.csv").write_text("x,y\n1,2\n")
    (data / "b.csv").write_text("x,z\n1,2\n")
    with pytest.raises(SourceError, match=r"different headers: .*a\.csv has \['x', 'y'\], .*b\.csv has \['x', 'z'\]"):
        ingest(str(data), str(tmp_path / "out"), record_lineage=False)


def test_failed_run_leaves_earlier_artifact_or_nothing_complete(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("a,b\n1,2\n")
    out = tmp_path / "out"
    ingest(str(data), str(out), record_lineage=False)
    (data / "d.csv").write_text("a,b\n1,2\n3\n")
    with pytest.raises(SourceError):
        ingest(str(data), str(out), record_lineage=False)
    # the failed run wrote nothing over the earlier, complete artifact
    assert (out / "examples_metadata.json").exists()
    assert not [n for n in os.listdir(out) if n.startswith(".staging")]


def test_gzip_csv_delimiter_and_no_header(tmp_path):
    import gzip

    data = tmp_path / "in"
    data.mkdir()
    (data / "d.tsv.gz").write_bytes(gzip.compress(b"1\tx\n2\ty\n"))
    result = ingest(str(data), str(tmp_path / "out"),
                    csv_options={"delimiter": "\t", "header": False, "column_names": ["n", "s"]},
                    output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}},
                    record_lineage=False)
    assert result.counts == {"all": 2}
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "d.csv").write_text("n,s\n1,x\n2,y\n")
    assert read_split(str(tmp_path / "out"), "all") == tfx_reference.csv_file_examples([str(plain / "d.csv")])


def test_output_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="hash_buckets"):
        ingest(shared("external", "csv"), str(tmp_path / "o"),
               output_config={"split_config": {"splits": [{"name": "a", "hash_buckets": 0}]}})
    assert parse_output_config(None).splits == ()


def test_commit_works_where_directories_cannot_be_renamed(tmp_path, monkeypatch):
    """Cloud Storage FUSE (Vertex AI's /gcs/) refuses directory renames by default."""
    real_rename = os.rename

    def rename_files_only(source, target):
        if os.path.isdir(source):
            raise OSError(38, "Function not implemented", source)
        return real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename_files_only)
    source = shared("external", "csv_multi_line_string")
    result = ingest(source, str(tmp_path / "out"), record_lineage=False)
    assert read_split(str(tmp_path / "out"), "train") + read_split(str(tmp_path / "out"), "eval")
    assert sum(result.counts.values()) == 3
    assert (tmp_path / "out" / "examples_metadata.json").exists()
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".staging")]


def test_output_inside_the_input_base_is_not_ingested_again(tmp_path):
    base = tmp_path / "in"
    (base / "raw").mkdir(parents=True)
    (base / "raw" / "a.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(100)))
    config = {"splits": [{"name": "all", "pattern": "*/*"}]}
    out = base / "out"  # inside the input base, matched by the pattern on the next run
    first = ingest(str(base), str(out), input_config=config, record_lineage=False)
    assert first.rows_read == 100
    with pytest.raises(SpanResolutionError) as info:
        ingest(str(base), str(out), input_config=config, record_lineage=False)
    assert "Examples artifact written by examplegen is not read as input" in str(info.value)
    assert sum(len(read_split(str(out), s)) for s in first.split_names) == 100  # untouched


def test_unclosed_quote_fails_the_run_with_file_and_line(tmp_path, capsys):
    from examplegen import cli

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "q.csv").write_bytes(b'a,b\n1,"hello\n2,x\n3,y\n')
    code = cli.main(["ingest", "--input-base", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                     "--mlmd", f"sqlite:///{tmp_path}/m.sqlite"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{tmp_path}/in/q.csv: line 2: a quoted field opened here is never closed" in err
    assert "Traceback" not in err and not (tmp_path / "out" / "examples_metadata.json").exists()


def test_a_split_without_data_rows_is_an_error(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "h.csv").write_text("a,b\n")
    (tmp_path / "in" / "e.csv").write_text("")
    with pytest.raises(SourceError) as info:
        ingest(str(tmp_path / "in"), str(tmp_path / "out"), record_lineage=False)
    message = str(info.value)
    assert "input split 'single_split': no data rows in" in message
    assert str(tmp_path / "in" / "h.csv") in message and str(tmp_path / "in" / "e.csv") in message
    assert not (tmp_path / "out").exists()


def test_files_without_data_rows_beside_good_ones_are_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("x,y\n1,2\n3,4\n")
    (tmp_path / "in" / "b.csv").write_text("x,y\n")
    (tmp_path / "in" / "c.csv").write_text("")
    (tmp_path / "in" / "d.csv").write_text("other,header\n")  # no rows: its header is not compared
    result = ingest(str(tmp_path / "in"), str(tmp_path / "out"), record_lineage=False,
                    output_config={"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}})
    assert result.counts == {"all": 2} and result.rows_read == 2
    skipped = [str(tmp_path / "in" / f) for f in ("b.csv", "c.csv", "d.csv")]
    assert result.config["files_without_rows"] == {"single_split": skipped}
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert all(f"{path}: no data rows; skipped" in warned for path in skipped)
def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie nobody reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_busy_workers_exit_as_soon_as_the_main_process_is_killed(tmp_path):
    """SIGKILL to the main process only: its workers (busy: blocked in a task) must not
    convert on for minutes. Two worker processes (workers=3: the main process converts
    too) are held in a task until the parent is killed."""
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(2000)))
    announced = tmp_path / "workers"
    announced.mkdir()
    script = tmp_path / "script.py"
    script.write_text(
        "import examplegen.ingest as m\n"
        "from tests import worker_hooks\n"
        "if __name__ == '__main__':\n"
        "    m.CHUNK_BYTES = 1000\n"
        "    m.run_task = worker_hooks.announce_and_block\n"
        f"    m.ingest({str(data)!r}, {str(tmp_path / 'out')!r}, workers=3, record_lineage=False)\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)),
               EXAMPLEGEN_TEST_WORKER_DIR=str(announced))
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        def announced_pids():  # the worker processes (the main process announces itself too)
            return [int(name) for name in os.listdir(announced) if name.isdigit() and int(name) != proc.pid]

        deadline = time.monotonic() + 120  # generous: only bounds a hang, the workers announce
        while len(announced_pids()) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = announced_pids()
        assert len(workers) == 2, f"the workers did not start (exit code {proc.poll()})"
        assert all(_alive(pid) for pid in workers)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20  # the mechanism is immediate; this bounds the wait
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # do not leak them into the rest of the test run
        os.kill(pid, signal.SIGKILL)
    assert not left, f"worker processes {left} outlived their killed parent"


def test_no_more_shard_files_than_examples(tmp_path):
    """--num-shards 1000 on 3 rows: a file per example-holding shard (an empty split one
    empty file), numbered without gaps; today it wrote 2,000 files, 1,997 of them empty."""
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("a\n1\n2\n3\n")
    out = tmp_path / "out"
    result = ingest(str(data), str(out), num_shards=1000, record_lineage=False)
    assert sum(result.counts.values()) == 3
    for split in ("train", "eval"):
        files = sorted(os.listdir(out / f"Split-{split}"))
        n = len(files)
        assert n == max(1, result.counts[split])
        assert files == [f"data_tfrecord-{i:05d}-of-{n:05d}.gz" for i in range(n)]
        assert len(read_split(str(out), split)) == result.counts[split]
    assert json.load(open(out / "examples_metadata.json"))["num_shards"] == 1000


def test_the_python_api_checks_the_bounds_of_the_run_options(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("a\n1\n")
    for options, message in [({"num_shards": 1001}, r"num_shards \(--num-shards\) must be 0 \(automatic\) or "
                                                     r"an output file count per split from 1 to 1000, got 1001"),
                             ({"workers": -1}, r"workers \(--workers\) must be 0"),
                             ({"workers": 2.5}, r"workers \(--workers\) must be 0"),
                             ({"lock_timeout": -3}, r"lock_timeout \(--lock-timeout\) must be 0")]:
        with pytest.raises(ConfigError, match=message):
            ingest(str(data), str(tmp_path / "out"), record_lineage=False, **options)
    assert not (tmp_path / "out").exists()
