"""Evidence from the training repertoires of a fold, given to the model beside each sequence.

Some signals a sequence encoder cannot see from one sequence: how many people carry the same
clonotype (the public clonotypes that Emerson's burden test finds), or how much more often a
short motif occurs in positive than in negative repertoires (what the k-mer regression uses).
Each provider here turns the fold's training repertoires into such numbers per sequence, as
rates per repertoire of each class, so that they do not grow with the number of repertoires
counted. Validation repertoires read the numbers of all training repertoires; test and new
ones read providers refitted on training and validation repertoires (deeprc.train.train_fold).
A training repertoire reads numbers fitted without it (cross-fitting in stratified groups,
:func:`training_features`), so that its sequences look the way a new repertoire's will. Leaving
only the repertoire itself out would give its label away: of one clonotype's carriers, each
positive would read one positive fewer, each negative one negative fewer; cross-fitting blurs
that (tests/test_evidence.py). The providers are saved with the model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch

from deeprc.baselines import EmersonBurden, kmer_windows, repertoire_kmer_counts
from deeprc.clonotypes import carrier_counts, clonotype_hashes
from deeprc.progress import tracked
from deeprc.store import AMINO_ACIDS, Store

__all__ = [
    "MIN_CARRIERS",
    "BurdenEvidence",
    "ClonotypeEvidence",
    "KmerEvidence",
    "evidence_features",
    "evidence_prior",
    "evidence_size",
    "fit_evidence",
    "load_evidence",
    "saved_evidence",
    "training_features",
]

# a clonotype counts when carried by at least this many training repertoires: rarer ones say
# nothing about a class, and the table kept with the model stays small
MIN_CARRIERS = 2
# clonotype carriers are read per this many repertoires of the class
CARRIER_SCALE = 100.0
# training repertoires read evidence fitted on the other groups (see training_features)
EVIDENCE_GROUPS = 5
# k-mer rates (occurrences per repertoire) get this added before their log-ratio, so that
# k-mers seen a few times do not get large ratios by chance
KMER_PSEUDO_RATE = 1.0
# the attention starts at gain x the evidence's log-ratio (evidence_prior): from a random start,
# a signal in 0.1% of the sequences was found in some folds only (docs/model.md)
CLONOTYPE_PRIOR_GAIN = 4.0
KMER_PRIOR_GAIN = 4.0
# an associated clonotype starts at attention score 8 (e^8 ~ 3,000 x any other sequence), so
# that a handful of them among 10,000 sequences moves the heads' log-mean-exp: a soft burden
BURDEN_PRIOR_GAIN = 8.0


def _lookup(hashes: torch.Tensor, store: Store, repertoire: int) -> np.ndarray:
    """Each row's index in sorted ``hashes`` (int64 bit patterns of uint64), -1 where absent."""
    table = hashes.numpy().view(np.uint64)
    rows = clonotype_hashes(store, repertoire)
    where = np.searchsorted(table, rows).clip(max=max(len(table) - 1, 0))
    found = (table[where] == rows) if len(table) else np.zeros(len(rows), dtype=bool)
    return np.where(found, where, -1)


def _refitted_without_each(provider, store: Store, train: np.ndarray, group: np.ndarray) -> list:
    """One provider per group, refitted on the training repertoires of the other groups."""
    return [provider.refit(store, train[group != g]) for g in range(EVIDENCE_GROUPS)]


def _as_tensor(hashes: np.ndarray) -> torch.Tensor:
    """uint64 hashes as an int64 tensor of the same bits (what a model file holds)."""
    return torch.from_numpy(np.ascontiguousarray(hashes, dtype=np.uint64).view(np.int64))


