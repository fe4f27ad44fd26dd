"""Cross-validated metrics from fold predictions, checked against by-hand definitions."""

import json
import math
from itertools import product

import numpy as np
import pandas as pd
import pytest

from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.evaluate import evaluate_folds


def write_fold(directory, y, score):
    directory.mkdir(parents=True)
    frame = pd.DataFrame({"repertoire_id": [f"r{i}" for i in range(len(y))], "y": y})
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
    assert json.loads((tmp_path / "metrics.json").read_text())["summary"] == result["summary"]


def test_a_fold_with_one_class_has_no_auc_and_is_left_out_of_the_mean(tmp_path):
    good = write_fold(tmp_path / "a", [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8])
    single = write_fold(tmp_path / "b", [1, 1], [0.3, 0.9])
    result = evaluate_folds([good, single], tmp_path / "m.json")
    assert math.isnan(result["folds"][1]["roc_auc"])
    assert result["summary"]["roc_auc"] == {"mean": 1.0, "sd": result["summary"]["roc_auc"]["sd"],
                                            "n_folds": 1}  # fmt: skip
    assert result["folds"][1]["balanced_accuracy"] == pytest.approx(0.5)


def test_missing_predictions_are_a_clear_error(tmp_path, capsys):
    with pytest.raises(InputError, match="run deeprc predict"):
        evaluate_folds([tmp_path / "nothing"], tmp_path / "m.json")
    fold = write_fold(tmp_path / "f", [0, 1], [0.2, 0.7])
    assert main(["evaluate", str(fold), "--out", str(tmp_path / "m.json")]) == 0
    assert "roc_auc            1.000" in capsys.readouterr().out
