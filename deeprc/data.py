"""Repertoires from the memory-mapped store as the model takes them: sub-sampled batches for
training, whole repertoires in chunks for validation and prediction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch

from deeprc.model import DeepRC
from deeprc.store import Store

__all__ = ["repertoire_batch", "repertoire_chunks", "sample_sequences", "score_repertoire"]


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


def repertoire_batch(store: Store, rows: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``(batch, n, width)`` and lengths ``(batch, n)``, padded with length-0 rows."""
    n = max(len(r) for r in rows)
    width = store.tokens.shape[1]
    tokens = np.zeros((len(rows), n, width), dtype=np.uint8)
    lengths = np.zeros((len(rows), n), dtype=np.int64)
    for b, r in enumerate(rows):
        tokens[b, : len(r)] = store.tokens[r]
        lengths[b, : len(r)] = store.lengths[r]
    return torch.from_numpy(tokens), torch.from_numpy(lengths)


def repertoire_chunks(
    store: Store, repertoire: int, chunk: int = 20_000
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One whole repertoire as ``(n, width)`` tokens and ``(n,)`` lengths, ``chunk`` rows at a
    time (memory does not grow with the repertoire)."""
    start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
    for lo in range(start, stop, chunk):
        hi = min(lo + chunk, stop)
        tokens = torch.from_numpy(np.array(store.tokens[lo:hi]))
        yield tokens, torch.from_numpy(np.asarray(store.lengths[lo:hi], dtype=np.int64))


def score_repertoire(
    model: DeepRC, store: Store, repertoire: int, *, chunk: int = 20_000
) -> tuple[float, np.ndarray, np.ndarray]:
    """Logit of one whole repertoire, its attention ``(heads, n_sequences)`` and the attention
    scores before the softmax (see :meth:`DeepRC.score_bag`)."""
    logit, attention, scores = model.score_bag(lambda: repertoire_chunks(store, repertoire, chunk))
    return logit, attention.cpu().numpy(), scores.cpu().numpy()
