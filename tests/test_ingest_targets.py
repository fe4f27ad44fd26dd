"""Several targets and covariates per store: ``deeprc ingest --target COLUMN:KIND`` and
``--covariate COLUMN:KIND`` keep metadata columns beside the label, typed, with their missing
values counted; bad values are errors naming the line (deeprc.ingest.annotations)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import default_files, run_ingest, write_airr, write_metadata

from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.ingest.annotations import Annotation
from deeprc.store import Store

HEADER = ("repertoire_id", "file", "label", "infection", "age", "sex", "smoker")
# six repertoires: a three-class target, a numeric one with a missing value, two covariates
ROWS = [
    ("r0", "rep0.tsv", "0", "healthy", "34", "F", "no"),
    ("r1", "rep1.tsv", "1", "flu", "61.5", "M", "yes"),
    ("r2", "rep2.tsv", "0", "healthy", "NA", "F", "no"),
    ("r3", "rep3.tsv", "1", "cmv", "47", "", "yes"),
    ("r4", "rep4.tsv", "0", "flu", "29", "M", "no"),
    ("r5", "rep5.tsv", "1", "cmv", "70", "F", "yes"),
]


def study(tmp_path, rows=ROWS, header=HEADER):
    for name, content in default_files(len(rows)).items():
        write_airr(tmp_path / name, content)
    return write_metadata(tmp_path / "metadata.tsv", rows, header=header)


def targets(*specs, role="target"):
    return [Annotation.parse(role, s) for s in specs]


def test_targets_and_covariates_are_kept_typed_with_missing_values_counted(tmp_path):
    notes = []
    annotations = targets("infection:categorical", "age:numeric", "smoker:binary")
    annotations += targets("sex:categorical", "age:numeric", role="covariate")[:1]
    _, out = run_ingest(study(tmp_path), annotations=annotations, log=notes.append)
    store = Store(out)
    infection, age, smoker = store.annotations("target")
    assert infection == {
        "column": "infection", "kind": "categorical", "classes": ["cmv", "flu", "healthy"],
        "counts": {"cmv": 2, "flu": 2, "healthy": 2}, "n_missing": 0,
    }  # fmt: skip
    assert age["kind"] == "numeric" and age["n_missing"] == 1
    assert (age["min"], age["max"]) == (29.0, 70.0)
    assert age["mean"] == pytest.approx(np.mean([34, 61.5, 47, 29, 70]))
    assert smoker["positive"] == "yes" and smoker["classes"] == ["no", "yes"]
    [sex] = store.annotations("covariate")
    assert sex["classes"] == ["F", "M"] and sex["n_missing"] == 1
    table = store.repertoires
    assert table["target:age"].tolist()[:2] == [34.0, 61.5] and np.isnan(table["target:age"][2])
    assert table["target:infection"].tolist() == [r[3] for r in ROWS]
    assert table["covariate:sex"].isna().tolist() == [False] * 3 + [True] + [False] * 2
    # the label stays what it was: the binary target the model trains on today
    assert table["y"].tolist() == [0, 1, 0, 1, 0, 1]
    assert any("1 repertoire(s) have no value in target column 'age' (line(s) [4])" in n
               for n in notes)  # fmt: skip


def test_values_read_as_classes_stay_text(tmp_path):
    """Class codes that look like numbers ('1', '2', '3') stay the classes they are."""
    rows = [(*r[:3], str(1 + i % 3), *r[4:]) for i, r in enumerate(ROWS)]
    _, out = run_ingest(study(tmp_path, rows), annotations=targets("infection:categorical"))
    assert Store(out).repertoires["target:infection"].tolist() == ["1", "2", "3"] * 2
    assert Store(out).annotations("target")[0]["classes"] == ["1", "2", "3"]


def test_a_store_of_one_label_keeps_its_fingerprint_and_has_no_targets(tmp_path):
    plain = run_ingest(study(tmp_path), out=tmp_path / "plain")[1]
    again = run_ingest(study(tmp_path), out=tmp_path / "again")[1]
    with_age = run_ingest(study(tmp_path), out=tmp_path / "age",
                          annotations=targets("age:numeric"))[1]  # fmt: skip
    fingerprint = [Store(p).manifest["fingerprint"] for p in (plain, again, with_age)]
    assert fingerprint[0] == fingerprint[1] != fingerprint[2]
    assert Store(plain).annotations("target") == Store(plain).annotations("covariate") == []


@pytest.mark.parametrize(
    ("spec", "role", "message"),
    [
        ("age", "target", "give the metadata column and its kind, COLUMN:KIND"),
        ("age:number", "target", "KIND one of binary, categorical, numeric"),
        ("sex:binary", "covariate", "KIND one of categorical, numeric"),
    ],
)
def test_a_spec_without_a_known_kind_says_what_to_write(spec, role, message):
    with pytest.raises(InputError, match=message):
        Annotation.parse(role, spec)


def test_a_column_name_with_a_colon_and_a_stated_positive_value_parse():
    assert Annotation.parse("target", "week:3:numeric") == Annotation("target", "week:3", "numeric")
    stated = Annotation.parse("target", "smoker:binary:yes")
    assert (stated.column, stated.kind, stated.positive) == ("smoker", "binary", "yes")


@pytest.mark.parametrize(
    ("column", "value", "spec", "message"),
    [
        (4, "forty", "age:numeric", r"not finite numbers \(line, value\): \[\(3, 'forty'\)\]"),
        (4, "inf", "age:numeric", r"\[\(3, 'inf'\)\].*age:categorical"),
        (6, "maybe", "smoker:binary", "holds 3 values .*give it as --target smoker:categorical"),
        (3, "flu", "nope:categorical", "no column 'nope' \\(--target nope:...\\)"),
    ],
)
def test_bad_values_name_the_line_and_what_to_do(tmp_path, column, value, spec, message):
    rows = [list(r) for r in ROWS]
    rows[1][column] = value
    store = tmp_path / "store"
    with pytest.raises(InputError, match=message):
        run_ingest(study(tmp_path, rows), out=store, annotations=targets(spec))
    assert not store.exists()


def test_a_target_that_never_varies_or_an_unknown_positive_is_refused(tmp_path):
    rows = [(*r[:5], "F", r[6]) for r in ROWS]
    with pytest.raises(InputError, match=r"covariate column 'sex' holds only \['F'\]"):
        run_ingest(study(tmp_path, rows), annotations=targets("sex:categorical", role="covariate"))
    with pytest.raises(InputError, match="'maybe' is not one of the values \\['no', 'yes'\\]"):
        run_ingest(study(tmp_path), annotations=targets("smoker:binary:maybe"))
    with pytest.raises(InputError, match="cannot have that name; give the label as --label-col"):
        run_ingest(study(tmp_path), annotations=targets("label:binary"))
    with pytest.raises(InputError, match="named twice"):
        run_ingest(study(tmp_path), annotations=targets("age:numeric")
                   + targets("age:numeric", role="covariate"))  # fmt: skip


def test_a_binary_target_whose_positive_cannot_be_told_says_how_to_name_it(tmp_path):
    rows = [(*r[:6], "ab"[i % 2]) for i, r in enumerate(ROWS)]
    with pytest.raises(InputError, match="pass --target smoker:binary:<value>"):
        run_ingest(study(tmp_path, rows), annotations=targets("smoker:binary"))
    _, out = run_ingest(study(tmp_path, rows), annotations=targets("smoker:binary:b"))
    assert Store(out).annotations("target")[0]["positive"] == "b"


def test_the_command_keeps_them_and_says_what_it_kept(tmp_path, capsys):
    metadata = study(tmp_path)
    code = main(["ingest", "--metadata", str(metadata), "--out", str(tmp_path / "store"),
                 "--label-column", "label", "--target", "infection:categorical",
                 "--target", "age:numeric", "--covariate", "sex:categorical"])  # fmt: skip
    shown = capsys.readouterr().out
    assert code == 0
    assert "target infection (categorical): cmv 2, flu 2, healthy 2; 0 missing" in shown
    assert "target age (numeric): range 29 to 70; 1 missing" in shown
    assert "covariate sex (categorical): F 3, M 2; 1 missing" in shown
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert [t["column"] for t in manifest["targets"]] == ["infection", "age"]
    assert main(["ingest", "--metadata", str(metadata), "--out", str(tmp_path / "b"),
                 "--label-column", "label", "--covariate", "age"]) == 2  # fmt: skip
    assert "--covariate 'age': give the metadata column and its kind" in capsys.readouterr().err


def test_sharded_ingest_keeps_the_same_targets(tmp_path):
    """On a cluster, the merge reads the metadata again: the same store as one ingest."""
    metadata = study(tmp_path)
    annotations = targets("infection:categorical", "age:numeric")
    one = run_ingest(metadata, out=tmp_path / "one", annotations=annotations)[1]
    shards = [tmp_path / f"shard{k}" for k in range(2)]
    for k, shard in enumerate(shards):
        run_ingest(metadata, out=shard, annotations=annotations, shard=(k, 2))
    merged = run_ingest(metadata, out=tmp_path / "merged", annotations=annotations, merge=shards)[1]
    assert Store(merged).manifest["fingerprint"] == Store(one).manifest["fingerprint"]
    assert Store(merged).annotations("target") == Store(one).annotations("target")
