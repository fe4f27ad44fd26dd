"""deeprc ingest on data nobody on the team wrote: airr's own test files and pyimmunarch's immdata.

Expected values are computed here from the files themselves (airr's reader, csv, pandas), never
with deeprc code.
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import airr
import numpy as np
import pandas as pd
import pytest

from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.ingest import DROP_REASONS, IngestOptions
from deeprc.store import Store

AA = re.compile(r"[ACDEFGHIKLMNPQRSTVWY]+")
_TRUE = {"T", "TRUE", "True", "true", "1"}
_FALSE = {"F", "FALSE", "False", "false", "0"}


def read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of a TSV, with plain csv (no quoting)."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], rows[1:]


def expected_reason(
    row: dict[str, str],
    *,
    min_length: int = 4,
    max_length: int = 40,
    keep_nonproductive: bool = False,
) -> str | None:
    """The documented drop reason of one row (the first that applies), or None when kept."""
    if not keep_nonproductive and row.get("productive", "") in _FALSE:
        return "non_productive"
    junction = (row.get("junction_aa") or row.get("cdr3_aa") or "").upper()
    if not junction:
        return "missing_junction"
    if "*" in junction:
        return "stop_codon"
    if not AA.fullmatch(junction):
        return "invalid_character"
    if len(junction) < min_length:
        return "too_short"
    if len(junction) > max_length:
        return "too_long"
    if int(row.get("duplicate_count") or 1) <= 0:
        return "zero_count"
    return None


def study_of(root: Path, source: Path, labels: dict[str, str], h) -> Path:
    root.mkdir()
    for rep in labels:
        shutil.copy(source, root / f"{rep}.tsv")
    return h.write_metadata(
        root / "metadata.tsv", [(rep, f"{rep}.tsv", label) for rep, label in labels.items()]
    )


# ----------------------------------------------------------------------------- airr's files


def test_airr_good_rearrangement_keeps_exactly_the_valid_productive_rows(
    airr_sdist_data, tmp_path, h
):
    good = airr_sdist_data / "good_rearrangement.tsv"
    records = list(airr.read_rearrangement(str(good)))
    expected = [
        r
        for r in records
        if r["productive"] is True
        and r["junction_aa"]
        and re.fullmatch(r"[ACDEFGHIKLMNPQRSTVWY]{4,40}", r["junction_aa"])
    ]
    assert 0 < len(expected) < len(records)  # the file has rows to drop and rows to keep

    metadata = study_of(tmp_path / "data", good, {"donor_a": "1", "donor_b": "0"}, h)
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)

    assert report["rows_read"].tolist() == [len(records)] * 2
    assert report["rows_kept"].tolist() == [len(expected)] * 2
    n_nonproductive = sum(r["productive"] is False for r in records)
    assert report["non_productive"].tolist() == [n_nonproductive] * 2
    sums = report["rows_kept"] + report[list(DROP_REASONS)].sum(axis=1)
    assert (report["rows_read"] == sums).all()
    assert (report["junction_column"] == "junction_aa").all()

    reps = view.repertoires
    assert reps["repertoire_id"].tolist() == ["donor_a", "donor_b"]
    assert reps["y"].tolist() == [1, 0]
    total = sum(r["duplicate_count"] for r in expected)
    assert reps["total_count"].tolist() == [total, total]
    for seq in view.sequences:
        assert seq["junction_aa"].tolist() == [r["junction_aa"] for r in expected]
        assert seq["duplicate_count"].tolist() == [r["duplicate_count"] for r in expected]
        assert seq["sequence_id"].tolist() == [r["sequence_id"] for r in expected]
        assert seq["v_call"].astype(str).tolist() == [r["v_call"] for r in expected]
        assert seq["j_call"].astype(str).tolist() == [r["j_call"] for r in expected]
        # no locus column: the locus is read off the V gene name (IGHV... -> IGH)
        assert seq["locus"].astype(str).tolist() == [r["v_call"][:3] for r in expected]
    assert view.manifest["max_length"] == max(len(r["junction_aa"]) for r in expected)

    store = Store(out)
    assert store.labels.tolist() == [1, 0]
    assert store.sequences(1)["junction_aa"].tolist() == [r["junction_aa"] for r in expected]
    assert np.array_equal(store.tokens, view.tokens)


def test_airr_good_rearrangement_every_row_gets_its_documented_reason(airr_sdist_data, tmp_path, h):
    good = airr_sdist_data / "good_rearrangement.tsv"
    header, rows = read_tsv(good)
    rows = [dict(zip(header, r, strict=True)) for r in rows]
    metadata = study_of(tmp_path / "data", good, {"a": "positive", "b": "negative"}, h)
    for keep_nonproductive in (False, True):
        options = IngestOptions(keep_nonproductive=keep_nonproductive)
        report, out = h.run_ingest(metadata, options=options, overwrite=True)
        h.check_store(out)
        reasons = [expected_reason(r, keep_nonproductive=keep_nonproductive) for r in rows]
        for reason in DROP_REASONS:
            assert report[reason].tolist() == [reasons.count(reason)] * 2, reason
        assert report["rows_kept"].tolist() == [reasons.count(None)] * 2
    # with --keep-nonproductive the non-productive rows of this file go on to stop_codon
    assert report["stop_codon"].tolist()[0] > 0


def test_airr_good_rearrangement_collapse(airr_sdist_data, tmp_path, h):
    good = airr_sdist_data / "good_rearrangement.tsv"
    records = [
        r
        for r in airr.read_rearrangement(str(good))
        if r["productive"] and AA.fullmatch(r["junction_aa"])
    ]
    merged: dict[tuple[str, str, str], int] = {}
    for r in records:
        key = (r["junction_aa"], r["v_call"], r["j_call"])
        merged[key] = merged.get(key, 0) + r["duplicate_count"]
    assert len(merged) < len(records)

    metadata = study_of(tmp_path / "data", good, {"a": "CMV+", "b": "CMV-"}, h)
    report, out = h.run_ingest(metadata, options=IngestOptions(collapse=True))
    view = h.check_store(out)
    assert report["rows_kept"].tolist() == [len(merged)] * 2
    assert report["collapsed_duplicate"].tolist() == [len(records) - len(merged)] * 2
    for seq in view.sequences:
        got = {
            (a, str(v), str(j)): c
            for a, v, j, c in seq[["junction_aa", "v_call", "j_call", "duplicate_count"]].values
        }
        assert got == merged
        # first-seen order
        assert list(zip(seq["junction_aa"], seq["v_call"].astype(str), strict=True)) == [
            k[:2] for k in merged
        ]
    assert view.repertoires["total_count"].tolist() == [sum(merged.values())] * 2
    assert view.repertoires["y"].tolist() == [1, 0]


def test_airr_bad_rearrangement_names_file_line_and_column(airr_sdist_data, tmp_path, h):
    bad = airr_sdist_data / "bad_rearrangement.tsv"
    header, rows = read_tsv(bad)
    column = header.index("productive")
    first_bad = next(i for i, r in enumerate(rows) if r[column] and r[column] not in _TRUE | _FALSE)
    line, value = first_bad + 2, rows[first_bad][column]  # line 1 is the header

    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(airr_sdist_data / "good_rearrangement.tsv", root / "good.tsv")
    shutil.copy(bad, root / "bad.tsv")
    metadata = h.write_metadata(
        root / "metadata.tsv", [("g", "good.tsv", "0"), ("b", "bad.tsv", "1")]
    )
    with pytest.raises(InputError) as err:
        h.run_ingest(metadata)
    message = str(err.value)
    assert str(root / "bad.tsv") in message
    assert f"line {line}," in message
    assert "'productive'" in message
    assert repr(value) in message
    assert not (root / "store").exists()


def test_airr_extra_rearrangement_row_longer_than_header(airr_sdist_data, tmp_path, h):
    """extra_rearrangement.tsv: a header with `junction` twice, and a row with two fields more.

    deeprc reads neither `junction` nor the surplus fields, but a row that does not match the
    header cannot be trusted (its values may be shifted), so the file must be refused with the
    line and both field counts.
    """
    extra = airr_sdist_data / "extra_rearrangement.tsv"
    header, rows = read_tsv(extra)
    assert header.count("junction") == 2
    line = next(i for i, r in enumerate(rows) if len(r) != len(header)) + 2

    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(airr_sdist_data / "good_rearrangement.tsv", root / "good.tsv")
    shutil.copy(extra, root / "extra.tsv")
    metadata = h.write_metadata(
        root / "metadata.tsv", [("g", "good.tsv", "0"), ("x", "extra.tsv", "1")]
    )
    with pytest.raises(InputError) as err:
        h.run_ingest(metadata)
    message = str(err.value)
    assert str(root / "extra.tsv") in message
    assert f"line {line} has {len(rows[line - 2])} tab-separated field(s)" in message
    assert f"header has {len(header)}" in message


def test_airr_extra_rearrangement_header_duplicate_unused_column_is_tolerated(
    airr_sdist_data, tmp_path, h
):
    """The duplicated `junction` column on its own is not a role deeprc reads: the file loads."""
    header, _ = read_tsv(airr_sdist_data / "extra_rearrangement.tsv")
    values = {
        "sequence_id": "x1",
        "productive": "T",
        "v_call": "TRBV5-1*01",
        "j_call": "TRBJ2-7*01",
        "junction": "TGTGCC",
        "junction_aa": "CASSLAPGATNEKLFF",
    }
    lines = ["\t".join(header), "\t".join(values.get(c, "") for c in header)]
    metadata = h.make_study(
        tmp_path / "data",
        {"dup.tsv": "\n".join(lines) + "\n", "other.tsv": [h.rec("CASSPDRGYEQYF")]},
    )
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert report["rows_kept"].tolist() == [1, 1]
    assert view.sequences[0]["junction_aa"].tolist() == ["CASSLAPGATNEKLFF"]


def test_airr_extra_header_duplicate_junction_aa_is_refused(airr_sdist_data, tmp_path, h):
    header, _ = read_tsv(airr_sdist_data / "extra_rearrangement.tsv")
    header = [c if c != "junction" else "junction_aa" for c in header]
    assert header.count("junction_aa") == 3
    row = ["1", "", "", "T", "TRBV1", "", "TRBJ1"] + ["CASSF"] * (len(header) - 7)
    text = "\t".join(header) + "\n" + "\t".join(row) + "\n"
    metadata = h.make_study(tmp_path / "data", {"a.tsv": text, "b.tsv": [h.rec()]})
    with pytest.raises(InputError, match="'junction_aa' appears more than once") as err:
        h.run_ingest(metadata)
    assert str(tmp_path / "data" / "a.tsv") in str(err.value)


# ----------------------------------------------------------------------------- immunarch


@pytest.fixture(scope="module")
def expected_immdata(immdata: pd.DataFrame) -> pd.DataFrame:
    """Per sample: rows, rows kept (valid CDR3.aa, in frame, no stop) and their summed Clones."""
    aa, nt = immdata["CDR3.aa"], immdata["CDR3.nt"]
    productive = ~(
        aa.str.contains("*", regex=False)
        | aa.str.contains("~", regex=False)
        | (nt.str.len() % 3 != 0)
    )
    valid = aa.str.fullmatch(r"[ACDEFGHIKLMNPQRSTVWY]{4,40}")
    kept = immdata[productive & valid]
    unique = kept.drop_duplicates(["Sample", "CDR3.aa", "V.name", "J.name"])
    return pd.DataFrame(
        {
            "rows": immdata.groupby("Sample").size(),
            "nonproductive": (~productive).groupby(immdata["Sample"]).sum(),
            "kept": kept.groupby("Sample").size(),
            "clones": kept.groupby("Sample")["Clones"].sum(),
            "unique": unique.groupby("Sample").size(),
        }
    )


def test_immunarch_files_are_valid_airr(immunarch_airr, h):
    """The fixture itself: every file passes airr's own validation with the required fields."""
    files = sorted(immunarch_airr.directory.glob("*.tsv.gz"))
    assert len(files) == 12
    reader = airr.read_rearrangement(str(files[0]), validate=True)
    assert set(h.airr_required) <= set(reader.fields)
    n = sum(1 for _ in reader)
    assert n > 0
    meta = pd.read_csv(immunarch_airr.metadata, sep="\t", dtype=str)
    assert list(meta.columns[:3]) == ["repertoire_id", "file", "status"]
    assert sorted(set(meta["status"])) == ["C", "MS"]


