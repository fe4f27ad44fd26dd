"""The V and J gene vocabulary a model learned vectors for, mapped by name onto any store."""

from __future__ import annotations

import numpy as np

from deeprc.store import Store

__all__ = ["GeneVocabulary"]

KEYS = ("v", "j")


class GeneVocabulary:
    """The V and J gene names of the store a model was trained on (index 0: no call). Another
    store's genes map to them by name; a gene the model never saw reads as no call."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = {key: list(names[key]) for key in KEYS}

    @property
    def sizes(self) -> tuple[int, int]:
        return len(self.names["v"]), len(self.names["j"])

    def table(self, store: Store) -> np.ndarray:
        """``(2, n_store_genes)``: the vocabulary's index of each of the store's V (row 0) and
        J (row 1) genes."""
        width = max(len(store.gene_names["v"]), len(store.gene_names["j"]))
        table = np.zeros((2, width), dtype=np.int64)
        for row, key in enumerate(KEYS):
            index = {name: i for i, name in enumerate(self.names[key])}
            table[row, : len(store.gene_names[key])] = [
                index.get(g, 0) for g in store.gene_names[key]
            ]
        return table

    def unknown(self, store: Store, repertoires: np.ndarray) -> dict[str, dict]:
        """How many of the ``repertoires``' sequences carry a V or J gene the vocabulary lacks,
        by gene name. Counted per store gene, repertoire by repertoire: memory holds the
        vocabulary only."""
        table = self.table(store)
        counts = [np.zeros(len(store.gene_names[key]), dtype=np.int64) for key in KEYS]
        for r in np.asarray(repertoires).tolist():
            genes = store.genes[store.offsets[r] : store.offsets[r + 1]]  # one read: V and J
            for column, counted in enumerate(counts):
                counted += np.bincount(genes[:, column], minlength=len(counted))
        found = {}
        for column, (key, counted) in enumerate(zip(KEYS, counts, strict=True)):
            names = store.gene_names[key]
            unseen = (table[column, : len(names)] == 0) & (counted > 0)
            unseen[0] = False  # index 0: the store has no call
            found[key] = {names[i]: int(counted[i]) for i in np.flatnonzero(unseen)}
        return found


def gene_indices(store: Store, rows: np.ndarray | slice, table: np.ndarray) -> np.ndarray:
    """``(n, 2)`` V and J indices of a vocabulary (through its :meth:`GeneVocabulary.table`)
    for the store's ``rows``."""
    genes = np.asarray(store.genes[rows], dtype=np.int64)
    return np.stack([table[0, genes[:, 0]], table[1, genes[:, 1]]], axis=1)
