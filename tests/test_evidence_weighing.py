"""Evidence weighed inside the fold: a logistic regression of the training repertoires on each
provider's cross-fitted soft burden says how much the model reads each (FeatureSet.weighed,
``weigh_evidence: true``), one attention head per provider."""

import numpy as np
import pytest
import torch
from conftest import ROOT

from deeprc.classifier import RepertoireClassifier, network_inputs
from deeprc.cli import main
from deeprc.config import load
from deeprc.errors import InputError
from deeprc.experiment import LEARNED_STEPS, Experiment, TrainConfig
from deeprc.features import FeatureSet
from deeprc.features.burden_evidence import BurdenEvidence
from deeprc.features.clonotype_evidence import ClonotypeEvidence
from deeprc.features.kmer_evidence import KmerEvidence
from deeprc.ingest import ingest
from deeprc.model import ModelConfig, build_model, count_on_start
from deeprc.simulate import MotifSignal, PublicSignal, SimulationConfig, simulate
from deeprc.store import Store

EXAMPLE = ROOT / "data" / "example" / "metadata.tsv"
KINDS = {
    "motif": dict(motifs=(MotifSignal(name="m", motif="SLRF", witness_rate=0.02),)),
    "public": dict(public_clonotypes=(PublicSignal(name="p", n_clonotypes=20, presence=0.3),)),
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_training_repertoires_weigh_the_evidence_of_the_signals_kind_most(kind, tmp_path):
    cfg = SimulationConfig(
        n_repertoires=60, n_sequences=300, pool_size=20_000, seed=3, **KINDS[kind]
    )
    simulate(cfg, tmp_path / "sim", threads=1)
    ingest(tmp_path / "sim" / "metadata.tsv", tmp_path / "store", label_column="status", threads=1)
    store = Store(tmp_path / "store")
    train = np.arange(len(store.labels))
    features = FeatureSet([KmerEvidence(4), BurdenEvidence(p_threshold=1e-2)]).fit(store, train)
    inputs = features.training_inputs(store, train, seed=0)
    kept, kept_inputs, weights, intercept, record = features.weighed(store, train, inputs, 0)

    expected = {"motif": "kmer(k=4)", "public": "burden(p_threshold=0.01)"}[kind]
    other = ({"kmer(k=4)", "burden(p_threshold=0.01)"} - {expected}).pop()
    aucs, weighed = record["soft_burden_auc"], record["weights"]
    assert aucs[expected] >= 0.9 and aucs[expected] > aucs[other], record
    assert weighed[expected] > weighed.get(other, 0.0) and min(weighed.values()) > 0, record
    assert record["weighed_auc"] >= 0.9 and (weights > 0).all(), record
    assert [f"{p.name}" for p in kept.evidence] == [n.split("(")[0] for n in weighed]
    column = {"kmer(k=4)": 0, "burden(p_threshold=0.01)": 1}
    wanted = sorted(column[name] for name in weighed)
    np.testing.assert_array_equal(kept_inputs.evidence, inputs.evidence[:, wanted])


def test_a_weighed_network_starts_as_the_weighed_sum_of_each_providers_soft_burden():
    """One head per provider, each reading its own columns alone (clonotype evidence has two):
    untrained, the logit is w · (each head's log-mean-exp of its starting scores) + b,
    whatever the junctions."""
    features = FeatureSet([BurdenEvidence(1e-3), ClonotypeEvidence(), KmerEvidence(4)])
    inputs = network_inputs(features, weighed=True)
    assert inputs.evidence_heads == (1, 2, 1)
    model = build_model(ModelConfig(), inputs, seed=0)
    assert model.pooling.num_heads == 3 and model.starts_as_count
    weights, bias = [0.7, 1.3, 0.4], -0.2
    count_on_start(model.output[-1], weights, bias)
    torch.manual_seed(1)
    n = 500
    tokens, lengths = torch.randint(1, 21, (1, n, 15)), torch.full((1, n), 15)
    evidence = torch.rand(1, n, 4)
    logit = model(tokens, lengths, inputs={"evidence": evidence})[0].item()
    prior = torch.tensor(features.prior)
    expected = bias
    for w, columns in zip(weights, ([0], [1, 2], [3]), strict=True):
        scores = evidence[0][:, columns] @ prior[columns]
        expected += w * (torch.logsumexp(scores, 0) - np.log(n)).item()
    assert logit == pytest.approx(expected, abs=1e-4)
    with pytest.raises(InputError, match="num_heads at 1"):
        Experiment(model=ModelConfig(num_heads=2), weigh_evidence=True)


def test_a_model_that_weighs_its_evidence_starts_there_and_says_so(h, trained, tmp_path, capsys):
    experiment = (
        "evidence: [{name: burden, p_threshold: 1.0e-2}, {name: kmer, k: 4}, {name: gapped}]\n"
        "weigh_evidence: true\n"
        "train: {n_sequences: 300, max_steps: 2, eval_every: 1}\n"
    )
    model_path, predictions = h.train_fold0(
        trained / "store", trained / "folds.tsv", experiment, tmp_path
    )
    said = capsys.readouterr().out.split("evidence weighed by the training repertoires: ")[1]
    assert "kmer(k=4) " in said.splitlines()[0], said
    model = RepertoireClassifier.load(model_path)
    weighed = model.card()["evidence_weights"]["weights"]
    kept = [p.name for p in model.features.evidence]
    assert "kmer" in kept and kept == [name.split("(")[0] for name in weighed]
    assert model.network.pooling.num_heads == model.network.evidence_size == len(kept)
    # the untrained start (the weighed soft burdens) was a candidate: step 0 scored
    assert [h["step"] for h in model.record["history"]] == [0, 1, 2]
    assert main(["show-model", str(model_path)]) == 0
    assert "kmer(k=4) " in capsys.readouterr().out.split("evidence weighed ")[1].splitlines()[0]
    report = tmp_path / "r.html"
    assert main(["report", "--store", str(trained / "store"), "--predictions",
                 str(predictions), "--out", str(report)]) == 0  # fmt: skip
    page = report.read_text()
    assert "evidence weighed by the training repertoires" in page and "kmer(k=4) " in page


def test_select_evidence_of_deeprc_0_3_says_to_write_weigh_evidence(trained, tmp_path, capsys):
    path = tmp_path / "experiment.yaml"
    path.write_text("select_evidence: true\n")
    with pytest.raises(InputError, match="select_evidence is written weigh_evidence"):
        load(Experiment, path)
    saved = torch.load(trained / "fold0.pt", weights_only=True)
    saved["experiment"]["select_evidence"] = saved["experiment"].pop("weigh_evidence")
    old = tmp_path / "old.pt"
    torch.save(saved, old)
    assert main(["show-model", str(old)]) == 2
    error = capsys.readouterr().err
    assert f"{old} was trained by deeprc" in error and "weigh_evidence" in error, error


def test_the_default_weighs_and_trains_no_step_while_a_learned_network_trains_2000():
    """``train.max_steps: null``: the weighed start is the model; without weighing (or without
    evidence to weigh) the network learns; a number given is kept."""
    assert Experiment().weigh_evidence and Experiment().train.max_steps == 0
    assert Experiment(weigh_evidence=False).train.max_steps == LEARNED_STEPS
    assert Experiment(evidence=()).train.max_steps == LEARNED_STEPS
    assert Experiment(train=TrainConfig(max_steps=30)).train.max_steps == 30
    assert Experiment(train=TrainConfig(max_steps=0), weigh_evidence=False).train.max_steps == 0


def test_too_few_training_repertoires_to_weigh_on_is_an_error_saying_what_to_do(tmp_path, capsys):
    """The example's folds of 6 repertoires train on 1 of each class."""
    store, folds = tmp_path / "store", tmp_path / "folds.tsv"
    assert main(["ingest", "--metadata", str(EXAMPLE), "--label-column", "status",
                 "--out", str(store), "--no-progress"]) == 0  # fmt: skip
    assert main(["split", "--store", str(store), "--out", str(folds), "--k", "3"]) == 0
    args = ["train", "--store", str(store), "--folds", str(folds), "--fold", "0", "--no-progress"]
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "m.pt")]) == 2
    error = capsys.readouterr().err
    assert "needs at least 3 training repertoires of each class" in error, error
    assert "1 positive and 1 negative" in error and "small_cohort.yaml" in error, error
    assert "Traceback" not in error and not (tmp_path / "m.pt").exists()
    small = ROOT / "configs" / "experiments" / "small_cohort.yaml"
    assert main([*args, "--experiment", str(small), "--out", str(tmp_path / "m.pt")]) == 0


def test_the_default_trains_no_step_and_says_so(trained, tmp_path, capsys):
    model = tmp_path / "m.pt"
    args = ["train", "--store", str(trained / "store"), "--folds", str(trained / "folds.tsv"),
            "--fold", "0", "--out", str(model), "--threads", "1", "--no-progress"]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fold 0: no training step (train.max_steps 0)" in printed, printed
    assert "ran all" not in printed and "evidence weighed by the training repertoires" in printed
    record = RepertoireClassifier.load(model).record
    assert record["steps"] == 0 and [h["step"] for h in record["history"]] == [0]
