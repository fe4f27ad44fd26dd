"""Clonotype-level evidence for the model, from the training repertoires of a fold only.

A public clonotype (the same junction with the same V and J genes in many people) is the signal
Emerson's burden test finds, and one a sequence encoder cannot see: a sequence's own residues
do not say how many people carry it. So each sequence gets two numbers: how many training
positives and how many training negatives carry its clonotype. They are counted on the
training repertoires of the fold and nothing else, and a training repertoire never counts
itself (leave one out), so that its sequences look the way a new repertoire's will.

Only clonotypes carried by at least ``MIN_CARRIERS`` repertoires besides the one scored count:
rarer ones say nothing about a class, and the table kept with the model stays small.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from deeprc.store import Store, part_path

__all__ = ["MIN_CARRIERS", "ClonotypeEvidence", "clonotype_keys"]

MIN_CARRIERS = 2


def clonotype_keys(store: Store, repertoire: int) -> np.ndarray:
    """Each row's clonotype of one repertoire: junction, V gene and J gene, joined by tabs."""
    junctions = pq.read_table(part_path(store.path, repertoire), columns=["junction_aa"])
    start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
    genes = np.asarray(store.genes[start:stop], dtype=np.int64)
    v = np.asarray(store.gene_names["v"], dtype=object)[genes[:, 0]]
    j = np.asarray(store.gene_names["j"], dtype=object)[genes[:, 1]]
    junction = junctions["junction_aa"].to_numpy(zero_copy_only=False).astype(object)
    return junction + "\t" + v + "\t" + j


@dataclass
class ClonotypeEvidence:
    """Public clonotypes of the training repertoires and how many positives and negatives
    carry each; saved with the model (plain lists, so the model file loads safely)."""

    keys: list[str]
    positive: list[int]
    negative: list[int]

    @classmethod
    def fit(cls, store: Store, train: np.ndarray) -> ClonotypeEvidence:
        carried = [pd.unique(clonotype_keys(store, int(r))) for r in train]
        owner = np.repeat(np.asarray(store.labels)[train], [len(c) for c in carried])
        codes, uniques = pd.factorize(np.concatenate(carried) if carried else np.array([]))
        positive = np.bincount(codes, weights=owner, minlength=len(uniques)).astype(np.int64)
        total = np.bincount(codes, minlength=len(uniques))
        kept = np.flatnonzero(total >= MIN_CARRIERS)
        return cls(
            keys=[str(k) for k in uniques[kept]],
            positive=positive[kept].tolist(),
            negative=(total - positive)[kept].tolist(),
        )

    @cached_property
    def _index(self) -> pd.Index:
        return pd.Index(self.keys)

    def features(self, store: Store, repertoire: int, *, own_label: int | None = None):
        """``(n, 2)`` float32 for one repertoire's rows: log(1 + positives) and log(1 +
        negatives) carrying each row's clonotype. ``own_label``: the repertoire is one of the
        training repertoires (with this label) and does not count itself."""
        keys = clonotype_keys(store, repertoire)
        index = self._index.get_indexer(keys)
        known = index >= 0
        counts = np.zeros((len(keys), 2), dtype=np.float64)
        counts[known, 0] = np.asarray(self.positive, dtype=np.float64)[index[known]]
        counts[known, 1] = np.asarray(self.negative, dtype=np.float64)[index[known]]
        if own_label is not None:
            counts[known, 1 - own_label] -= 1  # column 0 counts positives
        counts[counts.sum(axis=1) < MIN_CARRIERS] = 0
        return np.log1p(counts).astype(np.float32)

    def store_features(self, store: Store, train: np.ndarray, repertoires: np.ndarray):
        """``(n_store_rows, 2)`` with the rows of ``repertoires`` filled (training ones leave
        themselves out) and the others zero: what a fold's training and validation read."""
        out = np.zeros((int(store.offsets[-1]), 2), dtype=np.float32)
        training = set(np.asarray(train).tolist())
        for r in np.asarray(repertoires).tolist():
            own = int(store.labels[r]) if r in training else None
            start, stop = int(store.offsets[r]), int(store.offsets[r + 1])
            out[start:stop] = self.features(store, r, own_label=own)
        return out
