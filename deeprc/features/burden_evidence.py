"""Burden evidence: is a sequence's clonotype one that Emerson's test calls associated?"""

from __future__ import annotations

from typing import Self

import numpy as np

from deeprc.errors import InputError
from deeprc.features.association import associated_clonotypes
from deeprc.features.clonotypes import find_clonotypes
from deeprc.features.evidence import Evidence, two_of_each_class
from deeprc.store import Store

__all__ = ["AssociationEvidence", "BurdenEvidence"]

# an associated clonotype starts at attention score 8 (e^8 ~ 3,000 x any other sequence), so
# that a handful of them among 10,000 sequences moves the heads' log-mean-exp: a soft burden
PRIOR_GAIN = 8.0


class AssociationEvidence(Evidence):
    """Base of the kinds that mark each sequence carrying something a one-sided Fisher test on
    the training repertoires calls associated at ``p_threshold`` (1, else 0): the attention's
    log-mean-exp over a repertoire then grows with its burden, and the output starts as it."""

    size = 1
    prior = (PRIOR_GAIN,)
    starts_as_count = True

    def __init__(self, p_threshold: float) -> None:
        if not 0.0 < p_threshold < 1.0:
            raise InputError(f"p_threshold is a p-value threshold in (0, 1); got {p_threshold}")
        self.p_threshold = p_threshold


class BurdenEvidence(AssociationEvidence):
    """The clonotypes Emerson's burden test calls associated on the training repertoires
    (:func:`deeprc.features.association.associated_clonotypes` at ``p_threshold``)."""

    name = "burden"

    def __init__(self, p_threshold: float = 1e-4) -> None:
        super().__init__(p_threshold)

    def fit(self, store: Store, repertoires: np.ndarray) -> Self:
        two_of_each_class(
            np.asarray(store.labels)[np.asarray(repertoires, dtype=np.int64)], "burden evidence"
        )
        self.hashes_ = associated_clonotypes(store, repertoires, p_threshold=self.p_threshold)[0]
        return self

    def transform(self, store: Store, repertoire: int) -> np.ndarray:
        found = find_clonotypes(self.hashes_, store, repertoire) >= 0
        return found[:, None].astype(np.float32)
