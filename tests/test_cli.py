"""The `examplegen` command line: ingest, resplit, resolve; errors; a killed run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from examplegen import cli
from tests.helpers import TAXI_CSV_DIR, read_split, shared


def run_cli(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_prints_summary_and_output(tmp_path, capsys):
    out_dir = tmp_path / "examples"
    code, out, err = run_cli(capsys, "ingest", "--input-base", TAXI_CSV_DIR, "--output", str(out_dir))
    assert code == 0, err
    assert "span 0, version -" in out
    assert f"Examples written to {out_dir}" in out
    counts = {line.split()[0]: int(line.split()[1].replace(",", "")) for line in out.splitlines()
              if line.strip().split()[0] in ("train", "eval", "total")}
    assert counts["total"] == 10000 and counts["train"] + counts["eval"] == 10000
    assert len(read_split(str(out_dir), "eval")) == counts["eval"]


def test_ingest_json_and_csv_options(tmp_path, capsys):
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.txt").write_text("1|'a|b'\n2|c\n")
    code, out, err = run_cli(capsys, "ingest", "--input-base", str(data), "--output", str(tmp_path / "o"),
                             "--delimiter", "|", "--quote-char", "'", "--no-header", "--column-names", "n,s",
                             "--schema", "n:float", "--json",
                             "--output-config", '{"split_config": {"splits": [{"name": "all", "hash_buckets": 1}]}}')
    assert code == 0, err
    result = json.loads(out)
    assert result["counts"] == {"all": 2} and result["split_names"] == ["all"]
    import tensorflow as tf

    examples = [tf.train.Example.FromString(r) for r in read_split(str(tmp_path / "o"), "all")]
    assert [e.features.feature["s"].bytes_list.value[0] for e in examples] == [b"a|b", b"c"]
    assert [e.features.feature["n"].float_list.value[0] for e in examples] == [1.0, 2.0]


def test_resolve_prints_json_and_errors_go_to_stderr(tmp_path, capsys):
    for span in (3, 12):
        (tmp_path / f"span{span}").mkdir()
        (tmp_path / f"span{span}" / "d.csv").write_text("a\n1\n")
    code, out, err = run_cli(capsys, "resolve", "--input-base", str(tmp_path), "--input-config",
                             '{"splits": [{"name": "s", "pattern": "span{SPAN}/*"}]}')
    assert code == 0, err
    resolved = json.loads(out)
    assert resolved["span"] == 12 and resolved["version"] is None
    assert resolved["splits"] == [{"name": "s", "pattern": "span12/*"}]
    assert resolved["fingerprint"].startswith("sha256:")
    code, out, err = run_cli(capsys, "resolve", "--input-base", str(tmp_path), "--input-config",
                             '{"splits": [{"name": "s", "pattern": "nothing-{SPAN}/*"}]}')
    assert code == 1 and out == ""
    assert "examplegen resolve: error:" in err and "nothing-{SPAN}/*" in err


def test_help_documents_every_ingest_option(capsys):
    with pytest.raises(SystemExit):
        cli.main(["ingest", "--help"])
    text = capsys.readouterr().out
    for option in ("--input-base", "--format", "--output", "--input-config", "--output-config",
                   "--range-config", "--delimiter", "--quote-char", "--encoding", "--no-header",
                   "--column-names", "--schema", "--payload-format", "--num-shards", "--workers",
                   "--verify-payload", "--no-lineage", "--mlmd", "--force", "--json"):
        assert option in text, option


def test_resplit_command(tmp_path, capsys):
    code, out, err = run_cli(capsys, "resplit", "--examples", shared("csv_example_gen"), "--output",
                             str(tmp_path / "o"), "--input-splits", "eval", "--output-config",
                             '{"split_config": {"splits": [{"name": "a", "hash_buckets": 1}, '
                             '{"name": "b", "hash_buckets": 1}]}}', "--json")
    assert code == 0, err
    result = json.loads(out)
    assert sum(result["counts"].values()) == 5091


def test_a_killed_run_leaves_nothing_complete_and_the_rerun_succeeds(tmp_path):
    """SIGKILL in the middle of writing: no examples_metadata.json; the next run works.
    The run is held after its second chunk's part files are written (a file barrier), then killed."""
    data = tmp_path / "in"
    data.mkdir()
    header, *rows = open(os.path.join(TAXI_CSV_DIR, "data.csv")).read().splitlines()
    with open(data / "big.csv", "w") as f:
        f.write(header + "\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out"
    held = tmp_path / "held"
    script = tmp_path / "script.py"
    script.write_text(
        "import sys, threading\n"
        "import examplegen.ingest as m\n"
        "from examplegen import cli\n"
        "real, done = m.run_task, []\n"
        "def hold_after_two(task):\n"
        "    result = real(task)\n"
        "    done.append(task)\n"
        "    if len(done) == 2:\n"
        f"        open({str(held)!r}, 'w').close()\n"
        "        threading.Event().wait()\n"
        "    return result\n"
        "if __name__ == '__main__':\n"
        "    m.CHUNK_BYTES = 64 << 10\n"
        "    m.run_task = hold_after_two\n"
        "    sys.exit(cli.main(sys.argv[1:]))\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)))
    proc = subprocess.Popen([sys.executable, str(script), "ingest", "--input-base", str(data),
                             "--output", str(out), "--workers", "1"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not held.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert held.exists(), f"the run did not reach the barrier (exit code {proc.poll()})"
        staging = [d for d in os.listdir(out) if d.startswith(".staging")]
        assert staging and os.listdir(out / staging[0] / "parts"), "no part files written before the kill"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (out / "examples_metadata.json").exists()
    assert not [d for d in os.listdir(out) if d.startswith("Split-")]
    code = cli.main(["ingest", "--input-base", str(data), "--output", str(out)])
    assert code == 0
    assert (out / "examples_metadata.json").exists()
    assert not [d for d in os.listdir(out) if d.startswith(".staging")]
    md = json.load(open(out / "examples_metadata.json"))
    assert sum(json.loads(md["example_counts"]).values()) == len(rows)


def test_a_script_without_main_guard_gets_a_clear_error(tmp_path):
    """Workers are spawned: a script calling ingest() at top level must be told why it failed."""
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(2000)))
    script = tmp_path / "script.py"
    script.write_text("from examplegen.ingest import ingest\n"
                      "import examplegen.ingest as m\n"
                      "m.CHUNK_BYTES = 1000\n"
                      f"ingest({str(data)!r}, {str(tmp_path / 'out')!r}, workers=2, record_lineage=False)\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr and "workers=1" in done.stderr
    assert not (tmp_path / "out" / "examples_metadata.json").exists()


# --------------------------------------------------------------------------- errors: one message, no traceback


def _small_input(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "d.csv").write_text("a,b\n1,x\n2,y\n3,z\n")
    return str(data)


def _cli_process(*args, **env):
    return subprocess.run([sys.executable, "-m", "examplegen.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)), **env),
                          timeout=300)


@pytest.mark.parametrize("option, value, message", [
    ("--num-shards", "100000", "num_shards (--num-shards) must be 0 (automatic) or an output file count per "
                               "split from 1 to 1000, got 100000"),
    ("--num-shards", "-1", "num_shards (--num-shards) must be 0 (automatic)"),
    ("--workers", "-1", "workers (--workers) must be 0 (one per CPU core) or a number of units converted "
                        "at once (this process and workers - 1 worker processes) from 1 to 256, got -1"),
    ("--workers", "100000", "workers (--workers) must be 0"),
    ("--lock-timeout", "-1", "lock_timeout (--lock-timeout) must be 0 (fail at once) or a number of seconds"),
    ("--lock-timeout", "nan", "lock_timeout (--lock-timeout) must be 0"),
])
def test_option_bounds_are_checked_before_anything_is_written(tmp_path, capsys, option, value, message):
    """Today --num-shards 100000 on 3 rows wrote 200,001 files and --workers -1 was accepted."""
    code, out, err = run_cli(capsys, "ingest", "--input-base", _small_input(tmp_path), "--output",
                             str(tmp_path / "o"), option, value)
    assert code == 1 and out == ""
    assert err.startswith(f"examplegen ingest: error: {message}")
    assert not (tmp_path / "o").exists()


def test_resplit_checks_the_same_bounds(tmp_path, capsys):
    code, _, err = run_cli(capsys, "resplit", "--examples", shared("csv_example_gen"), "--output",
                           str(tmp_path / "o"), "--num-shards", "5000", "--output-config",
                           '{"split_config": {"splits": [{"name": "a", "hash_buckets": 1}]}}')
    assert code == 1 and "num_shards (--num-shards) must be 0 (automatic)" in err
    assert not (tmp_path / "o").exists()


def test_hash_buckets_out_of_uint32_range_names_the_key_and_the_range(tmp_path, capsys):
    code, _, err = run_cli(capsys, "ingest", "--input-base", _small_input(tmp_path), "--output",
                           str(tmp_path / "o"), "--output-config",
                           '{"split_config": {"splits": [{"name": "train", "hash_buckets": 4294967296}]}}')
    assert code == 1
    assert err == ("examplegen ingest: error: output_config.split_config.splits[0].hash_buckets: expected an "
                   "integer from 1 to 4294967295 (a uint32 in TFX's proto), got 4294967296\n")


def test_malformed_mlmd_url_is_one_message_not_a_traceback(tmp_path):
    done = _cli_process("ingest", "--input-base", _small_input(tmp_path), "--output", str(tmp_path / "o"),
                        "--mlmd", "mysql://root@[::1:3306/db")
    assert done.returncode == 1
    assert done.stderr == ("examplegen ingest: error: MLMD store URL 'mysql://root@[::1:3306/db' (from --mlmd): "
                           "malformed host (Invalid IPv6 URL); an IPv6 address goes in brackets, e.g. "
                           "mysql://root@[::1]:3306/mlmd\n")


def test_os_errors_name_the_path_and_say_what_to_do(tmp_path, capsys, monkeypatch):
    """An OSError that no check turned into a message still gets one line, not a traceback."""
    import examplegen.ingest

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/data/in/d.csv")

    monkeypatch.setattr(examplegen.ingest, "ingest", denied)
    code, _, err = run_cli(capsys, "ingest", "--input-base", "/data/in", "--output", str(tmp_path / "o"))
    assert code == 1
    assert err == ("examplegen ingest: error: /data/in/d.csv: Permission denied; check the permissions of "
                   "the path or choose another location\n")


def _raise_internal_error(*args, **kwargs):
    raise KeyError("column_types")


def test_internal_errors_say_so_and_how_to_get_the_traceback(tmp_path, capsys, monkeypatch):
    import examplegen.ingest

    monkeypatch.setattr(examplegen.ingest, "ingest", _raise_internal_error)
    code, _, err = run_cli(capsys, "ingest", "--input-base", "x", "--output", str(tmp_path / "o"))
    assert code == 3
    assert err == ("examplegen ingest: internal error: KeyError: 'column_types'\nThis is a bug in examplegen: "
                   "rerun with --debug (or EXAMPLEGEN_DEBUG=1) and report the traceback.\n")
    assert "Traceback" not in err


@pytest.mark.parametrize("where", ["before", "after", "env"])
def test_debug_flag_or_env_prints_the_traceback_then_the_message(tmp_path, capsys, monkeypatch, where):
    monkeypatch.delenv("EXAMPLEGEN_DEBUG", raising=False)
    args = ["ingest", "--input-base", _small_input(tmp_path), "--output", str(tmp_path / "o"),
            "--workers", "-2"]
    if where == "before":
        args.insert(0, "--debug")
    elif where == "after":
        args.append("--debug")
    else:
        monkeypatch.setenv("EXAMPLEGEN_DEBUG", "1")
    code, _, err = run_cli(capsys, *args)
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert "examplegen.errors.ConfigError" in err
    assert err.endswith("examplegen ingest: error: workers (--workers) must be 0 (one per CPU core) or a "
                        "number of units converted at once (this process and workers - 1 worker processes) "
                        "from 1 to 256, got -2\n")


def test_help_documents_exit_codes_debug_and_lock_timeout(capsys):
    for argv in (["--help"], ["ingest", "--help"], ["resplit", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "--debug" in text and "EXAMPLEGEN_DEBUG=1" in text
        assert "Exit codes: 0 success; 1 error" in text and "3 internal error" in text
        if argv[0] != "--help":
            assert "--lock-timeout SECONDS" in text
