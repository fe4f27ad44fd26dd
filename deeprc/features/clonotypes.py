"""Clonotypes (junction, V gene, J gene) as 64-bit hashes, and their carriers counted on disk.

How many training positives and negatives carry each clonotype is what Emerson's burden test
and the clonotype evidence read. A CMV-sized cohort holds ~2 x 10^8 clonotypes: as Python
strings, tens of GiB; as hashes, 8 bytes each, written to bucket files by their top bits and
counted one bucket at a time, so memory stays flat in the cohort size while the disk holds
8 bytes per distinct clonotype of each repertoire. A hash reads only the junction's residues
and the gene names (allele dropped), so it is the same in every store: a model file keeps
hashes and reads them in another store. Two clonotypes share a hash with probability about
n^2 / 2^65 for n distinct ones (1e-3 at n = 2 x 10^8), far below the tests' own noise.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from deeprc.progress import tracked
from deeprc.store import Store, part_path

__all__ = ["carrier_counts", "clonotype_hashes", "clonotype_names", "find_clonotypes"]

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_BUCKET_HASHES = 4_000_000  # hashes counted at once (32 MB); the bucket count follows


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: every input bit reaches every output bit."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@lru_cache(maxsize=4096)
def _name_hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def _gene_hashes(store: Store, key: str) -> np.ndarray:
    return np.array([_name_hash(n) for n in store.gene_names[key]], dtype=np.uint64)


def clonotype_hashes(store: Store, repertoire: int) -> np.ndarray:
    """``(n,)`` uint64: each row's clonotype of one repertoire (FNV-1a over the residues, then
    the V and J gene names' hashes, mixed)."""
    start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
    tokens = np.asarray(store.tokens[start:stop])
    h = np.full(len(tokens), _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in tokens.T:
            residue = column.astype(np.uint64)
            h = np.where(column > 0, (h ^ residue) * _FNV_PRIME, h)  # padding is not hashed
        genes = np.asarray(store.genes[start:stop], dtype=np.int64)
        h = _mix(h ^ _gene_hashes(store, "v")[genes[:, 0]])
        return _mix(h ^ _gene_hashes(store, "j")[genes[:, 1]])


def carrier_counts(
    store: Store,
    repertoires: np.ndarray,
    keep: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    what: str = "clonotypes",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clonotypes of the (labelled) ``repertoires`` for which ``keep(positive, negative)``
    holds, with how many positive and negative repertoires carry each: sorted uint64 hashes
    and two int64 arrays.

    Each repertoire's distinct hashes go to ``2^b`` bucket files per class (b from the
    cohort's rows) in a temporary directory (``TMPDIR``); each bucket is then counted alone.
    """
    repertoires = np.asarray(repertoires, dtype=np.int64)
    y = np.asarray(store.labels)[repertoires]
    rows = int(np.diff(store.offsets)[repertoires].sum())
    bits = max(0, math.ceil(math.log2(max(rows / _BUCKET_HASHES, 1))))
    found = []
    with tempfile.TemporaryDirectory(prefix="deeprc-carriers-") as tmp:
        paths = [[Path(tmp) / f"{label}_{b}.u64" for b in range(2**bits)] for label in (0, 1)]
        with ExitStack() as stack:
            files = [[stack.enter_context(open(p, "wb")) for p in by_label] for by_label in paths]
            for r, label in zip(tracked(repertoires, what, "repertoires"), y, strict=True):
                distinct = np.unique(clonotype_hashes(store, int(r)))
                bucket = distinct >> np.uint64(64 - bits) if bits else distinct * np.uint64(0)
                edges = np.searchsorted(bucket, np.arange(2**bits + 1, dtype=np.uint64))
                for b in range(2**bits):
                    distinct[edges[b] : edges[b + 1]].tofile(files[int(label)][b])
        for b in range(2**bits):
            negative, positive = (np.fromfile(paths[label][b], dtype=np.uint64) for label in (0, 1))
            hashes, carriers = np.unique(np.concatenate([positive, negative]), return_counts=True)
            pos = np.zeros(len(hashes), dtype=np.int64)
            values, counts = np.unique(positive, return_counts=True)
            pos[np.searchsorted(hashes, values)] = counts
            neg = carriers - pos
            chosen = keep(pos, neg)
            found.append((hashes[chosen], pos[chosen], neg[chosen]))
    if not found:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return tuple(np.concatenate(parts) for parts in zip(*found, strict=True))


def clonotype_names(store: Store, repertoires: np.ndarray, hashes: np.ndarray) -> dict[int, tuple]:
    """``{hash: (junction_aa, v_call, j_call)}`` for the clonotypes of ``hashes`` found in the
    repertoires (the calls as the file gave them, of the first row found)."""
    wanted, names = np.sort(np.asarray(hashes, dtype=np.uint64)), {}
    for r in np.asarray(repertoires, dtype=np.int64).tolist():
        if len(names) == len(wanted):
            break
        h = clonotype_hashes(store, r)
        rows = np.flatnonzero(np.isin(h, wanted))
        if not len(rows):
            continue
        table = pq.read_table(part_path(store.path, r), columns=["junction_aa", "v_call", "j_call"])
        picked = table.take(rows).to_pylist()
        for key, row in zip(h[rows].tolist(), picked, strict=True):
            names.setdefault(key, (row["junction_aa"], row["v_call"] or "", row["j_call"] or ""))
    return names


def find_clonotypes(table: np.ndarray, store: Store, repertoire: int) -> np.ndarray:
    """Each of one repertoire's rows' index in the sorted uint64 hashes ``table``, -1 where
    its clonotype is not there."""
    rows = clonotype_hashes(store, repertoire)
    if not len(table):
        return np.full(len(rows), -1, dtype=np.int64)
    where = np.searchsorted(table, rows).clip(max=len(table) - 1)
    return np.where(table[where] == rows, where, -1)
