"""Tests for span/version/date resolution (examplegen.span), digests and the fs layer."""

import hashlib
import os

import pytest

from examplegen import digest, fs
from examplegen.config import InputConfig, InputSplit, RangeConfig
from examplegen.errors import ConfigError, SourceError, SpanResolutionError
from examplegen.span import (
    date_to_span,
    pattern_for_span_version,
    pattern_specs,
    resolve,
    resolve_spans,
)


def make(base, files):
    """Create files under `base`; values are bytes or str contents (default: the path)."""
    if isinstance(files, (list, tuple)):
        files = {name: name for name in files}
    for rel, content in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return base


def inputs(*pairs):
    """InputConfig from (name, pattern) pairs, or a single pattern for split 'single'."""
    if len(pairs) == 1 and isinstance(pairs[0], str):
        pairs = (("single", pairs[0]),)
    return InputConfig(tuple(InputSplit(name, pattern) for name, pattern in pairs))


TRAIN_EVAL = (("train", "span-{SPAN}/train/*"), ("eval", "span-{SPAN}/eval/*"))


def raises(exc, func, *args) -> str:
    with pytest.raises(exc) as info:
        func(*args)
    return str(info.value)


# ------------------------------------------------------------------ no spec


def test_no_spec_is_span_0_version_none(tmp_path):
    make(tmp_path, ["b.csv", "a.csv", "notes.txt", "sub/c.csv"])
    (tmp_path / "dir.csv").mkdir()  # directories are not input files
    res = resolve(tmp_path, inputs("*.csv"))
    assert (res.span, res.version) == (0, None)
    assert res.splits[0].pattern == "*.csv"
    # sorted, absolute; '*' does not cross '/'
    assert res.splits[0].files == (str(tmp_path / "a.csv"), str(tmp_path / "b.csv"))


def test_default_input_config_reads_every_file(tmp_path):
    make(tmp_path, ["x", ".hidden"])
    res = resolve(str(tmp_path))
    # TFX globs with tf.io.gfile, whose '*' also matches names starting with a dot.
    assert [os.path.basename(f) for f in res.splits[0].files] == [".hidden", "x"]
    assert res.splits[0].name == "single_split"


def test_no_file_matched_names_split_and_pattern(tmp_path):
    make(tmp_path, ["a.txt"])
    message = raises(SpanResolutionError, resolve, tmp_path, inputs(("train", "*.csv")))
    assert "split 'train'" in message and "'*.csv'" in message
    message = raises(SpanResolutionError, resolve, tmp_path, inputs(("train", "data-{SPAN}/*")))
    assert "split 'train'" in message and "'data-{SPAN}/*'" in message


def test_missing_input_base(tmp_path):
    message = raises(SpanResolutionError, resolve, str(tmp_path / "nope"), InputConfig())
    assert "nope" in message and "does not exist" in message


def test_input_base_with_glob_characters(tmp_path):
    base = make(tmp_path / "in[1]", ["span-3/x.csv"])
    make(tmp_path, ["in1/span-9/x.csv"])  # what an unescaped "in[1]" would match
    assert resolve(base, inputs("span-{SPAN}/*.csv")).span == 3


def test_glob_classes_and_question_marks(tmp_path):
    make(tmp_path, ["d1-a.csv", "d2-a.csv", "d3-ab.csv"])
    res = resolve(tmp_path, inputs("d{SPAN}-[!b]?.csv"))
    # Only d3-ab.csv has two characters (not starting with 'b') after the '-'.
    assert res.span == 3
    assert [os.path.basename(f) for f in res.splits[0].files] == ["d3-ab.csv"]


# ------------------------------------------------------------------ latest span and version


def test_latest_span_is_numeric_not_lexicographic(tmp_path):
    make(
        tmp_path,
        [
            "span-1/train/a",
            "span-2/train/a",
            "span-10/train/a",
            "span-1/eval/a",
            "span-2/eval/a",
            "span-10/eval/a",
        ],
    )
    res = resolve(tmp_path, inputs(*TRAIN_EVAL))
    assert (res.span, res.version) == (10, None)
    assert [s.pattern for s in res.splits] == ["span-10/train/*", "span-10/eval/*"]
    assert res.splits[1].files == (str(tmp_path / "span-10/eval/a"),)