def test_immunarch_ingest_matches_an_independent_count(
    immunarch_airr, immdata, expected_immdata, tmp_path, h
):
    report, out = h.run_ingest(
        immunarch_airr.metadata, tmp_path / "store", label_column="status", positive_label="MS"
    )
    view = h.check_store(out)
    exp = expected_immdata.loc[report["repertoire_id"]]
    assert len(report) == 12
    assert report["rows_read"].tolist() == exp["rows"].tolist()
    assert report["rows_kept"].tolist() == exp["kept"].tolist()
    assert report["non_productive"].tolist() == exp["nonproductive"].tolist()
    assert int(report["rows_read"].sum()) == len(immdata) == 76_820
    for reason in set(DROP_REASONS) - {"non_productive"}:
        assert report[reason].sum() == 0, reason
    assert view.repertoires["total_count"].tolist() == exp["clones"].tolist()

    status = pd.read_csv(immunarch_airr.metadata, sep="\t", dtype=str).set_index("repertoire_id")
    reps = view.repertoires
    assert reps["label"].tolist() == status.loc[reps["repertoire_id"], "status"].tolist()
    assert reps["y"].tolist() == (reps["label"] == "MS").astype(int).tolist()
    assert view.manifest["positive_label"] == "MS"
    assert view.manifest["classes"] == ["C", "MS"]
    assert view.manifest["label_column"] == "status"

    # the kept rows are the sample's valid rows, in file order, with their Clones
    first = reps["repertoire_id"][0]
    rows = immdata[immdata["Sample"] == first]
    keep = rows["CDR3.aa"].str.fullmatch(r"[ACDEFGHIKLMNPQRSTVWY]+") & (
        rows["CDR3.nt"].str.len() % 3 == 0
    )
    assert view.sequences[0]["junction_aa"].tolist() == rows.loc[keep, "CDR3.aa"].tolist()
    assert view.sequences[0]["duplicate_count"].tolist() == rows.loc[keep, "Clones"].tolist()
    assert view.sequences[0]["v_call"].astype(str).tolist() == rows.loc[keep, "V.name"].tolist()
    assert set(view.sequences[0]["locus"].astype(str)) == {"TRB"}


