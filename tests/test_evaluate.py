"""Cross-validated metrics from fold predictions, checked against by-hand definitions."""

import json
import math
from itertools import product

import numpy as np
import pandas as pd
import pytest

from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.evaluate import METRICS, evaluate_folds, summary_lines


def write_fold(directory, y, score):
    directory.mkdir(parents=True)
    # each fold tests its own repertoires (a repertoire tested twice is refused)
    ids = [f"{directory.name}_r{i}" for i in range(len(y))]
    frame = pd.DataFrame({"repertoire_id": ids, "y": y})
    frame["logit"] = np.log(np.asarray(score) / (1 - np.asarray(score)))
    frame["score"] = score
    frame.to_csv(directory / "predictions.tsv", sep="\t", index=False)
    return directory


def auc_by_hand(y, score):
    """Probability that a random positive outscores a random negative (ties count half)."""
    pos = [s for s, t in zip(score, y, strict=True) if t == 1]
    neg = [s for s, t in zip(score, y, strict=True) if t == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_metrics_per_fold_and_mean_sd(tmp_path):
    rng = np.random.default_rng(0)
    folds, aucs = [], []
    for k in range(4):
        y = np.array([0, 1] * 6)
        score = np.clip(rng.random(12) * 0.6 + 0.4 * y, 0.01, 0.99)
        folds.append(write_fold(tmp_path / f"fold{k}", y, score))
        aucs.append(auc_by_hand(y, score))
    result = evaluate_folds(folds, tmp_path / "metrics.json", threshold=0.5)
    assert [f["roc_auc"] for f in result["folds"]] == pytest.approx(aucs)
    assert result["summary"]["roc_auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert result["summary"]["roc_auc"]["sd"] == pytest.approx(np.std(aucs, ddof=1))
    y, score = np.array([0, 1] * 6), pd.read_csv(folds[0] / "predictions.tsv", sep="\t")["score"]
    called = score >= 0.5
    balanced = ((called & (y == 1)).sum() / 6 + (~called & (y == 0)).sum() / 6) / 2
    assert result["folds"][0]["balanced_accuracy"] == pytest.approx(balanced)
    brier = sum((s - t) ** 2 for s, t in zip(score, y, strict=True)) / 12
    assert result["folds"][0]["brier"] == pytest.approx(brier)
    assert json.loads((tmp_path / "metrics.json").read_text())["summary"] == result["summary"]


def test_a_fold_with_one_class_has_no_auc_and_is_left_out_of_the_mean(tmp_path):
    good = write_fold(tmp_path / "a", [0, 1] * 5, [0.1, 0.9] * 5)
    single = write_fold(tmp_path / "b", [1, 1], [0.3, 0.9])
    result = evaluate_folds([good, single], tmp_path / "m.json")
    assert math.isnan(result["folds"][1]["roc_auc"])
    assert result["summary"]["roc_auc"]["mean"] == 1.0
    assert result["summary"]["roc_auc"]["n_folds"] == 1
    assert result["folds"][1]["balanced_accuracy"] == pytest.approx(0.5)


def test_folds_too_small_for_an_auc_are_shown_flagged_and_not_averaged(tmp_path, capsys):
    """The shipped example: 6 repertoires, 3 folds, each test set 1 positive + 1 negative."""
    folds = [write_fold(tmp_path / f"fold{k}", [0, 1], [0.6, 0.4]) for k in range(3)]
    result = evaluate_folds(folds, tmp_path / "m.json")
    reason = (
        "fold test sets hold at most 1 positive and 1 negative; a metric needs at least 5 of each"
    )
    for metric in ("roc_auc", "pr_auc", "balanced_accuracy"):
        assert math.isnan(result["summary"][metric]["mean"])
        assert result["summary"][metric]["n_folds"] == 0
        assert result["summary"][metric]["note"] == reason
    assert [f["roc_auc"] for f in result["folds"]] == [0.0, 0.0, 0.0]  # kept, flagged
    assert all(f["too_few"] and f["n_negative"] == 1 for f in result["folds"])
    assert result["summary"]["balanced_accuracy"]["n_folds"] == 0
    assert json.loads((tmp_path / "m.json").read_text())["summary"]["roc_auc"]["note"] == reason
    lines = summary_lines(result)
    assert lines[0] == f"roc_auc            n/a: {reason}"
    first_fold = lines[len(METRICS)]
    assert first_fold.startswith("fold 0") and "roc_auc 0.000*" in first_fold
    assert lines[-1].startswith("* left out of the summary")
    assert not any("0.000 +- 0.000" in line for line in lines[: len(METRICS)])
    assert main(["evaluate", *map(str, folds), "--out", str(tmp_path / "cli.json")]) == 0
    printed = capsys.readouterr().out
    assert f"roc_auc            n/a: {reason}" in printed and "roc_auc 0.000*" in printed


def test_only_the_folds_large_enough_are_averaged(tmp_path):
    rng = np.random.default_rng(1)
    y = np.array([0, 1] * 6)
    large = [write_fold(tmp_path / f"f{k}", y, np.clip(rng.random(12) * 0.6 + 0.4 * y, 0.01, 0.99))
             for k in range(2)]  # fmt: skip
    small = write_fold(tmp_path / "f2", [0, 1, 0, 1, 0, 1, 1], [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.4])
    result = evaluate_folds([*large, small], tmp_path / "m.json")
    aucs = [auc_by_hand(y, pd.read_csv(f / "predictions.tsv", sep="\t")["score"]) for f in large]
    assert result["summary"]["roc_auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert result["summary"]["roc_auc"]["n_folds"] == 2
    assert result["summary"]["roc_auc"]["note"] == (
        "fold 2 left out, as its test set holds at most 4 positives and 3 negatives; "
        "a metric needs at least 5 of each"
    )
    assert result["folds"][2]["roc_auc"] == 0.0 and result["folds"][2]["too_few"]
    assert not result["folds"][0]["too_few"]
    assert "(2 folds; fold 2 left out" in summary_lines(result)[0]


def test_missing_predictions_are_a_clear_error(tmp_path, capsys):
    with pytest.raises(InputError, match="run deeprc predict"):
        evaluate_folds([tmp_path / "nothing"], tmp_path / "m.json")
    fold = write_fold(tmp_path / "f", [0, 1] * 5, [0.2, 0.7] * 5)
    assert main(["evaluate", str(fold), "--out", str(tmp_path / "m.json")]) == 0
    assert "roc_auc            1.000" in capsys.readouterr().out
