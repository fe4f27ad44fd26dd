"""Gapped burden evidence: the gapped k-mers that the training repertoires' Fisher test calls
associated, each counted once per repertoire: what the gapped-k-mer burden test counts, spread
over the sequences that carry them."""

from __future__ import annotations

from typing import Self

import numpy as np

from deeprc.features.burden_evidence import AssociationEvidence
from deeprc.features.evidence import two_of_each_class
from deeprc.features.gapped import N_PATTERNS, pattern_p_values, pattern_windows, presence
from deeprc.store import Store

__all__ = ["GappedBurdenEvidence"]


class GappedBurdenEvidence(AssociationEvidence):
    """The gapped k-mers (:mod:`deeprc.features.gapped`) carried by at least two training
    positives whose one-sided Fisher test (presence in positives vs negatives) gives
    ``p < p_threshold``. A repertoire counts each of them it carries once, as the
    `gapped_kmer_burden` baseline does (a witness sequence often carries several, and a
    pattern several sequences): the first row carrying it is credited. Per sequence, the value
    ``v`` whose attention weight ``exp(prior v)`` is 1 plus ``c (exp(prior) - 1)`` for the
    ``c`` patterns it is credited with: 0 without any, 1 for one, so the attention's
    log-mean-exp over a repertoire grows with the number of associated patterns it carries.
    (Counting sequences instead lost 0.02 test AUC on average on four drawn cohorts,
    docs/model.md.)"""

    name = "gapped_burden"

    def __init__(self, p_threshold: float = 1e-3) -> None:
        super().__init__(p_threshold)

    def fit(self, store: Store, repertoires: np.ndarray) -> Self:
        train = np.asarray(repertoires, dtype=np.int64)
        return self._set(presence(store, train), np.asarray(store.labels)[train])

    def cross_fitted(self, store: Store, train: np.ndarray, group: np.ndarray, n_groups: int):
        """As :meth:`Evidence.cross_fitted`, with each repertoire's patterns found once."""
        bits, y = presence(store, train), np.asarray(store.labels)[train]
        self._set(bits, y)
        return [self.clone()._set(bits[group != g], y[group != g]) for g in range(n_groups)]

    def _set(self, bits: np.ndarray, y: np.ndarray) -> Self:
        y = two_of_each_class(y, "gapped_burden evidence")
        p = pattern_p_values(bits, y)[0]
        self.associated_ = np.flatnonzero(p < self.p_threshold).astype(np.int64)
        return self

    def transform(self, store: Store, repertoire: int) -> np.ndarray:
        """``(n, 1)``: each row's credited patterns as above (0 for rows too short)."""
        start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
        marked = np.zeros(N_PATTERNS, dtype=bool)
        marked[self.associated_] = True
        carriers, patterns = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
        tokens, lengths = store.tokens[start:stop], store.lengths[start:stop]
        for rows, codes in pattern_windows(tokens, lengths):
            row, window = np.nonzero(marked[codes])
            carriers.append(rows[row])
            patterns.append(codes[row, window])
        carriers, patterns = np.concatenate(carriers), np.concatenate(patterns)
        order = np.lexsort((carriers, patterns))  # by pattern, then row: its first carrier
        first = np.unique(patterns[order], return_index=True)[1]
        credited = np.bincount(carriers[order][first], minlength=stop - start)
        gain = self.prior[0]
        return (np.log1p(credited * np.expm1(gain)) / gain).astype(np.float32)[:, None]
