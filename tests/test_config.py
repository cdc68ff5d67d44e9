"""Tests for examplegen.config: TFX Input / Output / RangeConfig JSON parsing and rules."""

import json
import math

import pytest

from examplegen import config
from examplegen.config import (
    InputConfig,
    InputSplit,
    OutputConfig,
    OutputSplit,
    RangeConfig,
    ValueSplit,
    effective_output_config,
    effective_output_splits,
    parse_input_config,
    parse_output_config,
    parse_range_config,
)
from examplegen.errors import ConfigError, ExampleGenError

TWO_INPUTS = {
    "splits": [{"name": "train", "pattern": "train/*"}, {"name": "eval", "pattern": "eval/*"}]
}


def error(func, *args) -> str:
    with pytest.raises(ConfigError) as info:
        func(*args)
    return str(info.value)


# ------------------------------------------------------------------ input config


@pytest.mark.parametrize("source", [None, "", "  ", {}, "{}", "null"])
def test_input_default_is_single_split_star(source):
    cfg = parse_input_config(source)
    assert cfg.splits == (InputSplit("single_split", "*"),)
    assert cfg == InputConfig()


def test_input_from_json_text_dict_and_file(tmp_path):
    as_dict = parse_input_config(TWO_INPUTS)
    as_text = parse_input_config(json.dumps(TWO_INPUTS))
    path = tmp_path / "input.json"
    path.write_text(json.dumps(TWO_INPUTS))
    assert as_dict == as_text == parse_input_config(str(path)) == parse_input_config(path)
    assert as_dict.split_names == ["train", "eval"]
    assert as_dict.splits[1].pattern == "eval/*"


def test_input_from_protobuf_message():
    from google.protobuf import struct_pb2

    message = struct_pb2.Struct()
    message.update(TWO_INPUTS)
    assert parse_input_config(message) == parse_input_config(TWO_INPUTS)


def test_input_instance_passes_through():
    cfg = InputConfig((InputSplit("a", "x/*"),))
    assert parse_input_config(cfg) is cfg


@pytest.mark.parametrize(
    "raw, facts",
    [
        (
            {"splits": [{"name": "a", "patern": "*"}]},
            ["input_config.splits[0].patern", "unknown key", "'pattern'"],
        ),
        ({"split": []}, ["input_config.split", "unknown key", "did you mean 'splits'"]),
        ({"splits": {"name": "a"}}, ["input_config.splits", "expected a list"]),
        ({"splits": [{"pattern": "*"}]}, ["input_config.splits[0].name", "required"]),
        ({"splits": [{"name": "a"}]}, ["input_config.splits[0].pattern", "required"]),
        (
            {"splits": [{"name": "a", "pattern": ""}]},
            ["input_config.splits[0].pattern", "non-empty string", '""'],
        ),
        ({"splits": [{"name": "a", "pattern": 3}]}, ["input_config.splits[0].pattern", "got 3"]),
        (
            {"splits": [{"name": "a/b", "pattern": "*"}]},
            ["input_config.splits[0].name", '"a/b"', "not a valid split name"],
        ),
        (
            {"splits": [{"name": "_a", "pattern": "*"}]},
            ["input_config.splits[0].name", "not a valid split name"],
        ),
        (
            {"splits": [{"name": "a", "pattern": "x"}, {"name": "a", "pattern": "y"}]},
            ["input_config.splits[1].name", "duplicate split name 'a'", "splits[0]"],
        ),
        (
            {"splits": [{"name": "a", "pattern": "/abs/*"}]},
            ["input_config.splits[0].pattern", "relative"],
        ),
        ({"splits": []}, ["input_config.splits", "at least one split"]),
        ("[1, 2]", ["input_config", "expected a JSON object"]),
        ({"splits": ["train"]}, ["input_config.splits[0]", "expected an object", '"train"']),
    ],
)
def test_input_errors_name_the_key_path(raw, facts):
    message = error(parse_input_config, raw)
    for fact in facts:
        assert fact in message


