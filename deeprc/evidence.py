"""Evidence from the training repertoires of a fold, given to the model beside each sequence.

Some signals a sequence encoder cannot see from one sequence: how many people carry the same
clonotype (the public clonotypes that Emerson's burden test finds), or how much more often a
short motif occurs in positive than in negative repertoires (what the k-mer regression uses).
Each provider here turns the fold's training repertoires into such numbers per sequence. They
are counted on the training repertoires of the fold and nothing else, and a training repertoire
never counts itself (leave one out), so that its sequences look the way a new repertoire's will;
validation, test and new repertoires read the training counts as they are. The providers are
saved with the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch

from deeprc.baselines import kmer_counts
from deeprc.store import Store, part_path

__all__ = [
    "MIN_CARRIERS",
    "ClonotypeEvidence",
    "KmerEvidence",
    "clonotype_keys",
    "evidence_features",
    "evidence_size",
    "fit_evidence",
    "load_evidence",
    "saved_evidence",
    "training_features",
]

# a clonotype counts when carried by at least this many repertoires besides the one scored:
# rarer ones say nothing about a class, and the table kept with the model stays small
MIN_CARRIERS = 2
# k-mer rates (occurrences per repertoire) get this added before their log-ratio, so that
# k-mers seen a few times do not get large ratios by chance
KMER_PSEUDO_RATE = 1.0


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
    carry each (plain lists, so the model file loads safely). Per sequence: log(1 + positives)
    and log(1 + negatives) carrying its clonotype."""

    size = 2
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
        """``(n, 2)`` float32 for one repertoire's rows. ``own_label``: the repertoire is one
        of the training repertoires (with this label) and does not count itself."""
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


def _window_codes(tokens: np.ndarray, lengths: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every k-mer of every row as an integer in base 20 ``(n, windows)``, and which windows lie
    inside the row's junction."""
    tokens = np.asarray(tokens, dtype=np.int64) - 1
    windows = max(tokens.shape[1] - k + 1, 0)
    codes = np.zeros((len(tokens), windows), dtype=np.int64)
    for offset in range(k):
        codes = codes * 20 + tokens[:, offset : offset + windows]
    valid = np.arange(k, windows + k)[None, :] <= np.asarray(lengths, dtype=np.int64)[:, None]
    return np.where(valid, codes, 0), valid


@dataclass
class KmerEvidence:
    """How much more often each k-mer occurs in training positives than in negatives: the
    occurrences summed over each class (a sequence row counts once). Per sequence: the largest
    log-ratio of the per-repertoire rates (plus ``KMER_PSEUDO_RATE``) over its k-mers."""

    size = 1
    k: int
    positive: torch.Tensor  # (20**k,) occurrences in training positives
    negative: torch.Tensor
    n_positive: int
    n_negative: int

    @classmethod
    def fit(cls, store: Store, train: np.ndarray, k: int) -> KmerEvidence:
        counts = kmer_counts(store, train, k)
        y = np.asarray(store.labels)[train]
        return cls(
            k=k,
            positive=torch.from_numpy(np.asarray(counts[y == 1].sum(axis=0)).ravel()),
            negative=torch.from_numpy(np.asarray(counts[y == 0].sum(axis=0)).ravel()),
            n_positive=int((y == 1).sum()),
            n_negative=int((y == 0).sum()),
        )

    def _log_ratio(self, own: np.ndarray | None = None, own_label: int | None = None):
        """Per k-mer log-ratio of the class rates, with one training repertoire's own counts
        ``own`` (of class ``own_label``) left out."""
        totals = {1: self.positive.double().numpy(), 0: self.negative.double().numpy()}
        sizes = {1: self.n_positive, 0: self.n_negative}
        if own is not None:
            totals[own_label] = totals[own_label] - own
            sizes[own_label] -= 1
        rates = {c: totals[c] / max(sizes[c], 1) + KMER_PSEUDO_RATE for c in (0, 1)}
        return np.log(rates[1] / rates[0])

    @cached_property
    def _held_out_ratio(self) -> np.ndarray:
        return self._log_ratio()  # what every repertoire outside training reads

    def features(self, store: Store, repertoire: int, *, own_label: int | None = None):
        """``(n, 1)`` float32 for one repertoire's rows; ``own_label`` as for clonotypes."""
        start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
        codes, valid = _window_codes(store.tokens[start:stop], store.lengths[start:stop], self.k)
        if own_label is None:
            ratio = self._held_out_ratio[codes]
        else:
            own = np.bincount(codes[valid], minlength=len(self.positive))
            ratio = self._log_ratio(own, own_label)[codes]
        best = np.where(valid, ratio, -np.inf).max(axis=1, initial=-np.inf)
        return np.where(np.isfinite(best), best, 0.0)[:, None].astype(np.float32)


PROVIDERS = {"clonotype": ClonotypeEvidence, "kmer": KmerEvidence}


def evidence_size(cfg) -> int:
    """How many numbers per sequence the providers a model config asks for give."""
    return ClonotypeEvidence.size * cfg.clonotype_evidence + KmerEvidence.size * bool(
        cfg.kmer_evidence
    )


def fit_evidence(cfg, store: Store, train: np.ndarray) -> list:
    """The providers a model config asks for, fitted on the training repertoires."""
    providers: list = []
    if cfg.clonotype_evidence:
        providers.append(ClonotypeEvidence.fit(store, train))
    if cfg.kmer_evidence:
        providers.append(KmerEvidence.fit(store, train, cfg.kmer_evidence))
    return providers


def evidence_features(
    providers: list, store: Store, repertoire: int, *, own_label: int | None = None
) -> np.ndarray:
    """``(n, sum of sizes)`` float32: every provider's numbers for one repertoire's rows."""
    parts = [p.features(store, repertoire, own_label=own_label) for p in providers]
    return np.concatenate(parts, axis=1)


def training_features(providers: list, store: Store, train: np.ndarray) -> np.ndarray:
    """``(n_store_rows, size)`` with the training repertoires' rows filled, each repertoire
    leaving itself out, and the others zero: what training batches read."""
    size = sum(p.size for p in providers)
    out = np.zeros((int(store.offsets[-1]), size), dtype=np.float32)
    for r in np.asarray(train).tolist():
        start, stop = int(store.offsets[r]), int(store.offsets[r + 1])
        out[start:stop] = evidence_features(providers, store, r, own_label=int(store.labels[r]))
    return out


def saved_evidence(providers: list) -> list[dict]:
    """Plain values and tensors for the model file."""
    kinds = {cls: kind for kind, cls in PROVIDERS.items()}
    return [{"kind": kinds[type(p)], **asdict(p)} for p in providers]


def load_evidence(saved: list[dict]) -> list:
    return [PROVIDERS[s["kind"]](**{k: v for k, v in s.items() if k != "kind"}) for s in saved]
