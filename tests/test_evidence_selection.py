"""Evidence chosen inside the fold: the training repertoires' cross-fitted soft burden picks
which providers the model reads (FeatureSet.selected, ``select_evidence: true``)."""

import numpy as np
import pytest

from deeprc.classifier import RepertoireClassifier
from deeprc.cli import main
from deeprc.features import FeatureSet
from deeprc.features.burden_evidence import BurdenEvidence
from deeprc.features.kmer_evidence import KmerEvidence
from deeprc.ingest import ingest
from deeprc.simulate import MotifSignal, PublicSignal, SimulationConfig, simulate
from deeprc.store import Store

KINDS = {
    "motif": dict(motifs=(MotifSignal(name="m", motif="SLRF", witness_rate=0.02),)),
    "public": dict(public_clonotypes=(PublicSignal(name="p", n_clonotypes=20, presence=0.3),)),
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_training_repertoires_choose_the_evidence_of_the_signals_kind(kind, tmp_path):
    cfg = SimulationConfig(
        n_repertoires=60, n_sequences=300, pool_size=20_000, seed=3, **KINDS[kind]
    )
    simulate(cfg, tmp_path / "sim", threads=1)
    ingest(tmp_path / "sim" / "metadata.tsv", tmp_path / "store", label_column="status", threads=1)
    store = Store(tmp_path / "store")
    train = np.arange(len(store.labels))
    features = FeatureSet([KmerEvidence(4), BurdenEvidence(p_threshold=1e-2)]).fit(store, train)
    inputs = features.training_inputs(store, train, seed=0)
    chosen, kept, record = features.selected(store, train, inputs)

    expected = {"motif": "kmer(k=4)", "public": "burden(p_threshold=0.01)"}[kind]
    other = ({"kmer(k=4)", "burden(p_threshold=0.01)"} - {expected}).pop()
    aucs = record["soft_burden_auc"]
    assert record["chosen"][0] == expected and aucs[expected] > aucs[other], record
    assert aucs[expected] >= 0.9 and record["chosen_auc"] >= aucs[expected], record
    assert [f"{p.name}" for p in chosen.evidence] == [n.split("(")[0] for n in record["chosen"]]
    column = {"kmer(k=4)": 0, "burden(p_threshold=0.01)": 1}
    wanted = [column[name] for name in record["chosen"]]
    np.testing.assert_array_equal(kept.evidence, inputs.evidence[:, sorted(wanted)])


def test_a_model_that_chooses_its_evidence_starts_as_its_soft_burden_and_says_so(
    h, trained, tmp_path, capsys
):
    experiment = (
        "evidence: [{name: burden, p_threshold: 1.0e-2}, {name: kmer, k: 4}, {name: gapped}]\n"
        "select_evidence: true\n"
        "train: {n_sequences: 300, max_steps: 2, eval_every: 1}\n"
    )
    model_path, predictions = h.train_fold0(
        trained / "store", trained / "folds.tsv", experiment, tmp_path
    )
    assert "evidence chosen by the training repertoires: kmer(k=4)" in capsys.readouterr().out
    model = RepertoireClassifier.load(model_path)
    assert [p.name for p in model.features.evidence] == ["kmer"]
    assert model.network.evidence_size == 1
    # the untrained start (the chosen evidence's soft burden) was a candidate: step 0 scored
    assert [h["step"] for h in model.record["history"]] == [0, 1, 2]
    assert model.card()["evidence_selection"]["chosen"] == ["kmer(k=4)"]
    assert main(["show-model", str(model_path)]) == 0
    assert "evidence chosen  kmer(k=4)" in capsys.readouterr().out
    report = tmp_path / "r.html"
    assert main(["report", "--store", str(trained / "store"), "--predictions",
                 str(predictions), "--out", str(report)]) == 0  # fmt: skip
    page = report.read_text()
    assert (
        "evidence chosen by the training repertoires" in page and "kmer(k=4): soft-burden" in page
    )