def test_input_invalid_json_names_line_and_column(tmp_path):
    message = error(parse_input_config, '{"splits": [\n  {"name": "a",, }]}')
    assert "invalid JSON at line 2 column" in message
    path = tmp_path / "bad.json"
    path.write_text("{oops")
    message = error(parse_input_config, str(path))
    assert str(path) in message and "invalid JSON at line 1" in message


def test_input_missing_file_is_a_config_error(tmp_path):
    message = error(parse_input_config, str(tmp_path / "nope.json"))
    assert "nope.json" in message and "neither JSON text nor an existing .json file" in message


def test_config_error_is_an_examplegen_error():
    assert issubclass(ConfigError, ExampleGenError)


def test_split_name_rules():
    for good in ("train", "Eval-2", "a_b", "0"):
        InputConfig((InputSplit(good, "*"),))
    for bad in ("", "-a", "a b", "a.b", "ä"):
        with pytest.raises(ConfigError):
            InputConfig((InputSplit(bad, "*"),))


# ------------------------------------------------------------------ output config


def test_output_snake_and_camel_case_are_the_same():
    snake = parse_output_config(
        {
            "split_config": {
                "splits": [
                    {"name": "train", "hash_buckets": 3},
                    {"name": "test", "hash_buckets": 1},
                ],
                "partition_feature_name": "user_id",
            }
        }
    )
    camel = parse_output_config(
        '{"splitConfig": {"splits": [{"name": "train", "hashBuckets": 3}, '
        '{"name": "test", "hashBuckets": 1}], "partitionFeatureName": "user_id"}}'
    )
    assert snake == camel
    assert snake.splits == (OutputSplit("train", 3), OutputSplit("test", 1))
    assert snake.partition_feature_name == "user_id"
    assert snake.total_hash_buckets == 4


def test_output_hash_buckets_error_message_names_the_path():
    raw = {
        "split_config": {
            "splits": [{"name": "train", "hash_buckets": 2}, {"name": "eval", "hash_buckets": "2x"}]
        }
    }
    assert error(parse_output_config, raw) == (
        "output_config.split_config.splits[1].hash_buckets: expected an integer from 1 to 4294967295 "
        '(a uint32 in TFX\'s proto), got "2x"'
    )


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "", [2], 2**32, 2**64, "4294967296"])
def test_output_hash_buckets_must_be_uint32_and_positive_and_the_message_says_so(bad):
    raw = {"split_config": {"splits": [{"name": "train", "hash_buckets": bad}]}}
    message = error(parse_output_config, raw)
    assert message.startswith(
        "output_config.split_config.splits[0].hash_buckets: expected an integer from 1 to 4294967295"
    )
    assert json.dumps(bad) in message


def test_the_largest_uint32_hash_bucket_count_is_accepted():
    raw = {"split_config": {"splits": [{"name": "train", "hash_buckets": 2**32 - 1}]}}
    assert parse_output_config(raw).splits[0].hash_buckets == 2**32 - 1


def test_output_hash_buckets_accepts_proto3_json_integer_forms():
    raw = {
        "split_config": {
            "splits": [{"name": "a", "hash_buckets": "3"}, {"name": "b", "hash_buckets": 2.0}]
        }
    }
    assert parse_output_config(raw).splits == (OutputSplit("a", 3), OutputSplit("b", 2))


def test_output_hash_buckets_required_without_value_split():
    message = error(parse_output_config, {"split_config": {"splits": [{"name": "train"}]}})
    assert "output_config.split_config.splits[0].hash_buckets: required" in message
    assert "value_split" in message