@dataclass
class ClonotypeEvidence:
    """Public clonotypes of the training repertoires (:mod:`deeprc.clonotypes` hashes) and
    how many positives and negatives carry each. Per sequence: log(1 + c) of the carriers of
    its clonotype per ``CARRIER_SCALE`` positives, and the same for negatives."""

    size = 2
    prior = (CLONOTYPE_PRIOR_GAIN, -CLONOTYPE_PRIOR_GAIN)  # see evidence_prior
    hashes: torch.Tensor  # sorted
    positive: torch.Tensor
    negative: torch.Tensor
    n_positive: int
    n_negative: int

    @classmethod
    def fit(cls, store: Store, train: np.ndarray) -> ClonotypeEvidence:
        hashes, positive, negative = carrier_counts(
            store, train, lambda pos, neg: pos + neg >= MIN_CARRIERS, what="clonotype evidence"
        )
        y = np.asarray(store.labels)[train]
        return cls(
            hashes=_as_tensor(hashes),
            positive=torch.from_numpy(positive),
            negative=torch.from_numpy(negative),
            n_positive=int((y == 1).sum()),
            n_negative=int((y == 0).sum()),
        )

    def refit(self, store: Store, train: np.ndarray) -> ClonotypeEvidence:
        return self.fit(store, train)

    def cross_fitted(self, store: Store, train: np.ndarray, group: np.ndarray) -> list:
        return _refitted_without_each(self, store, train, group)

    def features(self, store: Store, repertoire: int) -> np.ndarray:
        """``(n, 2)`` float32 for one repertoire's rows."""
        index = _lookup(self.hashes, store, repertoire)
        known = index >= 0
        rates = np.zeros((len(index), 2), dtype=np.float64)
        for column, (carriers, n) in enumerate(
            ((self.positive, self.n_positive), (self.negative, self.n_negative))
        ):
            per_repertoire = carriers.double().numpy() / max(n, 1)
            rates[known, column] = CARRIER_SCALE * per_repertoire[index[known]]
        return np.log1p(rates).astype(np.float32)


@dataclass
class BurdenEvidence:
    """The clonotypes Emerson's burden test calls associated on the training repertoires
    (:meth:`deeprc.baselines.EmersonBurden.associated` at ``p_threshold``). Per sequence: 1 if
    its clonotype is one of them, else 0; the attention's log-mean-exp over a repertoire then
    grows with its burden."""

    size = 1
    prior = (BURDEN_PRIOR_GAIN,)
    p_threshold: float
    hashes: torch.Tensor  # sorted

    @classmethod
    def fit(cls, store: Store, train: np.ndarray, p_threshold: float) -> BurdenEvidence:
        hashes = EmersonBurden(p_threshold=p_threshold).associated(store, train)[0]
        return cls(p_threshold=p_threshold, hashes=_as_tensor(hashes))

    def refit(self, store: Store, train: np.ndarray) -> BurdenEvidence:
        return self.fit(store, train, self.p_threshold)

    def cross_fitted(self, store: Store, train: np.ndarray, group: np.ndarray) -> list:
        return _refitted_without_each(self, store, train, group)

    def features(self, store: Store, repertoire: int) -> np.ndarray:
        """``(n, 1)`` float32 for one repertoire's rows."""
        return (_lookup(self.hashes, store, repertoire) >= 0)[:, None].astype(np.float32)


@dataclass
class KmerEvidence:
    """How much more often each k-mer occurs in training positives than in negatives: the
    occurrences summed over each class (a sequence row counts once). Per sequence: the largest
    log-ratio of the per-repertoire rates (plus ``KMER_PSEUDO_RATE``) over its k-mers."""

    size = 1
    prior = (KMER_PRIOR_GAIN,)
    k: int
    positive: torch.Tensor  # (20**k,) occurrences in training positives
    negative: torch.Tensor
    n_positive: int
    n_negative: int

    @classmethod
    def fit(cls, store: Store, train: np.ndarray, k: int) -> KmerEvidence:
        return cls._fitted(store, train, np.zeros(len(train), dtype=np.int64), 1, k)[0]

    def refit(self, store: Store, train: np.ndarray) -> KmerEvidence:
        return self.fit(store, train, self.k)

    def cross_fitted(self, store: Store, train: np.ndarray, group: np.ndarray) -> list:
        """One provider per group, fitted on the training repertoires of the other groups;
        each repertoire's k-mers are counted once for all of them."""
        return self._fitted(store, train, group, EVIDENCE_GROUPS, self.k, leave_out=True)

    @classmethod
    def _fitted(
        cls,
        store: Store,
        train: np.ndarray,
        group: np.ndarray,
        n_groups: int,
        k: int,
        *,
        leave_out: bool = False,
    ) -> list[KmerEvidence]:
        """Per group ``0..n_groups-1``: fitted on its repertoires, or with ``leave_out`` on
        all the others."""
        y = np.asarray(store.labels)[train].astype(np.int64)
        totals = np.zeros((n_groups, 2, len(AMINO_ACIDS) ** k), dtype=np.int64)
        for g, label, counts in zip(group, y, repertoire_kmer_counts(store, train, k), strict=True):
            totals[g, label] += counts
        n = np.zeros((n_groups, 2), dtype=np.int64)
        np.add.at(n, (group, y), 1)
        if leave_out:
            totals, n = totals.sum(axis=0) - totals, n.sum(axis=0) - n
        return [
            cls(
                k=k,
                positive=torch.from_numpy(t[1]),
                negative=torch.from_numpy(t[0]),
                n_positive=int(c[1]),
                n_negative=int(c[0]),
            )  # fmt: skip
            for t, c in zip(totals, n, strict=True)
        ]

    @cached_property
    def _log_ratio(self) -> np.ndarray:
        """Per k-mer log-ratio of the class rates, as float32 (the features' type: rounding
        first keeps the order, so each row's maximum is the same)."""
        rates = [
            total.double().numpy() / max(n, 1) + KMER_PSEUDO_RATE
            for total, n in ((self.positive, self.n_positive), (self.negative, self.n_negative))
        ]
        return np.log(rates[0] / rates[1]).astype(np.float32)

    def features(self, store: Store, repertoire: int) -> np.ndarray:
        """``(n, 1)`` float32 for one repertoire's rows (0 for rows shorter than k)."""
        start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
        best = np.zeros((stop - start, 1), dtype=np.float32)
        tokens, lengths = store.tokens[start:stop], store.lengths[start:stop]
        for rows, codes in kmer_windows(tokens, lengths, self.k):
            best[rows, 0] = self._log_ratio[codes].max(axis=1)
        return best


