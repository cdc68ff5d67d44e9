"""The output folder: one run at a time (its lock), and clear errors when it cannot be
written (a file in the way, a read-only or a full file system), with nothing left half-written.

The read-only and full file systems are real: small tmpfs mounts (the tests run as root,
as in the project's containers)."""

import json
import os
import subprocess
import sys
import time

import pytest

from examplegen import cli
from examplegen.errors import OutputError
from examplegen.ingest import ingest
from examplegen.output_lock import LOCK_FILE, lock_output
from tests.helpers import REPO, TAXI_CSV_DIR, read_split


def run_cli(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def small_input(folder, rows=3):
    folder.mkdir()
    (folder / "d.csv").write_text("a,b\n" + "".join(f"{i},x{i}\n" for i in range(rows)))
    return str(folder)


@pytest.fixture
def mount_tmpfs(tmp_path):
    """mount_tmpfs(size, read_only=False): a fresh tmpfs of that size; unmounted afterwards."""
    mounted = []

    def mount(size: str, read_only: bool = False):
        where = tmp_path / f"mnt{len(mounted)}"
        where.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"these tests mount a tmpfs and need root: {done.stderr}"
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], check=True)


# --------------------------------------------------------------------------- paths that cannot be written


def test_output_that_is_an_existing_file_is_a_clear_error(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("precious")
    code, out, err = run_cli(capsys, "ingest", "--input-base", small_input(tmp_path / "in"),
                             "--output", str(target))
    assert code == 1 and out == ""
    assert err == (f"examplegen ingest: error: output {target} is an existing file, not a folder: give the "
                   "path of a new folder or of an earlier Examples artifact\n")
    assert target.read_text() == "precious"


def test_output_below_a_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "ingest", "--input-base", small_input(tmp_path / "in"),
                           "--output", str(tmp_path / "file" / "out"))
    assert code == 1
    assert err == (f"examplegen ingest: error: cannot create the output folder: {tmp_path}/file/out: Not a "
                   "directory; a part of the path is a file, not a directory\n")


def test_a_folder_with_other_things_than_an_artifact_is_refused(tmp_path, capsys, monkeypatch):
    """`--output .` in a project folder (or an empty --output, which meant the current
    folder): refused, nothing written into it."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    data = small_input(tmp_path / "in")
    monkeypatch.chdir(project)
    for output in (".", str(project)):
        code, out, err = run_cli(capsys, "ingest", "--input-base", data, "--output", output)
        assert code == 1 and out == ""
        assert err == (f"examplegen ingest: error: output folder {project} is not empty and holds no Examples "
                       "artifact (notes.txt): give the path of a new or empty folder or of an earlier artifact\n")
    code, _, err = run_cli(capsys, "ingest", "--input-base", data, "--output", "")
    assert code == 1 and "error: the output path is empty" in err
    assert os.listdir(project) == ["notes.txt"]


def test_an_empty_folder_and_an_earlier_artifact_are_fine_outputs(tmp_path):
    data = small_input(tmp_path / "in")
    (tmp_path / "empty").mkdir()
    for _ in range(2):
        assert sum(ingest(data, str(tmp_path / "empty"), record_lineage=False, force=True).counts.values()) == 3


def test_read_only_output_is_a_clear_error(tmp_path, capsys, mount_tmpfs):
    read_only = mount_tmpfs("1m", read_only=True)
    code, out, err = run_cli(capsys, "ingest", "--input-base", small_input(tmp_path / "in"),
                             "--output", str(read_only / "out"))
    assert code == 1 and out == ""
    assert err == (f"examplegen ingest: error: cannot create the output folder: {read_only}/out: Read-only "
                   "file system; the file system is read-only: choose a writable location\n")


def test_read_only_existing_artifact_folder_is_a_clear_error(tmp_path, capsys, mount_tmpfs):
    mnt = mount_tmpfs("1m")
    ingest(small_input(tmp_path / "in"), str(mnt / "out"), record_lineage=False)
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    code, _, err = run_cli(capsys, "ingest", "--input-base", str(tmp_path / "in"), "--output",
                           str(mnt / "out"), "--force")
    assert code == 1
    assert err == (f"examplegen ingest: error: cannot write to the output folder: {mnt}/out/{LOCK_FILE}: "
                   "Read-only file system; the file system is read-only: choose a writable location\n")
    assert len(read_split(str(mnt / "out"), "train")) + len(read_split(str(mnt / "out"), "eval")) == 3


def test_full_disk_names_the_output_and_removes_the_partial_output(tmp_path, capsys, mount_tmpfs):
    """The taxi artifact (~450 KB) cannot fit in 128 KiB: ENOSPC, which today was
    `[Errno 28] No space left on device` with no path."""
    mnt = mount_tmpfs("128k")
    code, out, err = run_cli(capsys, "ingest", "--input-base", TAXI_CSV_DIR, "--output", str(mnt / "out"))
    assert code == 1 and out == ""
    assert err == (f"examplegen ingest: error: cannot write the Examples artifact to {mnt}/out: No space left "
                   "on device; the file system is full: free space or choose a location with more room. "
                   "The partial output was removed; no artifact was written\n")
    assert os.listdir(mnt) == []  # no staging folder, no lock file, no empty output folder


def test_full_disk_keeps_the_earlier_artifact_complete(tmp_path, capsys, mount_tmpfs):
    mnt = mount_tmpfs("256k")
    out = mnt / "out"
    ingest(small_input(tmp_path / "in"), str(out), record_lineage=False)
    before = {name: (out / name).read_bytes() for name in ["examples_metadata.json"]}
    code, _, err = run_cli(capsys, "ingest", "--input-base", TAXI_CSV_DIR, "--output", str(out))
    assert code == 1
    assert "No space left on device" in err and f"to {out}:" in err
    assert err.endswith("The partial output was removed; the earlier artifact there is unchanged\n")
    assert sorted(os.listdir(out)) == ["Split-eval", "Split-train", "examples_metadata.json"]
    assert (out / "examples_metadata.json").read_bytes() == before["examples_metadata.json"]
    assert len(read_split(str(out), "train")) + len(read_split(str(out), "eval")) == 3


# --------------------------------------------------------------------------- one run at a time


def _held_run(tmp_path, data: str, output: str) -> tuple[subprocess.Popen, str, str]:
    """Starts an ingest in a subprocess that stops inside its first conversion task until
    the test creates the returned `go` file. Returns (process, announce folder, go file)."""
    announced = tmp_path / "announced"
    announced.mkdir()
    go = str(tmp_path / "go")
    script = tmp_path / "held_run.py"
    script.write_text(
        "import examplegen.ingest as m\n"
        "from tests import worker_hooks\n"
        "if __name__ == '__main__':\n"
        "    m.run_task = worker_hooks.announce_and_wait_for_go\n"
        f"    result = m.ingest({data!r}, {output!r}, workers=1, record_lineage=False)\n"
        "    print(sum(result.counts.values()))\n")
    env = dict(os.environ, PYTHONPATH=REPO, EXAMPLEGEN_TEST_WORKER_DIR=str(announced), EXAMPLEGEN_TEST_GO=go)
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # only bounds a hang: the run announces itself
    while not os.listdir(announced) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(announced), f"the held run did not start: {proc.communicate()}"
    return proc, str(announced), go


def test_a_second_run_into_the_same_output_fails_clearly_and_the_first_completes(tmp_path, capsys):
    """Today the second run cleared the first one's staging folder and the first died with
    FileNotFoundError. Now the second fails at once, naming the first one's pid."""
    data = small_input(tmp_path / "in", rows=50)
    out = tmp_path / "out"
    first, _, go = _held_run(tmp_path, data, str(out))
    try:
        code, stdout, err = run_cli(capsys, "ingest", "--input-base", data, "--output", str(out), "--no-lineage")
        assert code == 1 and stdout == ""
        assert err.startswith(f"examplegen ingest: error: output folder {out} is in use by another "
                              f"examplegen run (pid {first.pid} on ")
        assert err.endswith("wait for it to finish, choose another --output, or pass --lock-timeout SECONDS "
                            "to wait for it\n")
    finally:
        open(go, "w").close()
        stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert stdout.strip() == "50"
    assert sorted(os.listdir(out)) == ["Split-eval", "Split-train", "examples_metadata.json"]


