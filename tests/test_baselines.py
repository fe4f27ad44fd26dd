"""Baselines: features and tests checked against by-hand definitions, and each baseline learns a
strong implanted signal but not a cohort without one."""

from collections import Counter
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy import sparse
from scipy.special import expit
from scipy.stats import fisher_exact
from sklearn.metrics import roc_auc_score

from deeprc.baselines import BASELINES, EmersonBurden, KmerLogistic, minmax_kernel, run_baseline
from deeprc.errors import InputError
from deeprc.evaluate import evaluate_folds
from deeprc.features.association import fisher_greater
from deeprc.features.kmers import kmer_counts
from deeprc.ingest import ingest
from deeprc.simulate import MotifSignal, PublicSignal, SimulationConfig, simulate
from deeprc.split import make_folds
from deeprc.store import AMINO_ACIDS, Store

COHORT = dict(n_repertoires=40, n_sequences=150, pool_size=3000)


def _cohort(root: Path, cfg: SimulationConfig) -> tuple[Store, np.ndarray, np.ndarray, dict]:
    """Simulate, ingest, and split 30 train (train + validation of fold 0) / 10 test."""
    summary = simulate(cfg, root / "sim", threads=1)
    ingest(root / "sim" / "metadata.tsv", root / "store", label_column="status", threads=1)
    store = Store(root / "store")
    folds = make_folds(store.repertoires["repertoire_id"].tolist(), store.labels, k=4)
    fold = folds[folds["fold"] == 0]
    index = pd.Series(store.repertoires.index, index=store.repertoires["repertoire_id"])
    test = index[fold.loc[fold["role"] == "test", "repertoire_id"]].to_numpy()
    train = index[fold.loc[fold["role"] != "test", "repertoire_id"]].to_numpy()
    return store, train, test, summary


@pytest.fixture(scope="module")
def signal(tmp_path_factory):
    """Positives carry the motif SLRF in 10% of sequences and each of 20 public clonotypes
    with probability 0.8; negatives carry neither."""
    cfg = SimulationConfig(
        **COHORT,
        seed=7,
        motifs=(MotifSignal(name="m", motif="SLRF", witness_rate=0.1),),
        public_clonotypes=(PublicSignal(name="pub", n_clonotypes=20, presence=0.8),),
    )
    return _cohort(tmp_path_factory.mktemp("signal"), cfg)


@pytest.fixture(scope="module")
def null(tmp_path_factory):
    """The same kind of cohort with no signal: labels are unrelated to the sequences."""
    return _cohort(tmp_path_factory.mktemp("null"), SimulationConfig(**COHORT, seed=8))


# ----------------------------------------------------------------------------- features


@pytest.mark.parametrize("k", [1, 2, 4])
def test_kmer_counts_equal_a_python_count_and_ignore_clone_sizes(h, tmp_path, k):
    junctions = [["CASSLGQETQYF", "CASF", "CASSLGQETQYF"], ["CWWWWWF", "CASSPDRGYEQYF"]]
    files = {
        f"rep{r}.tsv": [
            h.rec(j, duplicate_count=1 + 50 * i, v_call=f"TRBV{i + 1}-1*01")
            for i, j in enumerate(rows)
        ]
        for r, rows in enumerate(junctions)
    }
    _, out = h.run_ingest(h.make_study(tmp_path / "study", files))
    counts = kmer_counts(Store(out), np.array([1, 0]), k)
    assert sparse.issparse(counts) and counts.shape == (2, 20**k)
    for row, rows in zip(counts.toarray(), junctions[::-1], strict=True):
        expected = Counter(j[i : i + k] for j in rows for i in range(len(j) - k + 1))
        found = {
            "".join(AMINO_ACIDS[d] for d in np.unravel_index(c, (20,) * k)): int(row[c])
            for c in np.flatnonzero(row)
        }
        assert found == dict(expected)


