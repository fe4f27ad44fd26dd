"""What a classifier reads beside each sequence's residues, fitted on a fold's repertoires.

A :class:`FeatureSet` holds the V and J gene vocabulary (when the model reads genes) and the
evidence providers, and yields each sequence's inputs **by name** (``genes``, ``evidence``),
as the network reads them. Validation repertoires read the providers fitted on all training
repertoires; test and new ones read providers refitted on training and validation repertoires
(deeprc.classifier). A training repertoire reads numbers fitted without it (cross-fitting in
stratified groups, :meth:`FeatureSet.training_inputs`), so that its sequences look the way a
new repertoire's will. Leaving only the repertoire itself out would give its label away: of one
clonotype's carriers, each positive would read one positive fewer, each negative one negative
fewer; cross-fitting blurs that (tests/test_evidence.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deeprc.errors import InputError
from deeprc.features.evidence import Evidence, from_file, to_file
from deeprc.features.genes import GeneVocabulary, gene_indices
from deeprc.features.pretrained import PretrainedVectors, pretrained_vectors
from deeprc.features.registry import EVIDENCE
from deeprc.progress import tracked
from deeprc.store import Store

if TYPE_CHECKING:
    import torch

__all__ = ["EVIDENCE_GROUPS", "WEIGHING_MIN_CLASS", "FeatureSet", "RowInputs", "describe"]

# training repertoires read evidence fitted on the other groups (see training_inputs)
EVIDENCE_GROUPS = 5
# weighing needs this many training repertoires of each class: each cross-fitted group's
# providers then fit on at least 2 of a class, and the weights on 2 inner folds
WEIGHING_MIN_CLASS = 3


def describe(provider: Evidence) -> str:
    """A provider's name with its parameters: ``kmer(k=4)``."""
    params = ", ".join(f"{k}={v}" for k, v in provider.get_params().items())
    return f"{provider.name}({params})" if params else provider.name


@dataclass
class RowInputs:
    """The per-sequence inputs of some store rows, by name: ``genes`` ``(n, 2)`` (the model's
    V and J indices), ``evidence`` ``(n, m)`` and ``pretrained`` ``(n, 64)`` (a pretrained
    encoder's vectors), each where the model reads it. ``evidence`` holds the rows from
    ``first_row`` on (one repertoire's, or the whole store's)."""

    store: Store
    genes: np.ndarray | None  # GeneVocabulary.table of the store
    evidence: np.ndarray | None
    first_row: int = 0
    held: np.ndarray | None = None  # the sorted rows whose evidence is kept (subset)
    pretrained: PretrainedVectors | None = None

    def __call__(self, rows: np.ndarray | slice) -> dict[str, np.ndarray]:
        """The inputs of the store's ``rows`` (global indices, or a slice of them)."""
        found = {}
        if self.genes is not None:
            found["genes"] = gene_indices(self.store, rows, self.genes)
        if self.evidence is not None:
            if self.held is not None:
                if isinstance(rows, slice):
                    rows = np.arange(rows.start, rows.stop)
                local = np.searchsorted(self.held, rows).clip(max=len(self.held) - 1)
                if not np.array_equal(self.held[local], rows):
                    raise ValueError("rows outside the subset these inputs hold")
            elif isinstance(rows, slice):
                local = slice(rows.start - self.first_row, rows.stop - self.first_row)
            else:
                local = np.asarray(rows) - self.first_row
            found["evidence"] = self.evidence[local]
        if self.pretrained is not None:
            found["pretrained"] = self.pretrained(rows)
        return found

    def subset(self, rows: np.ndarray) -> RowInputs:
        """The same inputs, keeping the evidence of the sorted ``rows`` only (memory)."""
        if self.evidence is None:
            return self
        return RowInputs(self.store, self.genes, self(rows)["evidence"], held=np.asarray(rows),
                         pretrained=self.pretrained)  # fmt: skip


