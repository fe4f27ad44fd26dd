"""Bad inputs give an InputError naming the file/line/column, and never a half or damaged store;
plus the accepted variants of valid input (labels, case, columns, compression, filters)."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.ingest import DROP_REASONS, IngestOptions


def rows_text(h, n: int = 40, **overrides) -> str:
    """n valid rows (distinct junctions), as text; line k + 2 holds row k."""
    rows = [
        h.rec(
            "CASS" + "".join("ACDEFGHIKLMNPQRSTVWY"[(i * 7 + k) % 20] for k in range(6)) + "F",
            sequence_id=f"s{i}",
            duplicate_count=i + 1,
        )
        for i in range(n)
    ]
    return h.airr_text(rows)


def set_field(text: str, line: int, column: str, value: str) -> str:
    """The text with one field replaced (line numbers count the header as line 1)."""
    lines = text.split("\n")
    header = lines[0].split("\t")
    fields = lines[line - 1].split("\t")
    fields[header.index(column)] = value
    lines[line - 1] = "\t".join(fields)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- metadata


def test_missing_metadata_file(tmp_path, assert_fails):
    missing = tmp_path / "nowhere" / "metadata.tsv"
    assert_fails(missing, str(missing), "does not exist")


def test_metadata_without_the_label_column(tmp_path, h, assert_fails):
    metadata = h.make_study(tmp_path / "data")
    assert_fails(metadata, str(metadata), "'diagnosis'", "--label-column", label_column="diagnosis")


def test_metadata_row_without_label(tmp_path, h, assert_fails):
    metadata = h.make_study(tmp_path / "data", labels=["0", ""])
    message = assert_fails(metadata, str(metadata), "'label'")
    assert "[3]" in message  # the second repertoire is on line 3


def test_missing_data_file(tmp_path, h, assert_fails):
    files = h.default_files(3)
    metadata = h.make_study(tmp_path / "data", files, labels=["0", "1", "0"])
    (tmp_path / "data" / "rep1.tsv").unlink()  # listed on line 3
    message = assert_fails(metadata, str(metadata), "rep1.tsv", "--missing-files skip")
    assert re.search(r"\b3\b\D*rep1\.tsv", message), message


def test_missing_data_file_skip(tmp_path, h):
    files = h.default_files(3)
    metadata = h.make_study(tmp_path / "data", files, labels=["0", "0", "1"])
    (tmp_path / "data" / "rep0.tsv").unlink()
    logged: list[str] = []
    report, out = h.run_ingest(
        metadata, options=IngestOptions(missing_files="skip"), log=logged.append
    )
    view = h.check_store(out)
    assert report["repertoire_id"].tolist() == ["rep1", "rep2"]
    assert view.repertoires["repertoire_index"].tolist() == [0, 1]
    assert any("rep0.tsv" in m for m in logged), logged


def test_missing_files_skip_leaving_one_class(tmp_path, h, assert_fails):
    metadata = h.make_study(tmp_path / "data", h.default_files(3), labels=["0", "1", "0"])
    (tmp_path / "data" / "rep1.tsv").unlink()
    assert_fails(metadata, "'0'", "both classes", options=IngestOptions(missing_files="skip"))


def test_missing_files_skip_with_every_file_missing(tmp_path, h, assert_fails):
    """Nothing left to ingest must be an InputError, not a crash."""
    metadata = h.make_study(tmp_path / "data")
    for name in ("rep0.tsv", "rep1.tsv"):
        (tmp_path / "data" / name).unlink()
    assert_fails(metadata, str(metadata), options=IngestOptions(missing_files="skip"))


def test_unlisted_file_in_data_dir(tmp_path, h, assert_fails):
    metadata = h.make_study(tmp_path / "data")
    h.write_airr(tmp_path / "data" / "stray.tsv.gz", [h.rec()])
    (tmp_path / "data" / "README.md").write_text("not a rearrangement file\n")
    message = assert_fails(metadata, "stray.tsv.gz", "--unlisted-files ignore", str(metadata))
    assert "README.md" not in message


def test_unlisted_file_ignore(tmp_path, h):
    metadata = h.make_study(tmp_path / "data")
    h.write_airr(tmp_path / "data" / "stray.tsv", [h.rec()])
    report, out = h.run_ingest(metadata, options=IngestOptions(unlisted_files="ignore"))
    h.check_store(out)
    assert report["repertoire_id"].tolist() == ["rep0", "rep1"]
    assert "stray.tsv" not in report["source_file"].tolist()


def test_separate_data_dir(tmp_path, h):
    metadata = h.make_study(tmp_path / "data")
    (tmp_path / "meta").mkdir()
    moved = shutil.move(metadata, tmp_path / "meta" / "metadata.tsv")
    report, out = h.run_ingest(moved, tmp_path / "store", data_dir=tmp_path / "data")
    h.check_store(out)
    assert report["rows_kept"].tolist() == [3, 3]


def test_duplicate_repertoire_ids(tmp_path, h, assert_fails):
    root = tmp_path / "data"
    metadata = h.make_study(root, h.default_files(4), labels=["0", "1", "0", "1"])
    h.write_metadata(
        metadata,
        [
            ("a", "rep0.tsv", "0"),
            ("dup", "rep1.tsv", "1"),
            ("b", "rep2.tsv", "0"),
            ("dup", "rep3.tsv", "1"),
        ],
    )
    assert_fails(metadata, str(metadata), "unique", "'dup'", "[3, 5]")


def test_only_one_class(tmp_path, h, assert_fails):
    metadata = h.make_study(tmp_path / "data", labels=["1", "1"])
    assert_fails(metadata, str(metadata), "'1'", "both classes")


def test_three_classes(tmp_path, h, assert_fails):
    metadata = h.make_study(tmp_path / "data", h.default_files(3), labels=["a", "b", "c"])
    assert_fails(metadata, str(metadata), "3 labels", "two")


@pytest.mark.parametrize("labels", [("sick", "well"), ("C", "MS"), ("1", "2")])
def test_labels_that_cannot_be_told_apart(tmp_path, h, assert_fails, labels):
    metadata = h.make_study(tmp_path / "data", labels=labels)
    message = assert_fails(metadata, str(metadata), "--positive-label")
    assert all(repr(label) in message for label in labels)


def test_positive_label_not_a_label(tmp_path, h, assert_fails):
    metadata = h.make_study(tmp_path / "data", labels=["sick", "well"])
    assert_fails(metadata, "'ill'", "--positive-label", positive_label="ill")


@pytest.mark.parametrize(
    ("labels", "positive"),
    [
        (("0", "1"), "1"),
        (("1", "0"), "1"),
        (("CMV+", "CMV-"), "CMV+"),
        (("CMV-", "CMV+"), "CMV+"),
        (("positive", "negative"), "positive"),
        (("Negative", "Positive"), "Positive"),
        (("healthy", "disease"), "disease"),
    ],
)
def test_positive_label_derived(tmp_path, h, labels, positive):
    metadata = h.make_study(tmp_path / "data", labels=labels)
    _, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert view.manifest["positive_label"] == positive
    assert view.repertoires["label"].tolist() == list(labels)
    assert view.repertoires["y"].tolist() == [int(label == positive) for label in labels]


def test_positive_label_stated(tmp_path, h):
    metadata = h.make_study(tmp_path / "data", labels=["C", "MS"])
    _, out = h.run_ingest(metadata, positive_label="C")
    assert h.check_store(out).repertoires["y"].tolist() == [1, 0]


# ----------------------------------------------------------------------------- file structure


@pytest.mark.parametrize("junction", ["cdr3", "junction"])  # near misses do not count
def test_no_junction_column(tmp_path, h, assert_fails, junction):
    rows = [h.rec(None, **{junction: "CASSLGQETQYF"})]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    assert_fails(metadata, str(tmp_path / "data" / "a.tsv"), "junction_aa", "cdr3_aa")


@pytest.mark.parametrize("column", ["v_call", "j_call"])
def test_no_gene_column(tmp_path, h, assert_fails, column):
    rows = [h.rec(**{column: None})]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv.gz": rows})
    assert_fails(metadata, str(tmp_path / "data" / "b.tsv.gz"), f"'{column}'", "missing")


def test_empty_file(tmp_path, h, assert_fails):
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": ""})
    assert_fails(metadata, str(tmp_path / "data" / "b.tsv"), "empty")


@pytest.mark.parametrize("collapse", [False, True])
def test_repertoire_empty_after_filtering(tmp_path, h, assert_fails, collapse):
    rows = [h.rec(productive="F"), h.rec("CASS*LGF"), h.rec("CAS")]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": rows})
    message = assert_fails(
        metadata, "'b'", "b.tsv", "no rows left", options=IngestOptions(collapse=collapse)
    )
    for reason in ("'non_productive': 1", "'stop_codon': 1", "'too_short': 1"):
        assert reason in message


def test_header_only_file(tmp_path, h, assert_fails):
    header_only = h.airr_text([], columns=["sequence_id", "v_call", "j_call", "junction_aa"])
    assert header_only.count("\n") == 1
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": header_only})
    assert_fails(metadata, "'b'", "b.tsv", "no rows left", "read 0")


@pytest.mark.parametrize("cut", ["half", "trailer", "header"])
def test_truncated_gzip(tmp_path, h, assert_fails, cut):
    data = gzip.compress(rows_text(h, 400).encode())
    stop = {"half": len(data) // 2, "trailer": len(data) - 4, "header": 30}[cut]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv.gz": [h.rec()]})
    (tmp_path / "data" / "b.tsv.gz").write_bytes(data[:stop])  # a real gzip, cut short
    assert_fails(metadata, str(tmp_path / "data" / "b.tsv.gz"), "truncated or corrupt")


@pytest.mark.parametrize("name", ["b.tsv", "b.tsv.gz"])
def test_non_utf8_byte_in_junction_names_the_line(tmp_path, h, assert_fails, name):
    lines = rows_text(h, 10).encode().split(b"\n")
    header = lines[0].split(b"\t")
    fields = lines[4].split(b"\t")  # line 5
    column = header.index(b"junction_aa")
    fields[column] = fields[column][:3] + b"\xff" + fields[column][3:]
    lines[4] = b"\t".join(fields)
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], name: b"\n".join(lines)})
    assert_fails(metadata, str(tmp_path / "data" / name), "line 5 ", "0xff", "UTF-8")


def test_row_with_too_few_fields(tmp_path, h, assert_fails):
    lines = rows_text(h, 10).split("\n")
    n_fields = len(lines[0].split("\t"))
    lines[3] = "\t".join(lines[3].split("\t")[:3])  # line 4
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": "\n".join(lines)})
    assert_fails(
        metadata,
        str(tmp_path / "data" / "b.tsv"),
        "line 4 has 3 tab-separated field(s)",
        f"header has {n_fields}",
    )


@pytest.mark.parametrize("value", ["1.5", "abc", "12x"])
def test_non_integer_duplicate_count(tmp_path, h, assert_fails, value):
    text = set_field(rows_text(h, 10), 3, "duplicate_count", value)
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": text})
    assert_fails(
        metadata, str(tmp_path / "data" / "b.tsv"), "line 3,", "'duplicate_count'", repr(value)
    )


def test_bad_productive_value(tmp_path, h, assert_fails):
    text = set_field(rows_text(h, 10), 7, "productive", "maybe")
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": text})
    assert_fails(metadata, str(tmp_path / "data" / "b.tsv"), "line 7,", "'productive'", "'maybe'")


def big_file_text(h, n_rows: int) -> str:
    """Rows with a long (unused) sequence column, so the file spans several read blocks."""
    rows = []
    for i in range(n_rows):
        junction = "CASS" + "ACDEFGHIKLMNPQRSTVWY"[i % 20] + "GQETQYF"  # 20 distinct junctions
        row = h.rec(junction, sequence_id=f"s{i}", duplicate_count=1 + i % 3)
        row["sequence"] = "ACGT" * 250
        rows.append(row)
    return h.airr_text(rows)


def test_bad_value_far_into_a_big_file_names_the_right_line(tmp_path, h, assert_fails):
    n = 6000
    text = set_field(big_file_text(h, n), n, "productive", "yes")  # near the end
    assert len(text) > 5 * 2**20  # past the reader's first block (4 MiB)
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv": text})
    assert_fails(metadata, str(tmp_path / "data" / "b.tsv"), f"line {n},", "'productive'")


def test_big_file_counts_and_collapse_across_blocks(tmp_path, h):
    n = 6000
    text = big_file_text(h, n)
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv.gz": text})
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert report["rows_read"].tolist() == [1, n]
    assert report["rows_kept"].tolist() == [1, n]
    total = sum(1 + i % 3 for i in range(n))
    assert view.repertoires["total_count"].tolist() == [1, total]

    digest = hashlib.sha256((tmp_path / "data" / "b.tsv.gz").read_bytes()).hexdigest()
    assert view.repertoires["sha256"][1] == digest

    report, out = h.run_ingest(metadata, options=IngestOptions(collapse=True), overwrite=True)
    view = h.check_store(out)
    assert report["rows_kept"].tolist() == [1, 20]
    assert report["collapsed_duplicate"].tolist() == [0, n - 20]
    assert view.repertoires["total_count"].tolist() == [1, total]


def test_existing_store_without_overwrite(tmp_path, h, existing_store):
    out = tmp_path / "store"
    shutil.copytree(existing_store, out)
    before = h.snapshot(out)
    metadata = h.make_study(tmp_path / "data")
    with pytest.raises(InputError, match="--overwrite") as err:
        h.run_ingest(metadata, out)
    assert str(out) in str(err.value)
    assert h.snapshot(out) == before


def test_overwrite_replaces_a_store(tmp_path, h, existing_store):
    out = tmp_path / "store"
    shutil.copytree(existing_store, out)
    metadata = h.make_study(tmp_path / "data", h.default_files(4), labels=["0", "1", "0", "1"])
    h.run_ingest(metadata, out, overwrite=True)
    assert h.check_store(out).manifest["n_repertoires"] == 4
    assert h.leftovers(tmp_path, "store") == []


@pytest.mark.parametrize(("low", "high"), [(0, 40), (10, 9), (4, 256)])
def test_invalid_length_bounds(low, high):
    with pytest.raises(InputError, match="min_length"):
        IngestOptions(min_length=low, max_length=high)


def test_cli_error_exit_status(tmp_path, h, capsys):
    metadata = h.make_study(tmp_path / "data", labels=["1", "1"])
    argv = ["ingest", "--metadata", str(metadata), "--label-column", "label"]
    argv += ["--out", str(tmp_path / "store"), "--threads", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "deeprc ingest: error:" in err and str(metadata) in err and "both classes" in err
    assert main([*argv[:-2], "--threads", "1", "--min-length", "0"]) == 2
    assert "min_length" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


# ----------------------------------------------------------------------------- accepted input


def test_lowercase_upper(tmp_path, h):
    rows = [h.rec("cassLGQETQYF"), h.rec("casspdrgyeqyf"), h.rec("CASSPDRGYEQYF")]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    report, out = h.run_ingest(metadata, options=IngestOptions(lowercase="upper"))
    view = h.check_store(out)
    assert report["rows_kept"].tolist() == [3, 1]
    assert report["n_uppercased"].tolist() == [2, 0]
    assert report["invalid_character"].tolist() == [0, 0]
    assert view.sequences[0]["junction_aa"].tolist() == [
        "CASSLGQETQYF",
        "CASSPDRGYEQYF",
        "CASSPDRGYEQYF",
    ]


def test_lowercase_reject(tmp_path, h):
    rows = [h.rec("cassLGQETQYF"), h.rec("casspdrgyeqyf"), h.rec("CASSPDRGYEQYF")]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    report, out = h.run_ingest(metadata, options=IngestOptions(lowercase="reject"))
    view = h.check_store(out)
    assert report["rows_kept"].tolist() == [1, 1]
    assert report["invalid_character"].tolist() == [2, 0]
    assert report["n_uppercased"].tolist() == [0, 0]
    assert view.sequences[0]["junction_aa"].tolist() == ["CASSPDRGYEQYF"]


def test_cli_lowercase_flag(tmp_path, h, capsys):
    rows = [h.rec("cassLGQETQYF"), h.rec("CASSPDRGYEQYF")]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    argv = ["ingest", "--metadata", str(metadata), "--label-column", "label", "--threads", "1"]
    assert main([*argv, "--out", str(tmp_path / "s1"), "--lowercase", "reject"]) == 0
    assert re.search(r"dropped invalid_character\s+1\b", capsys.readouterr().out)
    assert main([*argv, "--out", str(tmp_path / "s2")]) == 0
    report = pd.read_csv(tmp_path / "s2" / "ingest_report.tsv", sep="\t")
    assert report["n_uppercased"].tolist() == [1, 0]


def test_cdr3_aa_fallback(tmp_path, h):
    rows = [h.rec(None, cdr3_aa="ASSLGQETQY"), h.rec(None, cdr3_aa="ASS*GQETQY")]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert report["junction_column"].tolist() == ["cdr3_aa", "junction_aa"]
    assert report["rows_kept"].tolist() == [1, 1]
    assert report["stop_codon"].tolist() == [1, 0]
    assert view.sequences[0]["junction_aa"].tolist() == ["ASSLGQETQY"]


def test_without_duplicate_count_every_count_is_one(tmp_path, h):
    rows = [h.rec(j, duplicate_count=None) for j in ("CASSLGQETQYF", "CASSPDRGYEQYF", "CASSF")]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec(duplicate_count=7)]})
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert view.sequences[0]["duplicate_count"].tolist() == [1, 1, 1]
    assert view.repertoires["total_count"].tolist() == [3, 7]


def test_empty_zero_and_negative_counts(tmp_path, h):
    rows = [h.rec(duplicate_count=""), h.rec(duplicate_count=0), h.rec(duplicate_count=-2)]
    rows.append(h.rec(duplicate_count=5))
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert report["zero_count"].tolist() == [2, 0]
    assert view.sequences[0]["duplicate_count"].tolist() == [1, 5]  # empty means 1


def test_plain_and_gzipped_files_give_the_same_store(tmp_path, h):
    text = rows_text(h, 50)
    plain = h.make_study(tmp_path / "plain", {"a.tsv": text, "b.tsv": [h.rec()]})
    gz = h.make_study(tmp_path / "gz", {"a.tsv.gz": text, "b.tsv": [h.rec()]})
    # gzip is recognised by its content, not by its name
    disguised = h.make_study(tmp_path / "disguised", {"a.tsv": text, "b.tsv": [h.rec()]})
    (tmp_path / "disguised" / "a.tsv").write_bytes(gzip.compress(text.encode()))
    views = []
    for metadata in (plain, gz, disguised):
        report, out = h.run_ingest(metadata)
        assert report["rows_kept"].tolist() == [50, 1]
        views.append(h.check_store(out))
    for view in views[1:]:
        assert np.array_equal(view.tokens, views[0].tokens)
        assert np.array_equal(view.counts, views[0].counts)
        pd.testing.assert_frame_equal(view.sequences[0], views[0].sequences[0])
        pd.testing.assert_frame_equal(
            view.report.drop(columns="source_file"), views[0].report.drop(columns="source_file")
        )


def test_multi_member_gzip(tmp_path, h):
    """bgzip and `cat a.gz b.gz` write several gzip members; they read as one text."""
    text = rows_text(h, 60).encode()
    cut = len(text) // 2 + 7  # mid-line: members need not end at a line end
    members = gzip.compress(text[:cut]) + gzip.compress(text[cut:])
    metadata = h.make_study(tmp_path / "data", {"a.tsv": text, "b.tsv.gz": [h.rec()]})
    (tmp_path / "data" / "b.tsv.gz").write_bytes(members)
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert report["rows_read"].tolist() == [60, 60]
    pd.testing.assert_frame_equal(
        view.sequences[0].drop(columns="repertoire_index"),
        view.sequences[1].drop(columns="repertoire_index"),
    )


def member_cut(text: bytes, size: int) -> int:
    """Where to end the first gzip member (stored, compresslevel=0) so that it is `size` bytes."""

    def compressed(cut: int) -> int:
        return len(gzip.compress(text[:cut], compresslevel=0, mtime=0))

    lo, hi = 0, len(text)
    while lo < hi:  # the smallest cut whose member is at least `size` bytes
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if compressed(mid) < size else (lo, mid)
    assert compressed(lo) == size, "no cut gives a member of exactly that size"
    return lo


@pytest.mark.parametrize("first_member", [2**20 - 2, 2**20 - 1, 2**20, 2**20 + 1])
def test_multi_member_gzip_boundary_at_any_offset(tmp_path, h, first_member):
    """bgzip members end at arbitrary offsets, also right around a 1 MiB read boundary."""
    text = big_file_text(h, 3000).encode()
    cut = member_cut(text, first_member)
    data = gzip.compress(text[:cut], compresslevel=0, mtime=0) + gzip.compress(text[cut:])
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv.gz": [h.rec()]})
    (tmp_path / "data" / "b.tsv.gz").write_bytes(data)
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert report["rows_read"].tolist() == [1, 3000]
    assert view.sequences[1]["sequence_id"].tolist() == [f"s{i}" for i in range(3000)]


def test_bytes_after_the_gzip_stream(tmp_path, h, assert_fails):
    data = gzip.compress(rows_text(h, 20).encode()) + b"this is not gzip\n"
    metadata = h.make_study(tmp_path / "data", {"a.tsv": [h.rec()], "b.tsv.gz": [h.rec()]})
    (tmp_path / "data" / "b.tsv.gz").write_bytes(data)
    assert_fails(metadata, str(tmp_path / "data" / "b.tsv.gz"), "corrupt")


def test_sha256_is_the_hash_of_each_source_file(tmp_path, h):
    text = rows_text(h, 30).encode()
    files = {"a.tsv": text, "b.tsv.gz": text, "c.tsv": [h.rec()], "d.tsv.gz": [h.rec("CASSF")]}
    metadata = h.make_study(tmp_path / "data", files)
    _, out = h.run_ingest(metadata)
    reps = h.check_store(out).repertoires
    for name, digest in zip(reps["source_file"], reps["sha256"], strict=True):
        assert digest == hashlib.sha256((tmp_path / "data" / name).read_bytes()).hexdigest()


def test_utf8_byte_order_mark_at_the_start_of_a_file(tmp_path, h):
    """Windows tools write a BOM before the header; it is not part of the first column's name."""
    text = rows_text(h, 5)
    assert text.startswith("sequence_id\t")
    metadata = h.make_study(
        tmp_path / "data", {"a.tsv": b"\xef\xbb\xbf" + text.encode(), "b.tsv": text}
    )
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert report["rows_kept"].tolist() == [5, 5]
    assert view.sequences[0]["sequence_id"].tolist() == [f"s{i}" for i in range(5)]


