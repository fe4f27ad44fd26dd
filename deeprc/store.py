"""The on-disk store that ingest writes and every later stage reads.

Layout of a store directory::

    manifest.json          options, positive label, counts, fingerprint, package version
    repertoires.tsv        one row per repertoire: index, id, label, y, n_sequences, offset, ...
    ingest_report.tsv      rows read, kept and dropped by reason, per repertoire
    sequences/part-*.parquet   kept rows, one part per repertoire, in repertoire order
    encoded/tokens.npy     (n_sequences, max_length) uint8, 0 = padding, 1..20 = amino acids
    encoded/lengths.npy    (n_sequences,) uint8
    encoded/counts.npy     (n_sequences,) int64 clone counts
    encoded/offsets.npy    (n_repertoires + 1,) int64: repertoire r owns rows
                           offsets[r]:offsets[r+1]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from deeprc.errors import InputError

__all__ = ["AMINO_ACIDS", "LOOKUP", "Store", "decode", "encode_into"]

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
# ASCII byte -> token (0 for anything that is not one of the 20 amino acids)
LOOKUP = np.zeros(256, dtype=np.uint8)
LOOKUP[np.frombuffer(AMINO_ACIDS.encode(), dtype=np.uint8)] = np.arange(1, 21, dtype=np.uint8)


def encode_into(tokens: np.ndarray, data: np.ndarray, offsets: np.ndarray) -> None:
    """Scatter concatenated ASCII residues into a C-contiguous, zeroed, padded token matrix.

    ``data`` holds the residues of ``len(offsets) - 1`` sequences back to back (as an Arrow
    string array stores them); sequence ``i`` is ``data[offsets[i]:offsets[i+1]]``. One
    vectorised scatter instead of a Python loop over sequences.
    """
    lengths = np.diff(offsets)
    row_starts = np.arange(len(lengths)) * tokens.shape[1] - (offsets[:-1] - offsets[0])
    flat = np.arange(offsets[-1] - offsets[0]) + np.repeat(row_starts, lengths)
    tokens.reshape(-1)[flat] = LOOKUP[data[offsets[0] : offsets[-1]]]


def decode(tokens: np.ndarray, length: int) -> str:
    """The amino-acid string of one encoded sequence."""
    return "".join(AMINO_ACIDS[t - 1] for t in tokens[:length])


@dataclass(frozen=True)
class Store:
    """Read access to a store; arrays are memory-mapped, never loaded whole."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        missing = [
            name
            for name in ("manifest.json", "repertoires.tsv", "encoded/offsets.npy")
            if not (self.path / name).is_file()
        ]
        if missing:
            what = "does not exist" if not self.path.exists() else f"lacks {missing}"
            raise InputError(
                f"{self.path} is not a deeprc store ({what}); make one with deeprc ingest"
            )

    @cached_property
    def manifest(self) -> dict:
        path = self.path / "manifest.json"
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path} is damaged ({exc}); ingest the store again") from None

    @cached_property
    def repertoires(self) -> pd.DataFrame:
        return pd.read_csv(
            self.path / "repertoires.tsv", sep="\t", dtype={"repertoire_id": str, "label": str}
        )

    def _array(self, name: str) -> np.ndarray:
        return np.load(self.path / "encoded" / f"{name}.npy", mmap_mode="r")

    @cached_property
    def tokens(self) -> np.ndarray:
        return self._array("tokens")

    @cached_property
    def lengths(self) -> np.ndarray:
        return self._array("lengths")

    @cached_property
    def counts(self) -> np.ndarray:
        return self._array("counts")

    @cached_property
    def offsets(self) -> np.ndarray:
        return self._array("offsets")

    @property
    def labels(self) -> np.ndarray:
        """Binary targets (1 = the positive class recorded in the manifest)."""
        return self.repertoires["y"].to_numpy()

    def sequences(self, repertoire: int) -> pd.DataFrame:
        """The kept rows of one repertoire (junction_aa, v_call, j_call, counts, ...)."""
        return pd.read_parquet(self.path / "sequences" / f"part-{repertoire:06d}.parquet")