def test_immunarch_labels_need_positive_label(immunarch_airr, tmp_path, h):
    with pytest.raises(InputError) as err:
        h.run_ingest(immunarch_airr.metadata, tmp_path / "store", label_column="status")
    assert "--positive-label" in str(err.value)
    assert "'C'" in str(err.value) and "'MS'" in str(err.value)
    with pytest.raises(InputError, match="not one of the labels"):
        h.run_ingest(
            immunarch_airr.metadata,
            tmp_path / "store",
            label_column="status",
            positive_label="ms",
        )
    assert not (tmp_path / "store").exists()


def test_immunarch_collapse_reduces_rows_and_keeps_counts(
    immunarch_airr, immdata, expected_immdata, tmp_path, h
):
    report, out = h.run_ingest(
        immunarch_airr.metadata,
        tmp_path / "store",
        label_column="status",
        positive_label="MS",
        options=IngestOptions(collapse=True),
    )
    view = h.check_store(out)
    exp = expected_immdata.loc[report["repertoire_id"]]
    assert (exp["unique"] < exp["kept"]).any()  # the data has (aa, V, J) duplicates
    assert report["rows_kept"].tolist() == exp["unique"].tolist()
    assert report["collapsed_duplicate"].tolist() == (exp["kept"] - exp["unique"]).tolist()
    assert view.repertoires["total_count"].tolist() == exp["clones"].tolist()

    productive = h.productive_flag(immdata["CDR3.aa"], immdata["CDR3.nt"]) == "T"
    kept = immdata[productive & immdata["CDR3.aa"].str.fullmatch(r"[ACDEFGHIKLMNPQRSTVWY]+")]
    for rep_id, seq in zip(view.repertoires["repertoire_id"], view.sequences, strict=True):
        want = kept[kept["Sample"] == rep_id].groupby(["CDR3.aa", "V.name", "J.name"])["Clones"]
        got = seq.assign(v=seq["v_call"].astype(str), j=seq["j_call"].astype(str))
        got = got.set_index(["junction_aa", "v", "j"])["duplicate_count"]
        assert got.index.is_unique
        assert got.sort_index().to_dict() == want.sum().sort_index().to_dict()


