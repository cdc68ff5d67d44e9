"""The launcher's check of the work units' results (examplegen.unit_check), case by case,
on real part files written by the engine's own conversion."""

from __future__ import annotations

import dataclasses
import os

import pytest

from examplegen import sources, tfrecord
from examplegen.config import InputConfig, InputSplit, OutputConfig, effective_output_config
from examplegen.convert import UnitTask, run_unit
from examplegen.errors import VerificationError
from examplegen.split import plan_for
from examplegen.unit_check import check_units
from examplegen.writer import part_file_name
from tests.helpers import TAXI_CSV_DIR


@pytest.fixture
def converted(tmp_path):
    """Three units of the taxi CSV converted into ``parts``: (tasks, results, parts dir)."""
    parts = tmp_path / "parts"
    parts.mkdir()
    source = sources.get("csv")
    options = source.Options.from_dict(None)
    in_cfg = InputConfig((InputSplit("single_split", "*"),))
    (_, plan), = plan_for(effective_output_config(in_cfg, OutputConfig()), ["single_split"])
    units = list(source.plan("single_split", [os.path.join(TAXI_CSV_DIR, "data.csv")], options, 500_000).units)
    assert len(units) == 3
    tasks = [UnitTask("csv", unit, options, 0, i, plan, (0, 1), 2, str(parts)) for i, unit in enumerate(units)]
    return tasks, [run_unit(task) for task in tasks], str(parts)


def test_complete_results_pass_in_task_order(converted):
    tasks, results, parts = converted
    shuffled = [results[2], results[0], results[1], results[0]]  # any order, a duplicate
    assert check_units(tasks, shuffled, parts) == results
    assert sum(r.rows for r in results) == 10_000


def test_a_result_for_a_unit_that_was_not_planned(converted):
    tasks, results, parts = converted
    with pytest.raises(VerificationError, match=r"results came back for work units that were not planned: "
                                                r"\[\(0, 2\)\]"):
        check_units(tasks[:2], results, parts)


def test_duplicates_that_disagree(converted):
    tasks, results, parts = converted
    other = dataclasses.replace(results[1], rows=results[1].rows + 1, counts=[results[1].counts[0] + 1,
                                                                            results[1].counts[1]])
    with pytest.raises(VerificationError, match=r"work unit 1 of input split 0 .* completed 2 times with "
                                                r"different results"):
        check_units(tasks, results + [other], parts)


def test_rows_read_must_be_rows_written_plus_rejected(converted):
    tasks, results, parts = converted
    results[0] = dataclasses.replace(results[0], rows=results[0].rows + 5)
    with pytest.raises(VerificationError, match=r"work unit 0 .* read [\d,]+ rows but wrote [\d,]+ and rejected 0"):
        check_units(tasks, results, parts)
    rejected = dataclasses.replace(results[0], rejected=5)  # five bad rows skipped: adds up
    assert check_units(tasks, [rejected] + results[1:], parts)[0].rejected == 5


def test_counts_per_split_must_match_the_part_files(converted):
    tasks, results, parts = converted
    moved = dataclasses.replace(results[2], counts=[results[2].counts[0] - 1, results[2].counts[1] + 1])
    with pytest.raises(VerificationError, match=r"work unit 2 .* reported \[[\d, ]+\] rows written per output "
                                                r"split, its part files hold \[[\d, ]+\]"):
        check_units(tasks, results[:2] + [moved], parts)


