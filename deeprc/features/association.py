"""Which clonotypes go with the positive class: Fisher's exact test on how many positive and
negative training repertoires carry each (Emerson et al. 2017), for the burden baseline and the
burden evidence alike."""

from __future__ import annotations

import numpy as np
from scipy.stats import hypergeom

from deeprc.features.clonotypes import carrier_counts
from deeprc.store import Store

__all__ = ["associated_clonotypes", "fisher_greater"]


def fisher_greater(
    with_positive: np.ndarray, with_negative: np.ndarray, n_positive: int, n_negative: int
) -> np.ndarray:
    """One-sided Fisher's exact p-values (enriched in positives), vectorised over features.

    For the table ``[[with_positive, with_negative], [n_positive - with_positive,
    n_negative - with_negative]]`` this is ``P(X >= with_positive)`` for X hypergeometric: of
    all repertoires, ``with_positive + with_negative`` carry the feature, drawn from a
    population holding ``n_positive`` positives.
    """
    with_positive = np.asarray(with_positive, dtype=np.int64)
    carriers = with_positive + np.asarray(with_negative, dtype=np.int64)
    return hypergeom.sf(with_positive - 1, n_positive + n_negative, n_positive, carriers)


def associated_clonotypes(
    store: Store, repertoires: np.ndarray, *, p_threshold: float, min_positive: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The clonotypes of the training ``repertoires`` carried by at least ``min_positive``
    positives and enriched in them at ``p < p_threshold``: sorted hashes, their positive and
    negative carriers and p-values; and how many clonotypes were tested."""
    hashes, pos, neg = carrier_counts(store, repertoires, lambda pos, neg: pos >= min_positive)
    y = np.asarray(store.labels)[np.asarray(repertoires, dtype=np.int64)]
    n_positive = int((y == 1).sum())
    p = fisher_greater(pos, neg, n_positive, len(y) - n_positive)
    chosen = p < p_threshold
    return hashes[chosen], pos[chosen], neg[chosen], p[chosen], len(hashes)
