"""Repertoires from the memory-mapped store as the network takes them: sub-sampled batches for
training, whole repertoires in chunks for validation and prediction, each a :class:`Batch`
with the sequences' other inputs by name (deeprc.features.RowInputs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from deeprc.store import Store

__all__ = ["CHUNK", "Batch", "repertoire_batch", "repertoire_chunks", "sample_sequences"]

CHUNK = 20_000  # sequences of a repertoire embedded at once when it is scored whole

# store rows -> their other inputs by name (deeprc.features.RowInputs is one)
InputsOf = Callable[[np.ndarray | slice], dict[str, np.ndarray]]


@dataclass
class Batch:
    """Sequences as the network reads them: ``tokens`` ``(..., n, width)``, ``lengths``
    ``(..., n)`` (0: padding) and ``inputs`` by name, ``(..., n, ...)``."""

    tokens: torch.Tensor
    lengths: torch.Tensor
    inputs: dict[str, torch.Tensor] = field(default_factory=dict)

    def to(self, device: torch.device) -> Batch:
        inputs = {k: v.to(device) for k, v in self.inputs.items()}
        return Batch(self.tokens.to(device), self.lengths.to(device), inputs)

    def take(self, index: torch.Tensor) -> Batch:
        """The sequences at ``index`` ``(batch, k)`` of each repertoire of a batch."""

        def rows(x: torch.Tensor) -> torch.Tensor:
            where = index.view(*index.shape, *[1] * (x.dim() - 2))
            return x.gather(1, where.expand(-1, -1, *x.shape[2:]))

        return Batch(
            rows(self.tokens), rows(self.lengths), {k: rows(v) for k, v in self.inputs.items()}
        )


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


def repertoire_batch(store: Store, rows: list[np.ndarray], inputs: InputsOf | None = None) -> Batch:
    """One :class:`Batch` of the store's ``rows`` of each repertoire, padded with length-0
    rows, with their ``inputs`` (the rows' other inputs, by name)."""
    n = max(len(r) for r in rows)
    width = store.tokens.shape[1]
    tokens = np.zeros((len(rows), n, width), dtype=np.uint8)
    lengths = np.zeros((len(rows), n), dtype=np.int64)
    side: dict[str, np.ndarray] = {}
    for b, r in enumerate(rows):
        tokens[b, : len(r)] = store.tokens[r]
        lengths[b, : len(r)] = store.lengths[r]
        for name, values in (inputs(r) if inputs is not None else {}).items():
            if name not in side:
                side[name] = np.zeros((len(rows), n, *values.shape[1:]), dtype=values.dtype)
            side[name][b, : len(r)] = values
    return Batch(
        torch.from_numpy(tokens), torch.from_numpy(lengths),
        {k: torch.from_numpy(v) for k, v in side.items()},
    )  # fmt: skip


def repertoire_chunks(
    store: Store,
    repertoire: int,
    chunk: int = CHUNK,
    inputs: InputsOf | None = None,
    rows: np.ndarray | None = None,
) -> Iterator[Batch]:
    """One whole repertoire (or its store ``rows``, sorted) as :class:`Batch` es of ``(n,
    width)`` tokens, ``(n,)`` lengths and the rows' ``inputs``, ``chunk`` rows at a time
    (memory does not grow with the repertoire)."""
    start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
    n = stop - start if rows is None else len(rows)
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        where = slice(start + lo, start + hi) if rows is None else rows[lo:hi]
        side = inputs(where) if inputs is not None else {}
        yield Batch(
            torch.from_numpy(store.tokens[where]),  # a copy already (EncodedArray)
            torch.from_numpy(np.asarray(store.lengths[where], dtype=np.int64)),
            {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in side.items()},
        )
