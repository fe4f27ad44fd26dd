"""Input that ingest used to mishandle: messages quoting megabytes of a bad value, counts whose
sum wrapped around, CR-only line ends, tracebacks for odd metadata paths, exports missing a column
named as an AIRR file's, and silent choices (no count column, files outside the data directory,
NUL bytes in ids, NA labels)."""

from __future__ import annotations

import errno
import io
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from deeprc.cli import main
from deeprc.ingest import airr

LONG = 3_000_000  # a few MB: long enough to tell, short enough to be quick
IMMUNOSEQ_V2 = pd.DataFrame(
    {
        "aminoAcid": ["CASSLGQAYEQYF", "CASSPDRGNTEAFF"],
        "count (templates/reads)": ["12", "3"],
        "vGeneName": ["TCRBV07-02", "TCRBV01-01"],
        "jGeneName": ["TCRBJ02-07", "TCRBJ01-01"],
        "sequenceStatus": ["In", "In"],
    }
)
MIXCR = pd.DataFrame(
    {
        "cloneCount": ["120", "30"],
        "allVHitsWithScore": ["TRBV7-2*00(1520.3)", "TRBV12-3*00(240)"],
        "allJHitsWithScore": ["TRBJ2-7*00(300)", "TRBJ1-1*00(280)"],
        "aaSeqCDR3": ["CASSLGQAYEQYF", "CASSPDRGNTEAFF"],
    }
)


def ingest_cli(metadata: Path, out: Path, *extra: str) -> int:
    argv = ["ingest", "--metadata", str(metadata), "--out", str(out), "--threads", "1"]
    return main([*argv, "--no-progress", "--label-column", "label", *extra])