def test_latest_version_within_the_latest_span(tmp_path):
    make(tmp_path, ["s1/v9/a.csv", "s2/v1/a.csv", "s2/v3/a.csv", "s2/v3/b.csv", "s2/v2/a.csv"])
    res = resolve(tmp_path, inputs("s{SPAN}/v{VERSION}/*.csv"))
    assert (res.span, res.version) == (2, 3)
    assert res.splits[0].pattern == "s2/v3/*.csv"
    assert res.splits[0].files == (str(tmp_path / "s2/v3/a.csv"), str(tmp_path / "s2/v3/b.csv"))


def test_span_and_version_widths(tmp_path):
    make(tmp_path, ["data_07_v0003.csv", "data_07_v0012.csv", "data_06_v0099.csv"])
    res = resolve(tmp_path, inputs("data_{SPAN:2}_v{VERSION:4}.csv"))
    assert (res.span, res.version) == (7, 12)
    assert res.splits[0].pattern == "data_07_v0012.csv"


def test_zero_padded_span_without_width(tmp_path):
    make(tmp_path, ["span01/a.csv", "span02/a.csv"])
    res = resolve(tmp_path, inputs("span{SPAN}/*.csv"))
    assert res.span == 2 and res.splits[0].pattern == "span02/*.csv"
    pinned = resolve(tmp_path, inputs("span{SPAN}/*.csv"), RangeConfig.static(1))
    assert pinned.span == 1 and pinned.splits[0].pattern == "span01/*.csv"
    assert pinned.splits[0].files == (str(tmp_path / "span01/a.csv"),)


def test_span_written_two_ways_is_an_error(tmp_path):
    make(tmp_path, ["span1/a.csv", "span01/b.csv"])
    message = raises(SpanResolutionError, resolve, tmp_path, inputs("span{SPAN}/*.csv"))
    assert "span 1 is written in more than one way" in message
    assert "'01'" in message and "'1'" in message


def test_file_matching_glob_but_not_pattern_is_an_error(tmp_path):
    make(tmp_path, ["data_1.csv", "data_abc.csv"])
    message = raises(SpanResolutionError, resolve, tmp_path, inputs(("train", "data_{SPAN}.csv")))
    assert "split 'train'" in message and "'data_abc.csv'" in message
    assert "'data_{SPAN}.csv'" in message


def test_width_mismatch_is_an_error_not_skipped(tmp_path):
    make(tmp_path, ["data_05.csv", "data_123.csv"])
    message = raises(SpanResolutionError, resolve, tmp_path, inputs("data_{SPAN:2}.csv"))
    assert "'data_123.csv'" in message


def test_splits_must_agree_on_latest_span(tmp_path):
    make(tmp_path, ["span-1/train/a", "span-2/train/a", "span-1/eval/a"])
    message = raises(SpanResolutionError, resolve, tmp_path, inputs(*TRAIN_EVAL))
    assert "different latest spans" in message
    assert "train -> 2" in message and "eval -> 1" in message


def test_splits_must_agree_on_latest_version(tmp_path):
    make(tmp_path, ["s1/v1/train.csv", "s1/v2/train.csv", "s1/v1/eval.csv"])
    cfg = inputs(("train", "s{SPAN}/v{VERSION}/train.csv"), ("eval", "s{SPAN}/v{VERSION}/eval.csv"))
    message = raises(SpanResolutionError, resolve, tmp_path, cfg)
    assert "different latest versions of span 1" in message
    assert "train -> 2" in message and "eval -> 1" in message


# ------------------------------------------------------------------ dates


def test_date_spec_span_is_days_since_epoch(tmp_path):
    make(tmp_path, ["2020/01/02/a.csv", "2019/12/31/a.csv", "2020/01/01/a.csv"])
    res = resolve(tmp_path, inputs("{YYYY}/{MM}/{DD}/*.csv"))
    assert res.span == 18263  # 2020-01-02
    assert res.splits[0].pattern == "2020/01/02/*.csv"
    assert date_to_span(1970, 1, 1) == 0 and date_to_span(2017, 1, 1) == 17167


def test_date_spec_with_static_range_and_version(tmp_path):
    make(tmp_path, ["log-20200101-v1.csv", "log-20200101-v2.csv", "log-20200102-v1.csv"])
    cfg = inputs("log-{YYYY}{MM}{DD}-v{VERSION}.csv")
    res = resolve(tmp_path, cfg, RangeConfig.static(18262))
    assert (res.span, res.version) == (18262, 2)
    assert res.splits[0].pattern == "log-20200101-v2.csv"
    latest = resolve(tmp_path, cfg)
    assert (latest.span, latest.version) == (18263, 1)