def test_minmax_kernel_equals_the_formula():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (6, 50)) * (rng.random((6, 50)) < 0.5)
    x[0, 3] = 40  # a count above the levels handled by indicator products
    y = rng.integers(0, 12, (4, 50))
    kernel = minmax_kernel(sparse.csr_matrix(x), sparse.csr_matrix(y))
    direct = np.minimum(x[:, None], y[None]).sum(-1) / np.maximum(x[:, None], y[None]).sum(-1)
    np.testing.assert_allclose(kernel, direct)
    square = minmax_kernel(sparse.csr_matrix(x), sparse.csr_matrix(x))
    np.testing.assert_allclose(square, square.T)
    np.testing.assert_allclose(np.diag(square), 1.0)
    disjoint = sparse.csr_matrix(np.array([[3, 0, 1, 0], [0, 2, 0, 5]]))
    assert minmax_kernel(disjoint, disjoint)[0, 1] == 0.0
    assert minmax_kernel(sparse.csr_matrix((1, 4)), disjoint).tolist() == [[0.0, 0.0]]
    with pytest.raises(ValueError, match="integer counts"):
        minmax_kernel(sparse.csr_matrix([[0.5, 1.0]]), sparse.csr_matrix([[1.0, 1.0]]))


def test_fisher_p_values_equal_scipy():
    n_positive, n_negative = 6, 5
    tables = list(product(range(n_positive + 1), range(n_negative + 1)))
    a, b = np.array(tables).T
    expected = [
        fisher_exact([[i, j], [n_positive - i, n_negative - j]], alternative="greater").pvalue
        for i, j in tables
    ]
    np.testing.assert_allclose(fisher_greater(a, b, n_positive, n_negative), expected, rtol=1e-9)


# ----------------------------------------------------------------------------- learning


# repertoire_size sees no sequence, only depth (tests/test_evaluation_controls.py)
@pytest.mark.parametrize("name", sorted(set(BASELINES) - {"repertoire_size"}))
def test_a_strong_signal_is_learned_and_written_for_evaluate(signal, tmp_path, name):
    store, train, test, _ = signal
    predictions = run_baseline(name, store, train, test, tmp_path / name, seed=0)
    written = pd.read_csv(
        tmp_path / name / "predictions.tsv", sep="\t", dtype={"repertoire_id": str}
    )
    assert list(written.columns) == ["repertoire_id", "y", "logit", "score"]
    pd.testing.assert_frame_equal(written, predictions, check_exact=False)
    assert written["repertoire_id"].tolist() == store.repertoires["repertoire_id"][test].tolist()
    assert written["y"].tolist() == store.labels[test].tolist()
    np.testing.assert_allclose(written["score"], expit(written["logit"]))
    auc = roc_auc_score(written["y"], written["score"])
    assert auc > 0.9, f"{name}: test AUC {auc:.3f}"
    metrics = evaluate_folds([tmp_path / name], tmp_path / "metrics.json")
    assert metrics["folds"][0]["roc_auc"] == pytest.approx(auc)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_no_signal_is_not_learned(null, tmp_path, name):
    store, train, test, _ = null
    predictions = run_baseline(name, store, train, test, tmp_path / name, seed=0)
    auc = roc_auc_score(predictions["y"], predictions["score"])
    assert auc < 0.9, f"{name}: test AUC {auc:.3f} on a cohort without signal"


def test_kmer_logistic_relies_on_the_motif(signal):
    store, train, test, _ = signal
    model = KmerLogistic(k=4).fit(store, train)
    # the public clonotypes' k-mers separate the classes too, so L1 may share the weight out
    assert model.coef_.get("SLRF", 0.0) > 0, model.coef_.head(10)
    assert len(model.coef_) < 1000  # sparse: a few of the 160,000 k-mers
    decision = model.decision(store, test)
    np.testing.assert_allclose(model.probability(store, test), expit(decision))