def test_windows_line_endings(tmp_path, h):
    text = rows_text(h, 20)
    metadata = h.make_study(tmp_path / "data", {"a.tsv": text.replace("\n", "\r\n"), "b.tsv": text})
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert report["rows_kept"].tolist() == [20, 20]
    pd.testing.assert_frame_equal(
        view.sequences[0].drop(columns="repertoire_index"),
        view.sequences[1].drop(columns="repertoire_index"),
    )


def test_locus_filter_on_a_mixed_locus_file(tmp_path, h):
    rows = [
        h.rec("CASSLGQETQYF", locus="TRB", v_call="TRBV5-1*01"),
        h.rec("CAVRDSNYQLIW", locus="TRA", v_call="TRAV12-2*01", j_call="TRAJ33*01"),
        h.rec("CARDYW", locus="IGH", v_call="IGHV3-23*01", j_call="IGHJ4*02"),
        h.rec("CASSPDRGYEQYF", locus="", v_call="TRBV7-9*01"),  # inferred TRB
        h.rec("CAVSDLEPNSSASKIIF", locus="", v_call="TRAV8-4*01"),  # inferred TRA
        h.rec("CASSQETQYF", locus="TRB", v_call="TRBV4-1*01"),
    ]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    report, out = h.run_ingest(metadata, options=IngestOptions(loci=("TRB",)))
    view = h.check_store(out)
    assert report["other_locus"].tolist() == [3, 0]
    assert report["rows_kept"].tolist() == [3, 1]
    seq = view.sequences[0]
    assert seq["junction_aa"].tolist() == ["CASSLGQETQYF", "CASSPDRGYEQYF", "CASSQETQYF"]
    assert seq["locus"].astype(str).tolist() == ["TRB"] * 3

    report, out = h.run_ingest(metadata, options=IngestOptions(loci=("TRA", "TRB")), overwrite=True)
    assert report["other_locus"].tolist() == [1, 0]
    assert report["rows_kept"].tolist() == [5, 1]
    assert h.check_store(out).manifest["options"]["loci"] == ["TRA", "TRB"]

    report, out = h.run_ingest(metadata, overwrite=True)  # no filter: every locus is kept
    assert report["rows_kept"].tolist() == [6, 1]