def test_date_specs_in_any_order(tmp_path):
    make(tmp_path, ["02-01-2020.csv"])
    assert resolve(tmp_path, inputs("{DD}-{MM}-{YYYY}.csv")).span == 18263


def test_invalid_date_names_the_file(tmp_path):
    make(tmp_path, ["2020/13/01/a.csv"])
    message = raises(
        SpanResolutionError, resolve, tmp_path, inputs(("d", "{YYYY}/{MM}/{DD}/*.csv"))
    )
    assert "invalid date" in message and "2020/13/01/a.csv" in message and "split 'd'" in message


# ------------------------------------------------------------------ spec rules (TFX's)


@pytest.mark.parametrize(
    "pattern, facts",
    [
        ("{SPAN}/{YYYY}{MM}{DD}", ["exclusive"]),
        ("{SPAN}/{SPAN}", ["only one {SPAN}"]),
        ("{SPAN}/{SPAN:2}", ["only one {SPAN}"]),
        ("{YYYY}{MM}", ["exactly one each of {YYYY}, {MM} and {DD}"]),
        ("{YYYY}{MM}{DD}{DD}", ["exactly one each of {YYYY}, {MM} and {DD}"]),
        ("v{VERSION}/*", ["{VERSION} needs a {SPAN} or date spec"]),
        ("{SPAN}/{VERSION}/{VERSION}", ["only one {VERSION}"]),
        ("{SPAN:x}/*", ["{SPAN:x}", "positive integer"]),
        ("{SPAN:0}/*", ["{SPAN:0}", "positive integer"]),
        ("{SPAN}/{VERSION:-1}", ["{VERSION:-1}", "positive integer"]),
    ],
)
def test_spec_rules(tmp_path, pattern, facts):
    message = raises(ConfigError, resolve, tmp_path, inputs(pattern))
    assert "input_config.splits[0].pattern" in message and repr(pattern) in message
    for fact in facts:
        assert fact in message


def test_all_splits_must_use_the_same_specs(tmp_path):
    cfg = inputs(("train", "s{SPAN}/train/*"), ("eval", "eval/*"))
    message = raises(ConfigError, resolve, tmp_path, cfg)
    assert "input_config.splits[1].pattern" in message and "same specs" in message
    assert "'eval'" in message and "'train'" in message


def test_empty_width_means_no_width_as_in_tfx():
    specs = pattern_specs("data_{SPAN:}.csv")
    assert specs.span and specs.span_width is None


def test_pattern_for_span_version():
    assert pattern_for_span_version("s{SPAN:3}/v{VERSION:2}/*", 7, 4) == "s007/v04/*"
    assert pattern_for_span_version("s{SPAN}/*", 7, None) == "s7/*"
    assert pattern_for_span_version("{YYYY}-{MM}-{DD}", 18263, None) == "2020-01-02"
    message = raises(ConfigError, pattern_for_span_version, "s{SPAN:2}", 123, None)
    assert "123" in message and "width 2" in message


# ------------------------------------------------------------------ range configs


def test_static_range_pins_the_span_with_zero_padding(tmp_path):
    # data_123.csv does not fit {SPAN:2}, but the pinned glob never lists it (as TFX).
    make(tmp_path, ["data_05.csv", "data_07.csv", "data_123.csv"])
    res = resolve(
        tmp_path,
        inputs("data_{SPAN:2}.csv"),
        {"static_range": {"start_span_number": 5, "end_span_number": 5}},
    )
    assert res.span == 5 and res.splits[0].files == (str(tmp_path / "data_05.csv"),)


def test_static_span_wider_than_width_is_an_error(tmp_path):
    make(tmp_path, ["data_05.csv"])
    message = raises(
        ConfigError, resolve, tmp_path, inputs("data_{SPAN:2}.csv"), RangeConfig.static(123)
    )
    assert "range_config.static_range" in message and "123" in message and "width 2" in message


def test_static_range_missing_span(tmp_path):
    make(tmp_path, ["span-1/train/a", "span-1/eval/a"])
    message = raises(
        SpanResolutionError, resolve, tmp_path, inputs(*TRAIN_EVAL), RangeConfig.static(7)
    )
    assert "split 'train'" in message and "span 7" in message and "'span-{SPAN}/train/*'" in message


