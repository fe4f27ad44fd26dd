"""Cross-validated metrics from the per-fold predictions: per fold, then mean ± sd over folds."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

from deeprc import __version__, outputs
from deeprc.atomic import atomic_file
from deeprc.errors import InputError

__all__ = ["evaluate_folds", "summary_lines"]

# brier: mean squared error of the probability (0 is perfect; always 0.25 scores 0.25), which
# only a calibrated score gets low
METRICS = ("roc_auc", "pr_auc", "balanced_accuracy", "brier")
# A metric over fewer test repertoires of a class takes a handful of values (1 + 1: 0 or 1
# only), so it says nothing about the method; such folds are shown but not averaged.
MIN_PER_CLASS = 5


def _fold_metrics(predictions: pd.DataFrame, threshold: float) -> dict[str, float | int | bool]:
    y, score = predictions["y"].to_numpy(), predictions["score"].to_numpy()
    n_positive = int(y.sum())
    both = 0 < n_positive < len(y)  # AUCs need both classes in the fold
    return {
        "n_repertoires": len(y),
        "n_positive": n_positive,
        "n_negative": len(y) - n_positive,
        "roc_auc": float(roc_auc_score(y, score)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, score)) if both else math.nan,
        "balanced_accuracy": float(balanced_accuracy_score(y, score >= threshold)),
        "brier": float(np.mean((score - y) ** 2)),
        "too_few": min(n_positive, len(y) - n_positive) < MIN_PER_CLASS,
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _note(folds: list[dict]) -> str | None:
    """Why folds are left out of the summary, or None when none is."""
    flagged = [i for i, f in enumerate(folds) if f["too_few"]]
    if not flagged:
        return None
    positives = max(folds[i]["n_positive"] for i in flagged)
    negatives = max(folds[i]["n_negative"] for i in flagged)
    if max(positives, negatives) < MIN_PER_CLASS:
        held = f"at most {_count(positives, 'positive')} and {_count(negatives, 'negative')}"
    else:
        smaller = max(min(folds[i]["n_positive"], folds[i]["n_negative"]) for i in flagged)
        held = f"at most {_count(smaller, 'repertoire')} of one class"
    need = f"a metric needs at least {MIN_PER_CLASS} of each"
    if len(flagged) == len(folds):
        return f"fold test sets hold {held}; {need}"
    which = ", ".join(map(str, flagged))
    if len(flagged) == 1:
        return f"fold {which} left out, as its test set holds {held}; {need}"
    return f"folds {which} left out, as their test sets hold {held}; {need}"


def evaluate_folds(prediction_dirs: list[Path], out: Path, *, threshold: float = 0.5) -> dict:
    """Write ``out`` (metrics.json) from the predictions of each fold's directory; returns it.
    Repertoires without a label are counted (``n_unlabelled``) and left out of the metrics.

    A fold whose test set holds fewer than ``MIN_PER_CLASS`` repertoires of a class keeps its
    metrics, flagged ``too_few``; they are not averaged, and the summaries say why (``note``).
    """
    folds = []
    for directory in prediction_dirs:
        scored = outputs.read_predictions(directory)
        path = Path(directory) / outputs.PREDICTIONS
        predictions = scored[scored["y"].notna()].astype({"y": int})
        if predictions.empty:
            raise InputError(
                f"{path}: none of its {len(scored)} repertoires has a label, so there is "
                "nothing to evaluate against; its scores are the result"
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        fold = {"predictions": str(path), "sha256": digest, **_fold_metrics(predictions, threshold)}
        fold["n_unlabelled"] = len(scored) - len(predictions)  # scored, not evaluated
        # the test scores themselves, so that curves drawn from this file need nothing else
        fold["test"] = {
            "repertoire_id": predictions["repertoire_id"].tolist(),
            "y": predictions["y"].astype(int).tolist(),
            "score": predictions["score"].astype(float).tolist(),
        }
        if (provenance := outputs.read_provenance(directory)) is not None:
            fold["provenance"] = provenance
        folds.append(fold)
    note = _note(folds)
    summary = {}
    for metric in METRICS:
        values = np.array([f[metric] for f in folds if not f["too_few"]], float)
        values = values[~np.isnan(values)]
        summary[metric] = {
            "mean": float(values.mean()) if len(values) else math.nan,
            "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "n_folds": len(values),
        }
        if note:
            summary[metric]["note"] = note
    result = {
        "deeprc_version": __version__,
        "threshold": threshold,
        "summary": summary,
        "folds": folds,
    }
    with atomic_file(out) as tmp:
        outputs.write_metrics(tmp, result)
    return result


def summary_text(stat: dict, plus_minus: str = "+-") -> str:
    """One summary metric as shown to a person: mean +- sd (n folds), or n/a and why."""
    if stat["n_folds"] == 0:
        return f"n/a: {stat.get('note', 'no fold has both classes')}"
    shown = f"{stat['mean']:.3f}"
    if stat["n_folds"] > 1:
        shown += f" {plus_minus} {stat['sd']:.3f}"
    folds = _count(stat["n_folds"], "fold")
    return f"{shown} ({folds}; {stat['note']})" if "note" in stat else f"{shown} ({folds})"


def summary_lines(result: dict) -> list[str]:
    """What ``deeprc evaluate`` prints: the summary, then each fold, flagged metrics marked *."""
    lines = [f"{m:<18} {summary_text(result['summary'][m])}" for m in METRICS]
    for k, fold in enumerate(result["folds"]):
        mark = "*" if fold["too_few"] else ""
        values = "  ".join(f"{m} {fold[m]:.3f}{mark}" for m in METRICS)
        test = f"{_count(fold['n_repertoires'], 'test repertoire')} ({fold['n_positive']} positive)"
        lines.append(f"fold {k:<13} {values}  [{test}]")
    if any(f["too_few"] for f in result["folds"]):
        lines.append(
            f"* left out of the summary: fewer than {MIN_PER_CLASS} test repertoires of a class"
        )
    return lines
