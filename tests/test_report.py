"""The HTML report: built from a real (small) run, self-contained, rendered by Chromium."""

import json
import re
import shutil

import pytest

from deeprc.cli import main


@pytest.fixture(scope="module")
def report(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    store = str(trained / "store")
    assert main(["evaluate", str(trained / "pred0"), "--out", str(out / "metrics.json")]) == 0
    assert main(["interpret", "--store", store, "--models", str(trained / "fold0.pt"),
                 "--predictions", str(trained / "pred0"), "--out", str(out / "interpretation"),
                 "--top", "20", "--truth", str(trained / "sim")]) == 0  # fmt: skip
    assert main(["report", "--store", store, "--metrics", str(out / "metrics.json"),
                 "--interpretation", str(out / "interpretation"), "--title", "tiny run",
                 "--out", str(out / "report.html")]) == 0  # fmt: skip
    return out / "report.html"


def test_report_is_one_self_contained_file_with_every_section(report):
    page = report.read_text()
    for heading in ("Data", "Cross-validated results", "What the model looked at", "Motifs",
                    "Against the ground truth", "Provenance"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    # nothing is fetched: no external source or stylesheet, figures are inline PNGs
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert page.count('src="data:image/png;base64,') >= 2  # curves and at least one logo
    assert "DeepRC (this run)" in page and "SLRF" in page
    assert "tiny run" in page


def test_folds_too_small_for_an_auc_show_the_reason_not_zero(h, tmp_path):
    """The shipped example's folds (1 positive + 1 negative each) scored perfectly wrong."""
    _, store = h.run_ingest(h.make_study(tmp_path / "study"))
    folds = []
    for k in range(3):
        folds.append(tmp_path / f"fold{k}")
        folds[-1].mkdir()
        (folds[-1] / "predictions.tsv").write_text(
            f"repertoire_id\ty\tlogit\tscore\nn{k}\t0\t0.4\t0.6\np{k}\t1\t-0.4\t0.4\n"
        )
    for name in ("model", "kmer3_logistic"):
        assert main(["evaluate", *map(str, folds), "--out", str(tmp_path / f"{name}.json")]) == 0
    for fold in folds:  # the report reads the metrics files only, not the predictions again
        shutil.rmtree(fold)
    assert main(["report", "--store", str(store), "--metrics", str(tmp_path / "model.json"),
                 "--baseline", f"kmer3_logistic={tmp_path / 'kmer3_logistic.json'}",
                 "--out", str(tmp_path / "report.html")]) == 0  # fmt: skip
    page = (tmp_path / "report.html").read_text()
    results = page.split("<h2>Cross-validated results</h2>")[1].split("<h2>")[0]
    row = '<td class="text">{}</td><td class="">n/a</td><td class="">n/a</td>'
    assert row.format("DeepRC (this run)") in results and row.format("kmer3_logistic") in results
    assert results.count(
        "Metrics n/a: fold test sets hold at most 1 positive and 1 negative; "
        "a metric needs at least 5 of each."
    ) == 1  # fmt: skip
    assert results.count('<td class="">0.000 *</td>') == 6  # each fold's ROC AUC and BA, flagged
    assert "* not averaged: fewer than 5 test repertoires of a class" in results


def test_a_metrics_file_of_an_older_evaluate_is_refused_by_name(h, tmp_path, capsys):
    _, store = h.run_ingest(h.make_study(tmp_path / "study"))
    old = tmp_path / "metrics.json"
    old.write_text(json.dumps({"summary": {}, "folds": [{"predictions": "gone/predictions.tsv"}]}))
    code = main(["report", "--store", str(store), "--metrics", str(old),
                 "--out", str(tmp_path / "report.html")])  # fmt: skip
    assert code == 2 and not (tmp_path / "report.html").exists()
    assert f"{old} was written by an older deeprc evaluate; run it again" in capsys.readouterr().err


def test_report_renders_in_headless_chromium(report, tmp_path, h):
    assert h.render_in_chromium(report, tmp_path / "report.png") > 100