def test_static_range_resolves_every_span_in_range(tmp_path):
    make(tmp_path, ["s1/v1/a", "s2/v1/a", "s2/v2/a", "s4/v5/a", "s6/v1/a"])
    cfg = inputs("s{SPAN}/v{VERSION}/*")
    found = resolve_spans(tmp_path, cfg, RangeConfig.static(2, 5))
    assert [(r.span, r.version) for r in found] == [(2, 2), (4, 5)]
    assert [r.splits[0].pattern for r in found] == ["s2/v2/*", "s4/v5/*"]
    assert found[1].splits[0].files == (str(tmp_path / "s4/v5/a"),)
    # resolve() gives the last one
    assert resolve(tmp_path, cfg, RangeConfig.static(2, 5)).span == 4
    # every resolution has its own fingerprint
    assert found[0].fingerprint != found[1].fingerprint


def test_static_range_with_width_covering_several_spans(tmp_path):
    make(tmp_path, ["d_01.csv", "d_02.csv", "d_03.csv"])
    found = resolve_spans(tmp_path, inputs("d_{SPAN:2}.csv"), RangeConfig.static(2, 3))
    assert [(r.span, r.splits[0].pattern) for r in found] == [(2, "d_02.csv"), (3, "d_03.csv")]


def test_static_range_with_no_span_inside(tmp_path):
    make(tmp_path, ["s1/a", "s9/a"])
    message = raises(
        SpanResolutionError,
        resolve_spans,
        tmp_path,
        inputs(("x", "s{SPAN}/*")),
        RangeConfig.static(2, 5),
    )
    assert "split 'x'" in message and "spans 2 to 5" in message


def test_static_range_span_missing_for_one_split(tmp_path):
    make(tmp_path, ["span-1/train/a", "span-1/eval/a", "span-2/train/a"])
    message = raises(
        SpanResolutionError, resolve_spans, tmp_path, inputs(*TRAIN_EVAL), RangeConfig.static(1, 2)
    )
    assert "span 2" in message and "'train'" in message and "none for split 'eval'" in message


def test_rolling_range_of_one_is_the_latest(tmp_path):
    make(tmp_path, ["s1/a", "s3/a"])
    assert resolve(tmp_path, inputs("s{SPAN}/*"), RangeConfig.rolling(1)).span == 3


def test_rolling_range_limits_as_tfx(tmp_path):
    make(tmp_path, ["s1/a", "s3/a"])
    message = raises(ConfigError, resolve, tmp_path, inputs("s{SPAN}/*"), RangeConfig.rolling(2))
    assert "range_config.rolling_range.num_spans" in message and "got 2" in message
    message = raises(ConfigError, resolve, tmp_path, inputs("s{SPAN}/*"), RangeConfig.rolling(1, 2))
    assert "range_config.rolling_range.start_span_number" in message and "not supported" in message


def test_range_config_needs_a_span_spec(tmp_path):
    make(tmp_path, ["a"])
    message = raises(ConfigError, resolve, tmp_path, inputs("*"), RangeConfig.static(0))
    assert "range_config" in message and "{SPAN}" in message


def test_configs_accepted_as_json(tmp_path):
    make(tmp_path, ["s1/a", "s2/a"])
    res = resolve(
        str(tmp_path),
        '{"splits": [{"name": "x", "pattern": "s{SPAN}/*"}]}',
        '{"staticRange": {"startSpanNumber": 1, "endSpanNumber": 1}}',
    )
    assert res.span == 1


# ------------------------------------------------------------------ fingerprint, sources, JSON


def test_fingerprint_changes_when_bytes_change_even_with_same_size_and_mtime(tmp_path):
    a = make(tmp_path / "a", {"s1/data.csv": b"x,1\n"})
    b = make(tmp_path / "b", {"s1/data.csv": b"x,2\n"})
    stamp = (1_600_000_000, 1_600_000_000)
    os.utime(a / "s1/data.csv", stamp)
    os.utime(b / "s1/data.csv", stamp)
    cfg = inputs("s{SPAN}/*.csv")
    fa, fb = resolve(a, cfg).fingerprint, resolve(b, cfg).fingerprint
    assert fa.startswith("sha256:") and len(fa) == len("sha256:") + 64
    assert fa != fb