@pytest.mark.parametrize(
    "raw, facts",
    [
        (
            {"splitConfig": {"splits": [{"name": "a", "hashBuckets": 1, "hashBuckets ": 2}]}},
            ["output_config.split_config.splits[0].hashBuckets ", "unknown key"],
        ),
        (
            {"split_config": {"splits": [{"name": "a", "hash_buckets": 1, "hashBuckets": 2}]}},
            ["output_config.split_config.splits[0].hash_buckets", "given twice"],
        ),
        (
            {"split_config": {"hash_buckets": 3}},
            ["output_config.split_config.hash_buckets", "unknown key"],
        ),
        ({"output_data_format": 6}, ["output_config.output_data_format", "unknown key"]),
        (
            {
                "split_config": {
                    "splits": [{"name": "a", "hash_buckets": 1}, {"name": "a", "hash_buckets": 1}]
                }
            },
            ["output_config.split_config.splits[1].name", "duplicate split name 'a'"],
        ),
        (
            {"split_config": {"splits": [{"name": "tr ain", "hash_buckets": 1}]}},
            ["output_config.split_config.splits[0].name", "not a valid split name"],
        ),
        (
            {"split_config": {"splits": [{"hash_buckets": 1}]}},
            ["output_config.split_config.splits[0].name", "required"],
        ),
        (
            {"split_config": {"partition_feature_name": "uid"}},
            ["output_config.split_config.partition_feature_name", "needs output splits"],
        ),
        (
            {
                "split_config": {
                    "splits": [{"name": "a", "hash_buckets": 1}],
                    "partition_feature_name": 7,
                }
            },
            ["output_config.split_config.partition_feature_name", "got 7"],
        ),
        ({"split_config": "train"}, ["output_config.split_config", "expected an object"]),
    ],
)
def test_output_errors_name_the_key_path(raw, facts):
    message = error(parse_output_config, raw)
    for fact in facts:
        assert fact in message


@pytest.mark.parametrize(
    "source", [None, "", {}, "{}", {"split_config": {}}, {"split_config": {"splits": []}}]
)
def test_output_empty_forms(source):
    cfg = parse_output_config(source)
    assert cfg == OutputConfig() and cfg.to_dict() == {}


def test_empty_partition_feature_name_means_unset():
    cfg = parse_output_config(
        {
            "split_config": {
                "splits": [{"name": "a", "hash_buckets": 1}],
                "partition_feature_name": "",
            }
        }
    )
    assert cfg.partition_feature_name is None


# ------------------------------------------------------------------ TFX output split rules


def test_default_output_for_one_input_split_is_train_2_eval_1():
    cfg = effective_output_config(InputConfig(), OutputConfig())
    assert cfg.splits == (OutputSplit("train", 2), OutputSplit("eval", 1))
    assert effective_output_splits(InputConfig(), OutputConfig()) == ["train", "eval"]


def test_several_input_splits_pass_through_without_hashing():
    inputs = parse_input_config(TWO_INPUTS)
    assert effective_output_config(inputs, OutputConfig()).splits == ()
    assert effective_output_splits(inputs, OutputConfig()) == ["train", "eval"]


def test_output_splits_with_several_input_splits_is_an_error():
    inputs = parse_input_config(TWO_INPUTS)
    output = parse_output_config({"split_config": {"splits": [{"name": "a", "hash_buckets": 1}]}})
    message = error(effective_output_splits, inputs, output)
    assert "output_config.split_config.splits" in message
    assert "exactly one input split" in message and "has 2 (train, eval)" in message


def test_given_output_splits_keep_their_order():
    output = parse_output_config(
        {
            "split_config": {
                "splits": [
                    {"name": "eval", "hash_buckets": 20},
                    {"name": "test", "hash_buckets": 10},
                    {"name": "train", "hash_buckets": 60},
                ]
            }
        }
    )
    assert effective_output_splits(InputConfig(), output) == ["eval", "test", "train"]
    assert effective_output_config(InputConfig(), output) is output


# ------------------------------------------------------------------ value split (beyond TFX)


def value_split_config(boundaries, names=("old", "mid", "new"), **extra):
    return {
        "split_config": {
            "splits": [{"name": n} for n in names],
            "value_split": {"feature_name": "day", "boundaries": boundaries},
            **extra,
        }
    }


