"""Gapped k-mers: four residues spread over six positions (``CA..SF``, ``C.A.SF``, ...), the
patterns that the winning recipes of the 2025 AIRR-ML benchmark counted, and which repertoires
carry each. The first and last of the six positions are fixed, two of the four inner ones too:
6 masks x 20^4 residues = 960,000 patterns, so a repertoire's presence is a bitmap of 120 kB
whatever its size."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import combinations

import numpy as np

from deeprc.features.association import fisher_greater
from deeprc.features.kmers import kmer_windows
from deeprc.progress import tracked
from deeprc.store import AMINO_ACIDS, Store

__all__ = [
    "N_PATTERNS", "SPAN", "pattern_name", "pattern_p_values", "pattern_windows", "presence",
    "repertoire_pattern_counts",
]  # fmt: skip

SPAN = 6
GAP = "."
# the fixed positions of each mask: first and last, and two of the four inner ones
MASKS = tuple((0, a, b, SPAN - 1) for a, b in combinations(range(1, SPAN - 1), 2))
_BASE = len(AMINO_ACIDS)
N_PATTERNS = len(MASKS) * _BASE**4
_CHUNK_ROWS = 200_000  # rows of a repertoire read at once


def pattern_windows(tokens: np.ndarray, lengths: np.ndarray) -> Iterator[tuple]:
    """The rows of one length at a time (those of six residues or more): their indices and
    every gapped pattern of each (each window of six residues under every mask), as integers
    ``mask * 20^4 + residues in base 20``, ``(rows, 6 * windows)``."""
    for rows, codes in kmer_windows(tokens, lengths, 1):  # one residue per window: 0..19
        length = codes.shape[1]
        if length < SPAN:
            continue
        starts = length - SPAN + 1
        patterns = np.empty((len(rows), len(MASKS), starts), dtype=np.int64)
        for m, fixed in enumerate(MASKS):
            patterns[:, m] = m * _BASE**4
            for place, offset in enumerate(fixed):
                patterns[:, m] += codes[:, offset : offset + starts] * _BASE ** (3 - place)
        yield rows, patterns.reshape(len(rows), -1)


def _chunks(store: Store, r: int) -> Iterator[np.ndarray]:
    """One repertoire's patterns, chunk by chunk of its rows."""
    start, stop = int(store.offsets[r]), int(store.offsets[r + 1])
    for lo in range(start, stop, _CHUNK_ROWS):
        hi = min(lo + _CHUNK_ROWS, stop)
        for _, codes in pattern_windows(store.tokens[lo:hi], store.lengths[lo:hi]):
            yield codes.ravel()


def repertoire_pattern_counts(store: Store, repertoires: np.ndarray) -> Iterator[np.ndarray]:
    """Each repertoire's ``(N_PATTERNS,)`` occurrence counts in turn (a sequence row counts
    each of its windows; memory: one repertoire)."""
    for r in tracked(np.asarray(repertoires, dtype=np.int64), "gapped k-mer counts",
                     "repertoires"):  # fmt: skip
        counts = np.zeros(N_PATTERNS, dtype=np.int64)
        for codes in _chunks(store, int(r)):
            counts += np.bincount(codes, minlength=N_PATTERNS)
        yield counts


def presence(store: Store, repertoires: np.ndarray) -> np.ndarray:
    """``(n_repertoires, N_PATTERNS / 8)`` uint8: which patterns each repertoire carries, as
    packed bits (memory: one repertoire's rows at a time)."""
    packed = np.zeros((len(repertoires), N_PATTERNS // 8), dtype=np.uint8)
    for i, r in enumerate(tracked(np.asarray(repertoires, dtype=np.int64), "gapped k-mers",
                                  "repertoires")):  # fmt: skip
        seen = np.zeros(N_PATTERNS, dtype=bool)
        for codes in _chunks(store, int(r)):
            seen[codes] = True
        packed[i] = np.packbits(seen)
    return packed


def pattern_p_values(
    bits: np.ndarray, y: np.ndarray, min_positive: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pattern's one-sided Fisher p-value (carried more often by positives) over the
    repertoires of :func:`presence` ``bits`` and labels ``y`` (1 for patterns carried by fewer
    than ``min_positive`` positives: not tested), and its positive and negative carriers."""
    carriers = [np.zeros(N_PATTERNS, dtype=np.int64) for _ in (0, 1)]
    for row, label in zip(bits, y, strict=True):
        carriers[label] += np.unpackbits(row).astype(np.int64)
    negative, positive = carriers
    tested = positive >= min_positive
    p = np.ones(N_PATTERNS)
    n_positive = int(y.sum())
    p[tested] = fisher_greater(positive[tested], negative[tested], n_positive, len(y) - n_positive)
    return p, positive, negative


def pattern_name(code: int) -> str:
    """``CA..SF`` for a pattern's code."""
    mask, residues = divmod(int(code), _BASE**4)
    letters = [GAP] * SPAN
    for place, offset in enumerate(MASKS[mask]):
        letters[offset] = AMINO_ACIDS[residues // _BASE ** (3 - place) % _BASE]
    return "".join(letters)
