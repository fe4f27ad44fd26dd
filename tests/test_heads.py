"""A network of several targets (deeprc.heads) and covariates (deeprc.covariates): trained,
saved, predicted and evaluated per target through the commands a user runs; missing values
left out of the loss; covariates weighed beside the evidence; models of the label alone as
before."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from deeprc.classifier import RepertoireClassifier
from deeprc.cli import main
from deeprc.heads import Head, Heads, concordance
from deeprc.ingest import ingest
from deeprc.ingest.annotations import Annotation
from deeprc.outputs import read_head_predictions
from deeprc.simulate import MotifSignal, RepertoireNumber, SimulationConfig, simulate
from deeprc.store import Store
from deeprc.targets import Target

QUICK = """
model: {encoder: {name: cnn, n_kernels: 8}, hidden_size: 8}
evidence: []
train: {n_sequences: 300, batch_size: 8, max_steps: 60, eval_every: 20, patience: 10,
        validation_sequences: 300, checkpoint_every: 20}
"""


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """45 repertoires: flu, cmv (each its own motif) and healthy; a severity that a third motif
    grows with in everyone, missing in three repertoires; an age that older positives carry."""
    root = tmp_path_factory.mktemp("heads")
    cfg = SimulationConfig(
        n_repertoires=45, n_sequences=300, pool_size=8000, positive_fraction=0.667, seed=4,
        conditions=("flu", "cmv"),
        numbers=(RepertoireNumber(name="severity", low=0, high=10),
                 RepertoireNumber(name="age", low=20, high=80, positive_from=0.6)),
        motifs=(MotifSignal(name="f", motif="WWQ", witness_rate=0.1, condition="flu"),
                MotifSignal(name="c", motif="MMH", witness_rate=0.1, condition="cmv"),
                MotifSignal(name="s", motif="CYC", witness_rate=0.1, scaled_by="severity",
                            negative_fraction=1.0)),
    )  # fmt: skip
    simulate(cfg, root / "sim", threads=2)
    metadata = root / "sim" / "metadata.tsv"
    lines = metadata.read_text().splitlines()
    header = lines[0].split("\t")
    for i in (1, 2, 3):  # severity unknown in three repertoires
        cells = lines[i].split("\t")
        cells[header.index("severity")] = ""
        lines[i] = "\t".join(cells)
    metadata.write_text("\n".join(lines) + "\n")
    annotations = [Annotation.parse("target", "condition:categorical"),
                   Annotation.parse("target", "severity:numeric"),
                   Annotation.parse("covariate", "age:numeric")]  # fmt: skip
    ingest(metadata, root / "store", label_column="status", threads=2,
           annotations=annotations, log=lambda _: None)  # fmt: skip
    assert main(["split", "--store", str(root / "store"), "--out", str(root / "folds.tsv"),
                 "--k", "3"]) == 0  # fmt: skip
    return root


def train(root, name: str, experiment: str) -> tuple[int, str]:
    """Train fold 0 with ``experiment`` (YAML text) into ``root/name.pt``."""
    path = root / f"{name}.yaml"
    path.write_text(experiment)
    args = ["train", "--store", str(root / "store"), "--folds", str(root / "folds.tsv"),
            "--fold", "0", "--experiment", str(path), "--out", str(root / f"{name}.pt"),
            "--no-progress"]  # fmt: skip
    return main(args)


def test_each_target_has_its_head_predictions_and_metrics(cohort, capsys):
    experiment = QUICK + (
        "targets: [{name: condition}, {name: severity, weight: 0.5}, {name: label}]\n"
    )
    assert train(cohort, "joint", experiment) == 0
    out = capsys.readouterr().out
    assert "validation score" in out and "(the mean of condition " in out
    model = RepertoireClassifier.load(cohort / "joint.pt")
    assert [h.target.name for h in model.heads.heads] == ["condition", "severity", "label"]
    assert model.network.output[-1].out_features == 3 + 1 + 1
    assert model.calibration["fitted"] is False  # the first head is not binary
    history = model.record["history"]
    assert all({"val:condition", "val:severity", "val:label"} <= set(h) for h in history)
    best = next(h for h in history if h["step"] == model.record["best_step"])
    heads = [best["val:condition"], best["val:severity"], best["val:label"]]
    assert best["val_score"] == pytest.approx(np.mean(heads))
    assert best["val_score"] == max(h["val_score"] for h in history)

    prediction = cohort / "joint_pred"
    fold = ["--store", str(cohort / "store"), "--folds", str(cohort / "folds.tsv"), "--fold", "0"]
    assert main(["predict", *fold, "--model", str(cohort / "joint.pt"),
                 "--out", str(prediction), "--no-progress"]) == 0  # fmt: skip
    tables = read_head_predictions(prediction)
    assert list(tables) == ["condition", "label", "severity"]  # the first, then targets/
    # scored in two groups and joined (a cluster's way): the same predictions of every target
    groups = [cohort / f"group{k}" for k in (0, 1)]
    for k, group in enumerate(groups):
        assert main(["predict", *fold, "--model", str(cohort / "joint.pt"), "--group",
                     f"{k}/2", "--out", str(group), "--no-progress"]) == 0  # fmt: skip
    assert main(["predict", *fold, "--model", str(cohort / "joint.pt"), "--merge",
                 *map(str, groups), "--out", str(cohort / "joined")]) == 0  # fmt: skip
    joined = read_head_predictions(cohort / "joined")
    for name, table in tables.items():
        pd.testing.assert_frame_equal(joined[name], table)
    condition = tables["condition"]
    np.testing.assert_allclose(condition[["p:cmv", "p:flu", "p:healthy"]].sum(axis=1), 1.0)
    assert set(tables["label"].columns) == {"repertoire_id", "y", "logit", "score"}
    store = Store(cohort / "store")
    test = store.repertoires.set_index("repertoire_id").loc[condition["repertoire_id"]]
    assert condition["y"].tolist() == test["target:condition"].tolist()
    severity = tables["severity"]
    assert severity["prediction"].between(-5, 15).all()  # on the target's scale, not standardised

    results = {}
    for name, where in (("condition", prediction), ("severity", prediction / "targets" /
                        "severity"), ("label", prediction / "targets" / "label")):  # fmt: skip
        metrics = cohort / f"joint_{name}.json"
        assert main(["evaluate", str(where), "--out", str(metrics)]) == 0
        results[name] = json.loads(metrics.read_text())
    assert results["condition"]["target"]["name"] == "condition"
    assert results["condition"]["summary"]["roc_auc_macro"]["mean"] > 0.8
    # calibrated on the validation repertoires: the most probable class is mostly right
    assert results["condition"]["summary"]["balanced_accuracy"]["mean"] > 0.6
    calibrated = [h.calibration for h in model.heads.heads]
    assert len(calibrated[0]) == 4 and len(calibrated[1]) == 2 and len(calibrated[2]) == 2
    assert results["severity"]["target"]["kind"] == "numeric"
    assert "target" not in results["label"]  # the label's predictions, as a model of it writes
    # each head's test ranking matches its own target, not another's
    assert results["label"]["summary"]["roc_auc"]["mean"] > 0.8

    # which top-attended sequences pull each target (and each class) up
    interpreted = cohort / "joint_interpretation"
    assert main(["interpret", "--store", str(cohort / "store"), "--models",
                 str(cohort / "joint.pt"), "--predictions", str(prediction), "--top", "20",
                 "--out", str(interpreted), "--truth", str(cohort / "sim")]) == 0  # fmt: skip
    top = pd.read_parquet(interpreted / "top_sequences.parquet")
    pulls = ["pull:condition:cmv", "pull:condition:flu", "pull:condition:healthy",
             "pull:severity", "pull:label"]  # fmt: skip
    assert set(pulls) <= set(top.columns)
    np.testing.assert_allclose(top[pulls[:3]].sum(axis=1), 0.0, atol=1e-9)  # shares of a softmax
    summary = json.loads((interpreted / "interpretation.json").read_text())
    assert set(summary["pulled_most_by"]) == set(pulls)
    # the top sequences that carry a condition's motif pull towards that condition
    for motif, mine, other in (("MMH", "cmv", "flu"), ("WWQ", "flu", "cmv")):
        carriers = top[top["junction_aa"].str.contains(motif)]
        pulled = carriers[f"pull:condition:{mine}"] - carriers[f"pull:condition:{other}"]
        assert carriers.empty or pulled.mean() > 0
    assert top["junction_aa"].str.contains("MMH|WWQ").mean() > 0.5

    # the report shows each target's metrics beside the baselines of any target
    label_metrics = cohort / "joint_label.json"
    baseline = cohort / "kmer3_condition"
    assert main(["baseline", "kmer3_regression", *fold, "--target", "condition",
                 "--out", str(baseline)]) == 0  # fmt: skip
    assert main(["evaluate", str(baseline), "--out", str(cohort / "kmer3_condition.json")]) == 0
    page = cohort / "report.html"
    assert main(["report", "--store", str(cohort / "store"), "--metrics", str(label_metrics),
                 "--target", "deeprc", str(cohort / "joint_condition.json"),
                 "--target", "kmer3_regression", str(cohort / "kmer3_condition.json"),
                 "--target", "deeprc", str(cohort / "joint_severity.json"),
                 "--out", str(page)]) == 0  # fmt: skip
    text = page.read_text()
    assert "Targets beyond the label" in text
    assert "condition (categorical: cmv, flu, healthy)" in text and "severity (numeric)" in text
    assert "predicted healthy" in text and "kmer3_regression" in text
    shown = f"{results['condition']['summary']['roc_auc_macro']['mean']:.3f}"
    assert shown in text

    # a cohort scored by the model: its report shows each further target's predictions
    scored = cohort / "scored.html"
    assert main(["report", "--store", str(cohort / "store"), "--predictions", str(prediction),
                 "--out", str(scored)]) == 0  # fmt: skip
    text = scored.read_text()
    assert "<h3>condition</h3>" in text and "<h3>severity</h3>" in text  # the label: Scores
    assert "<h2>Scores</h2>" in text and "most_probable" in text

    assert main(["show-model", str(cohort / "joint.pt")]) == 0
    shown = capsys.readouterr().out
    assert "predicts         condition (categorical, cmv/flu/healthy, weight 1), severity " in shown
    assert "severity (numeric, weight 0.5), label (binary, weight 1); covariates: none" in shown


def test_missing_values_are_left_out_of_the_loss():
    target = Target("severity", "numeric")
    head = Head(target, weight=2.0, mean=5.0, sd=2.0)
    outputs = torch.tensor([[0.0], [1.0], [3.0]])
    y = np.array([5.0, np.nan, 11.0])
    # standardised targets 0 and 3 against outputs 0 and 3: no error where a value is known
    assert head.loss(outputs, y).item() == pytest.approx(0.0)
    assert head.loss(outputs, np.full(3, np.nan)) is None
    both = Heads([head, Head(Target("c", "categorical", ("a", "b")), class_weights=(1.0, 1.0))])
    two = torch.tensor([[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [3.0, 0.0, 0.0]])
    classes = np.array([0, -1, -1])
    expected = torch.nn.functional.cross_entropy(two[:1, 1:], torch.tensor([0])).item()
    assert both.loss(two, [y, classes]).item() == pytest.approx(expected)


def test_concordance_is_the_auc_of_a_number():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert concordance(y, y * 10) == 1.0
    assert concordance(y, -y) == 0.0
    assert np.isnan(concordance(y, np.zeros(4)))


def test_a_covariate_enters_the_output_with_its_weight_beside_the_evidence(cohort, capsys):
    experiment = (
        "model: {encoder: {name: cnn, n_kernels: 8}, hidden_size: 8}\n"
        "evidence: [{name: kmer, k: 3}]\ncovariates: [age]\n"
    )
    assert train(cohort, "age", experiment) == 0
    out = capsys.readouterr().out
    assert "no training step" in out and "; covariates age " in out
    assert main(["show-model", str(cohort / "age.pt")]) == 0
    assert "predicts         label (binary, weight 1); covariates: age" in capsys.readouterr().out
    model = RepertoireClassifier.load(cohort / "age.pt")
    weighing = model.record["evidence_weights"]
    assert set(weighing["covariate_weights"]) == {"age", "age missing"}
    assert [c.column for c in model.covariates.columns] == ["age"]
    store = Store(cohort / "store")
    older = store.with_labels(store.labels)
    older.__dict__["repertoires"] = store.repertoires.assign(
        **{"covariate:age": store.repertoires["covariate:age"] + 10}
    )
    age = model.covariates.columns[0]
    weight = model.network.output[-1].weight[0, -2].item()  # age's column, then its missing mark
    slope = model.calibration["slope"]
    for r in (0, 7):
        difference = model.score(older, r)[0] - model.score(store, r)[0]
        assert difference == pytest.approx(slope * weight * 10 / age.sd, rel=1e-4)
    # the weight is the regression's: standardised by the training repertoires' spread
    assert np.sign(weight) == np.sign(weighing["covariate_weights"]["age"])

    # a cohort that does not keep the covariate is refused, saying how to keep it
    bare = cohort / "bare"
    ingest(cohort / "sim" / "metadata.tsv", bare, label_column="status", threads=1,
           log=lambda _: None)  # fmt: skip
    code = main(["predict", "--store", str(bare), "--model", str(cohort / "age.pt"),
                 "--out", str(cohort / "bare_pred"), "--no-progress"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "reads covariate 'age', which store" in err and "--covariate age:KIND" in err


def test_a_model_file_without_heads_reads_as_the_label_alone(cohort, tmp_path, capsys):
    assert train(cohort, "label", QUICK) == 0
    model = RepertoireClassifier.load(cohort / "label.pt")
    assert model.heads.label_only and model.network.output[-1].out_features == 1
    saved = torch.load(cohort / "label.pt", weights_only=True)
    older = {k: v for k, v in saved.items() if k not in ("heads", "covariates")}
    torch.save(older, tmp_path / "older.pt")
    store = Store(cohort / "store")
    before = model.predict(store, np.arange(5))
    after = RepertoireClassifier.load(tmp_path / "older.pt").predict(store, np.arange(5))
    assert after.equals(before)
    assert list(before.columns) == ["repertoire_id", "y", "logit", "score"]
    # heads that do not read as heads: an error that says to train again, no traceback
    broken = saved | {"heads": [{"target": {"name": "label"}}]}
    torch.save(broken, tmp_path / "broken.pt")
    assert main(["show-model", str(tmp_path / "broken.pt")]) == 2
    assert "its targets or covariates are malformed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ("[{name: condition, weight: 0}]", "weight 0 must be above 0"),
        ("[{name: condition}, {name: condition}]", "each once"),
        ("[condition]", "write {name: <label or a target ingest kept>"),
        ("[{name: age}]", "keeps no target 'age'"),
    ],
)
def test_bad_targets_are_refused_naming_what_to_do(cohort, capsys, targets, message):
    assert train(cohort, "bad", QUICK + f"targets: {targets}\n") == 2
    assert message in capsys.readouterr().err
    assert not (cohort / "bad.pt").exists()


def test_a_store_without_the_target_reads_it_as_missing(cohort):
    store = Store(cohort / "store")
    bare = store.with_labels(store.labels)
    bare.__dict__["repertoires"] = store.repertoires.drop(columns=["target:severity"])
    assert np.isnan(Target("severity", "numeric").values(bare)).all()
    values = Target("condition", "categorical", ("flu", "healthy")).values(store)
    assert (values[store.repertoires["target:condition"] == "cmv"] == -1).all()


def test_folds_stratified_by_a_target_test_on_each_of_its_classes(cohort, capsys):
    out = cohort / "by_condition.tsv"
    assert main(["split", "--store", str(cohort / "store"), "--out", str(out), "--k", "3",
                 "--stratify", "condition"]) == 0  # fmt: skip
    folds = pd.read_csv(out, sep="\t")
    store = Store(cohort / "store")
    classes = dict(zip(store.repertoires["repertoire_id"], store.repertoires["target:condition"],
                       strict=True))  # fmt: skip
    test = folds[folds["role"] == "test"]
    test = test.assign(condition=test["repertoire_id"].map(classes))
    counts = test.groupby(["fold", "condition"]).size().unstack()
    overall = pd.Series(classes).value_counts()
    for condition, n in overall.items():  # each fold tests on a third of each class (+-1)
        assert (abs(counts[condition] - n / 3) <= 1).all()
    assert main(["split", "--store", str(cohort / "store"), "--out", str(cohort / "x.tsv"),
                 "--stratify", "severity"]) == 2  # fmt: skip
    assert "a numeric target has no classes to stratify by" in capsys.readouterr().err


def test_a_target_reads_its_own_attention_head_and_not_the_others():
    """attention_per_target: one learned head per target after the shared ones; a target's
    outputs do not move with another target's head."""
    from deeprc.model import ModelConfig, NetworkInputs, build_model

    cfg = ModelConfig(encoder={"name": "cnn", "n_kernels": 4}, hidden_size=4,
                      attention_per_target=True)  # fmt: skip
    network = build_model(cfg, NetworkInputs(head_sizes=(3, 1), covariates=2), seed=0)
    assert network.pooling.num_heads == 1 + 2  # the shared head, then condition's and severity's
    tokens = torch.randint(1, 20, (2, 6, 10))
    lengths = torch.full((2, 6), 10)
    covariates = torch.randn(2, 2)
    outputs, _ = network(tokens, lengths, covariates=covariates)
    assert outputs.shape == (2, 4)
    state = network.pooling.state  # (heads, hidden)
    condition = torch.autograd.grad(outputs[:, :3].sum(), state, retain_graph=True)[0]
    assert torch.count_nonzero(condition[2]) == 0 and torch.count_nonzero(condition[1]) > 0
    severity = torch.autograd.grad(outputs[:, 3].sum(), state)[0]
    assert torch.count_nonzero(severity[1]) == 0 and torch.count_nonzero(severity[2]) > 0
    # the mask is part of the saved weights, rebuilt by the same config
    again = build_model(cfg, NetworkInputs(head_sizes=(3, 1), covariates=2))
    again.load_state_dict(network.state_dict())
    assert torch.equal(again(tokens, lengths, covariates=covariates)[0], outputs)