def test_cli_repeated_locus(tmp_path, h, capsys):
    rows = [h.rec(locus="TRB"), h.rec("CAVRDSNYQLIW", locus="TRA"), h.rec("CARDYW", locus="IGH")]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    argv = ["ingest", "--metadata", str(metadata), "--label-column", "label", "--threads", "1"]
    assert main([*argv, "--out", str(tmp_path / "s"), "--locus", "TRA", "--locus", "TRB"]) == 0
    assert re.search(r"dropped other_locus\s+1\b", capsys.readouterr().out)


def test_length_bounds(tmp_path, h):
    junctions = ["CASF", "CASSF", "CASSLF", "CASSLGF", "CASSLGQF"]  # lengths 4..8
    metadata = h.make_study(
        tmp_path / "data", {"a.tsv": [h.rec(j) for j in junctions], "b.tsv": [h.rec("CASSLF")]}
    )
    report, out = h.run_ingest(metadata, options=IngestOptions(min_length=5, max_length=7))
    view = h.check_store(out)
    assert report["too_short"].tolist() == [1, 0]
    assert report["too_long"].tolist() == [1, 0]
    assert view.sequences[0]["junction_aa"].tolist() == ["CASSF", "CASSLF", "CASSLGF"]
    assert view.manifest["max_length"] == 7 and view.tokens.shape[1] == 7

    report, _ = h.run_ingest(metadata, options=IngestOptions(), overwrite=True)
    assert report["rows_kept"].tolist() == [5, 1]  # defaults 4..40, both ends inclusive


