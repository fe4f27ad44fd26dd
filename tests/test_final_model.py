"""From cross-validation to use: unlabelled stores, the final model (train --all), scoring
another cohort with it, and the model card (show-model)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from deeprc.cli import main
from deeprc.evaluate import summary_text
from deeprc.ingest import ingest
from deeprc.outputs import read_predictions
from deeprc.simulate import MotifSignal, SimulationConfig, simulate
from deeprc.store import Store

EXPERIMENT = (
    "model: {gene_embedding: 4}\n"
    "train: {n_sequences: 200, max_steps: 30, eval_every: 10, checkpoint_every: 10}\n"
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A simulated cohort (SLRF in 10% of positives' sequences), its labelled store, and a
    final model trained on all of it with a model that reads V and J genes."""
    root = tmp_path_factory.mktemp("final")
    cfg = SimulationConfig(
        n_repertoires=16, n_sequences=200, pool_size=2000, seed=7,
        motifs=(MotifSignal(name="m", motif="SLRF", witness_rate=0.1),),
    )  # fmt: skip
    simulate(cfg, root / "sim", threads=1)
    ingest(root / "sim" / "metadata.tsv", root / "store", label_column="status", threads=1)
    (root / "exp.yaml").write_text(EXPERIMENT)
    assert main(["train", "--store", str(root / "store"), "--all", "--experiment",
                 str(root / "exp.yaml"), "--out", str(root / "final.pt"), "--threads", "1",
                 "--no-progress"]) == 0  # fmt: skip
    return root


def unlabelled_metadata(cohort: Path, directory: Path) -> Path:
    """The cohort's files listed again without their labels, in another order."""
    meta = pd.read_csv(cohort / "sim" / "metadata.tsv", sep="\t", dtype=str)
    meta = meta.drop(columns="status").iloc[::-1]
    meta["file"] = [str((cohort / "sim" / f).resolve()) for f in meta["file"]]
    directory.mkdir()
    meta.to_csv(directory / "metadata.tsv", sep="\t", index=False)
    return directory / "metadata.tsv"


def test_an_unlabelled_cohort_scored_by_the_final_model_gets_the_training_stores_scores(
    cohort, tmp_path, capsys
):
    """Same sequences, same model: the probabilities of a store ingested without labels equal
    those of the same repertoires predicted inside the store the model was trained on."""
    metadata = unlabelled_metadata(cohort, tmp_path / "new")
    assert main(["ingest", "--metadata", str(metadata), "--out", str(tmp_path / "new_store"),
                 "--threads", "1"]) == 0  # fmt: skip
    assert "16 repertoires have no label" in capsys.readouterr().out
    new = Store(tmp_path / "new_store")
    assert (new.labels == -1).all() and new.manifest["positive_label"] is None
    model = str(cohort / "final.pt")
    for store, out in ((tmp_path / "new_store", "new_pred"), (cohort / "store", "own_pred")):
        assert main(["predict", "--store", str(store), "--model", model,
                     "--out", str(tmp_path / out)]) == 0  # fmt: skip
    new_pred = read_predictions(tmp_path / "new_pred").set_index("repertoire_id")
    own_pred = read_predictions(tmp_path / "own_pred").set_index("repertoire_id")
    assert new_pred["y"].isna().all() and own_pred["y"].notna().all()
    assert sorted(new_pred.index) == sorted(own_pred.index)
    np.testing.assert_allclose(
        new_pred["score"], own_pred.loc[new_pred.index, "score"], rtol=1e-5, atol=1e-7
    )
    assert own_pred["score"].nunique() > 1  # the model tells repertoires apart
    provenance = json.loads((tmp_path / "new_pred" / "provenance.json").read_text())
    assert provenance["store"] == str(tmp_path / "new_store")
    assert provenance["model_store"] == str(cohort / "store")
    assert provenance["unknown_genes"] == {"v": {}, "j": {}}


