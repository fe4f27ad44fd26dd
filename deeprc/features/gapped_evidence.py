"""Gapped k-mer evidence: how much more often a sequence's gapped k-mers (four residues over
six positions, deeprc.features.gapped) occur in training positives."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from deeprc.features.gapped import N_PATTERNS, pattern_windows, repertoire_pattern_counts
from deeprc.features.kmer_evidence import RateRatioEvidence
from deeprc.store import Store

__all__ = ["GappedEvidence"]


class GappedEvidence(RateRatioEvidence):
    """Rate ratios of the gapped k-mers: a motif with wildcards, or with substitutions that
    break every contiguous 4-mer, still leaves whole patterns of four residues."""

    name = "gapped"
    n_words = N_PATTERNS

    def words(self, tokens: np.ndarray, lengths: np.ndarray) -> Iterator[tuple]:
        return pattern_windows(tokens, lengths)

    def counts(self, store: Store, repertoires: np.ndarray) -> Iterator[np.ndarray]:
        return repertoire_pattern_counts(store, repertoires)