def test_longest_allowed_junction(tmp_path, h):
    long = "C" + "ACDEFGHIKLMNPQRSTVWY" * 12 + "GQETQYF"[:6] + "F"  # 248 residues
    long = long + "W" * (255 - len(long))
    metadata = h.make_study(
        tmp_path / "data", {"a.tsv": [h.rec(long), h.rec(long + "F")], "b.tsv": [h.rec()]}
    )
    report, out = h.run_ingest(metadata, options=IngestOptions(max_length=255))
    view = h.check_store(out)
    assert report["too_long"].tolist() == [1, 0]
    assert view.sequences[0]["junction_aa"].tolist() == [long]
    assert view.lengths.tolist()[0] == 255


def test_every_drop_reason_in_one_file(tmp_path, h):
    rows = [
        h.rec("CASSLGQETQYF"),  # kept
        h.rec(locus="TRA", v_call="TRAV1*01"),  # other_locus
        h.rec(productive="F"),  # non_productive
        h.rec(""),  # missing_junction
        h.rec("CASS*GQF"),  # stop_codon
        h.rec("CASSXGQF"),  # invalid_character
        h.rec("CAS"),  # too_short
        h.rec("C" + "A" * 40),  # too_long
        h.rec(duplicate_count=0),  # zero_count
        h.rec("CASSLGQETQYF", sequence_id="again"),  # collapsed_duplicate
        h.rec(productive=""),  # productive unknown: kept
        {"sequence_id": ""},  # empty_row: every field empty
    ]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    options = IngestOptions(loci=("TRB",), collapse=True)
    report, out = h.run_ingest(metadata, options=options)
    h.check_store(out)
    first = report.iloc[0]
    assert first["rows_read"] == len(rows)
    assert {r: int(first[r]) for r in DROP_REASONS} == dict.fromkeys(DROP_REASONS, 1) | {
        "collapsed_duplicate": 2
    }
    assert first["rows_kept"] == 1
    assert h.check_store(out).sequences[0]["duplicate_count"].tolist() == [3]