def test_fingerprint_changes_after_in_place_rewrite_with_restored_mtime(tmp_path):
    base = make(tmp_path, {"s1/data.csv": b"aaaa"})
    path = base / "s1/data.csv"
    cfg = inputs("s{SPAN}/*.csv")
    before = resolve(base, cfg)
    st = os.stat(path)
    path.write_bytes(b"bbbb")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    after = resolve(base, cfg)  # same process, file rewritten in the same instant
    assert after.fingerprint != before.fingerprint
    assert after.sources()[0].digest == "sha256:" + hashlib.sha256(b"bbbb").hexdigest()


def test_fingerprint_same_for_same_content_in_another_directory(tmp_path):
    files = {"s3/train/a.csv": b"a\n1\n", "s3/eval/a.csv": b"a\n2\n"}
    one, two = make(tmp_path / "one", files), make(tmp_path / "deeper/two", files)
    cfg = inputs(("train", "s{SPAN}/train/*"), ("eval", "s{SPAN}/eval/*"))
    assert resolve(one, cfg).fingerprint == resolve(two, cfg).fingerprint


def test_fingerprint_depends_on_paths_and_split_names(tmp_path):
    one = make(tmp_path / "one", {"s1/a.csv": b"same"})
    two = make(tmp_path / "two", {"s1/b.csv": b"same"})
    assert (
        resolve(one, inputs("s{SPAN}/*")).fingerprint
        != resolve(two, inputs("s{SPAN}/*")).fingerprint
    )
    assert (
        resolve(one, inputs(("x", "s{SPAN}/*"))).fingerprint
        != resolve(one, inputs(("y", "s{SPAN}/*"))).fingerprint
    )


def test_sources_carry_digest_size_split_span_version(tmp_path):
    make(
        tmp_path,
        {
            "s4/v2/train.csv": b"hello",
            "s4/v2/eval.csv": b"",
            "s4/v1/train.csv": b"old",
            "s4/v1/eval.csv": b"old",
        },
    )
    cfg = inputs(("train", "s{SPAN}/v{VERSION}/train.csv"), ("eval", "s{SPAN}/v{VERSION}/eval.csv"))
    sources = resolve(tmp_path, cfg).sources()
    assert [(s.split, s.uri, s.size, s.span, s.version) for s in sources] == [
        ("train", str(tmp_path / "s4/v2/train.csv"), 5, 4, 2),
        ("eval", str(tmp_path / "s4/v2/eval.csv"), 0, 4, 2),
    ]
    assert sources[0].digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert sources[1].digest == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_to_json_and_resolved_input_config(tmp_path):
    make(tmp_path, ["span-3/train/a", "span-3/eval/a"])
    res = resolve(tmp_path, inputs(*TRAIN_EVAL))
    assert res.to_json() == {
        "span": 3,
        "version": None,
        "splits": [
            {"name": "train", "pattern": "span-3/train/*"},
            {"name": "eval", "pattern": "span-3/eval/*"},
        ],
        "fingerprint": res.fingerprint,
    }
    assert res.input_config() == inputs(("train", "span-3/train/*"), ("eval", "span-3/eval/*"))


# ------------------------------------------------------------------ digest and fs


