"""Evidence beside each sequence: counted on the training repertoires only, each leaving
itself out."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from deeprc.cli import main
from deeprc.evidence import (
    ClonotypeEvidence,
    KmerEvidence,
    evidence_features,
    training_features,
)
from deeprc.ingest import ingest
from deeprc.model.files import load_model
from deeprc.outputs import read_predictions
from deeprc.simulate import PublicSignal, SimulationConfig, simulate
from deeprc.split import read_folds
from deeprc.store import Store


def test_evidence_counts_training_repertoires_and_never_the_repertoire_itself(h, tmp_path):
    shared = h.rec("CASSPQALLCF")
    files = {
        "p1": [shared, h.rec("CASSAAAF")],  # positive, carries the shared clonotype
        "p2": [shared, h.rec("CASSAAAF", v_call="TRBV6-2*01")],  # positive, shared again
        "n1": [shared, h.rec("CASSCCCF")],  # negative, shared
        "n2": [h.rec("CASSDDDF")],  # negative
        "t1": [shared, h.rec("CASSAAAF")],  # held out
    }
    for name, rows in files.items():
        h.write_airr(tmp_path / f"{name}.tsv", rows)
    labels = {"p1": "1", "p2": "1", "n1": "0", "n2": "0", "t1": "1"}
    h.write_metadata(tmp_path / "m.tsv", [(r, f"{r}.tsv", y) for r, y in labels.items()])
    _, out = h.run_ingest(tmp_path / "m.tsv")
    store = Store(out)
    index = {rid: i for i, rid in enumerate(store.repertoires["repertoire_id"])}
    train = np.array([index[r] for r in ("p1", "p2", "n1", "n2")])
    evidence = ClonotypeEvidence.fit(store, train)
    # the shared clonotype is carried by 2 positives and 1 negative; CASSAAAF with TRBV5-1 by
    # p1 only (TRBV6-2 is another clonotype), so it is not kept
    assert len(evidence.keys) == 1 and (evidence.positive, evidence.negative) == ([2], [1])
    counts = np.expm1(training_features([evidence], store, train))
    held_out = index["t1"]
    start = store.offsets[held_out]
    counts[start : store.offsets[held_out + 1]] = np.expm1(
        evidence_features([evidence], store, held_out)
    )
    rows = {rid: counts[store.offsets[i] : store.offsets[i + 1]] for rid, i in index.items()}
    np.testing.assert_allclose(rows["t1"], [[2, 1], [0, 0]], atol=1e-5)  # held out: all of them
    np.testing.assert_allclose(rows["p1"], [[1, 1], [0, 0]], atol=1e-5)  # p1 leaves itself out
    np.testing.assert_allclose(rows["n1"], [[2, 0], [0, 0]], atol=1e-5)
    np.testing.assert_allclose(rows["n2"], [[0, 0]], atol=1e-5)


def test_public_clonotypes_are_learned_with_evidence_and_not_without(h, tmp_path):
    cfg = SimulationConfig(
        n_repertoires=60, n_sequences=300, pool_size=20_000, seed=3,
        public_clonotypes=(PublicSignal(name="pub", n_clonotypes=20, presence=0.3),),
    )  # fmt: skip
    simulate(cfg, tmp_path / "sim", threads=1)
    ingest(tmp_path / "sim" / "metadata.tsv", tmp_path / "store", label_column="status", threads=1)
    store, folds = str(tmp_path / "store"), str(tmp_path / "folds.tsv")
    assert main(["split", "--store", store, "--out", folds, "--k", "3"]) == 0
    train = "train: {n_sequences: 300, max_steps: 150, eval_every: 25, top_fraction: 1.0}\n"
    aucs = {
        evidence: h.fold0_test_auc(
            store, folds, f"model: {{clonotype_evidence: {evidence}}}\n{train}", tmp_path / evidence
        )
        for evidence in ("false", "true")
    }
    assert aucs["true"] >= 0.95, aucs
    assert aucs["false"] < 0.8, aucs


def test_kmer_evidence_rates_a_sequence_by_its_most_enriched_kmer_leaving_itself_out(h, tmp_path):
    files = {
        "p1": [h.rec("CASSLRFE"), h.rec("CWWWWC")],  # CWWW, WWWW, WWWC: only here
        "p2": [h.rec("CASSLRFQ")],
        "n1": [h.rec("CASSGGGE")],
        "n2": [h.rec("CASSGGGQ")],
        "t1": [h.rec("CSLRFA")],  # held out
    }
    for name, rows in files.items():
        h.write_airr(tmp_path / f"{name}.tsv", rows)
    labels = {"p1": "1", "p2": "1", "n1": "0", "n2": "0", "t1": "1"}
    h.write_metadata(tmp_path / "m.tsv", [(r, f"{r}.tsv", y) for r, y in labels.items()])
    store = Store(h.run_ingest(tmp_path / "m.tsv")[1])
    index = {rid: i for i, rid in enumerate(store.repertoires["repertoire_id"])}
    train = np.array([index[r] for r in ("p1", "p2", "n1", "n2")])
    evidence = KmerEvidence.fit(store, train, 4)
    # SLRF: in both positives, no negative: log((2/2 + 1) / (0 + 1)) = log 2
    np.testing.assert_allclose(evidence_features([evidence], store, index["t1"]), [[np.log(2)]])
    rows = training_features([evidence], store, train)
    p1 = rows[store.offsets[index["p1"]] : store.offsets[index["p1"] + 1], 0]
    # p1 leaves itself out: SLRF (and ASSL) then in p2 only, log((1/1 + 1) / 1); its private
    # k-mers count nothing (log 1.5 if it counted itself)
    np.testing.assert_allclose(p1, [np.log(2), 0.0], atol=1e-6)
    n1 = rows[store.offsets[index["n1"]], 0]
    assert n1 == pytest.approx(0.0)  # CASS and GGGE: no class; ASSG.. in negatives only (< 0)


def test_a_model_with_kmer_evidence_trains_saves_and_predicts(trained, tmp_path):
    """The fitted k-mer rates travel in the model file (loaded with weights_only) and give
    prediction the same numbers training had."""
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        "model: {kmer_evidence: 4}\ntrain: {n_sequences: 300, max_steps: 100, eval_every: 25}\n"
    )
    args = ["--store", str(trained / "store"), "--folds", str(trained / "folds.tsv"), "--fold", "0"]
    model_path = tmp_path / "m.pt"
    assert main(["train", *args, "--experiment", str(experiment), "--out", str(model_path),
                 "--threads", "1", "--no-progress"]) == 0  # fmt: skip
    assert main(["predict", *args, "--model", str(model_path), "--out", str(tmp_path / "p")]) == 0
    predictions = read_predictions(tmp_path / "p")
    assert roc_auc_score(predictions["y"], predictions["score"]) >= 0.9
    model, _ = load_model(model_path)
    store = Store(trained / "store")
    train = read_folds(trained / "folds.tsv", store, 0)["train"]
    (loaded,) = model.evidence
    fitted = KmerEvidence.fit(store, train, 4)
    assert torch.equal(loaded.positive, fitted.positive) and loaded.n_positive == fitted.n_positive
