"""Repertoires from the memory-mapped store as the model takes them: sub-sampled batches for
training, whole repertoires in chunks for validation and prediction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch

from deeprc.evidence import evidence_features
from deeprc.model import DeepRC
from deeprc.store import Store

__all__ = [
    "gene_map",
    "model_inputs",
    "repertoire_batch",
    "repertoire_chunks",
    "sample_sequences",
    "score_repertoire",
    "sequence_genes",
    "unknown_genes",
]


def sample_sequences(
    store: Store,
    repertoire: int,
    n: int,
    rng: np.random.Generator,
    sampling: Literal["uniform", "count"] = "uniform",
) -> np.ndarray:
    """Sorted global row indices of up to ``n`` distinct sequences of one repertoire.

    ``count`` draws clonotypes with probability proportional to their clone count (without
    replacement), ``uniform`` ignores counts. Sorted indices keep memory-mapped reads local.
    """
    start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
    size = stop - start
    if size <= n:
        return np.arange(start, stop)
    p = None
    if sampling == "count":
        counts = np.asarray(store.counts[start:stop], dtype=np.float64)
        p = counts / counts.sum()
    return start + np.sort(rng.choice(size, n, replace=False, p=p))


def gene_map(model: DeepRC, store: Store) -> np.ndarray | None:
    """``(2, n_store_genes)``: the model's index of each of the store's V (row 0) and J
    (row 1) genes, by name (0, no call, for a gene the model never saw); None for a model that
    reads no genes."""
    if model.genes is None:
        return None
    width = max(len(store.gene_names["v"]), len(store.gene_names["j"]))
    table = np.zeros((2, width), dtype=np.int64)
    for row, key in enumerate(("v", "j")):
        index = {name: i for i, name in enumerate(model.genes.names[key])}
        table[row, : len(store.gene_names[key])] = [index.get(g, 0) for g in store.gene_names[key]]
    return table


def unknown_genes(model: DeepRC, store: Store, repertoires: np.ndarray) -> dict[str, dict]:
    """How many of the ``repertoires``' sequences carry a V or J gene the model never saw
    (:func:`gene_map` reads it as no call), by gene name; empty for a model without genes.
    Counted per store gene, repertoire by repertoire: memory holds the vocabulary only."""
    table = gene_map(model, store)
    if table is None:
        return {}
    keys = ("v", "j")
    counts = [np.zeros(len(store.gene_names[key]), dtype=np.int64) for key in keys]
    for r in np.asarray(repertoires).tolist():
        genes = store.genes[store.offsets[r] : store.offsets[r + 1]]  # one read: V and J
        for column, counted in enumerate(counts):
            counted += np.bincount(genes[:, column], minlength=len(counted))
    found = {}
    for column, (key, counted) in enumerate(zip(keys, counts, strict=True)):
        names = store.gene_names[key]
        unseen = (table[column, : len(names)] == 0) & (counted > 0)
        unseen[0] = False  # index 0: the store has no call
        found[key] = {names[i]: int(counted[i]) for i in np.flatnonzero(unseen)}
    return found


def sequence_genes(
    store: Store, rows: np.ndarray | slice, table: np.ndarray | None
) -> np.ndarray | None:
    """``(n, 2)`` V and J indices of the model (through a :func:`gene_map` ``table``) for the
    store's ``rows``; None without a table."""
    if table is None:
        return None
    genes = np.asarray(store.genes[rows], dtype=np.int64)
    return np.stack([table[0, genes[:, 0]], table[1, genes[:, 1]]], axis=1)


def repertoire_batch(
    store: Store,
    rows: list[np.ndarray],
    table: np.ndarray | None = None,
    evidence: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Tokens ``(batch, n, width)``, lengths ``(batch, n)``, padded with length-0 rows; with
    a :func:`gene_map` ``table`` the genes ``(batch, n, 2)``, and with ``evidence`` (one row
    per store row, see :mod:`deeprc.evidence`) its rows (else None)."""
    n = max(len(r) for r in rows)
    width = store.tokens.shape[1]
    tokens = np.zeros((len(rows), n, width), dtype=np.uint8)
    lengths = np.zeros((len(rows), n), dtype=np.int64)
    genes = np.zeros((len(rows), n, 2), dtype=np.int64) if table is not None else None
    found = None if evidence is None else np.zeros((len(rows), n, evidence.shape[1]), np.float32)
    for b, r in enumerate(rows):
        tokens[b, : len(r)] = store.tokens[r]
        lengths[b, : len(r)] = store.lengths[r]
        if genes is not None:
            genes[b, : len(r)] = sequence_genes(store, r, table)
        if found is not None:
            found[b, : len(r)] = evidence[r]
    side = [torch.from_numpy(x) if x is not None else None for x in (genes, found)]
    return torch.from_numpy(tokens), torch.from_numpy(lengths), *side


def repertoire_chunks(
    store: Store,
    repertoire: int,
    chunk: int = 20_000,
    table: np.ndarray | None = None,
    evidence: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]]:
    """One whole repertoire (or its store ``rows``, sorted) as ``(n, width)`` tokens, ``(n,)``
    lengths, ``(n, 2)`` genes (with a :func:`gene_map` ``table``, else None) and ``(n, m)``
    evidence (one row per sequence read, else None), ``chunk`` rows at a time (memory does not
    grow with the repertoire)."""
    start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
    n = stop - start if rows is None else len(rows)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        where = slice(start + lo, start + hi) if rows is None else rows[lo:hi]
        tokens = torch.from_numpy(store.tokens[where])  # a copy already (EncodedArray)
        genes = sequence_genes(store, where, table)
        yield (
            tokens,
            torch.from_numpy(np.asarray(store.lengths[where], dtype=np.int64)),
            torch.from_numpy(genes) if genes is not None else None,
            torch.from_numpy(evidence[lo:hi]) if evidence is not None else None,
        )


def model_inputs(model: DeepRC, store: Store, repertoire: int):
    """What a model reads beside the tokens, for scoring one repertoire of ``store``: its
    :func:`gene_map` table and the repertoire's clonotype evidence (None where it reads none)."""
    evidence = evidence_features(model.evidence, store, repertoire) if model.evidence_size else None
    return gene_map(model, store), evidence


def score_repertoire(
    model: DeepRC, store: Store, repertoire: int, *, chunk: int = 20_000
) -> tuple[float, np.ndarray, np.ndarray]:
    """Calibrated log-odds of one whole repertoire, its attention ``(heads, n_sequences)`` and
    the attention scores before the softmax (see :meth:`DeepRC.score_bag`)."""
    table, evidence = model_inputs(model, store, repertoire)
    logit, attention, scores = model.score_bag(
        lambda: repertoire_chunks(store, repertoire, chunk, table, evidence)
    )
    return logit, attention.cpu().numpy(), scores.cpu().numpy()
