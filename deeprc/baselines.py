"""Classical baselines that DeepRC is compared against, trained on the same store and folds.

* ``KmerLogistic``: k-mer frequencies per repertoire, L1-penalised logistic regression.
* ``MinMaxSVM``: an SVM with the MinMax kernel on k-mer counts (DeepRC paper's SVM baseline).
* ``EmersonBurden``: Fisher's exact test for disease-associated public clonotypes and the
  per-repertoire burden of them (Emerson et al. 2017, the CMV study).
* ``GappedKmerBurden``: the same test on gapped k-mers (four residues over six positions), the
  p-value threshold chosen by inner cross-validation: what the 2025 AIRR-ML benchmark's winning
  pipelines built by hand.
* ``RepertoireSize``: a confound check, not a method: sequencing depth alone.
* ``TargetRegression``: for any target (deeprc.targets; binary, categorical or numeric), an
  L2-penalised logistic (multinomial for several classes) or ridge regression on k-mer
  frequencies (``kmer3_regression``, ``kmer4_regression``), on the covariates ingest kept
  (``covariates``: what the repertoire adds beyond them) or on depth (``repertoire_size`` of a
  categorical or numeric target).

Each binary one has ``fit(store, repertoires)``, ``decision`` (higher = more likely
positive), ``log_odds`` and ``probability``. A baseline tunes itself by inner
cross-validation, so it is fitted on the train and validation repertoires of a fold together.
``run_baseline`` writes ``predictions.tsv`` in the format of ``deeprc predict``, so ``deeprc
evaluate`` scores DeepRC and the baselines the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from deeprc import outputs
from deeprc.atomic import atomic_directory
from deeprc.calibration import Platt
from deeprc.errors import InputError
from deeprc.features import gapped
from deeprc.features.association import associated_clonotypes
from deeprc.features.clonotypes import clonotype_hashes, clonotype_names
from deeprc.features.evidence import two_of_each_class
from deeprc.features.kmer_regression import fit_kmer_regression, frequencies, inner_folds
from deeprc.features.kmers import kmer_counts, kmer_name
from deeprc.progress import tracked
from deeprc.store import Store
from deeprc.targets import LABEL, Target, prediction_table

__all__ = [
    "BASELINES",
    "BASELINE_NAMES",
    "REGRESSIONS",
    "EmersonBurden",
    "GappedKmerBurden",
    "KmerLogistic",
    "MinMaxSVM",
    "RepertoireSize",
    "TargetRegression",
    "minmax_kernel",
    "run_baseline",
]

_COLUMN_BLOCK = 16_384  # k-mer columns densified at once by minmax_kernel
_LEVELS = 8  # counts up to this are summed as indicator products (see _sum_of_minima)


# ----------------------------------------------------------------------------- k-mer helpers


def _sum_of_minima(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``S[i, j] = sum(min(a_i, b_j))`` for dense non-negative integer rows.

    For integers ``min(x, y)`` is the number of levels ``t >= 1`` with ``x >= t`` and
    ``y >= t``, so ``S`` is a sum of indicator matrix products, which BLAS computes far faster
    than any elementwise pairwise loop. Level ``t`` only involves columns reaching ``t``; the
    few columns with counts above ``_LEVELS`` are summed elementwise instead.
    """
    out = np.zeros((len(a), len(b)))
    top = np.maximum(a.max(axis=0, initial=0), b.max(axis=0, initial=0))
    for level in range(1, _LEVELS + 1):
        columns = (top >= level) & (top <= _LEVELS)
        if not columns.any():
            break
        left = (a[:, columns] >= level).astype(np.float32)
        right = (b[:, columns] >= level).astype(np.float32)
        out += left @ right.T
    high = top > _LEVELS
    a_high, b_high = a[:, high], b[:, high]
    for i, row in enumerate(a_high):
        out[i] += np.minimum(row, b_high).sum(axis=1)
    return out