def test_a_truncated_part_file(converted):
    tasks, results, parts = converted
    name = sorted(results[0].parts)[0]
    size = os.path.getsize(os.path.join(parts, name))
    with open(os.path.join(parts, name), "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(VerificationError, match=rf"work unit 0 .* wrote part file {name} \([\d,]+ records, "
                                                rf"{size:,} bytes, SHA-256 \w+…\), the file now holds "
                                                rf"{size // 2:,} bytes instead of {size:,}; nothing was committed"):
        check_units(tasks, results, parts)


def test_a_part_file_with_other_bytes_of_the_same_size(converted):
    """A part whose bytes changed in place (one byte flipped) is caught by its digest."""
    tasks, results, parts = converted
    name = sorted(results[1].parts)[-1]
    with open(os.path.join(parts, name), "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(VerificationError, match=rf"work unit 1 .* wrote part file {name} .* the file now holds "
                                                r"other bytes of the same size"):
        check_units(tasks, results, parts)


def test_a_missing_part_file(converted):
    tasks, results, parts = converted
    name = sorted(results[2].parts)[0]
    os.remove(os.path.join(parts, name))
    with pytest.raises(VerificationError, match=rf"work unit 2 .* wrote part file {name} \([\d,]+ records\), "
                                                r"which is missing from"):
        check_units(tasks, results, parts)


def test_a_result_without_digests_is_refused(converted):
    tasks, results, parts = converted
    results[0] = dataclasses.replace(results[0], digests={})
    with pytest.raises(VerificationError, match=r"work unit 0 .* reported part files \[.+\] but digests of \[\]"):
        check_units(tasks, results, parts)


def test_records_lost_between_reading_and_writing_fail_the_check(tmp_path, monkeypatch, converted):
    """Rows read are counted apart from the records the part files receive: a conversion
    that loses records on the way (here: the grouping drops the last group of a batch)
    reports fewer rows written than read, and the check refuses it."""
    tasks, _, _ = converted
    from examplegen import convert

    real = tfrecord.frames_by_key
    monkeypatch.setattr(convert.tfrecord, "frames_by_key", lambda records, key, crcs=None: real(records, key, crcs)[:-1])
    parts = tmp_path / "lossy"
    parts.mkdir()
    lossy = [dataclasses.replace(task, parts_dir=str(parts)) for task in tasks]
    results = [run_unit(task) for task in lossy]
    assert all(r.rows > sum(r.counts) for r in results)
    with pytest.raises(VerificationError, match=r"work unit 0 .* read [\d,]+ rows but wrote [\d,]+ and "
                                                r"rejected 0; nothing was committed"):
        check_units(lossy, results, str(parts))


def test_a_stray_part_file_no_unit_wrote(converted):
    tasks, results, parts = converted
    stray = part_file_name(0, 7, 0, 0)
    with open(os.path.join(parts, stray), "wb") as f:
        f.write(tfrecord.gzip_member(tfrecord.frame_records([b"x"])))
    with pytest.raises(VerificationError, match=rf"part file {stray} in .* was written by no work unit of this run"):
        check_units(tasks, results, parts)


def test_the_commit_assembles_the_verified_parts_not_a_listing(tmp_path, monkeypatch):
    """A listing of the staging folder that misses a part file (an object store listing
    taken while uploads land) must not leave that part's records out of the artifact: the
    commit assembles the part files the unit check verified."""
    from examplegen import ingest as ingest_module
    from examplegen import writer as writer_module
    from examplegen.ingest import ingest
    from tests.helpers import tree_bytes

    monkeypatch.setattr(ingest_module, "CHUNK_BYTES", 500_000)
    reference = ingest(TAXI_CSV_DIR, str(tmp_path / "reference"), record_lineage=False, workers=1)
    real_listdir = writer_module.fs.listdir
    hidden = []

    def misses_a_part(path):
        names = real_listdir(path)
        if path.endswith("/parts") and names:
            hidden.append(names.pop(0))
        return names

    monkeypatch.setattr(writer_module.fs, "listdir", misses_a_part)
    result = ingest(TAXI_CSV_DIR, str(tmp_path / "out"), record_lineage=False, workers=1)
    assert result.counts == reference.counts
    assert tree_bytes(str(tmp_path / "out")) == tree_bytes(str(tmp_path / "reference"))


def test_a_part_that_changes_after_the_check_fails_the_commit(tmp_path, monkeypatch):
    """The commit hashes each part again as it copies it into its shard: bytes that differ
    from the verified ones (changed, or read differently) stop the commit before the
    metadata is written, and an earlier artifact at the output stays complete."""
    from examplegen import writer as writer_module
    from examplegen.ingest import ingest
    from tests.helpers import tree_bytes

    out = tmp_path / "out"
    ingest(TAXI_CSV_DIR, str(out), record_lineage=False, workers=1, num_shards=2)
    before = tree_bytes(str(out))
    real_commit = writer_module.ExamplesWriter.commit

    def flips_a_byte_first(self, metadata):
        name = sorted(self.expected_parts)[0]
        path = os.path.join(self.parts_dir, name)
        with open(path, "r+b") as f:
            f.seek(50)
            byte = f.read(1)
            f.seek(50)
            f.write(bytes([byte[0] ^ 1]))
        return real_commit(self, metadata)

    monkeypatch.setattr(writer_module.ExamplesWriter, "commit", flips_a_byte_first)
    with pytest.raises(VerificationError, match=r"part file \S+ holds [\d,]+ bytes with SHA-256 \w+… as the commit "
                                                r"reads it, not the [\d,]+ bytes with SHA-256 \w+… the unit check "
                                                r"verified; nothing was committed"):
        ingest(TAXI_CSV_DIR, str(out), record_lineage=False, workers=1, num_shards=3)
    assert tree_bytes(str(out)) == before
