"""The k-mer regression: L1-penalised logistic regression on each repertoire's standardised
k-mer frequencies, its penalty chosen by inner cross-validation. The `kmer{k}_logistic`
baselines are this model; the k-mer regression evidence gives its weights to each sequence."""

from __future__ import annotations

from typing import Self

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from deeprc.errors import InputError
from deeprc.features.evidence import Evidence, two_of_each_class
from deeprc.features.kmers import kmer_counts, kmer_windows
from deeprc.store import Store

__all__ = ["KmerRegressionEvidence", "fit_kmer_regression", "frequencies", "inner_folds"]

N_CS = 10  # penalties tried, log-spaced (scikit-learn's grid)
MAX_FOLDS = 5


def frequencies(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Rows scaled to sum 1, so repertoires of different depth are comparable; in place (at
    10^8 rows the matrix is ~10^8 non-zeros: a copy is a gigabyte)."""
    totals = np.asarray(counts.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    counts.data *= np.repeat(scale, np.diff(counts.indptr))
    return counts


def inner_folds(y: np.ndarray, max_folds: int, seed: int) -> StratifiedKFold:
    """Stratified, shuffled and seeded; fewer folds when a class is too small for ``max_folds``."""
    n_splits = int(min(max_folds, np.bincount(y, minlength=2).min()))
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def fit_kmer_regression(
    x: sparse.csr_matrix, y: np.ndarray, *, seed: int = 0, C: float | None = None,
    n_cs: int = N_CS, max_folds: int = MAX_FOLDS,
) -> tuple[StandardScaler, LogisticRegression | LogisticRegressionCV]:  # fmt: skip
    """The scaler and the regression on k-mer frequencies ``x``: ``C`` chosen from ``n_cs``
    values by stratified inner folds (log loss), or the given one."""
    scaler = StandardScaler(with_mean=False).fit(x)  # centring would densify
    scaled = scaler.transform(x, copy=False)
    if C is not None:
        return scaler, LogisticRegression(
            C=C, l1_ratio=1.0, solver="liblinear", random_state=seed
        ).fit(scaled, y)
    return scaler, LogisticRegressionCV(
        Cs=n_cs, l1_ratios=(1.0,), solver="liblinear", cv=inner_folds(y, max_folds, seed),
        scoring="neg_log_loss", random_state=seed, use_legacy_attributes=False,
    ).fit(scaled, y)  # fmt: skip


class KmerRegressionEvidence(Evidence):
    """What the k-mer regression knows, per sequence. The regression is fitted on the training
    repertoires' k-mer frequencies; a sequence reads the weights (per unit frequency) of the
    k-mers in its windows, summed, over the largest weight's size: a repertoire's mean of it
    is the regression's decision less its intercept, up to one factor. The attention starts
    at weight 1 on it: its log-mean-exp over a repertoire then starts near that mean, the
    regression's score, where the rate-ratio evidence (one k-mer per sequence) sees only the
    single most enriched k-mer. Cross-fitted groups use the penalty chosen on all training
    repertoires (one inner cross-validation, not one per group), and so does the refit on
    training and validation repertoires."""

    name = "kmer_regression"
    size = 1
    prior = (1.0,)

    def __init__(self, k: int = 3) -> None:
        if k < 1:
            raise InputError(f"k is a k-mer length, 1 or more; got {k}")
        self.k = k

    def fit(self, store: Store, repertoires: np.ndarray) -> Self:
        train = np.asarray(repertoires, dtype=np.int64)
        return self._fit(kmer_counts(store, train, self.k), self._labels(store, train))

    def cross_fitted(self, store: Store, train: np.ndarray, group: np.ndarray, n_groups: int):
        """As :meth:`Evidence.cross_fitted`, with each repertoire's k-mers counted once."""
        counts, y = kmer_counts(store, train, self.k), self._labels(store, train)
        self._fit(counts.copy(), y)
        return [
            self.clone()._fit(counts[group != g], y[group != g], self.C_) for g in range(n_groups)
        ]

    def refitted(self, store: Store, repertoires: np.ndarray) -> Self:
        """As :meth:`Evidence.refitted`, keeping the penalty chosen on the training
        repertoires (as the cross-fitted groups do): one inner cross-validation per fold."""
        train = np.asarray(repertoires, dtype=np.int64)
        counts = kmer_counts(store, train, self.k)
        return self.clone()._fit(counts, self._labels(store, train), self.C_)

    def _labels(self, store: Store, train: np.ndarray) -> np.ndarray:
        return two_of_each_class(np.asarray(store.labels)[train], "kmer_regression evidence")

    def _fit(self, counts: sparse.csr_matrix, y: np.ndarray, C: float | None = None) -> Self:
        scaler, model = fit_kmer_regression(frequencies(counts), y, C=C)
        self.C_ = float(np.ravel(model.C_)[0]) if C is None else C
        weights = model.coef_[0] / scaler.scale_
        largest = np.abs(weights).max()
        self.weights_ = (weights / largest if largest > 0 else weights).astype(np.float32)
        return self

    def transform(self, store: Store, repertoire: int) -> np.ndarray:
        """``(n, 1)`` (0 for rows too short for a k-mer)."""
        start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
        summed = np.zeros((stop - start, 1), dtype=np.float32)
        tokens, lengths = store.tokens[start:stop], store.lengths[start:stop]
        for rows, codes in kmer_windows(tokens, lengths, self.k):
            summed[rows, 0] = self.weights_[codes].sum(axis=1)
        return summed