def minmax_kernel(a: sparse.spmatrix, b: sparse.spmatrix) -> np.ndarray:
    """``K[i, j] = sum(min(a_i, b_j)) / sum(max(a_i, b_j))`` for rows of integer counts.

    ``sum(max) = sum(a_i) + sum(b_j) - sum(min)``, so only the sums of minima are needed; they
    are accumulated over blocks of columns, densified one block at a time. An all-zero pair
    gets 0.
    """
    a, b = sparse.csc_matrix(a), sparse.csc_matrix(b)
    for x in (a, b):
        if x.nnz and (x.data.min() < 0 or not np.array_equal(x.data, np.round(x.data))):
            raise ValueError("minmax_kernel needs non-negative integer counts")
    minima = np.zeros((a.shape[0], b.shape[0]))
    for lo in range(0, a.shape[1], _COLUMN_BLOCK):
        hi = min(lo + _COLUMN_BLOCK, a.shape[1])
        block_a = a[:, lo:hi].toarray().astype(np.int64)
        block_b = b[:, lo:hi].toarray().astype(np.int64)
        minima += _sum_of_minima(block_a, block_b)
    maxima = np.asarray(a.sum(axis=1)) + np.asarray(b.sum(axis=1)).T - minima
    return np.divide(minima, maxima, out=np.zeros_like(minima), where=maxima > 0)


# ----------------------------------------------------------------------------- helpers


def _labels(store: Store, repertoires: np.ndarray) -> np.ndarray:
    return two_of_each_class(np.asarray(store.labels)[repertoires], "a baseline")


