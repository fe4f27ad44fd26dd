"""K-mers of junctions as integers in base 20, and their occurrences per repertoire: what the
k-mer baselines and the k-mer evidence count."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import sparse

from deeprc.progress import tracked
from deeprc.store import AMINO_ACIDS, Store

__all__ = ["kmer_counts", "kmer_name", "kmer_windows", "repertoire_kmer_counts"]

_BASE = len(AMINO_ACIDS)
_CHUNK_ROWS = 200_000  # rows of a repertoire encoded at once: bounds memory on huge repertoires


def kmer_windows(
    tokens: np.ndarray, lengths: np.ndarray, k: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows of one length at a time (those of ``k`` residues or more): their indices and
    every k-mer as an integer in base 20, ``(rows, length - k + 1)``.

    Rows of one length share their windows, so none is spent on the padding (on TRB junctions
    half of a padded matrix's windows run into it).
    """
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    cuts = np.flatnonzero(np.diff(lengths[order])) + 1
    dtype = np.int32 if _BASE**k < 2**31 else np.int64
    for rows in np.split(order, cuts):
        length = int(lengths[rows[0]]) if len(rows) else 0
        if length < k:
            continue
        residues = np.asarray(tokens[rows, :length], dtype=dtype) - 1  # 0..19
        n_windows = length - k + 1
        codes = residues[:, :n_windows].copy()
        for offset in range(1, k):
            codes *= _BASE
            codes += residues[:, offset : offset + n_windows]
        yield rows, codes


def repertoire_kmer_counts(store: Store, repertoires: np.ndarray, k: int) -> Iterator[np.ndarray]:
    """Each repertoire's ``(20**k,)`` k-mer occurrence counts in turn (memory: one repertoire).

    Each sequence row counts once whatever its duplicate_count: clone sizes mostly reflect
    sampling and expansion noise, while the signal is which sequences are there.
    """
    n_columns = _BASE**k
    for r in tracked(np.asarray(repertoires, dtype=np.int64), f"{k}-mer counts", "repertoires"):
        start, stop = int(store.offsets[r]), int(store.offsets[r + 1])
        counts = np.zeros(n_columns, dtype=np.int64)
        for lo in range(start, stop, _CHUNK_ROWS):
            hi = min(lo + _CHUNK_ROWS, stop)
            for _, codes in kmer_windows(store.tokens[lo:hi], store.lengths[lo:hi], k):
                counts += np.bincount(codes.ravel(), minlength=n_columns)
        yield counts


def kmer_counts(store: Store, repertoires: np.ndarray, k: int) -> sparse.csr_matrix:
    """``(len(repertoires), 20**k)`` k-mer occurrence counts, one row per repertoire
    (:func:`repertoire_kmer_counts`)."""
    indptr, indices, data = [0], [], []
    for counts in repertoire_kmer_counts(store, repertoires, k):
        present = np.flatnonzero(counts)
        indices.append(present)
        data.append(counts[present].astype(np.float64))
        indptr.append(indptr[-1] + len(present))
    data = np.concatenate([np.zeros(0), *data])
    indices = np.concatenate([np.zeros(0, dtype=np.int64), *indices])
    return sparse.csr_matrix((data, indices, np.array(indptr)), shape=(len(indptr) - 1, _BASE**k))


def kmer_name(code: int, k: int) -> str:
    letters = []
    for _ in range(k):
        code, digit = divmod(int(code), _BASE)
        letters.append(AMINO_ACIDS[digit])
    return "".join(reversed(letters))
