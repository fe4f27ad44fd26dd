"""Clonotype evidence: how many training positives and negatives carry a sequence's clonotype."""

from __future__ import annotations

from typing import Self

import numpy as np

from deeprc.features.clonotypes import carrier_counts, find_clonotypes
from deeprc.features.evidence import Evidence
from deeprc.store import Store

__all__ = ["ClonotypeEvidence"]

# a clonotype counts when carried by at least this many training repertoires: rarer ones say
# nothing about a class, and the table kept with the model stays small
MIN_CARRIERS = 2
# carriers are read per this many repertoires of the class
CARRIER_SCALE = 100.0
PRIOR_GAIN = 4.0  # see Evidence.prior


class ClonotypeEvidence(Evidence):
    """Public clonotypes of the training repertoires (:mod:`deeprc.features.clonotypes` hashes)
    and how many positives and negatives carry each. Per sequence: log(1 + c) of the carriers
    of its clonotype per ``CARRIER_SCALE`` positives, and the same for negatives."""

    name = "clonotype"
    size = 2
    prior = (PRIOR_GAIN, -PRIOR_GAIN)

    def fit(self, store: Store, repertoires: np.ndarray) -> Self:
        self.hashes_, self.positive_, self.negative_ = carrier_counts(
            store,
            repertoires,
            lambda pos, neg: pos + neg >= MIN_CARRIERS,
            what="clonotype evidence",
        )
        y = np.asarray(store.labels)[np.asarray(repertoires, dtype=np.int64)]
        self.n_positive_, self.n_negative_ = int((y == 1).sum()), int((y == 0).sum())
        return self

    def transform(self, store: Store, repertoire: int) -> np.ndarray:
        index = find_clonotypes(self.hashes_, store, repertoire)
        known = index >= 0
        rates = np.zeros((len(index), 2), dtype=np.float64)
        for column, (carriers, n) in enumerate(
            ((self.positive_, self.n_positive_), (self.negative_, self.n_negative_))
        ):
            per_repertoire = carriers / max(n, 1)
            rates[known, column] = CARRIER_SCALE * per_repertoire[index[known]]
        return np.log1p(rates).astype(np.float32)
