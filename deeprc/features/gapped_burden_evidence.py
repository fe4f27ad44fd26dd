"""Gapped burden evidence: does a sequence carry a gapped k-mer that the training repertoires'
Fisher test calls associated? What the gapped-k-mer burden test counts, per sequence."""

from __future__ import annotations

from typing import Self

import numpy as np

from deeprc.features.burden_evidence import AssociationEvidence
from deeprc.features.gapped import N_PATTERNS, pattern_p_values, pattern_windows, presence
from deeprc.store import Store

__all__ = ["GappedBurdenEvidence"]


class GappedBurdenEvidence(AssociationEvidence):
    """The gapped k-mers (:mod:`deeprc.features.gapped`) carried by at least two training
    positives whose one-sided Fisher test (presence in positives vs negatives) gives
    ``p < p_threshold``. Per sequence: 1 if it carries one of them, else 0; the attention's
    log-mean-exp over a repertoire then grows with its burden, as the `gapped_kmer_burden`
    baseline's score grows with the associated patterns a repertoire carries. Where the
    gapped rate-ratio evidence gives each sequence its single most enriched pattern (swamped by
    patterns rare and imbalanced by chance), this keeps only patterns the test supports."""

    name = "gapped_burden"

    def __init__(self, p_threshold: float = 1e-3) -> None:
        super().__init__(p_threshold)

    def fit(self, store: Store, repertoires: np.ndarray) -> Self:
        train = np.asarray(repertoires, dtype=np.int64)
        return self._set(presence(store, train), np.asarray(store.labels)[train])

    def cross_fitted(self, store: Store, train: np.ndarray, group: np.ndarray, n_groups: int):
        """As :meth:`Evidence.cross_fitted`, with each repertoire's patterns found once."""
        bits, y = presence(store, train), np.asarray(store.labels)[train]
        return [self.clone()._set(bits[group != g], y[group != g]) for g in range(n_groups)]

    def _set(self, bits: np.ndarray, y: np.ndarray) -> Self:
        y = self._testable(y, "patterns")
        p = pattern_p_values(bits, y)[0]
        self.associated_ = np.flatnonzero(p < self.p_threshold).astype(np.int64)
        return self

    def transform(self, store: Store, repertoire: int) -> np.ndarray:
        """``(n, 1)``: 1 for rows carrying an associated pattern (0 for rows too short)."""
        start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
        marked = np.zeros(N_PATTERNS, dtype=np.float32)
        marked[self.associated_] = 1.0
        found = np.zeros((stop - start, 1), dtype=np.float32)
        tokens, lengths = store.tokens[start:stop], store.lengths[start:stop]
        for rows, codes in pattern_windows(tokens, lengths):
            found[rows, 0] = marked[codes].max(axis=1)
        return found