def test_what_needs_labels_refuses_an_unlabelled_store_by_name(cohort, tmp_path, capsys):
    metadata = unlabelled_metadata(cohort, tmp_path / "new")
    store = tmp_path / "new_store"
    assert main(["ingest", "--metadata", str(metadata), "--out", str(store),
                 "--threads", "1"]) == 0  # fmt: skip
    capsys.readouterr()
    refusals = {
        "split": ["split", "--store", str(store), "--out", str(tmp_path / "folds.tsv")],
        "train --all": ["train", "--store", str(store), "--all", "--experiment",
                        str(cohort / "exp.yaml"), "--out", str(tmp_path / "m.pt")],
    }  # fmt: skip
    for name, argv in refusals.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert "16 of its 16 repertoires have no label" in err and str(store) in err, name
    assert not (tmp_path / "folds.tsv").exists() and not (tmp_path / "m.pt").exists()
    assert main(["predict", "--store", str(store), "--model", str(cohort / "final.pt"),
                 "--out", str(tmp_path / "pred")]) == 0  # fmt: skip
    assert main(["evaluate", str(tmp_path / "pred"), "--out", str(tmp_path / "m.json")]) == 2
    assert "none of its 16 repertoires has a label" in capsys.readouterr().err


def test_a_partly_labelled_cohort_is_kept_when_asked_and_evaluated_on_its_labels(
    cohort, tmp_path, capsys
):
    meta = pd.read_csv(cohort / "sim" / "metadata.tsv", sep="\t", dtype=str)
    meta["file"] = [str((cohort / "sim" / f).resolve()) for f in meta["file"]]
    meta.loc[meta.index[:4], "status"] = ""
    (tmp_path / "part").mkdir()
    meta.to_csv(tmp_path / "part" / "metadata.tsv", sep="\t", index=False)
    argv = ["ingest", "--metadata", str(tmp_path / "part" / "metadata.tsv"), "--label-column",
            "status", "--out", str(tmp_path / "store"), "--threads", "1"]  # fmt: skip
    assert main(argv) == 2
    assert "--allow-unlabelled" in capsys.readouterr().err
    assert main([*argv, "--allow-unlabelled"]) == 0
    store = Store(tmp_path / "store")
    assert store.manifest["n_unlabelled"] == 4 and (store.labels[:4] == -1).all()
    assert set(store.labels[4:]) == {0, 1}
    assert main(["predict", "--store", str(tmp_path / "store"), "--model",
                 str(cohort / "final.pt"), "--out", str(tmp_path / "pred")]) == 0  # fmt: skip
    assert main(["evaluate", str(tmp_path / "pred"), "--out", str(tmp_path / "m.json")]) == 0
    fold = json.loads((tmp_path / "m.json").read_text())["folds"][0]
    assert fold["n_unlabelled"] == 4 and fold["n_repertoires"] == 12