class FeatureSet:
    """The gene vocabulary (None: the model reads no genes), the evidence providers and the
    pretrained vectors the encoder reads (a variant's name, deeprc.features.pretrained; None:
    none)."""

    def __init__(
        self,
        evidence: list[Evidence],
        genes: GeneVocabulary | None = None,
        pretrained: str | None = None,
    ) -> None:
        self.evidence, self.genes, self.pretrained = list(evidence), genes, pretrained
        self._readers: dict[Path, PretrainedVectors] = {}  # vectors(): one per store

    @classmethod
    def from_options(
        cls, evidence: tuple[dict, ...], store: Store, *, genes: bool, pretrained: str | None
    ) -> FeatureSet:
        """Unfitted providers of an experiment's ``evidence:`` entries; with ``genes``, the
        store's gene vocabulary."""
        providers = [
            EVIDENCE[e["name"]](**{k: v for k, v in e.items() if k != "name"}) for e in evidence
        ]
        return cls(providers, GeneVocabulary(store.gene_names) if genes else None, pretrained)

    def fit(self, store: Store, repertoires: np.ndarray) -> FeatureSet:
        for provider in self.evidence:
            provider.fit(store, repertoires)
        return self

    def refitted(self, store: Store, repertoires: np.ndarray) -> FeatureSet:
        """The same features with the providers fitted anew on ``repertoires``
        (Evidence.refitted)."""
        return self._with([p.refitted(store, repertoires) for p in self.evidence])

    def _with(self, evidence: list[Evidence]) -> FeatureSet:
        """Other providers beside the same genes and pretrained vectors (their readers kept
        open: no store's vectors are opened again)."""
        other = FeatureSet(evidence, self.genes, self.pretrained)
        other._readers = self._readers
        return other

    @property
    def evidence_size(self) -> int:
        return sum(p.size for p in self.evidence)

    @property
    def prior(self) -> tuple[float, ...]:
        """Each evidence column's weight in the attention's starting score, in column order."""
        return tuple(w for p in self.evidence for w in p.prior)

    @property
    def starts_as_count(self) -> bool:
        return any(p.starts_as_count for p in self.evidence)

    def evidence_of(self, store: Store, repertoire: int) -> np.ndarray | None:
        """``(n, evidence_size)`` of one repertoire's rows; None without providers."""
        if not self.evidence:
            return None
        return np.concatenate([p.transform(store, repertoire) for p in self.evidence], axis=1)

    def inputs_of(self, store: Store, repertoire: int) -> RowInputs:
        """The inputs of one repertoire's rows (evidence computed once, for all of them)."""
        return RowInputs(
            store, self._table(store), self.evidence_of(store, repertoire),
            int(store.offsets[repertoire]), pretrained=self.vectors(store),
        )  # fmt: skip

    @staticmethod
    def check_weighable(labels: np.ndarray) -> None:
        """Refuse, saying what to do, training repertoires too few to weigh evidence on."""
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=2)
        if counts.min() < WEIGHING_MIN_CLASS:
            raise InputError(
                f"weighing the evidence (weigh_evidence, the default experiment) needs at "
                f"least {WEIGHING_MIN_CLASS} training repertoires of each class; this training "
                f"part has {counts[1]} positive and {counts[0]} negative. Give it more "
                "repertoires (fewer folds, a smaller --validation-fraction), or train an "
                "experiment that learns from few: configs/experiments/small_cohort.yaml"
            )

    def training_inputs(self, store: Store, train: np.ndarray, seed: int) -> RowInputs:
        """The inputs of every store row that training reads: the training repertoires'
        evidence cross-fitted. The training repertoires fall into ``EVIDENCE_GROUPS`` groups of
        the same class mix (drawn from ``seed``), and each group reads providers fitted on the
        other groups: no repertoire's numbers depend on itself. The providers themselves are
        fitted on all of ``train`` on the way (Evidence.cross_fitted)."""
        return RowInputs(
            store, self._table(store), self.cross_fitted(store, train, seed),
            pretrained=self.vectors(store),
        )  # fmt: skip

    def cross_fitted(self, store: Store, train: np.ndarray, seed: int) -> np.ndarray | None:
        """``(n_store_rows, evidence_size)``: the training repertoires' rows filled (see
        :meth:`training_inputs`), the others zero; None without providers."""
        if not self.evidence:
            return None
        train = np.asarray(train)
        labels = np.asarray(store.labels)[train]
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])  # not training's
        group = np.empty(len(train), dtype=np.int64)
        for label in (0, 1):
            members = np.flatnonzero(labels == label)
            group[rng.permutation(members)] = np.arange(len(members)) % EVIDENCE_GROUPS
        out = np.zeros((int(store.offsets[-1]), self.evidence_size), dtype=np.float32)
        fitted = [p.cross_fitted(store, train, group, EVIDENCE_GROUPS) for p in self.evidence]
        for g in range(EVIDENCE_GROUPS):
            others = FeatureSet([by_group[g] for by_group in fitted])
            for r in tracked(
                train[group == g].tolist(), f"evidence {g + 1}/{EVIDENCE_GROUPS}", "repertoires"
            ):
                out[store.offsets[r] : store.offsets[r + 1]] = others.evidence_of(store, r)
        return out

    def weighed(
        self,
        store: Store,
        train: np.ndarray,
        inputs: RowInputs,
        seed: int,
        covariates: np.ndarray | None = None,
        covariate_names: Sequence[str] = (),
    ) -> tuple[FeatureSet, RowInputs, np.ndarray, float, dict[str, Any]]:
        """How much each provider's evidence counts, learned from the training repertoires.

        Each provider's evidence (cross-fitted, ``inputs`` from :meth:`training_inputs`) makes a
        soft burden per training repertoire: the log-mean-exp of its starting attention scores
        (the score that :meth:`prior` gives), what one attention head of a network that starts
        as a count computes (deeprc.model.count_on_start). An L2-penalised logistic regression
        of the labels on the standardised soft burdens, its penalty chosen by inner
        cross-validation (log loss: ROC AUC ties across penalties and would take the
        strongest), weighs them; a provider whose weight comes out at or below
        0 is dropped (each provider's evidence points to the positives by construction: a
        negative weight is an artefact of correlated candidates) and the others weighed again.
        Cross-fitted numbers were fitted without the repertoire that reads them, so the
        weights hold for new repertoires, and 80% of a fold's repertoires learn them, not the
        few validation ones. On cohorts drawn at random, weighing came closer to the best
        baseline than keeping the best provider (docs/model.md). ``covariates`` ``(len(train),
        m)`` (deeprc.covariates, named ``covariate_names``) join the regression, with weights of
        either sign: the providers' weights then say what the repertoire adds beyond them.
        Returns the kept providers, their inputs, the weights on their (unstandardised) soft
        burdens followed by the covariates', the intercept, and a record (each provider's AUC
        alone, the standardised weights, the AUC of the weighed soft burdens over the inner
        folds)."""
        from scipy.special import logsumexp  # lazy: importing deeprc stays quick
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import cross_val_predict
        from sklearn.preprocessing import StandardScaler

        from deeprc.features.kmer_regression import inner_folds

        train = np.asarray(train)
        labels = np.asarray(store.labels, dtype=np.int64)[train]
        self.check_weighable(labels)  # also for a caller that did not check before cross-fitting
        starts = np.cumsum([0] + [p.size for p in self.evidence])
        prior = np.asarray(self.prior, dtype=np.float64)
        burdens = np.zeros((len(train), len(self.evidence)))
        for row, r in enumerate(train.tolist()):
            rows = inputs.evidence[store.offsets[r] : store.offsets[r + 1]]
            for i, (a, b) in enumerate(itertools.pairwise(starts.tolist())):
                if len(rows):
                    burdens[row, i] = logsumexp(rows[:, a:b] @ prior[a:b]) - np.log(len(rows))
        alone = [float(roc_auc_score(labels, column)) for column in burdens.T]
        kept = list(range(len(self.evidence)))
        folds = inner_folds(labels, 5, seed)
        beside = np.zeros((len(train), 0)) if covariates is None else covariates
        while True:
            design = np.column_stack([burdens[:, kept], beside])
            scaler = StandardScaler().fit(design)
            scaled = scaler.transform(design)
            regression = LogisticRegressionCV(
                Cs=10, l1_ratios=(0.0,), cv=folds, scoring="neg_log_loss",
                use_legacy_attributes=False,
            ).fit(scaled, labels)  # fmt: skip
            coef = regression.coef_[0]
            if (coef[: len(kept)] > 0).all() or len(kept) == 1:
                break
            # where no weight is positive, the provider best alone
            kept = [k for k, c in zip(kept, coef, strict=False) if c > 0] or [int(np.argmax(alone))]
        weights = coef / scaler.scale_
        intercept = float(regression.intercept_[0] - weights @ scaler.mean_)
        columns = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in kept])
        features = self._with([self.evidence[i] for i in kept])
        kept_inputs = RowInputs(
            store, inputs.genes, np.ascontiguousarray(inputs.evidence[:, columns]),
            pretrained=inputs.pretrained,
        )  # fmt: skip
        inner = cross_val_predict(
            LogisticRegression(C=float(regression.C_)), scaled, labels, cv=folds,
            method="decision_function",
        )  # fmt: skip
        inner_auc = float(roc_auc_score(labels, inner))
        names = [describe(p) for p in self.evidence]
        record = {
            "soft_burden_auc": {name: round(a, 4) for name, a in zip(names, alone, strict=True)},
            "weights": {names[i]: round(float(c), 4) for i, c in zip(kept, coef, strict=False)},
            "weighed_auc": round(inner_auc, 4),
        }
        if len(covariate_names):
            covariate_coef = coef[len(kept) :]
            record["covariate_weights"] = {
                n: round(float(c), 4) for n, c in zip(covariate_names, covariate_coef, strict=True)
            }
        return features, kept_inputs, weights, intercept, record

    def _table(self, store: Store) -> np.ndarray | None:
        return self.genes.table(store) if self.genes is not None else None

    def vectors(self, store: Store, device: torch.device | None = None) -> PretrainedVectors | None:
        """The store's pretrained vectors the encoder reads, None where it reads none; embedded
        on ``device`` if no run has yet (pretrained_vectors), and opened once per store."""
        if self.pretrained is None:
            return None
        if store.path not in self._readers:
            self._readers[store.path] = pretrained_vectors(store, self.pretrained, device=device)
        return self._readers[store.path]

    def unknown_genes(self, store: Store, repertoires: np.ndarray) -> dict[str, dict]:
        """Genes of ``repertoires`` the vocabulary lacks (read as no call); empty without one."""
        return self.genes.unknown(store, repertoires) if self.genes is not None else {}

    def to_file(self) -> dict[str, Any]:
        """Plain values and tensors for the model file."""
        return {
            "genes": self.genes.names if self.genes is not None else None,
            "evidence": [to_file(p) for p in self.evidence],
        }

    @classmethod
    def from_file(cls, saved: dict, where: str, pretrained: str | None) -> FeatureSet:
        providers = []
        for entry in saved.get("evidence") or []:
            name = entry.get("name") if isinstance(entry, dict) else None
            if name not in EVIDENCE:
                raise InputError(
                    f"{where}: its evidence {name or entry!r} is none of the kinds this deeprc "
                    f"knows ({sorted(EVIDENCE)}); train it again, or register the kind "
                    "(deeprc.features.register_evidence)"
                )
            try:
                providers.append(from_file(EVIDENCE[name], entry))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise InputError(
                    f"{where}: its {name} evidence is damaged or was saved by another deeprc "
                    f"({type(exc).__name__}: {exc}); train it again"
                ) from None
        genes = saved.get("genes")
        return cls(providers, GeneVocabulary(genes) if genes else None, pretrained)
