"""What is predicted per repertoire: the store's label, or a target that ingest kept beside it
(``--target COLUMN:KIND``, deeprc.ingest.annotations), and how its predictions are scored.

A **binary** target reads as the label does (1 = its positive value): ``Store.with_labels`` gives
a store whose label it is, so every binary method runs on it unchanged. A **categorical** one is
predicted as one probability per class, a **numeric** one as a number. Predictions of a
categorical or numeric target are written with ``target.json`` beside them
(deeprc.outputs), and scored with :func:`categorical_metrics` or :func:`numeric_metrics`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import spearmanr
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

from deeprc.errors import InputError
from deeprc.ingest.options import LABEL
from deeprc.store import Store

__all__ = ["LABEL", "Target", "categorical_metrics", "numeric_metrics", "prediction_table"]


@dataclass(frozen=True)
class Target:
    """One thing to predict: ``name`` (a metadata column, or :data:`LABEL`), ``kind``
    (binary, categorical, numeric) and, for a categorical one, its ``classes`` in order; for a
    binary one, its ``positive`` value."""

    name: str
    kind: str
    classes: tuple[str, ...] = ()
    positive: str | None = None

    @classmethod
    def of(cls, store: Store, name: str | None = None) -> Target:
        """The store's label (``name`` None or :data:`LABEL`), or the target of that name."""
        if name in (None, LABEL):
            return cls(LABEL, "binary", positive=store.manifest.get("positive_label"))
        kept = {t["column"]: t for t in store.annotations("target")}
        if name not in kept:
            have = ", ".join([LABEL, *kept]) if kept else f"{LABEL} only"
            raise InputError(
                f"store {store.path} keeps no target {name!r} (it has: {have}); ingest with "
                f"--target {name}:KIND to keep that metadata column"
            )
        entry = kept[name]
        return cls(name, entry["kind"], tuple(entry.get("classes", ())), entry.get("positive"))

    @property
    def column(self) -> str:
        """Its column in the store's repertoires table."""
        return "y" if self.name == LABEL else f"target:{self.name}"

    def values(self, store: Store) -> np.ndarray:
        """Every repertoire's value: binary 1/0 and categorical class indices (-1: missing),
        numeric floats (NaN: missing). In a store that does not keep the target (a new cohort
        that a model of it scores) every value is missing, as is a class the target lacks."""
        if self.name == LABEL:
            return np.asarray(store.labels)
        if self.column not in store.repertoires:
            missing = np.nan if self.kind == "numeric" else -1
            return np.full(len(store.repertoires), missing)
        raw = store.repertoires[self.column]
        if self.kind == "numeric":
            return raw.to_numpy(dtype=np.float64)
        if self.kind == "binary":
            return np.where(raw.isna(), -1, raw == self.positive).astype(np.int64)
        codes = {c: i for i, c in enumerate(self.classes)}
        return np.array([codes.get(v, -1) for v in raw], dtype=np.int64)

    @staticmethod
    def known(values: np.ndarray) -> np.ndarray:
        """Which of :meth:`values` are known."""
        return ~np.isnan(values) if values.dtype.kind == "f" else values >= 0

    def labelled(self, store: Store) -> Store:
        """A binary target as the store's label (Store.with_labels), so that every binary
        method reads it; the store itself for the label."""
        if self.kind != "binary":
            raise ValueError(f"target {self.name!r} is {self.kind}, not binary")
        return store if self.name == LABEL else store.with_labels(self.values(store))

    def to_dict(self) -> dict:
        return asdict(self) | {"classes": list(self.classes)}


def categorical_metrics(y: np.ndarray, probabilities: np.ndarray) -> dict:
    """``y`` class indices, ``probabilities`` ``(n, n_classes)``: macro one-vs-rest ROC AUC
    (and each class's; NaN for a class absent from ``y``), balanced accuracy of the most
    probable class, Brier score (the squared distance to the one-hot class, summed over
    classes, averaged) and the confusion matrix (rows: true class; columns: predicted)."""
    n_classes = probabilities.shape[1]
    one_hot = np.eye(n_classes)[y]
    per_class = [
        float(roc_auc_score(one_hot[:, c], probabilities[:, c]))
        if 0 < one_hot[:, c].sum() < len(y)
        else math.nan
        for c in range(n_classes)
    ]
    present = [a for a in per_class if not math.isnan(a)]
    predicted = probabilities.argmax(axis=1)
    return {
        "roc_auc_macro": float(np.mean(present)) if present else math.nan,
        "roc_auc_per_class": per_class,
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "brier": float(np.mean(np.sum((probabilities - one_hot) ** 2, axis=1))),
        "confusion": confusion_matrix(y, predicted, labels=range(n_classes)).tolist(),
    }


def numeric_metrics(y: np.ndarray, prediction: np.ndarray) -> dict:
    """R² (1 - residual / total sum of squares: 0 is the mean of these ``y``), Spearman's
    rank correlation and the mean absolute error."""
    residual = float(np.sum((y - prediction) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    constant = np.ptp(y) == 0 or np.ptp(prediction) == 0
    return {
        "r2": 1 - residual / total if total > 0 else math.nan,
        "spearman": math.nan if constant else float(spearmanr(y, prediction).statistic),
        "mae": float(np.mean(np.abs(y - prediction))),
    }


def prediction_table(target: Target, y: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Predictions of ``target`` as deeprc.outputs writes them, beside the true ``y``
    (:meth:`Target.values`): a binary one's log-odds and probability, a categorical one's
    probabilities ``(n, n_classes)`` (``y`` as class names), a numeric one's values."""
    if target.kind == "binary":
        return pd.DataFrame({"y": y, "logit": predicted, "score": expit(predicted)})
    if target.kind == "numeric":
        return pd.DataFrame({"y": y, "prediction": predicted})
    classes = np.array(target.classes, dtype=object)
    named = np.where(y >= 0, classes[np.maximum(y, 0)], None)
    return pd.DataFrame({"y": named} | {f"p:{c}": predicted[:, i]
                                        for i, c in enumerate(target.classes)})  # fmt: skip