def test_missing_values_in_required_columns_are_allowed(tmp_path, h):
    rows = [h.rec(v_call="", j_call="", locus=""), h.rec("CASSPDRGYEQYF")]
    metadata = h.make_study(tmp_path / "data", {"a.tsv": rows, "b.tsv": [h.rec()]})
    report, out = h.run_ingest(metadata)
    view = h.check_store(out)
    assert report["rows_kept"].tolist() == [2, 1]
    calls = view.sequences[0][["v_call", "j_call", "locus"]].astype(str).values.tolist()
    assert calls == [["", "", ""], ["TRBV5-1*01", "TRBJ2-5*01", "TRB"]]  # empty is a value


def test_store_paths_are_clean_after_success(tmp_path, h):
    metadata = h.make_study(tmp_path / "data")
    _, out = h.run_ingest(metadata, tmp_path / "store")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "store"]
    assert sorted(p.name for p in out.iterdir()) == [
        ".deeprc-output",
        "encoded",
        "ingest_report.tsv",
        "manifest.json",
        "repertoires.tsv",
        "sequences",
    ]
    assert sorted(p.name for p in (out / "encoded").iterdir()) == [
        "counts.npy",
        "genes.npy",
        "lengths.npy",
        "offsets.npy",
        "tokens.npy",
    ]
    assert not list(Path(out, "sequences").glob("*.tokens"))