def test_value_split_numbers_route_rows_by_boundaries():
    cfg = parse_output_config(value_split_config([10, 20.5]))
    vs = cfg.value_split
    assert vs == ValueSplit("day", (10, 20.5))
    assert all(s.hash_buckets is None for s in cfg.splits)
    assert [vs.split_index(v) for v in (-5, 9.99, 10, 20, 20.5, 1000)] == [0, 0, 1, 1, 2, 2]


def test_value_split_strings_and_camel_case():
    cfg = parse_output_config(
        {
            "splitConfig": {
                "splits": [{"name": "train", "hashBuckets": 1}, {"name": "eval", "hashBuckets": 1}],
                "valueSplit": {"featureName": "date", "boundaries": ["2024-01-01"]},
            }
        }
    )
    assert cfg.value_split.feature_name == "date"
    assert cfg.value_split.split_index("2023-12-31") == 0
    assert cfg.value_split.split_index("2024-01-01") == 1


@pytest.mark.parametrize(
    "boundaries, facts",
    [
        ([10], ["value_split.boundaries", "3 output splits need 2 boundaries, got 1"]),
        ([10, 20, 30], ["3 output splits need 2 boundaries, got 3"]),
        ([20, 10], ["boundaries[1]", "not greater than boundaries[0]", "strictly ascending"]),
        ([10, 10], ["boundaries[1]", "strictly ascending"]),
        ([10, "20"], ["boundaries[1]", "expected a number like boundaries[0]", '"20"']),
        ([True, 2], ["boundaries[0]", "expected a number or a string", "true"]),
        ([1, None], ["boundaries[1]", "expected a number or a string"]),
        ([1, math.inf], ["boundaries[1]", "finite"]),
    ],
)
def test_value_split_boundary_errors(boundaries, facts):
    message = error(parse_output_config, value_split_config(boundaries))
    assert "output_config.split_config.value_split" in message
    for fact in facts:
        assert fact in message


def test_value_split_exclusive_with_partition_feature_name():
    message = error(parse_output_config, value_split_config([1, 2], partition_feature_name="uid"))
    assert "partition_feature_name and value_split are exclusive" in message


def test_value_split_needs_splits_and_a_feature_name():
    message = error(
        parse_output_config,
        {"split_config": {"value_split": {"feature_name": "d", "boundaries": []}}},
    )
    assert "output_config.split_config.value_split: needs output splits" in message
    raw = value_split_config([1, 2])
    del raw["split_config"]["value_split"]["feature_name"]
    assert "value_split.feature_name: required" in error(parse_output_config, raw)


def test_single_output_split_with_value_split_has_no_boundaries():
    cfg = parse_output_config(value_split_config([], names=("all",)))
    assert cfg.value_split.split_index(123) == 0


# ------------------------------------------------------------------ range config


def test_range_static_and_rolling_in_both_cases():
    assert parse_range_config(
        {"static_range": {"start_span_number": 2, "end_span_number": 5}}
    ) == RangeConfig.static(2, 5)
    assert parse_range_config(
        '{"staticRange": {"startSpanNumber": 3, "endSpanNumber": 3}}'
    ) == RangeConfig.static(3)
    assert parse_range_config({"rollingRange": {"numSpans": 1}}) == RangeConfig.rolling(1)
    assert (
        parse_range_config({"rolling_range": {"num_spans": "1", "start_span_number": 0}})
        == RangeConfig.rolling()
    )


@pytest.mark.parametrize("source", [None, "", "null"])
def test_range_absent(source):
    assert parse_range_config(source) is None


def test_range_proto3_json_leaves_out_zeros():
    # TFX's proto_to_json drops default values: span 0 becomes {"static_range": {}}.
    assert parse_range_config({"static_range": {}}) == RangeConfig.static(0, 0)
    assert parse_range_config({"static_range": {"end_span_number": 4}}) == RangeConfig.static(0, 4)