def test_a_v_gene_the_model_never_saw_is_counted_and_read_as_no_call(cohort, tmp_path, capsys):
    meta = pd.read_csv(cohort / "sim" / "metadata.tsv", sep="\t", dtype=str).iloc[:3]
    (tmp_path / "new").mkdir()
    first = pd.read_csv(cohort / "sim" / meta["file"].iloc[0], sep="\t", dtype=str,
                        keep_default_na=False)  # fmt: skip
    first.loc[first.index[:7], "v_call"] = "TRBV99-1*01"
    first.to_csv(tmp_path / "new" / "renamed.tsv", sep="\t", index=False)
    meta["file"] = ["renamed.tsv"] + [str((cohort / "sim" / f).resolve()) for f in meta["file"][1:]]
    meta.drop(columns="status").to_csv(tmp_path / "new" / "metadata.tsv", sep="\t", index=False)
    assert main(["ingest", "--metadata", str(tmp_path / "new" / "metadata.tsv"),
                 "--out", str(tmp_path / "store"), "--threads", "1"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["predict", "--store", str(tmp_path / "store"), "--model",
                 str(cohort / "final.pt"), "--out", str(tmp_path / "pred")]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "7 sequences carry 1 V gene(s) the model never saw (TRBV99-1)" in err
    provenance = json.loads((tmp_path / "pred" / "provenance.json").read_text())
    assert provenance["unknown_genes"] == {"v": {"TRBV99-1": 7}, "j": {}}
    assert len(read_predictions(tmp_path / "pred")) == 3


def test_the_model_card_shows_the_training_data_recipe_and_cross_validation(
    cohort, tmp_path, capsys
):
    """A final model trained with --cv-metrics carries its recipe's cross-validated metrics;
    metrics of another recipe are refused."""
    store, folds = str(cohort / "store"), str(tmp_path / "folds.tsv")
    assert main(["split", "--store", store, "--out", folds, "--k", "2"]) == 0
    for k in (0, 1):
        fold = ["--store", store, "--folds", folds, "--fold", str(k)]
        assert main(["train", *fold, "--experiment", str(cohort / "exp.yaml"), "--threads", "1",
                     "--out", str(tmp_path / f"fold{k}.pt"), "--no-progress"]) == 0  # fmt: skip
        assert main(["predict", *fold, "--model", str(tmp_path / f"fold{k}.pt"),
                     "--out", str(tmp_path / f"pred{k}")]) == 0  # fmt: skip
    metrics = tmp_path / "metrics.json"
    assert main(["evaluate", str(tmp_path / "pred0"), str(tmp_path / "pred1"),
                 "--out", str(metrics)]) == 0  # fmt: skip
    final = ["train", "--store", store, "--all", "--cv-metrics", str(metrics), "--threads", "1",
             "--no-progress"]  # fmt: skip
    (tmp_path / "other.yaml").write_text(EXPERIMENT.replace("max_steps: 30", "max_steps: 20"))
    capsys.readouterr()
    assert main([*final, "--experiment", str(tmp_path / "other.yaml"),
                 "--out", str(tmp_path / "other.pt")]) == 2  # fmt: skip
    assert "trained with another experiment" in capsys.readouterr().err
    assert main([*final, "--experiment", str(cohort / "exp.yaml"), "--seed", "3",
                 "--out", str(tmp_path / "final.pt")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["show-model", str(tmp_path / "final.pt")]) == 0
    card = capsys.readouterr().out
    roc = json.loads(metrics.read_text())["summary"]["roc_auc"]
    assert f"cross-validation 2 folds ({metrics})" in card
    assert f"  roc_auc            {summary_text(roc)}" in card
    assert f"store            {store} (fingerprint {Store(store).manifest['fingerprint']})" in card
    assert "positive class 'positive' of ['negative', 'positive']" in card
    saved = torch.load(tmp_path / "final.pt", weights_only=True)
    labels = pd.Series(Store(store).labels, index=Store(store).repertoires["repertoire_id"])
    for role, n in (("train", 13), ("validation", 3)):
        y = labels[saved[f"{role}_ids"]]
        assert len(y) == n
        line = f"{role:<16} {n} repertoires ({(y == 1).sum()} positive, {(y == 0).sum()} negative)"
        assert line in card
    assert "encoder          cnn" in card and '"max_steps": 30' in card
    assert main(["show-model", str(cohort / "final.pt"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["cross_validation"] is None and shown["n_train"] + shown["n_validation"] == 16


def test_rank_sequences_counts_carriers_and_scores_recovery_against_the_truth(
    cohort, tmp_path, capsys
):
    """The cohort's clonotypes ranked by their largest attention score: carriers counted by
    label, and with --truth the top N compared with the implanted sequences' clonotypes."""
    assert main(["predict", "--store", str(cohort / "store"), "--model", str(cohort / "final.pt"),
                 "--out", str(tmp_path / "pred")]) == 0  # fmt: skip
    out = tmp_path / "ranked.tsv"
    argv = ["rank-sequences", str(tmp_path / "pred"), "--out", str(out)]
    assert main([*argv, "--truth", str(cohort / "sim")]) == 0
    ranked = pd.read_csv(out, sep="\t", keep_default_na=False)
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert ranked["score"].is_monotonic_decreasing
    assert (ranked["n_repertoires"] == ranked["n_positive"] + ranked["n_negative"]).all()
    attention = pd.read_parquet(tmp_path / "pred" / "attention.parquet")
    assert len(ranked) == len(attention.drop_duplicates(["junction_aa", "v_call", "j_call"]))
    first = ranked.iloc[0]
    carriers = attention[(attention["junction_aa"] == first["junction_aa"])
                         & (attention["v_call"] == first["v_call"])
                         & (attention["j_call"] == first["j_call"])]  # fmt: skip
    assert first["score"] == pytest.approx(carriers["attention_score"].max())
    assert first["n_repertoires"] == carriers["repertoire_id"].nunique()
    recovery = json.loads(out.with_suffix(".recovery.json").read_text())
    n = recovery["top"]
    assert n == recovery["n_signal"] == ranked["signal"].sum() > 0
    found = ranked["signal"].head(n).sum()
    assert recovery["precision_at_top"] == pytest.approx(found / n)
    assert recovery["jaccard"] == pytest.approx(found / (2 * n - found))
    assert f"precision {found / n:.3f}" in capsys.readouterr().out
    # the implanted SLRF sequences carry the evidence the attention starts from: most lead
    assert recovery["precision_at_top"] > 0.5
    # an unlabelled cohort: every carrier is counted as unlabelled
    metadata = unlabelled_metadata(cohort, tmp_path / "new")
    assert main(["ingest", "--metadata", str(metadata), "--out", str(tmp_path / "new_store"),
                 "--threads", "1"]) == 0  # fmt: skip
    assert main(["predict", "--store", str(tmp_path / "new_store"), "--model",
                 str(cohort / "final.pt"), "--out", str(tmp_path / "new_pred")]) == 0  # fmt: skip
    assert (
        main(["rank-sequences", str(tmp_path / "new_pred"), "--out", str(tmp_path / "n.tsv")]) == 0
    )
    unlabelled = pd.read_csv(tmp_path / "n.tsv", sep="\t", keep_default_na=False)
    assert (unlabelled["n_unlabelled"] == unlabelled["n_repertoires"]).all()
    assert "signal" not in unlabelled and not (tmp_path / "n.recovery.json").exists()


@pytest.fixture(scope="module")
def scored_report(cohort, tmp_path_factory) -> Path:
    """The cohort scored by its final model, interpreted, and its report."""
    root = tmp_path_factory.mktemp("scored")
    store, model, pred = cohort / "store", cohort / "final.pt", root / "pred"
    assert main(["predict", "--store", str(store), "--model", str(model), "--out", str(pred)]) == 0
    assert main(["interpret", "--store", str(store), "--models", str(model), "--predictions",
                 str(pred), "--out", str(root / "interp"), "--top", "20",
                 "--steps", "8"]) == 0  # fmt: skip
    assert main(["report", "--store", str(store), "--predictions", str(pred), "--interpretation",
                 str(root / "interp"), "--out", str(root / "r.html")]) == 0  # fmt: skip
    return root / "r.html"


def test_a_scored_cohorts_report_shows_motifs_class_names_and_the_calibration_caveat(
    cohort, scored_report
):
    page = scored_report.read_text()
    assert "<h2>Motifs</h2>" in page and "most attended sequences of the cohort" in page
    manifest = Store(cohort / "store").manifest
    assert manifest["positive_label"] == "positive" and "positive (positive" not in page
    assert '<th class="">positive</th>' in page  # the class name, said once
    scores = page[page.index("most likely positive first") :]
    scores = scores[: scores.index("</table>")]
    labels = re.findall(r'<td class="text">([^<]*)</td><td class="">-?\d', scores)
    assert len(labels) == 16 and set(labels) == set(manifest["classes"])  # names, not 1/0
    assert "Calibration: probabilities calibrated on only" in page


def test_a_scored_cohorts_report_renders_in_headless_chromium(scored_report, tmp_path, h):
    assert h.render_in_chromium(scored_report, tmp_path / "scored.png") > 100
