"""Input that ingest used to misreport or accept silently: counts past int64 (named at the wrong
line), lines longer than the CSV reader's block, repeated metadata columns and one file listed
for two repertoires."""

from __future__ import annotations

import pytest

from deeprc.cli import main
from deeprc.ingest import airr

JUNCTIONS = [f"CASS{a}{b}GQETQYF" for a in "ACDEFGHIKL" for b in "MNPQRSTVWY"]


def count_rows(h, counts: list[str]) -> list[dict[str, str]]:
    """Valid rows with the given duplicate_count values; row k is on line k + 2."""
    return [h.rec(JUNCTIONS[i], duplicate_count=c) for i, c in enumerate(counts)]


# ----------------------------------------------------------------------------- counts


@pytest.mark.parametrize("value", ["99999999999999999999", "9223372036854775808", "1e30"])
def test_count_out_of_int64_range_names_its_line_and_value(tmp_path, h, assert_fails, value):
    rows = count_rows(h, ["3", value, "2"])  # the second data row: line 3
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": rows})
    message = assert_fails(
        metadata,
        str(tmp_path / "data" / "b.tsv"),
        "line 3,",
        "'duplicate_count'",
        f"out-of-range value {value!r}",
        "2**63-1",
    )
    assert "'3'" not in message


def test_largest_int64_count_beside_a_decimal_count_is_kept(tmp_path, h):
    # "0.0" fails the integer cast and 2**63-1 rounds out of range in the float cast
    rows = count_rows(h, [str(2**63 - 1), "0.0"])
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": rows})
    report, out = h.run_ingest(metadata)
    assert h.check_store(out).sequences[1]["duplicate_count"].tolist() == [2**63 - 1]
    assert report["zero_count"].tolist() == [0, 1]


@pytest.mark.parametrize(
    ("value", "problem"),
    [("99999999999999999999", "out-of-range value"), ("abc", "invalid value")],
)
def test_bad_count_in_a_later_batch_names_its_file_line(
    tmp_path, h, assert_fails, monkeypatch, value, problem
):
    monkeypatch.setattr(airr, "BLOCK_SIZE", 1024)  # ~20 rows a batch
    counts = [str(i + 1) for i in range(80)]
    counts[60] = value  # line 62, in the fourth batch
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": count_rows(h, counts)})
    assert_fails(metadata, "b.tsv: line 62,", f"{problem} {value!r}")


# ----------------------------------------------------------------------------- long lines


@pytest.mark.parametrize(("name", "at"), [("b.tsv", 3), ("b.tsv.gz", 0)])
def test_junction_longer_than_the_read_block_is_counted_too_long(tmp_path, h, name, at):
    rows = count_rows(h, ["1", "2", "3"])
    rows.insert(at, h.rec("C" + "A" * 10_000_000 + "F", duplicate_count=9))
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], name: rows})
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)  # the first, failed read of b left nothing behind
    assert report["rows_read"].tolist() == [1, 4]
    assert report["too_long"].tolist() == [0, 1]
    assert view.sequences[1]["junction_aa"].tolist() == JUNCTIONS[:3]
    assert view.repertoires["total_count"].tolist() == [1, 6]


# ----------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(("file_name", "sep"), [("metadata.tsv", "\t"), ("metadata.csv", ",")])
def test_metadata_with_a_repeated_column_name(tmp_path, h, assert_fails, file_name, sep):
    h.make_study(tmp_path / "data").unlink()
    metadata = h.write_metadata(
        tmp_path / "data" / file_name,
        [("rep0", "0", "rep0.tsv", "1"), ("rep1", "1", "rep1.tsv", "0")],
        header=("repertoire_id", "label", "file", "label"),
        sep=sep,
    )
    assert_fails(metadata, str(metadata), "line 1", "'label': [2, 4]", "rename")


def test_one_file_listed_for_two_repertoires(tmp_path, h, assert_fails, capsys):
    metadata = h.make_study(tmp_path / "data", h.default_files(3))
    h.write_metadata(
        metadata,
        [("rep0", "rep0.tsv", "0"), ("rep1", "rep1.tsv", "1"), ("rep2", "./rep0.tsv", "1")],
    )
    (tmp_path / "data" / "rep2.tsv").unlink()
    assert_fails(metadata, str(metadata), "'rep0.tsv': [2, 4]", "its own file")

    argv = ["ingest", "--metadata", str(metadata), "--label-column", "label"]
    assert main([*argv, "--out", str(tmp_path / "store"), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "[2, 4]" in err and "Traceback" not in err
