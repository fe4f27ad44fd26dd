"""Targets beyond the label (deeprc.targets): their values, the baselines that predict a
categorical or numeric one (k-mer regressions, depth, the covariates alone) and their metrics,
per fold and over folds, through the commands a user runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.ingest import ingest
from deeprc.ingest.annotations import Annotation
from deeprc.simulate import MotifSignal, RepertoireNumber, SimulationConfig, simulate
from deeprc.store import Store
from deeprc.targets import Target, categorical_metrics, numeric_metrics

FOLDS = 3


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """45 repertoires: flu, cmv (each its own motif) and healthy; a severity that a third motif
    grows with in everyone; an age that older positives carry (no motif reads it)."""
    root = tmp_path_factory.mktemp("targets")
    cfg = SimulationConfig(
        n_repertoires=45, n_sequences=400, pool_size=8000, positive_fraction=0.667, seed=4,
        conditions=("flu", "cmv"),
        numbers=(RepertoireNumber(name="severity", low=0, high=10),
                 RepertoireNumber(name="age", low=20, high=80, positive_from=0.6)),
        motifs=(MotifSignal(name="f", motif="WWQ", witness_rate=0.05, condition="flu"),
                MotifSignal(name="c", motif="MMH", witness_rate=0.05, condition="cmv"),
                MotifSignal(name="s", motif="CYC", witness_rate=0.05, scaled_by="severity",
                            negative_fraction=1.0)),
    )  # fmt: skip
    simulate(cfg, root / "sim", threads=2)
    annotations = [Annotation.parse("target", "condition:categorical"),
                   Annotation.parse("target", "severity:numeric"),
                   Annotation.parse("covariate", "age:numeric")]  # fmt: skip
    ingest(root / "sim" / "metadata.tsv", root / "store", label_column="status", threads=2,
           annotations=annotations, log=lambda _: None)  # fmt: skip
    folds = root / "folds.tsv"
    assert main(["split", "--store", str(root / "store"), "--out", str(folds), "--k",
                 str(FOLDS)]) == 0  # fmt: skip
    return root


def cross_validate(root, baseline, target=None):
    """The baseline on every fold, then evaluate: the metrics file's content (computed once
    per module: the tests share the cohort)."""
    name = target or "label"
    metrics = root / name / baseline / "metrics.json"
    if metrics.exists():
        return json.loads(metrics.read_text())
    for k in range(FOLDS):
        args = ["baseline", baseline, "--store", str(root / "store"), "--folds",
                str(root / "folds.tsv"), "--fold", str(k),
                "--out", str(root / name / baseline / f"fold{k}")]  # fmt: skip
        assert main(args + (["--target", target] if target else [])) == 0
    predictions = [str(root / name / baseline / f"fold{k}") for k in range(FOLDS)]
    assert main(["evaluate", *predictions, "--out", str(metrics)]) == 0
    return json.loads(metrics.read_text())


def test_values_read_each_kind(cohort):
    store = Store(cohort / "store")
    meta = pd.read_csv(cohort / "sim" / "metadata.tsv", sep="\t")
    condition = Target.of(store, "condition")
    assert (condition.kind, condition.classes) == ("categorical", ("cmv", "flu", "healthy"))
    codes = condition.values(store)
    assert [condition.classes[c] for c in codes] == meta["condition"].tolist()
    severity = Target.of(store, "severity").values(store)
    np.testing.assert_allclose(severity, meta["severity"], rtol=1e-6)
    label = Target.of(store)
    assert label.kind == "binary" and label.values(store).tolist() == store.labels.tolist()
    with pytest.raises(InputError, match="keeps no target 'age' \\(it has: label, condition, "
                       "severity\\); ingest with --target age:KIND"):  # fmt: skip
        Target.of(store, "age")  # a covariate, not a target


def test_a_categorical_target_is_predicted_per_class_and_scored(cohort, capsys):
    result = cross_validate(cohort, "kmer3_regression", "condition")
    shown = capsys.readouterr().out
    assert result["target"]["classes"] == ["cmv", "flu", "healthy"]
    table = pd.read_csv(cohort / "condition/kmer3_regression/fold0/predictions.tsv", sep="\t")
    probabilities = table[["p:cmv", "p:flu", "p:healthy"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert result["summary"]["roc_auc_macro"]["mean"] > 0.9  # 5% of sequences carry a motif
    for fold in result["folds"]:
        confusion = np.array(fold["confusion"])
        assert confusion.shape == (3, 3) and confusion.sum() == fold["n_repertoires"]
        assert np.trace(confusion) / confusion.sum() >= fold["balanced_accuracy"] - 0.2
    assert "target condition (categorical)" in shown and "roc_auc_macro" in shown


def test_a_numeric_target_is_predicted_as_a_number_and_scored(cohort):
    result = cross_validate(cohort, "kmer3_regression", "severity")
    assert result["summary"]["spearman"]["mean"] > 0.7  # the motif's rate follows severity
    assert result["summary"]["r2"]["mean"] > 0.3
    depth = cross_validate(cohort, "repertoire_size", "severity")  # no depth signal here
    assert depth["summary"]["r2"]["mean"] < 0.2


def test_the_covariates_alone_tell_a_label_they_are_confounded_with(cohort):
    """Positives are older here: the covariates-only baseline sees it, so a user sees what
    the repertoire adds beyond age."""
    result = cross_validate(cohort, "covariates")
    # positives' ages from the top 40% of the range: P(a negative is younger) = 0.6 + 0.4 / 2
    assert result["summary"]["roc_auc"]["mean"] > 0.7  # expected 0.8


def test_a_binary_baseline_on_another_kind_and_covariates_of_none_are_refused(
    cohort, tmp_path, capsys
):
    args = ["baseline", "emerson_burden", "--store", str(cohort / "store"), "--folds",
            str(cohort / "folds.tsv"), "--fold", "0", "--out", str(tmp_path / "b")]  # fmt: skip
    assert main([*args, "--target", "severity"]) == 2
    assert ("baseline emerson_burden predicts a binary label; target 'severity' is numeric: "
            "choose one of") in capsys.readouterr().err  # fmt: skip
    assert not (tmp_path / "b").exists()
    plain = tmp_path / "plain"
    ingest(cohort / "sim" / "metadata.tsv", plain, label_column="status", threads=2,
           log=lambda _: None)  # fmt: skip
    folds = tmp_path / "folds.tsv"
    assert main(["split", "--store", str(plain), "--out", str(folds), "--k", "3"]) == 0
    args = ["baseline", "covariates", "--store", str(plain), "--folds", str(folds),
            "--fold", "0", "--out", str(tmp_path / "c")]  # fmt: skip
    assert main(args) == 2
    assert "keeps no covariates, so the covariates baseline" in capsys.readouterr().err


def test_evaluating_predictions_of_different_targets_together_is_refused(cohort, tmp_path):
    cross_validate(cohort, "kmer3_regression", "condition")
    cross_validate(cohort, "kmer3_regression", "severity")
    from deeprc.evaluate import evaluate_folds

    with pytest.raises(InputError, match="predict different targets"):
        mixed = [cohort / "condition/kmer3_regression/fold0",
                 cohort / "severity/kmer3_regression/fold1"]  # fmt: skip
        evaluate_folds(mixed, tmp_path / "m.json")


def test_categorical_metrics_by_hand():
    y = np.array([0, 1, 2, 2])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.6, 0.2, 0.2]])
    found = categorical_metrics(y, probabilities)
    # class 0 vs rest: scores 0.8 | 0.2, 0.1, 0.6 -> 1.0; class 1: 0.5 | 0.1, 0.2, 0.2 -> 1.0;
    # class 2: 0.7, 0.2 | 0.1, 0.3 -> (1 + 0.5) / 2 = 0.75
    assert found["roc_auc_per_class"] == [1.0, 1.0, 0.75]
    assert found["roc_auc_macro"] == pytest.approx(2.75 / 3)
    # predicted 0, 1, 2, 0: recall 1, 1, 0.5
    assert found["balanced_accuracy"] == pytest.approx(2.5 / 3)
    brier = (0.06 + 0.38 + 0.14 + 1.04) / 4  # e.g. row 4: 0.6^2 + 0.2^2 + 0.8^2
    assert found["brier"] == pytest.approx(brier)
    assert found["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    absent = categorical_metrics(np.array([0, 0, 1]), np.array([[0.9, 0.1, 0.0]] * 3))
    assert math.isnan(absent["roc_auc_per_class"][2])  # class 2 never occurs


def test_numeric_metrics_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    found = numeric_metrics(y, np.array([1.5, 2.0, 2.5, 5.0]))
    assert found["r2"] == pytest.approx(1 - 1.5 / 5.0)  # residual 0.25 + 0 + 0.25 + 1
    assert found["spearman"] == pytest.approx(1.0)
    assert found["mae"] == pytest.approx(0.5)
    assert math.isnan(numeric_metrics(y, np.full(4, 2.5))["spearman"])  # constant prediction


def test_fitting_in_the_rows_span_gives_the_same_l2_model():
    """The k-mer regressions fit on the rows' coordinates in their own span (exact for an L2
    penalty): the same probabilities as on the 3,000 columns themselves."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    from deeprc.baselines import _RowSpace

    x = sparse.random(40, 3000, density=0.05, random_state=0, format="csr")
    new = sparse.random(10, 3000, density=0.05, random_state=1, format="csr")
    y = np.random.default_rng(0).integers(0, 3, 40)
    span = _RowSpace().fit(x)
    assert span.transform(x).shape == (40, 40)

    def fitted(train):
        return LogisticRegression(C=0.5, max_iter=5000, tol=1e-10).fit(train, y)

    direct = fitted(x).predict_proba(new)
    np.testing.assert_allclose(fitted(span.transform(x)).predict_proba(span.transform(new)),
                               direct, atol=1e-9)  # fmt: skip
