"""Clonotype evidence: counted on the training repertoires only, each leaving itself out."""

import numpy as np
from sklearn.metrics import roc_auc_score

from deeprc.cli import main
from deeprc.clonotypes import ClonotypeEvidence
from deeprc.ingest import ingest
from deeprc.outputs import read_predictions
from deeprc.simulate import PublicSignal, SimulationConfig, simulate
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
    counts = np.expm1(evidence.store_features(store, train, np.arange(len(index))))
    rows = {rid: counts[store.offsets[i] : store.offsets[i + 1]] for rid, i in index.items()}
    np.testing.assert_allclose(rows["t1"], [[2, 1], [0, 0]], atol=1e-5)  # held out: all of them
    np.testing.assert_allclose(rows["p1"], [[1, 1], [0, 0]], atol=1e-5)  # p1 leaves itself out
    np.testing.assert_allclose(rows["n1"], [[2, 0], [0, 0]], atol=1e-5)
    np.testing.assert_allclose(rows["n2"], [[0, 0]], atol=1e-5)


def test_public_clonotypes_are_learned_with_evidence_and_not_without(tmp_path):
    cfg = SimulationConfig(
        n_repertoires=60, n_sequences=300, pool_size=20_000, seed=3,
        public_clonotypes=(PublicSignal(name="pub", n_clonotypes=20, presence=0.3),),
    )  # fmt: skip
    simulate(cfg, tmp_path / "sim", threads=1)
    ingest(tmp_path / "sim" / "metadata.tsv", tmp_path / "store", label_column="status", threads=1)
    store, folds = str(tmp_path / "store"), str(tmp_path / "folds.tsv")
    assert main(["split", "--store", store, "--out", folds, "--k", "3"]) == 0
    aucs = {}
    for evidence in ("false", "true"):
        experiment = tmp_path / f"{evidence}.yaml"
        experiment.write_text(
            f"model: {{clonotype_evidence: {evidence}}}\n"
            "train: {n_sequences: 300, max_steps: 150, eval_every: 25, top_fraction: 1.0}\n"
        )
        args = ["--store", store, "--folds", folds, "--fold", "0"]
        model = tmp_path / f"{evidence}.pt"
        assert main(["train", *args, "--experiment", str(experiment), "--out", str(model),
                     "--threads", "1", "--no-progress"]) == 0  # fmt: skip
        out = tmp_path / f"pred_{evidence}"
        assert main(["predict", *args, "--model", str(model), "--out", str(out)]) == 0
        predictions = read_predictions(out)
        aucs[evidence] = roc_auc_score(predictions["y"], predictions["score"])
    assert aucs["true"] >= 0.95, aucs
    assert aucs["false"] < 0.8, aucs