class _Baseline:
    """Shared interface: ``log_odds`` calibrates ``decision``; ``probability`` is its sigmoid."""

    calibration_: Platt

    def decision(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def log_odds(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        return self.calibration_(self.decision(store, repertoires))

    def probability(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        return expit(self.log_odds(store, repertoires))

    def tables(self) -> dict[str, pd.DataFrame]:
        """What the fitted baseline relies on, by file name, written beside its predictions."""
        return {}


# ----------------------------------------------------------------------------- baselines


@dataclass
class KmerLogistic(_Baseline):
    """L1-penalised logistic regression on standardised k-mer frequencies.

    ``C`` is chosen from ``n_cs`` values by stratified inner cross-validation (log loss) on the
    training repertoires; L1 keeps the few informative k-mers out of 20**k (``coef_`` below).
    """

    k: int = 4
    n_cs: int = 10
    max_folds: int = 5
    seed: int = 0

    def fit(self, store: Store, repertoires: np.ndarray) -> KmerLogistic:
        y = _labels(store, repertoires)
        x = frequencies(kmer_counts(store, repertoires, self.k))
        self.scaler_, self.model_ = fit_kmer_regression(
            x, y, seed=self.seed, n_cs=self.n_cs, max_folds=self.max_folds
        )
        return self

    @property
    def coef_(self) -> pd.Series:
        """Non-zero coefficients by k-mer, largest magnitude first: what the model relies on."""
        weights = self.model_.coef_[0]
        chosen = np.flatnonzero(weights)
        names = [kmer_name(c, self.k) for c in chosen]
        series = pd.Series(weights[chosen], index=pd.Index(names, name="kmer"), name="coef")
        return series.iloc[np.argsort(-np.abs(series.to_numpy()), kind="stable")]

    def decision(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        x = frequencies(kmer_counts(store, repertoires, self.k))
        return self.model_.decision_function(self.scaler_.transform(x, copy=False))

    def log_odds(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        return self.decision(store, repertoires)  # a logistic model's decision is its log-odds


@dataclass
class MinMaxSVM(_Baseline):
    """Support vector machine with the MinMax kernel on k-mer count vectors.

    Probabilities come from Platt scaling fitted on cross-validated decision values of the
    training repertoires: the SVM's own training decisions sit at the margins and would be
    overconfident.
    """

    k: int = 4
    C: float = 1.0
    max_folds: int = 5
    seed: int = 0

    def fit(self, store: Store, repertoires: np.ndarray) -> MinMaxSVM:
        y = _labels(store, repertoires)
        self.train_counts_ = kmer_counts(store, repertoires, self.k)  # the kernel needs them
        kernel = minmax_kernel(self.train_counts_, self.train_counts_)
        self.model_ = SVC(kernel="precomputed", C=self.C).fit(kernel, y)
        held_out = cross_val_predict(
            SVC(kernel="precomputed", C=self.C),
            kernel,
            y,
            cv=inner_folds(y, self.max_folds, self.seed),
            method="decision_function",
        )
        self.calibration_ = Platt().fit(held_out, y)
        return self

    def decision(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        kernel = minmax_kernel(kmer_counts(store, repertoires, self.k), self.train_counts_)
        return self.model_.decision_function(kernel)


@dataclass
class EmersonBurden(_Baseline):
    """Burden of disease-associated public clonotypes (Emerson et al. 2017).

    A clonotype (junction, V gene, J gene; :mod:`deeprc.features.clonotypes`) found in at least
    ``min_positive`` positive training repertoires is tested with a one-sided Fisher's exact
    test (presence in positives vs negatives); those with ``p < p_threshold`` are associated
    (``associated_``). A repertoire scores the number of associated clonotypes it carries,
    divided by its number of distinct clonotypes when ``normalize`` (deeper repertoires would
    otherwise carry more by chance). Carriers are counted on disk: memory stays flat.
    """

    p_threshold: float = 1e-4
    min_positive: int = 2
    normalize: bool = False

    def fit(self, store: Store, repertoires: np.ndarray) -> EmersonBurden:
        y = _labels(store, repertoires)
        hashes, pos, neg, p, self.n_tested_ = associated_clonotypes(
            store, repertoires, p_threshold=self.p_threshold, min_positive=self.min_positive
        )
        names = clonotype_names(store, np.asarray(repertoires)[y == 1], hashes)
        columns = ["junction_aa", "v_call", "j_call"]
        table = pd.DataFrame([names[h] for h in hashes.tolist()], columns=columns)
        table["n_positive"], table["n_negative"], table["p_value"] = pos, neg, p
        self.associated_ = table.sort_values(
            ["p_value", "junction_aa", "v_call", "j_call"], kind="stable", ignore_index=True
        )
        self.associated_hashes_ = hashes
        self.calibration_ = Platt().fit(self.decision(store, repertoires), y)
        return self

    def tables(self) -> dict[str, pd.DataFrame]:
        return {outputs.ASSOCIATED_CLONOTYPES: self.associated_}

    def decision(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        burden = np.zeros(len(repertoires))
        for i, r in enumerate(tracked(repertoires, "burden", "repertoires")):
            distinct = np.unique(clonotype_hashes(store, int(r)))
            burden[i] = np.isin(distinct, self.associated_hashes_).sum()
            if self.normalize and len(distinct):
                burden[i] /= len(distinct)
        return burden


@dataclass
class GappedKmerBurden(_Baseline):
    """Burden of gapped k-mers that go with the positive class.

    A pattern (:mod:`deeprc.features.gapped`) carried by at least ``min_positive`` positive
    training repertoires is tested with a one-sided Fisher's exact test (presence in positives
    vs negatives); a repertoire scores the number of patterns at ``p < threshold`` it carries.
    The threshold is the one of ``p_thresholds`` with the best mean AUC over stratified inner
    folds of the training repertoires (the patterns tested on each inner training part), and
    the probabilities come from Platt scaling of those inner held-out scores.
    """

    p_thresholds: tuple[float, ...] = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
    min_positive: int = 2
    max_folds: int = 5
    seed: int = 0

    @staticmethod
    def _burden(bits: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        return np.array([np.count_nonzero(np.unpackbits(row)[chosen]) for row in bits], float)

    def fit(self, store: Store, repertoires: np.ndarray) -> GappedKmerBurden:
        y = _labels(store, repertoires)
        bits = gapped.presence(store, repertoires)
        held_out = np.zeros((len(self.p_thresholds), len(y)))
        aucs = np.zeros(len(self.p_thresholds))
        folds = list(inner_folds(y, self.max_folds, self.seed).split(bits, y))
        for inner, outer in folds:
            p = gapped.pattern_p_values(bits[inner], y[inner], self.min_positive)[0]
            present = np.unpackbits(bits[outer], axis=1).astype(bool)  # once for all thresholds
            for t, threshold in enumerate(self.p_thresholds):
                held_out[t, outer] = present[:, p < threshold].sum(axis=1)
                if len(np.unique(y[outer])) == 2:
                    aucs[t] += roc_auc_score(y[outer], held_out[t, outer]) / len(folds)
        best = int(np.argmax(aucs))  # ties: the first, the loosest threshold
        self.threshold_, self.inner_auc_ = self.p_thresholds[best], float(aucs[best])
        p, positive, negative = gapped.pattern_p_values(bits, y, self.min_positive)
        self.associated_codes_ = np.flatnonzero(p < self.threshold_)
        order = np.argsort(p[self.associated_codes_], kind="stable")
        codes = self.associated_codes_[order]
        self.associated_ = pd.DataFrame({
            "pattern": [gapped.pattern_name(c) for c in codes],
            "n_positive": positive[codes], "n_negative": negative[codes], "p_value": p[codes],
        })  # fmt: skip
        self.calibration_ = Platt().fit(held_out[best], y)
        return self

    def tables(self) -> dict[str, pd.DataFrame]:
        return {outputs.ASSOCIATED_PATTERNS: self.associated_}

    def decision(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        return self._burden(gapped.presence(store, repertoires), self.associated_codes_)


def _depth(store: Store, repertoires: np.ndarray) -> np.ndarray:
    """``(n, 2)``: log of each repertoire's number of sequences and of its total count."""
    table = store.repertoires.iloc[np.asarray(repertoires, dtype=np.int64)]
    return np.log(table[["n_sequences", "total_count"]].to_numpy(dtype=np.float64))


@dataclass
class RepertoireSize(_Baseline):
    """Logistic regression on the log of a repertoire's number of sequences and of its total
    count: a confound check. When depth alone separates the classes (batches sequenced to
    different depths), a model's AUC may measure the depth, not the biology.

    ``C`` (L2) is chosen by stratified inner cross-validation, as for ``KmerLogistic``.
    """

    n_cs: int = 10
    max_folds: int = 5
    seed: int = 0

    def fit(self, store: Store, repertoires: np.ndarray) -> RepertoireSize:
        y = _labels(store, repertoires)
        x = _depth(store, repertoires)
        self.scaler_ = StandardScaler().fit(x)
        self.model_ = LogisticRegressionCV(
            Cs=self.n_cs,
            l1_ratios=(0.0,),
            cv=inner_folds(y, self.max_folds, self.seed),
            scoring="neg_log_loss",
            random_state=self.seed,
            use_legacy_attributes=False,
        ).fit(self.scaler_.transform(x), y)
        return self

    def decision(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        return self.model_.decision_function(self.scaler_.transform(_depth(store, repertoires)))

    def log_odds(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        return self.decision(store, repertoires)  # a logistic model's decision is its log-odds


def _covariate_design(store: Store, repertoires: np.ndarray) -> np.ndarray:
    """``(n, m)``: each covariate ingest kept: a numeric one as its value (missing: NaN, for
    the fit to fill) beside a column that marks it missing; a categorical one as one column
    per class (missing: all 0)."""
    table = store.repertoires.iloc[np.asarray(repertoires, dtype=np.int64)]
    columns = []
    for covariate in store.annotations("covariate"):
        values = table[f"covariate:{covariate['column']}"]
        if covariate["kind"] == "numeric":
            numbers = values.to_numpy(dtype=np.float64)
            columns += [numbers, np.isnan(numbers).astype(np.float64)]
        else:
            columns += [(values == c).to_numpy(dtype=np.float64) for c in covariate["classes"]]
    if not columns:
        raise InputError(
            f"store {store.path} keeps no covariates, so the covariates baseline has nothing "
            "to read; ingest with --covariate COLUMN:KIND (e.g. age:numeric)"
        )
    return np.column_stack(columns)


_DESIGNS: dict[str, Callable[[Store, np.ndarray], np.ndarray | sparse.spmatrix]] = {
    "kmer3": lambda store, rs: frequencies(kmer_counts(store, rs, 3)),
    "kmer4": lambda store, rs: frequencies(kmer_counts(store, rs, 4)),
    "depth": _depth,
    "covariates": _covariate_design,
}


class _RootMeanSquare:
    """Scales a k-mer design by one number, its entries' root mean square: unlike standardising
    each column, rare k-mers (mostly noise) stay small beside the common ones."""

    def fit(self, x: sparse.spmatrix) -> _RootMeanSquare:
        self.scale_ = 1.0 / max(float(np.sqrt(x.power(2).sum() / np.prod(x.shape))), 1e-12)
        return self

    def transform(self, x: sparse.spmatrix) -> sparse.spmatrix:
        return x * self.scale_


class _RowSpace:
    """The coordinates of a sparse design's rows in their own span: ``(n, r)``, r <= n. An
    L2-penalised linear model's weights lie in the span of its training rows, so fitting it on
    these coordinates gives the same model as on the design's 8,000 or 160,000 k-mer columns
    (for inner folds too: their rows span part of the same space), in a fraction of the time.
    A new row's coordinates come from its products with the training rows."""

    def fit(self, x: sparse.spmatrix) -> _RowSpace:
        eigenvalues, vectors = np.linalg.eigh((x @ x.T).toarray())
        kept = eigenvalues > eigenvalues.max() * 1e-10
        self.rows_, self.map_ = x, vectors[:, kept] / np.sqrt(eigenvalues[kept])
        return self

    def transform(self, x: sparse.spmatrix) -> np.ndarray:
        return (x @ self.rows_.T).toarray() @ self.map_


class _Chain:
    """Transforms fitted and applied in turn."""

    def __init__(self, *steps) -> None:
        self.steps = steps

    def fit(self, x) -> _Chain:
        for step in self.steps:
            x = step.fit(x).transform(x)
        return self

    def transform(self, x):
        for step in self.steps:
            x = step.transform(x)
        return x


@dataclass
class TargetRegression:
    """Any target on one repertoire-level ``design`` (:data:`_DESIGNS`): a logistic regression
    for a binary target (``predict``: its log-odds) or a multinomial one for a categorical
    target (``predict``: ``(n, n_classes)`` probabilities), L2-penalised with ``C`` chosen by
    stratified inner folds (log loss); a ridge regression for a numeric one (its penalty by
    generalised cross-validation). A k-mer design is scaled per column (standardised) or as
    a whole (:class:`_RootMeanSquare`), whichever scores better inside the training
    repertoires (``scaling_``): a motif's rare k-mers need the first, a broad shift the second;
    it is fitted in its rows' span (:class:`_RowSpace`, exact). A dense design is
    standardised, its missing values (NaN) read as the training mean.
    The fits run on one BLAS thread: these matrices are small, and threads spinning beside
    other jobs slowed one fit fifteenfold here (4.46 s against 0.29 s on one thread)."""

    design: str
    target: Target
    n_cs: int = 10
    max_folds: int = 5
    seed: int = 0

    def _design(self, store: Store, repertoires: np.ndarray, *, fitting: bool = False):
        x = _DESIGNS[self.design](store, repertoires)
        if sparse.issparse(x):
            return x
        if fitting:
            with np.errstate(all="ignore"):  # a column missing everywhere: mean 0
                self.means_ = np.nan_to_num(np.nanmean(x, axis=0))
        return np.where(np.isnan(x), self.means_, x)

    def fit(self, store: Store, repertoires: np.ndarray) -> TargetRegression:
        y = self.target.values(store)[repertoires]
        x = self._design(store, repertoires, fitting=True)
        if sparse.issparse(x):
            scalers = {
                "standardised": _Chain(StandardScaler(with_mean=False), _RowSpace()),
                "whole": _Chain(_RootMeanSquare(), _RowSpace()),
            }
        else:
            scalers = {"standardised": StandardScaler()}
        with threadpool_limits(1):
            fits = {name: self._fit(scaler.fit(x).transform(x), y)
                    for name, scaler in scalers.items()}  # fmt: skip
        self.scaling_ = max(fits, key=lambda name: fits[name][1])
        self.scaler_, self.model_ = scalers[self.scaling_], fits[self.scaling_][0]
        return self

    def _fit(self, x, y: np.ndarray):
        """The model fitted on ``x`` and its inner cross-validation score (higher: better)."""
        if self.target.kind == "numeric":
            model = RidgeCV(alphas=np.logspace(-4, 6, self.n_cs + 1)).fit(x, y)
            return model, float(model.best_score_)
        counts = np.bincount(y, minlength=max(2, len(self.target.classes)))
        if counts.min() < 2:
            raise InputError(
                f"target {self.target.name!r}: a baseline needs at least 2 training "
                f"repertoires of each class; the training part has {counts.tolist()}"
            )
        folds = StratifiedKFold(int(min(self.max_folds, counts.min())), shuffle=True,
                                random_state=self.seed)  # fmt: skip
        model = LogisticRegressionCV(
            Cs=self.n_cs, l1_ratios=(0.0,), cv=folds, scoring="neg_log_loss",
            random_state=self.seed, use_legacy_attributes=False, max_iter=1000,
        ).fit(x, y)  # fmt: skip
        return model, float(model.scores_.mean(axis=0).max())

    def predict(self, store: Store, repertoires: np.ndarray) -> np.ndarray:
        x = self.scaler_.transform(self._design(store, repertoires))
        with threadpool_limits(1):
            if self.target.kind == "categorical":
                return self.model_.predict_proba(x)
            if self.target.kind == "binary":
                return self.model_.decision_function(x)
            return self.model_.predict(x)


# ----------------------------------------------------------------------------- running

BASELINES: dict[str, Callable[[int], _Baseline]] = {
    "kmer3_logistic": lambda seed: KmerLogistic(k=3, seed=seed),
    "kmer4_logistic": lambda seed: KmerLogistic(k=4, seed=seed),
    "minmax_svm": lambda seed: MinMaxSVM(k=4, seed=seed),
    "emerson_burden": lambda seed: EmersonBurden(),  # no random choices
    "gapped_kmer_burden": lambda seed: GappedKmerBurden(seed=seed),
    "repertoire_size": lambda seed: RepertoireSize(seed=seed),
}
# baselines of any target (TargetRegression) by name -> design; repertoire_size reads depth
# for a categorical or numeric target, where RepertoireSize is the label's
REGRESSIONS = {"kmer3_regression": "kmer3", "kmer4_regression": "kmer4",
               "covariates": "covariates"}  # fmt: skip
BASELINE_NAMES = (*BASELINES, *REGRESSIONS)


def run_baseline(
    name: str,
    store: Store,
    train_repertoires: np.ndarray,
    test_repertoires: np.ndarray,
    out: Path,
    seed: int = 0,
    *,
    overwrite: bool = False,
    inputs: Iterable[Path] = (),
    fold: int | None = None,
    target: Target | None = None,
) -> pd.DataFrame:
    """Fit baseline ``name`` on the training repertoires and write its predictions to ``out``.

    The predictions are those of ``deeprc predict`` (:mod:`deeprc.outputs`), so that
    ``deeprc evaluate`` reads them unchanged; beside them go the baseline's own tables
    (EmersonBurden: its associated clonotypes). Returns the predictions. An empty test set
    is refused (naming ``fold`` when given): its empty predictions would read as a result.
    ``target`` (default: the label) may be any the store keeps: a binary one is predicted as
    the label is; a categorical or numeric one by a :class:`TargetRegression`, fitted on the
    training repertoires whose value is known, with ``target.json`` beside its predictions.
    """
    target = target or Target.of(store)
    if name not in BASELINE_NAMES:
        raise InputError(f"unknown baseline {name!r}; choose one of {sorted(BASELINE_NAMES)}")
    regression = REGRESSIONS.get(name)
    if target.kind != "binary" and regression is None:
        if name != "repertoire_size":
            applies = sorted([*REGRESSIONS, "repertoire_size"])
            raise InputError(
                f"baseline {name} predicts a binary label; target {target.name!r} is "
                f"{target.kind}: choose one of {applies}"
            )
        regression = "depth"
    if len(test_repertoires) == 0:
        which = "this fold" if fold is None else f"fold {fold}"
        raise InputError(
            f"{which} has no test repertoires, so baseline {name} would score none; give a "
            "fold with test rows in the folds table (deeprc split)"
        )
    with atomic_directory(
        Path(out), overwrite=overwrite, inputs=inputs, command=f"baseline {name}"
    ) as tmp:
        train = np.asarray(train_repertoires, dtype=np.int64)
        test = np.asarray(test_repertoires, dtype=np.int64)
        values = target.values(store)
        train = train[target.known(values[train])]
        ids = store.repertoires["repertoire_id"].to_numpy()[test]
        if regression is not None:
            model = TargetRegression(regression, target, seed=seed).fit(store, train)
            predictions = prediction_table(target, values[test], model.predict(store, test))
            predictions.insert(0, "repertoire_id", ids)
            tables = {}
        else:
            labelled = target.labelled(store)
            model = BASELINES[name](seed).fit(labelled, train)
            logit = model.log_odds(labelled, test)
            predictions = pd.DataFrame({"repertoire_id": ids, "y": values[test], "logit": logit,
                                        "score": expit(logit)})  # fmt: skip
            tables = model.tables()
        if target.name == LABEL:
            outputs.write_predictions(tmp, predictions)
        else:
            outputs.write_target_predictions(tmp, predictions, target.to_dict())
        for file, table in tables.items():
            outputs.write_tsv(tmp / file, table)
    return predictions