@pytest.mark.parametrize(
    "raw, facts",
    [
        ({}, ["range_config", "exactly one of static_range and rolling_range"]),
        (
            {"static_range": {}, "rolling_range": {"num_spans": 1}},
            ["exactly one of static_range and rolling_range"],
        ),
        (
            {"static_range": {"start_span_number": 5, "end_span_number": 2}},
            [
                "range_config.static_range",
                "start_span_number (5) is greater than end_span_number (2)",
            ],
        ),
        (
            {"static_range": {"start_span_number": "x"}},
            ["range_config.static_range.start_span_number", '"x"'],
        ),
        (
            {"static_range": {"end_span_number": 2**31}},
            ["range_config.static_range.end_span_number", "32-bit"],
        ),
        (
            {"rolling_range": {}},
            ["range_config.rolling_range.num_spans", "positive integer", "got 0"],
        ),
        ({"rolling_range": {"num_spans": -2}}, ["range_config.rolling_range.num_spans", "got -2"]),
        (
            {"rolling_range": {"num_spans": 1, "start_span_number": -1}},
            ["range_config.rolling_range.start_span_number", ">= 0"],
        ),
        ({"static_range": {"start": 1}}, ["range_config.static_range.start", "unknown key"]),
        (
            {"rolling_range": {"num_spans": 1, "exclude_span_numbers": [1]}},
            ["range_config.rolling_range.exclude_span_numbers", "unknown key"],
        ),
    ],
)
def test_range_errors(raw, facts):
    message = error(parse_range_config, raw)
    for fact in facts:
        assert fact in message


# ------------------------------------------------------------------ canonical form


def test_to_dict_is_canonical_snake_case_and_round_trips():
    camel = {
        "splitConfig": {
            "valueSplit": {"boundaries": [5], "featureName": "x"},
            "splits": [{"hashBuckets": 2, "name": "a"}, {"name": "b"}],
        }
    }
    cfg = parse_output_config(camel)
    assert cfg.to_dict() == {
        "split_config": {
            "splits": [{"name": "a", "hash_buckets": 2}, {"name": "b"}],
            "value_split": {"feature_name": "x", "boundaries": [5]},
        }
    }
    assert parse_output_config(cfg.to_json()) == cfg
    # Same config written with keys in another order: same JSON, byte for byte.
    reordered = {
        "split_config": {
            "splits": [{"name": "a", "hash_buckets": 2}, {"name": "b"}],
            "value_split": {"feature_name": "x", "boundaries": [5]},
        }
    }
    assert parse_output_config(reordered).to_json() == cfg.to_json()
    assert cfg.to_json() == json.dumps(
        json.loads(cfg.to_json()), sort_keys=True, separators=(",", ":")
    )

    inputs = parse_input_config(TWO_INPUTS)
    assert inputs.to_dict() == TWO_INPUTS
    assert parse_input_config(inputs.to_json()) == inputs

    ranges = parse_range_config({"staticRange": {"endSpanNumber": 3, "startSpanNumber": 1}})
    assert ranges.to_dict() == {"static_range": {"start_span_number": 1, "end_span_number": 3}}
    assert parse_range_config(ranges.to_json()) == ranges
    assert RangeConfig.rolling().to_dict() == {
        "rolling_range": {"start_span_number": 0, "num_spans": 1}
    }


def test_configs_are_frozen():
    cfg = InputConfig()
    with pytest.raises(Exception):
        cfg.splits = ()  # type: ignore[misc]


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="hash_buckets: expected an integer from 1 to 4294967295 .*, got 0"):
        OutputConfig((OutputSplit("a", 0),))
    with pytest.raises(ConfigError, match="hash_buckets: expected an integer from 1 to 4294967295 .*, got 4294967296"):
        OutputConfig((OutputSplit("a", 2**32),))
    with pytest.raises(ConfigError, match="exactly one of static_range and rolling_range"):
        RangeConfig()
    with pytest.raises(ConfigError, match="start_span_number \\(3\\) is greater"):
        RangeConfig.static(3, 1)


def test_default_constants_match_tfx():
    assert config.DEFAULT_OUTPUT_SPLITS == (("train", 2), ("eval", 1))
    assert config.DEFAULT_INPUT_SPLIT == "single_split"