def test_immunarch_two_workers_give_the_same_store(immunarch_airr, tmp_path, h):
    kwargs = dict(label_column="status", positive_label="MS")
    _, serial = h.run_ingest(immunarch_airr.metadata, tmp_path / "serial", threads=1, **kwargs)
    _, parallel = h.run_ingest(immunarch_airr.metadata, tmp_path / "parallel", threads=2, **kwargs)
    a, b = h.check_store(serial), h.check_store(parallel)
    pd.testing.assert_frame_equal(a.repertoires, b.repertoires)
    pd.testing.assert_frame_equal(a.report, b.report)
    for name in ("tokens", "lengths", "counts", "offsets"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for x, y in zip(a.sequences, b.sequences, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert a.manifest["fingerprint"] == b.manifest["fingerprint"]


def test_immunarch_through_the_cli(immunarch_airr, tmp_path, capsys):
    out = tmp_path / "store"
    argv = [
        "ingest",
        "--metadata", str(immunarch_airr.metadata),
        "--label-column", "status",
        "--positive-label", "MS",
        "--out", str(out),
        "--threads", "1",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "12 repertoires" in printed
    assert re.search(r"rows read\s+76,820\b", printed), printed
    report = pd.read_csv(out / "ingest_report.tsv", sep="\t")
    assert f"{int(report['rows_kept'].sum()):,}" in printed
    assert f"{int(report['non_productive'].sum()):,}" in printed

    # a second run without --overwrite is refused, with --overwrite it succeeds
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--collapse"]) == 0
    assert "collapsed_duplicate" in capsys.readouterr().out


def test_cli_reports_input_errors_with_exit_status_2(airr_sdist_data, tmp_path, h, capsys):
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(airr_sdist_data / "good_rearrangement.tsv", root / "good.tsv")
    shutil.copy(airr_sdist_data / "bad_rearrangement.tsv", root / "bad.tsv")
    metadata = h.write_metadata(
        root / "metadata.csv",
        [("g", "good.tsv", "healthy"), ("b", "bad.tsv", "disease")],
        sep=",",
    )
    argv = ["ingest", "--metadata", str(metadata), "--label-column", "label"]
    argv += ["--out", str(tmp_path / "store"), "--threads", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("deeprc ingest: error: ")
    assert str(root / "bad.tsv") in err and "line 2," in err and "'productive'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "store").exists()