def test_file_digest_streams_whole_file(tmp_path):
    data = os.urandom(3 * digest.BLOCK_SIZE + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    assert digest.file_digest(str(path)) == expected


def test_file_digest_missing_file(tmp_path):
    message = raises(SourceError, digest.file_digest, str(tmp_path / "gone.csv"))
    assert "gone.csv" in message


def test_fs_schemes(tmp_path):
    assert fs.is_remote("gs://bucket/x") and fs.is_remote("S3://bucket/x")
    assert not fs.is_remote("/data/x") and not fs.is_remote("file:///data/x")
    message = raises(ConfigError, fs.glob, "hdfs://namenode/*.csv")
    assert "hdfs://" in message and "not supported" in message
    make(tmp_path, ["a.csv"])
    assert fs.glob(f"file://{tmp_path}/*.csv") == [str(tmp_path / "a.csv")]
    assert fs.join("gs://b/dir", "x.csv") == "gs://b/dir/x.csv"
    assert fs.size(str(tmp_path / "a.csv")) == len("a.csv")
    with fs.open_read(str(tmp_path / "a.csv")) as stream:
        assert stream.read() == b"a.csv"


def test_file_url_input_base(tmp_path):
    make(tmp_path, ["s2/a"])
    res = resolve(f"file://{tmp_path}", inputs("s{SPAN}/*"))
    assert res.span == 2 and res.splits[0].files == (str(tmp_path / "s2/a"),)


# ------------------------------------------------------------------ staying inside the input base


@pytest.mark.parametrize("pattern", ["../../../../etc/passwd", "../*", "a/../../x/*", "{SPAN}/../../*",
                                     "a/..", "*/../../*"])
def test_pattern_leading_outside_the_input_base_is_refused(tmp_path, pattern):
    base = make(tmp_path / "base", ["a/x.csv", "1/x.csv"])
    make(tmp_path, ["x/secret.csv", "secret.csv"])
    message = raises(ConfigError, resolve, base, {"splits": [{"name": "train", "pattern": pattern}]})
    assert "input_config.splits[0].pattern" in message and repr(pattern) in message
    assert "outside the input base" in message and "'..'" in message


@pytest.mark.parametrize("base", ["gs://bucket/data", "s3://bucket/data"])
def test_pattern_leading_outside_an_object_store_base_is_refused_before_listing(base):
    # No server is needed: the pattern is refused before anything is listed.
    message = raises(ConfigError, resolve, base, {"splits": [{"name": "t", "pattern": "../x/*.csv"}]})
    assert "outside the input base" in message


# ------------------------------------------------------------------ our own output as input


def _artifact(root, files=("Split-train/data_tfrecord-00000-of-00001.gz",), metadata=True):
    make(root, {f: b"x" for f in files})
    if metadata:
        (root / "examples_metadata.json").write_text("{}")


def test_examples_artifact_inside_the_input_base_is_not_read(tmp_path):
    make(tmp_path, ["raw/a.csv"])
    _artifact(tmp_path)  # an earlier `--output` equal to the input base
    message = raises(SpanResolutionError, resolve, tmp_path, inputs(("train", "*/*")))
    assert "Split-train/data_tfrecord-00000-of-00001.gz" in message
    assert "Examples artifact written by examplegen" in message and str(tmp_path) in message
    assert "resplit" in message  # what to do instead
    # The default pattern '*' would read the artifact's metadata file as data.
    message = raises(SpanResolutionError, resolve, tmp_path, inputs(("train", "*")))
    assert "examples_metadata.json" in message


def test_examples_artifact_below_the_input_base_and_staging_folders_are_not_read(tmp_path):
    make(tmp_path, ["data/a.csv"])
    _artifact(tmp_path / "out")
    message = raises(SpanResolutionError, resolve, tmp_path, inputs(("train", "*/*/*")))
    assert "out/Split-train" in message
    # A run still writing (or one that died) leaves a staging folder; never input either.
    make(tmp_path / "run", ["data/a.csv", ".staging-0123456789ab/parts/000-0000000-0000-00000.gz"])
    message = raises(SpanResolutionError, resolve, tmp_path / "run", inputs(("train", "*/*/*")))
    assert ".staging-0123456789ab" in message and "staging folder" in message
    # Shard files left by a commit that died before its metadata file was written.
    _artifact(tmp_path / "half", metadata=False)
    make(tmp_path / "half", ["data/a.csv"])
    message = raises(SpanResolutionError, resolve, tmp_path / "half", inputs(("train", "*/*")))
    assert "Split-train/data_tfrecord-00000-of-00001.gz" in message


def test_examples_artifact_named_in_the_pattern_is_read(tmp_path):
    _artifact(tmp_path / "old", files=("Split-train/data_tfrecord-00000-of-00002.gz",
                                       "Split-train/data_tfrecord-00001-of-00002.gz",
                                       "Split-eval/data_tfrecord-00000-of-00001.gz"))
    res = resolve(tmp_path, inputs(("train", "old/Split-train/*"), ("eval", "*/Split-eval/*")))
    assert [len(s.files) for s in res.splits] == [2, 1]


def test_files_that_only_look_like_ours_are_read(tmp_path):
    # A folder named Split-x without our metadata and without our shard names is user data.
    make(tmp_path, ["Split-2024/a.csv", "notes/examples.json"])
    res = resolve(tmp_path, inputs("*/*"))
    assert len(res.splits[0].files) == 2


def test_a_split_folder_given_as_the_input_base_is_read(tmp_path):
    _artifact(tmp_path / "old")
    res = resolve(tmp_path / "old" / "Split-train", inputs("*"))
    assert len(res.splits[0].files) == 1