def test_blank_lines_are_counted_and_later_line_numbers_stay_exact(tmp_path, h):
    text = h.airr_text([h.rec(), h.rec(), h.rec(productive="maybe")])
    lines = text.splitlines()
    lines.insert(2, "")  # a blank line between the first two rows
    data = tmp_path / "data"
    data.mkdir()
    h.write_airr(data / "a.tsv", "\n".join(lines[:3]) + "\n\n")  # and a second newline at the end
    h.write_airr(data / "b.tsv", "\n".join(lines) + "\n")
    h.write_metadata(data / "metadata.tsv", [("a", "a.tsv", "0"), ("b", "b.tsv", "1")])
    with pytest.raises(InputError, match=r"b\.tsv: line 5, column 'productive'"):
        h.run_ingest(data / "metadata.tsv")
    h.write_airr(data / "b.tsv", h.airr_text([h.rec()]))
    report, out = h.run_ingest(data / "metadata.tsv")
    assert report["empty_row"].tolist() == [2, 0]
    assert report["rows_kept"].tolist() == [1, 1]
    h.check_store(out)


def test_other_tables_beside_the_data_are_not_unlisted_repertoires(tmp_path, h):
    metadata = h.make_study(tmp_path / "data")
    (tmp_path / "data" / "truth.tsv").write_text("repertoire_id\tsequence_id\tsignal\na\ts1\tm\n")
    report, _ = h.run_ingest(metadata)
    assert len(report) == 2
