"""Batches of sub-sampled repertoires from the memory-mapped store."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from deeprc.store import Store

__all__ = ["repertoire_batch", "sample_sequences"]


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