def refused(capsys, metadata: Path, out: Path, *fragments: str, extra: tuple = ()) -> str:
    """Exit 2 with one line naming every fragment, no traceback and no store."""
    assert ingest_cli(metadata, out, *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err[:2000]
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in: {err[:2000]}"
    assert not out.exists()
    return err


# ----------------------------------------------------------------------------- 16: long values


def long_value_study(h, root: Path, case: str) -> Path:
    long = "C" + "A" * LONG + "F"
    if case == "productive":
        return h.make_study(root, {"a.tsv": [h.rec()], "b.tsv.gz": [h.rec(productive=long)]})
    if case == "count_text":
        return h.make_study(root, {"a.tsv": [h.rec()], "b.tsv.gz": [h.rec(duplicate_count=long)]})
    if case == "count_digits":  # past int()'s 4300 digits
        rows = [h.rec(duplicate_count="1" * LONG)]
        return h.make_study(root, {"a.tsv": [h.rec()], "b.tsv.gz": rows})
    if case == "header":
        return h.make_study(root, {"a.tsv": [h.rec()], "b.tsv": f"{long}\tv_call\nx\ty\n"})
    metadata = h.make_study(root, h.default_files(3), labels=["0", "1", "0"])
    rows = {
        "duplicate_id": [(long, "rep0.tsv", "0"), (long, "rep1.tsv", "1"), ("c", "rep2.tsv", "0")],
        "label": [("a", "rep0.tsv", "0"), ("b", "rep1.tsv", "1"), ("c", "rep2.tsv", long)],
        "file": [("a", "rep0.tsv", "0"), ("b", "rep1.tsv", "1"), ("c", long, "0")],
    }[case]
    return h.write_metadata(metadata, rows)


@pytest.mark.parametrize(
    "case",
    ["productive", "count_text", "count_digits", "header", "duplicate_id", "label", "file"],
)
def test_a_megabyte_value_is_quoted_by_its_ends_and_length(tmp_path, h, capsys, case):
    metadata = long_value_study(h, tmp_path / "data", case)
    err = refused(capsys, metadata, tmp_path / "store")
    assert len(err) < 600, err[:2000]
    assert "CAAAAAAAAA" in err or "1111111111" in err
    assert f"({LONG + 2:,} characters)" in err or f"({LONG:,} characters)" in err
    if case == "count_digits":
        assert "out-of-range value" in err and "4300" not in err


# ----------------------------------------------------------------------------- 17: count sums


@pytest.mark.parametrize("layout", ["one_batch", "collapsed", "two_batches"])
def test_counts_whose_sum_passes_int64_are_refused(tmp_path, h, capsys, monkeypatch, layout):
    big = 2**63 - 1
    rows = [h.rec("CASSLGQETQYF", duplicate_count=big), h.rec("CASSPDF", duplicate_count=big)]
    extra: tuple = ()
    if layout == "collapsed":  # the two counts of one clonotype would sum to -2
        rows[1] = h.rec("CASSLGQETQYF", duplicate_count=big)
        extra = ("--collapse",)
    if layout == "two_batches":
        monkeypatch.setattr(airr, "BLOCK_SIZE", 256)
        rows = [h.rec(f"CASS{'ACDEFGHIKL'[i]}F", duplicate_count=2**62) for i in range(10)]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": rows})
    path = str(tmp_path / "data" / "b.tsv")
    refused(capsys, metadata, tmp_path / "store", path, "2**63-1", extra=extra)


def test_counts_summing_to_the_largest_int64_are_kept(tmp_path, h):
    rows = [h.rec("CASSLGQETQYF", duplicate_count=2**62), h.rec(duplicate_count=2**62 - 1)]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": rows})
    assert ingest_cli(metadata, tmp_path / "store", "--collapse") == 0
    view = h.check_store(tmp_path / "store")
    assert view.repertoires["total_count"].tolist() == [1, 2**63 - 1]


# ----------------------------------------------------------------------------- 18: line ends


def three_counts(h) -> str:
    return h.airr_text([h.rec(duplicate_count=3), h.rec("CASSPDRGYEQYF", duplicate_count=3)])


@pytest.mark.parametrize("name", ["b.tsv", "b.tsv.gz"])
def test_cr_only_line_ends_are_refused_by_name(tmp_path, h, capsys, name):
    metadata = h.make_study(
        tmp_path / "data", {"a.tsv": [h.rec()], name: three_counts(h).replace("\n", "\r")}
    )
    refused(capsys, metadata, tmp_path / "store", str(tmp_path / "data" / name), "CR-only")


def test_crlf_line_ends_keep_the_last_column(tmp_path, h):
    text = three_counts(h).replace("\n", "\r\n")
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv.gz": text})
    assert ingest_cli(metadata, tmp_path / "store") == 0
    view = h.check_store(tmp_path / "store")
    assert view.sequences[1]["duplicate_count"].tolist() == [3, 3]


def test_a_cr_inside_a_line_is_named_by_its_line(tmp_path, h, capsys):
    lines = three_counts(h).split("\n")
    lines[2] = lines[2].replace("TRBV", "TR\rBV")  # line 3
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": "\n".join(lines)})
    refused(capsys, metadata, tmp_path / "store", "b.tsv: line 3 ", "carriage return")


# ----------------------------------------------------------------------------- 19: tracebacks


def test_an_empty_metadata_file(tmp_path, h, capsys):
    metadata = h.make_study(tmp_path / "data")
    metadata.write_bytes(b"")
    refused(capsys, metadata, tmp_path / "store", str(metadata), "empty")


def test_metadata_naming_a_directory(tmp_path, h, capsys):
    h.make_study(tmp_path / "data")
    refused(capsys, tmp_path / "data", tmp_path / "store", str(tmp_path / "data"), "directory")


def test_a_symlink_loop_named_in_the_metadata(tmp_path, h, capsys):
    metadata = h.make_study(tmp_path / "data")
    loop = tmp_path / "data" / "rep1.tsv"
    loop.unlink()
    os.symlink(loop.name, loop)
    refused(capsys, metadata, tmp_path / "store", str(metadata), "line 3", "'rep1.tsv'", "loop")


# ----------------------------------------------------------------------------- 20: exports, notes


@pytest.mark.parametrize(
    ("table", "column", "layout"),
    [(IMMUNOSEQ_V2, "vGeneName", "immunoSEQ v2"), (MIXCR, "allJHitsWithScore", "MiXCR")],
)
def test_an_export_without_a_gene_column_names_it(tmp_path, h, capsys, table, column, layout):
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": [h.rec()]})
    table.drop(columns=column).to_csv(tmp_path / "data" / "b.tsv", sep="\t", index=False)
    err = refused(capsys, metadata, tmp_path / "store", "b.tsv", repr(column), layout)
    assert "junction_aa" not in err


def test_a_mixcr_table_without_counts_is_noted_once(tmp_path, h, capsys):
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": [h.rec()]})
    MIXCR.drop(columns="cloneCount").to_csv(tmp_path / "data" / "b.tsv", sep="\t", index=False)
    assert ingest_cli(metadata, tmp_path / "store") == 0
    err = capsys.readouterr().err
    assert err.count("b.tsv") == 1 and "MiXCR" in err and "count" in err, err
    assert h.check_store(tmp_path / "store").sequences[1]["duplicate_count"].tolist() == [1, 1]


def test_files_outside_the_data_directory_are_noted_and_read(tmp_path, h, capsys):
    metadata = h.make_study(tmp_path / "data", h.default_files(3), labels=["0", "1", "0"])
    (tmp_path / "elsewhere").mkdir()
    for name in ("rep1.tsv", "rep2.tsv"):
        (tmp_path / "data" / name).rename(tmp_path / "elsewhere" / name)
    absolute = str(tmp_path / "elsewhere" / "rep2.tsv")
    rows = [("a", "rep0.tsv", "0"), ("b", "../elsewhere/rep1.tsv", "1"), ("c", absolute, "0")]
    h.write_metadata(metadata, rows)
    assert ingest_cli(metadata, tmp_path / "store") == 0
    err = capsys.readouterr().err
    assert "2 file(s)" in err and "'../elsewhere/rep1.tsv'" in err and "elsewhere/rep2.tsv'" in err
    assert "rep0.tsv" not in err
    assert h.check_store(tmp_path / "store").report["rows_kept"].tolist() == [3, 3, 3]


def test_a_nul_byte_in_a_repertoire_id_is_refused(tmp_path, h, capsys):
    metadata = h.make_study(tmp_path / "data")
    h.write_metadata(metadata, [("rep0", "rep0.tsv", "0"), ("rep\0x", "rep1.tsv", "1")])
    refused(capsys, metadata, tmp_path / "store", str(metadata), "line 3", "NUL")


@pytest.mark.parametrize(
    ("labels", "missing"),
    [(["0", "1", "NA"], "'NA'"), (["1", "N/A"], "'N/A'"), (["nan", "null"], "'nan', 'null'"),
     (["a", "b", "c"], None)],
)  # fmt: skip
def test_label_problems_point_to_allow_unlabelled(tmp_path, h, capsys, labels, missing):
    metadata = h.make_study(tmp_path / "data", h.default_files(len(labels)), labels=labels)
    err = refused(capsys, metadata, tmp_path / "store", str(metadata), "--allow-unlabelled")
    assert (missing is None) == ("missing values" not in err)
    assert missing is None or missing in err


# ----------------------------------------------------------------------------- 21: NA labels


@pytest.mark.parametrize("na", ["NA", "n/a", "NaN", "NULL", "None"])
def test_a_missing_value_label_is_never_a_class(tmp_path, h, capsys, na):
    """With --positive-label 1, labels {1, NA} used to make NA the negative class silently."""
    metadata = h.make_study(tmp_path / "data", h.default_files(3), labels=["1", na, "1"])
    refused(
        capsys, metadata, tmp_path / "store", str(metadata), "[3]", repr(na), "missing value",
        "leave them empty", "--allow-unlabelled", extra=("--positive-label", "1"),
    )  # fmt: skip


def test_missing_value_labels_with_allow_unlabelled_are_unlabelled(tmp_path, h, capsys):
    labels = ["0", "1", "NA", "1", "null"]
    metadata = h.make_study(tmp_path / "data", h.default_files(5), labels=labels)
    assert ingest_cli(metadata, tmp_path / "store", "--allow-unlabelled") == 0
    err = capsys.readouterr().err
    assert "2 repertoire(s)" in err and "['NA', 'null']" in err and "[4, 6]" in err, err
    reps = pd.read_csv(tmp_path / "store" / "repertoires.tsv", sep="\t", dtype={"label": str})
    assert reps["y"].tolist() == [0, 1, -1, 1, -1]
    assert reps["label"].isna().tolist() == [False, False, True, False, True]
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["classes"] == ["0", "1"] and manifest["n_unlabelled"] == 2


# ----------------------------------------------------------------------------- 22: unreadable


@pytest.mark.parametrize(
    ("when", "error", "reason"),
    [("open", errno.EACCES, "Permission denied"), ("open", errno.EISDIR, "Is a directory"),
     ("read", errno.EIO, "Input/output error")],
)  # fmt: skip
def test_a_rearrangement_file_that_cannot_be_read_is_named(
    tmp_path, h, capsys, monkeypatch, when, error, reason
):
    """Tests run as root, for whom chmod 000 denies nothing: the opener fails instead."""
    metadata = h.make_study(tmp_path / "data")
    target = tmp_path / "data" / "rep1.tsv"
    real_open = Path.open

    class FailingRead(io.FileIO):
        def read(self, *args):
            raise OSError(error, os.strerror(error))

        readinto = read

    def opener(self, mode="r", *args, **kwargs):
        if self != target or "b" not in mode:
            return real_open(self, mode, *args, **kwargs)
        if when == "open":
            raise OSError(error, os.strerror(error), str(self))
        return FailingRead(self)

    monkeypatch.setattr(Path, "open", opener)
    err = refused(capsys, metadata, tmp_path / "store", f"{target}: cannot be read ({reason})")
    assert "corrupt" not in err


def test_a_directory_listed_as_a_file_is_refused(tmp_path, h, capsys):
    metadata = h.make_study(tmp_path / "data")
    (tmp_path / "data" / "rep1.tsv").unlink()
    (tmp_path / "data" / "rep1.tsv").mkdir()
    for extra in ((), ("--missing-files", "skip")):
        refused(
            capsys, metadata, tmp_path / "store", str(metadata), "line 3", "'rep1.tsv'",
            "is a directory", extra=extra,
        )  # fmt: skip


# ----------------------------------------------------------------------------- 23: long paths


def test_a_long_path_from_the_metadata_is_shown_by_its_ends(tmp_path, h, capsys):
    metadata = h.make_study(tmp_path / "data")
    name = "/".join(["d" * 80] * 3) + "/rep1.tsv"
    deep = tmp_path / "data" / name
    (tmp_path / "data" / "rep1.tsv").unlink()
    deep.parent.mkdir(parents=True)
    deep.write_text("x\ty\n1\t2\n")  # no junction_aa column
    h.write_metadata(metadata, [("rep0", "rep0.tsv", "0"), ("rep1", name, "1")])
    err = refused(capsys, metadata, tmp_path / "store", "/rep1.tsv'", "characters)", "junction_aa")
    assert str(deep) not in err and len(err) < 400, err