def test_the_sequences_pulls_add_up_to_the_outputs():
    """DeepRC.pulls: each sequence's share of each output; over the whole bag, with the heads'
    log-mean-exp scores, the covariates and the bias, they are the outputs."""
    from types import SimpleNamespace

    from deeprc.model import ModelConfig, NetworkInputs, build_model

    cfg = ModelConfig(encoder={"name": "cnn", "n_kernels": 4}, hidden_size=4, num_heads=2,
                      attention_per_target=True)  # fmt: skip
    network = build_model(cfg, NetworkInputs(head_sizes=(3, 1), covariates=2), seed=1)
    bag = SimpleNamespace(tokens=torch.randint(1, 20, (7, 10)), lengths=torch.full((7,), 10),
                          inputs={})  # fmt: skip
    covariates = torch.randn(2)
    outputs = network.score_bag(lambda: [bag], covariates)[0]
    pulls = network.pulls(lambda: [bag], bag)
    assert pulls.shape == (4, 7)
    pooled, _ = network.pooling.pool_chunks(network._embedded(lambda: [bag]))
    weight = network.output[-1].weight * network.output_mask
    per_head = network.pooling.hidden_size + 1
    scores = pooled.view(-1, per_head)[:, -1]
    rest = weight[:, per_head - 1 : 4 * per_head : per_head] @ scores
    rest = rest + weight[:, -2:] @ covariates + network.output[-1].bias
    torch.testing.assert_close(pulls.sum(dim=1) + rest, outputs, rtol=1e-5, atol=1e-5)
