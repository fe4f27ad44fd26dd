"""Cross-validated metrics from the per-fold predictions: per fold, then mean ± sd over folds."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

from deeprc import __version__
from deeprc.atomic import atomic_file
from deeprc.errors import InputError

__all__ = ["evaluate_folds"]

METRICS = ("roc_auc", "pr_auc", "balanced_accuracy")


def _fold_metrics(predictions: pd.DataFrame, threshold: float) -> dict[str, float | int]:
    y, score = predictions["y"].to_numpy(), predictions["score"].to_numpy()
    both = len(set(y.tolist())) == 2  # AUCs need both classes in the fold
    return {
        "n_repertoires": len(y),
        "n_positive": int(y.sum()),
        "roc_auc": float(roc_auc_score(y, score)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, score)) if both else math.nan,
        "balanced_accuracy": float(balanced_accuracy_score(y, score >= threshold)),
    }


def evaluate_folds(prediction_dirs: list[Path], out: Path, *, threshold: float = 0.5) -> dict:
    """Write ``out`` (metrics.json) from ``<dir>/predictions.tsv`` of each fold; returns it."""
    folds = []
    for directory in prediction_dirs:
        path = Path(directory) / "predictions.tsv"
        if not path.is_file():
            raise InputError(f"{path} does not exist; run deeprc predict for that fold first")
        predictions = pd.read_csv(path, sep="\t", dtype={"repertoire_id": str})
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        fold = {"predictions": str(path), "sha256": digest, **_fold_metrics(predictions, threshold)}
        provenance = Path(directory) / "provenance.json"
        if provenance.is_file():
            fold["provenance"] = json.loads(provenance.read_text())
        folds.append(fold)
    summary = {}
    for metric in METRICS:
        values = np.array([f[metric] for f in folds], dtype=float)
        values = values[~np.isnan(values)]
        summary[metric] = {
            "mean": float(values.mean()) if len(values) else math.nan,
            "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "n_folds": len(values),
        }
    result = {
        "deeprc_version": __version__,
        "threshold": threshold,
        "summary": summary,
        "folds": folds,
    }
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    return result