def test_emerson_finds_the_implanted_public_clonotypes(signal, null, tmp_path):
    store, train, test, summary = signal
    model = EmersonBurden(p_threshold=1e-4).fit(store, train)
    implanted = {tuple(c.values()) for c in summary["public_clonotypes"]["pub"]}
    table = model.associated_
    found = set(zip(table["junction_aa"], table["v_call"], table["j_call"], strict=True))
    assert found <= implanted and len(found) >= 10, table
    assert table["p_value"].is_monotonic_increasing and (table["p_value"] < 1e-4).all()
    n_positive = int(store.labels[train].sum())
    n_negative = len(train) - n_positive
    for row in table.itertuples():
        contingency = [[row.n_positive, row.n_negative],
                       [n_positive - row.n_positive, n_negative - row.n_negative]]  # fmt: skip
        expected = fisher_exact(contingency, alternative="greater").pvalue
        assert row.p_value == pytest.approx(expected, rel=1e-9)
    burden, y = model.decision(store, test), store.labels[test]
    assert burden[y == 1].min() > burden[y == 0].max()
    assert np.all(np.diff(model.probability(store, test)[np.argsort(burden)]) >= 0)
    written = run_baseline("emerson_burden", store, train, test, tmp_path / "e")
    shown = pd.read_csv(tmp_path / "e" / "associated_clonotypes.tsv", sep="\t")
    assert len(shown) == len(table) and len(written) == len(test)
    null_store, null_train, _, _ = null
    assert EmersonBurden().fit(null_store, null_train).associated_.empty


@pytest.mark.parametrize("written_by", ["ingest", "an older ingest (null calls)"])
def test_emerson_counts_an_empty_call_as_a_value(h, tmp_path, written_by):
    """Files without J (or V) assignments: an empty call is part of the clonotype, not a gap."""
    public = ("CASSLGQETQYF", "TRBV5-1*01", "")  # no J call, in every positive
    files = {}
    for r in range(6):
        rows = [h.rec("CASSPDRGYEQYF", v_call="", j_call="TRBJ2-7*01", locus=""),  # no V
                h.rec(f"CASS{'ACDEFG'[r]}YNEQFF", j_call="")]  # fmt: skip
        if r % 2:
            rows.append(h.rec(public[0], v_call=public[1], j_call=public[2]))
        else:  # the same junction and V with a J call is another clonotype
            rows.append(h.rec(public[0], v_call=public[1], j_call="TRBJ1-1*01"))
        files[f"rep{r}.tsv"] = rows
    _, out = h.run_ingest(h.make_study(tmp_path / "study", files))
    part = out / "sequences" / "part-000000.parquet"
    if written_by == "ingest":
        calls = pd.read_parquet(part)[["v_call", "j_call", "locus"]]
        assert calls.notna().all().all() and (calls == "").any().all(), calls
    else:
        table = pq.read_table(part)
        for name in ("v_call", "j_call"):
            column = pc.if_else(pc.equal(table[name].cast(pa.string()), ""), None,
                                table[name].cast(pa.string()))  # fmt: skip
            table = table.set_column(
                table.schema.get_field_index(name), name, pc.dictionary_encode(column)
            )
        pq.write_table(table, part)
        assert pd.read_parquet(part)["j_call"].isna().any()
    store = Store(out)
    everyone = np.arange(6)
    model = EmersonBurden(p_threshold=0.1).fit(store, everyone)
    found = list(model.associated_[["junction_aa", "v_call", "j_call"]].itertuples(index=False))
    assert found == [public], model.associated_
    assert model.n_tested_ == 2  # the public clonotype and the V-less one all six carry
    np.testing.assert_array_equal(model.decision(store, everyone), [0, 1, 0, 1, 0, 1])


def test_same_seed_same_predictions(signal, tmp_path):
    store, train, test, _ = signal
    for name in ("kmer3_logistic", "minmax_svm"):
        first = run_baseline(name, store, train, test, tmp_path / f"{name}_a", seed=3)
        second = run_baseline(name, store, train, test, tmp_path / f"{name}_b", seed=3)
        pd.testing.assert_frame_equal(first, second, check_exact=True)
        a = (tmp_path / f"{name}_a" / "predictions.tsv").read_bytes()
        assert a == (tmp_path / f"{name}_b" / "predictions.tsv").read_bytes()


def test_clear_errors(signal, tmp_path):
    store, train, test, _ = signal
    with pytest.raises(InputError, match="unknown baseline 'svm'.*minmax_svm"):
        run_baseline("svm", store, train, test, tmp_path / "x")
    one_class = train[store.labels[train] == 1]
    with pytest.raises(InputError, match="at least 2 training repertoires of each class"):
        run_baseline("kmer3_logistic", store, one_class, test, tmp_path / "x")
    assert not (tmp_path / "x").exists()