def test_a_second_run_with_lock_timeout_waits_for_the_first(tmp_path):
    data = small_input(tmp_path / "in", rows=20)
    out = tmp_path / "out"
    with lock_output(str(out)):
        second = subprocess.Popen(
            [sys.executable, "-m", "examplegen.cli", "ingest", "--input-base", data, "--output", str(out),
             "--no-lineage", "--json", "--lock-timeout", "600"],
            env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        waiting = second.stderr.readline()  # blocks until the second run says it waits
        assert waiting == (f"output folder {out} is in use by another examplegen run (pid {os.getpid()} on "
                           f"{os.uname().nodename}, started {waiting.split('started ')[1].split(')')[0]}); "
                           "waiting up to 600 s for it\n")
        assert second.poll() is None
    stdout, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    assert sum(json.loads(stdout)["counts"].values()) == 20
    assert not (out / LOCK_FILE).exists()


def test_lock_timeout_expires_with_the_same_clear_error(tmp_path):
    data = small_input(tmp_path / "in")
    with lock_output(str(tmp_path / "out")):
        with pytest.raises(OutputError, match=r"in use by another examplegen run \(pid \d+ .*\) \(waited 0.3 s\)"):
            ingest(data, str(tmp_path / "out"), record_lineage=False, lock_timeout=0.3)
    assert not (tmp_path / "out").exists()  # the lock's folder is gone with the lock


def test_the_lock_of_a_killed_run_does_not_block(tmp_path):
    """The kernel releases a dead process's flock: a lock file left by a SIGKILLed run
    (still naming it) is taken over and removed at the end."""
    data = small_input(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text("pid 999999 on elsewhere, started 2020-01-01 00:00:00 UTC\n")
    result = ingest(data, str(out), record_lineage=False)
    assert sum(result.counts.values()) == 3
    assert not (out / LOCK_FILE).exists()


def test_resplit_takes_the_output_lock_too(tmp_path):
    source = tmp_path / "examples"
    ingest(small_input(tmp_path / "in"), str(source), record_lineage=False)
    with lock_output(str(tmp_path / "out")):
        with pytest.raises(OutputError, match="is in use by another examplegen run"):
            from examplegen.ingest import resplit

            resplit(str(source), str(tmp_path / "out"), record_lineage=False,
                    output_config={"split_config": {"splits": [{"name": "a", "hash_buckets": 1}]}})