PROVIDERS = {"clonotype": ClonotypeEvidence, "burden": BurdenEvidence, "kmer": KmerEvidence}


def _kinds(cfg) -> list[type]:
    """The provider classes a model config asks for, in the order of the evidence columns."""
    return (
        [ClonotypeEvidence] * cfg.clonotype_evidence
        + [BurdenEvidence] * bool(cfg.burden_evidence)
        + [KmerEvidence] * bool(cfg.kmer_evidence)
    )


def evidence_size(cfg) -> int:
    """How many numbers per sequence the providers a model config asks for give."""
    return sum(kind.size for kind in _kinds(cfg))


def evidence_prior(cfg) -> list[float]:
    """Each evidence column's weight in the attention's starting score (see
    HopfieldPooling.attend_to), in the order of :func:`fit_evidence`: training begins by
    looking at the sequences the evidence points to."""
    return [w for kind in _kinds(cfg) for w in kind.prior]


def fit_evidence(cfg, store: Store, train: np.ndarray) -> list:
    """The providers a model config asks for, fitted on the training repertoires."""
    options = {
        BurdenEvidence: {"p_threshold": cfg.burden_evidence},
        KmerEvidence: {"k": cfg.kmer_evidence},
    }
    return [kind.fit(store, train, **options.get(kind, {})) for kind in _kinds(cfg)]


def evidence_features(providers: list, store: Store, repertoire: int) -> np.ndarray:
    """``(n, sum of sizes)`` float32: every provider's numbers for one repertoire's rows."""
    return np.concatenate([p.features(store, repertoire) for p in providers], axis=1)


def training_features(providers: list, store: Store, train: np.ndarray, seed: int) -> np.ndarray:
    """``(n_store_rows, size)``: the training repertoires' rows filled, the others zero; what
    training batches read. The training repertoires fall into ``EVIDENCE_GROUPS`` groups of
    the same class mix (drawn from ``seed``), and each group reads providers fitted on the
    other groups: no repertoire's numbers depend on itself."""
    train = np.asarray(train)
    labels = np.asarray(store.labels)[train]
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])  # not training's stream
    group = np.empty(len(train), dtype=np.int64)
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        group[rng.permutation(members)] = np.arange(len(members)) % EVIDENCE_GROUPS
    out = np.zeros((int(store.offsets[-1]), sum(p.size for p in providers)), dtype=np.float32)
    fitted = [p.cross_fitted(store, train, group) for p in providers]  # [provider][group]
    for g in range(EVIDENCE_GROUPS):
        others = [by_group[g] for by_group in fitted]
        for r in tracked(
            train[group == g].tolist(), f"evidence {g + 1}/{EVIDENCE_GROUPS}", "repertoires"
        ):
            out[store.offsets[r] : store.offsets[r + 1]] = evidence_features(others, store, r)
    return out


def saved_evidence(providers: list) -> list[dict]:
    """Plain values and tensors for the model file."""
    kinds = {cls: kind for kind, cls in PROVIDERS.items()}
    return [{"kind": kinds[type(p)], **asdict(p)} for p in providers]


def load_evidence(saved: list[dict]) -> list:
    return [PROVIDERS[s["kind"]](**{k: v for k, v in s.items() if k != "kind"}) for s in saved]
