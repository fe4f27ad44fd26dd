"""K-mer evidence: how much more often a sequence's k-mers occur in training positives; and the
ratio of class rates that the gapped k-mer evidence shares."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Self

import numpy as np

from deeprc.errors import InputError
from deeprc.features.evidence import Evidence
from deeprc.features.kmers import kmer_windows, repertoire_kmer_counts
from deeprc.store import AMINO_ACIDS, Store

__all__ = ["KmerEvidence", "RateRatioEvidence"]

# k-mer rates (occurrences per repertoire) get this added before their log-ratio, so that
# k-mers seen a few times do not get large ratios by chance
PSEUDO_RATE = 1.0
# the attention starts at gain x the log-ratio: from a random start, a signal in 0.1% of the
# sequences was found in some folds only (docs/model.md)
PRIOR_GAIN = 4.0


class RateRatioEvidence(Evidence):
    """How much more often each word (a k-mer, a gapped k-mer) occurs in training positives
    than in negatives: the occurrences summed over each class (a sequence row counts once).
    Per sequence: the largest log-ratio of the per-repertoire rates (plus ``PSEUDO_RATE``)
    over its words. A kind says what its words are: :meth:`words`, :meth:`counts`,
    ``n_words``."""

    size = 1
    prior = (PRIOR_GAIN,)
    n_words: int

    def words(self, tokens: np.ndarray, lengths: np.ndarray) -> Iterator[tuple]:
        """Rows of one length at a time: their indices and their words' codes ``(rows, m)``."""
        raise NotImplementedError

    def counts(self, store: Store, repertoires: np.ndarray) -> Iterator[np.ndarray]:
        """Each repertoire's ``(n_words,)`` occurrence counts in turn."""
        raise NotImplementedError

    def fit(self, store: Store, repertoires: np.ndarray) -> Self:
        train = np.asarray(repertoires, dtype=np.int64)
        totals, n = self._counted(store, train, np.zeros(len(train), dtype=np.int64), 1)
        return self._set(totals[0], n[0])

    def cross_fitted(self, store: Store, train: np.ndarray, group: np.ndarray, n_groups: int):
        """As :meth:`Evidence.cross_fitted`, with each repertoire's k-mers counted once."""
        totals, n = self._counted(store, train, group, n_groups)
        all_totals, all_n = totals.sum(axis=0), n.sum(axis=0)
        self._set(all_totals, all_n)
        return [
            self.clone()._set(all_totals - t, all_n - c) for t, c in zip(totals, n, strict=True)
        ]

    def _set(self, totals: np.ndarray, n: np.ndarray) -> Self:
        """From the occurrences ``(2, n_words)`` and repertoires ``(2,)`` of each class."""
        self.positive_, self.negative_ = totals[1], totals[0]
        self.n_positive_, self.n_negative_ = int(n[1]), int(n[0])
        self._ratio = None
        return self

    def _counted(
        self, store: Store, train: np.ndarray, group: np.ndarray, n_groups: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per group ``0..n_groups-1``: the k-mer occurrences in its negatives and positives
        ``(n_groups, 2, n_words)`` and how many of each ``(n_groups, 2)``."""
        y = np.asarray(store.labels)[train].astype(np.int64)
        totals = np.zeros((n_groups, 2, self.n_words), dtype=np.int64)
        for g, label, counts in zip(group, y, self.counts(store, train), strict=True):
            totals[g, label] += counts
        n = np.zeros((n_groups, 2), dtype=np.int64)
        np.add.at(n, (group, y), 1)
        return totals, n

    def _log_ratio(self) -> np.ndarray:
        """Per k-mer log-ratio of the class rates, as float32 (the features' type: rounding
        first keeps the order, so each row's maximum is the same)."""
        if getattr(self, "_ratio", None) is None:
            rates = [
                total / max(n, 1) + PSEUDO_RATE
                for total, n in (
                    (self.positive_, self.n_positive_), (self.negative_, self.n_negative_)
                )
            ]  # fmt: skip
            self._ratio = np.log(rates[0] / rates[1]).astype(np.float32)
        return self._ratio

    def transform(self, store: Store, repertoire: int) -> np.ndarray:
        """``(n, 1)`` (0 for rows too short for any word)."""
        start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
        best = np.zeros((stop - start, 1), dtype=np.float32)
        tokens, lengths = store.tokens[start:stop], store.lengths[start:stop]
        ratio = self._log_ratio()
        for rows, codes in self.words(tokens, lengths):
            best[rows, 0] = ratio[codes].max(axis=1)
        return best


class KmerEvidence(RateRatioEvidence):
    """Rate ratios of the k-mers (contiguous)."""

    name = "kmer"

    def __init__(self, k: int = 4) -> None:
        if k < 1:
            raise InputError(f"k is a k-mer length, 1 or more; got {k}")
        self.k = k
        self.n_words = len(AMINO_ACIDS) ** k

    def words(self, tokens: np.ndarray, lengths: np.ndarray) -> Iterator[tuple]:
        return kmer_windows(tokens, lengths, self.k)

    def counts(self, store: Store, repertoires: np.ndarray) -> Iterator[np.ndarray]:
        return repertoire_kmer_counts(store, repertoires, self.k)
