"""Training, resuming, prediction and folds on small simulated cohorts."""

import io
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from conftest import LEARNED_KMER
from sklearn.metrics import roc_auc_score

from deeprc.calibration import Platt
from deeprc.classifier import UNCALIBRATED, RepertoireClassifier
from deeprc.cli import main
from deeprc.config import load
from deeprc.errors import InputError
from deeprc.experiment import Experiment, TrainConfig
from deeprc.features import FeatureSet
from deeprc.ingest import ingest
from deeprc.model import ModelConfig, build_model
from deeprc.outputs import read_predictions
from deeprc.predict import predict
from deeprc.simulate import MotifSignal, SimulationConfig, simulate
from deeprc.split import make_folds, read_folds
from deeprc.store import Store
from deeprc.train import ValidationSample, fit, permuted_labels

ROOT = Path(__file__).parents[1]
JUNCTION_ONLY = ModelConfig()  # fit() alone: no evidence providers fitted
QUICK = TrainConfig(
    n_sequences=200, max_steps=40, eval_every=10, checkpoint_every=10, patience=3, min_steps=0
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Store, Path]:
    """24 repertoires x 300 sequences, a motif in 10% of the positives' sequences."""
    root = tmp_path_factory.mktemp("cohort")
    cfg = SimulationConfig(
        n_repertoires=24,
        n_sequences=300,
        pool_size=3000,
        seed=4,
        motifs=(MotifSignal(name="m", motif="SLRF", witness_rate=0.1),),
    )
    simulate(cfg, root / "sim", threads=1)
    ingest(root / "sim" / "metadata.tsv", root / "store", label_column="status", threads=1)
    assert main(["split", "--store", str(root / "store"), "--out", str(root / "folds.tsv"),
                 "--k", "3"]) == 0  # fmt: skip
    return Store(root / "store"), root


def network_only(network) -> RepertoireClassifier:
    """A network as a classifier that reads nothing beside the residues, uncalibrated."""
    return RepertoireClassifier(
        Experiment(model=JUNCTION_ONLY, evidence=()), FeatureSet([]), network
    )


def _fit(store: Store, root: Path, out: Path, cfg: TrainConfig = QUICK) -> dict:
    roles = read_folds(root / "folds.tsv", store, 0)
    experiment = Experiment(model=JUNCTION_ONLY, evidence=(), train=cfg)
    model = build_model(experiment.model, seed=cfg.seed)
    return fit(
        model, store, roles["train"], roles["validation"], cfg,
        out_dir=out, experiment=asdict(experiment),
    )  # fmt: skip


def test_folds_are_stratified_disjoint_and_seeded(cohort):
    store, root = cohort
    folds = pd.read_csv(root / "folds.tsv", sep="\t", dtype={"repertoire_id": str})
    tests = folds[folds["role"] == "test"]
    assert sorted(tests["repertoire_id"]) == sorted(store.repertoires["repertoire_id"])
    for _, fold in folds.groupby("fold"):
        assert fold["repertoire_id"].is_unique and len(fold) == 24
        y = store.labels[[int(r[3:]) for r in fold.loc[fold["role"] == "test", "repertoire_id"]]]
        assert y.sum() == 4  # 12 positives over 3 folds
    labels = store.labels
    again = make_folds(store.repertoires["repertoire_id"].tolist(), labels, k=3)
    assert again.equals(folds.drop(columns="store_fingerprint"))
    assert set(folds["store_fingerprint"]) == {store.manifest["fingerprint"]}
    with pytest.raises(InputError, match="at least k repertoires of each class"):
        make_folds(["a", "b", "c"], np.array([0, 1, 1]), k=2)


def test_fixed_split_trains_on_one_cohort_and_tests_on_another(cohort, tmp_path):
    store, root = cohort
    ids = store.repertoires["repertoire_id"].tolist()
    test_ids = ids[:8]  # "the second cohort"
    (tmp_path / "test_ids.txt").write_text("\n".join(test_ids) + "\n")
    out = tmp_path / "fixed.tsv"
    assert main(["split", "--store", str(root / "store"), "--out", str(out),
                 "--test-ids", str(tmp_path / "test_ids.txt")]) == 0  # fmt: skip
    roles = read_folds(out, store, 0)
    assert sorted(roles["test"]) == list(range(8))
    rest = np.concatenate([roles["train"], roles["validation"]])
    assert sorted(rest) == list(range(8, 24))
    assert set(store.labels[roles["validation"]]) == {0, 1}
    (tmp_path / "bad.txt").write_text("nobody\n")
    code = main(["split", "--store", str(root / "store"), "--out", str(tmp_path / "x.tsv"),
                 "--test-ids", str(tmp_path / "bad.txt")])  # fmt: skip
    assert code == 2 and not (tmp_path / "x.tsv").exists()


def test_same_seed_same_model(cohort, tmp_path):
    store, root = cohort
    torch.set_num_threads(1)
    first = _fit(store, root, tmp_path / "a")
    second = _fit(store, root, tmp_path / "b")
    for name, tensor in first.best_state.items():
        assert torch.equal(tensor, second.best_state[name]), name
    other = _fit(store, root, tmp_path / "c", replace(QUICK, seed=1))
    assert not torch.equal(other.best_state["pooling.state"], first.best_state["pooling.state"])
    lines = (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()
    assert len(lines) == len(first.history) >= 1


def test_a_killed_run_resumes_to_the_same_model(cohort, tmp_path):
    store, root = cohort
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        "train: {n_sequences: 300, max_steps: 300, eval_every: 20, checkpoint_every: 5,"
        " patience: 100, top_fraction: 1.0}\n"
    )
    command = [sys.executable, "-m", "deeprc.cli", "train", "--store", str(root / "store"),
               "--folds", str(root / "folds.tsv"), "--fold", "0", "--experiment", str(experiment),
               "--threads", "1", "--no-progress"]  # fmt: skip
    subprocess.run([*command, "--out", str(tmp_path / "whole.pt")], check=True, timeout=300)
    interrupted = subprocess.Popen([*command, "--out", str(tmp_path / "killed.pt")])
    checkpoint = tmp_path / "killed.work" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    interrupted.send_signal(signal.SIGKILL)
    interrupted.wait()
    assert interrupted.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    step = torch.load(checkpoint, weights_only=False)["state"]["step"]
    assert 0 < step < 300
    assert not (tmp_path / "killed.pt").exists()
    subprocess.run([*command, "--out", str(tmp_path / "killed.pt")], check=True, timeout=300)
    whole = RepertoireClassifier.load(tmp_path / "whole.pt").network
    resumed = RepertoireClassifier.load(tmp_path / "killed.pt")
    for (name, a), (_, b) in zip(
        whole.state_dict().items(), resumed.network.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed.record["steps"] == 300 and not list(tmp_path.glob("**/.*tmp*"))


def test_a_checkpoint_of_another_run_is_refused(cohort, tmp_path):
    store, root = cohort
    _fit(store, root, tmp_path / "run", replace(QUICK, max_steps=10))
    with pytest.raises(InputError, match="belongs to another run"):
        _fit(store, root, tmp_path / "run", replace(QUICK, max_steps=10, learning_rate=0.1))


def test_streamed_prediction_equals_the_model_on_the_whole_repertoire(cohort, tmp_path):
    store, _ = cohort
    model = build_model(JUNCTION_ONLY, seed=3).eval()
    for repertoire in (0, 5):
        start, stop = store.offsets[repertoire], store.offsets[repertoire + 1]
        tokens = torch.from_numpy(np.array(store.tokens[start:stop]))[None]
        lengths = torch.from_numpy(np.array(store.lengths[start:stop], dtype=np.int64))[None]
        with torch.no_grad():
            logit, association = model(tokens, lengths)
        for chunk in (7, 64, 10_000):
            streamed, attention, _ = network_only(model).score(store, repertoire, chunk=chunk)
            assert streamed == pytest.approx(logit.item(), abs=1e-5)
            np.testing.assert_allclose(attention, association[0].numpy(), atol=1e-6)
    several = build_model(replace(JUNCTION_ONLY, num_heads=2, update_steps=3), seed=3).eval()
    start, stop = store.offsets[1], store.offsets[2]
    tokens = torch.from_numpy(np.array(store.tokens[start:stop]))[None]
    lengths = torch.from_numpy(np.array(store.lengths[start:stop], dtype=np.int64))[None]
    with torch.no_grad():
        logit, association = several(tokens, lengths)
    streamed, attention, _ = network_only(several).score(store, 1, chunk=50)
    assert streamed == pytest.approx(logit.item(), abs=1e-5)
    np.testing.assert_allclose(attention, association[0].numpy(), atol=1e-6)


def test_train_and_predict_through_the_cli(cohort, tmp_path, capsys):
    store, root = cohort
    experiment = tmp_path / "exp.yaml"
    train = "train: {n_sequences: 300, max_steps: 150, eval_every: 25}\n"
    experiment.write_text(LEARNED_KMER + train)
    model = tmp_path / "fold0.pt"
    args = ["--store", str(root / "store"), "--folds", str(root / "folds.tsv"), "--fold", "0"]
    assert main(["train", *args, "--experiment", str(experiment), "--out", str(model),
                 "--threads", "1", "--no-progress"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "kept the model of step" in printed and f"-> {model}" in printed
    assert ("stopped early at step" in printed) != ("ran all 150 steps" in printed)
    out = tmp_path / "predictions"
    assert main(["predict", *args, "--model", str(model), "--out", str(out)]) == 0
    predictions = pd.read_csv(out / "predictions.tsv", sep="\t", dtype={"repertoire_id": str})
    test_ids = read_folds(root / "folds.tsv", store, 0)["test"]
    assert sorted(predictions["repertoire_id"]) == sorted(
        store.repertoires["repertoire_id"].iloc[test_ids]
    )
    assert roc_auc_score(predictions["y"], predictions["score"]) >= 0.9
    attention = pq.read_table(out / "attention.parquet").to_pandas()
    sums = attention.groupby("repertoire_id")["attention"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    assert len(attention) == sum(store.repertoires["n_sequences"].iloc[test_ids])
    top = attention.sort_values("attention", ascending=False).groupby("repertoire_id").head(5)
    positives = set(predictions.loc[predictions["y"] == 1, "repertoire_id"])
    carried = top[top["repertoire_id"].isin(positives)]["junction_aa"].str.contains("SLRF")
    assert carried.mean() >= 0.5  # the model looks at the motif
    positive = sorted(positives)[0]
    capsys.readouterr()
    assert main(["top-sequences", str(out), "--repertoire", positive, "-n", "3", "--tsv"]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out), sep="\t")
    mine = attention[attention["repertoire_id"] == positive].nlargest(3, "attention")
    assert printed["junction_aa"].tolist() == mine["junction_aa"].tolist()
    assert printed["rank"].tolist() == [1, 2, 3]
    assert main(["top-sequences", str(out), "-n", "5", "--tsv"]) == 0
    cohort = pd.read_csv(io.StringIO(capsys.readouterr().out), sep="\t")
    assert cohort["attention_score"].tolist() == sorted(cohort["attention_score"], reverse=True)
    assert set(cohort["label"]) <= set(Store(root / "store").manifest["classes"])
    assert main(["top-sequences", str(out), "--repertoire", "nobody"]) == 2


def test_experiment_config_rejects_unknown_keys(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("train: {learning_rte: 0.1}\n")
    with pytest.raises(InputError, match="unknown key 'learning_rte'.*learning_rate"):
        load(Experiment, path)
    assert load(Experiment, ROOT / "deeprc" / "experiments" / "default.yaml") == Experiment()


def test_an_experiment_of_deeprc_0_2_says_what_to_write_instead(tmp_path):
    """Encoder options and evidence were flat keys of model: before; such a file is refused
    with the lines that mean the same now, which load as that recipe."""
    path = tmp_path / "old.yaml"
    path.write_text(
        "model: {n_kernels: 16, embedding: dense, burden_evidence: 1e-3, kmer_evidence: 3}\n"
    )
    with pytest.raises(InputError) as error:
        load(Experiment, path)
    message = str(error.value)
    assert message.startswith(
        f"{path}: model: n_kernels, embedding, burden_evidence, kmer_evidence"
    )
    model = message.split("Write '")[1].split("'")[0]
    evidence = message.split("and '")[1].split("'")[0]
    assert model == "model: {encoder: {name: cnn, n_kernels: 16, implementation: dense}}"
    assert evidence == "evidence: [{name: burden, p_threshold: 1e-3}, {name: kmer, k: 3}]"
    path.write_text(f"{model}\n{evidence}\n")
    rewritten = load(Experiment, path)
    assert rewritten.model.encoder["n_kernels"] == 16
    assert [e["name"] for e in rewritten.evidence] == ["burden", "kmer"]


def test_a_model_file_of_deeprc_0_2_is_refused_with_what_to_do(trained, tmp_path, capsys):
    saved = torch.load(trained / "fold0.pt", weights_only=True)
    model = saved["experiment"]["model"]
    encoder = model.pop("encoder")
    model |= {"encoder": "cnn", "n_kernels": encoder["n_kernels"], "kmer_evidence": 4}
    old = tmp_path / "old.pt"
    torch.save(saved, old)
    assert main(["show-model", str(old)]) == 2
    error = capsys.readouterr().err
    assert f"{old} was trained by deeprc" in error and "train it again" in error


def test_experiment_floats_may_be_written_as_yaml_reads_1e_4(tmp_path):
    """PyYAML reads 1e-4 (no dot) as a string: a float field takes it, and still refuses
    a word."""
    path = tmp_path / "exp.yaml"
    path.write_text("evidence: [{name: burden, p_threshold: 1e-4}]\ntrain: {learning_rate: 3e-3}\n")
    experiment = load(Experiment, path)
    assert (experiment.evidence[0]["p_threshold"], experiment.train.learning_rate) == (1e-4, 3e-3)
    path.write_text("train: {learning_rate: fast}\n")
    with pytest.raises(InputError, match="learning_rate: expected float, got 'fast'"):
        load(Experiment, path)
    path.write_text("evidence: [{name: burden, p_threshold: 1.5}]\n")
    with pytest.raises(InputError, match="p_threshold is a p-value threshold"):
        load(Experiment, path)


@pytest.mark.parametrize(("min_steps", "stops_at"), [(0, 20), (30, 30)])
def test_early_stopping_waits_for_min_steps(cohort, tmp_path, min_steps, stops_at):
    """With a learning rate of 0 nothing improves after the first evaluation."""
    cfg = replace(QUICK, learning_rate=0.0, patience=1, min_steps=min_steps)
    state = _fit(*cohort, tmp_path, cfg)
    assert state.step == stops_at
    assert [h["step"] for h in state.history] == list(range(10, stops_at + 1, 10))


def test_platt_scaling_recovers_a_known_logistic_map():
    rng = np.random.default_rng(0)
    score = rng.normal(size=20_000) * 3
    y = rng.random(score.size) < 1 / (1 + np.exp(-(0.5 * score - 1.0)))
    platt = Platt().fit(score, y)
    assert platt.slope == pytest.approx(0.5, abs=0.03)
    assert platt.intercept == pytest.approx(-1.0, abs=0.05)
    # the slope stays positive, so the calibrated score ranks as the raw one
    assert Platt().fit(-score, y).slope > 0


def test_predicted_probabilities_are_calibrated_on_validation(trained):
    """Predict writes the raw whole-repertoire logit mapped by Platt scaling fitted on the
    fold's validation repertoires (and nothing else), so that 0.5 is a threshold."""
    store = Store(trained / "store")
    predictions = read_predictions(trained / "pred0")
    y, score = predictions["y"].to_numpy(), predictions["score"].to_numpy()
    assert roc_auc_score(y, score) == 1.0
    assert ((score >= 0.5) == (y == 1)).all()
    model = RepertoireClassifier.load(trained / "fold0.pt")
    saved = model.record | {"calibration": model.calibration}
    assert saved["calibration"]["fitted"] and saved["calibration"]["n_repertoires"] >= 2
    slope, intercept = saved["calibration"]["slope"], saved["calibration"]["intercept"]
    model.calibration = dict(UNCALIBRATED)
    index = {rid: i for i, rid in enumerate(store.repertoires["repertoire_id"])}
    rows = [index[r] for r in predictions["repertoire_id"]]
    raw = np.array([model.score(store, r)[0] for r in rows])
    np.testing.assert_allclose(predictions["logit"], slope * raw + intercept, rtol=1e-5, atol=1e-5)
    validation = [index[r] for r in saved["validation_ids"]]
    # calibration scored validation with evidence fitted on training repertoires only; the
    # saved providers were refitted on both afterwards, for test and new repertoires
    train = np.array([index[r] for r in saved["train_ids"]])
    model.features = model.features.refitted(store, train)
    held_out = [model.score(store, r)[0] for r in validation]
    platt = Platt().fit(np.array(held_out), store.labels[validation])
    assert (slope, intercept) == pytest.approx((platt.slope, platt.intercept), rel=1e-5)


def test_validation_scores_a_fixed_seeded_sample_or_the_whole_repertoire(cohort):
    """Evaluations cost the sample, not the repertoire; a small repertoire is scored whole."""
    store, root = cohort
    validation = read_folds(root / "folds.tsv", store, 0)["validation"]
    model = build_model(JUNCTION_ONLY, seed=0)
    none = FeatureSet([])
    whole = ValidationSample.draw(none, store, validation, replace(QUICK, validation_sequences=300))
    assert whole.logits(model, store).tolist() == pytest.approx(
        [network_only(model).score(store, int(r))[0] for r in validation], rel=1e-5
    )
    sample = ValidationSample.draw(none, store, validation, replace(QUICK, validation_sequences=50))
    again = ValidationSample.draw(none, store, validation, replace(QUICK, validation_sequences=50))
    other = ValidationSample.draw(
        none, store, validation, replace(QUICK, validation_sequences=50, seed=1)
    )
    drawn = zip(validation, sample.rows, again.rows, other.rows, strict=True)
    for r, rows, same, different in drawn:
        start, stop = store.offsets[r], store.offsets[r + 1]
        assert len(rows) == 50 and len(np.unique(rows)) == 50
        assert ((rows >= start) & (rows < stop)).all()
        assert (rows == same).all()
        assert not (rows == different).all()
    logits = sample.logits(model, store)
    assert not np.allclose(logits, whole.logits(model, store))
    assert torch.equal(logits, sample.logits(model, store))


def test_threads_scoring_side_by_side_write_what_one_thread_writes(cohort, tmp_path):
    store, _ = cohort
    model = build_model(replace(JUNCTION_ONLY, num_heads=2), seed=3)
    repertoires = np.arange(len(store.repertoires))[::-1]  # not in store order
    written = {}
    for workers in (1, 3):
        out = tmp_path / f"w{workers}"
        predictions = predict(
            network_only(model), store, repertoires, out, chunk=50, workers=workers
        )
        written[workers] = (predictions, pq.read_table(out / "attention.parquet"))
    pd.testing.assert_frame_equal(written[1][0], written[3][0])
    assert written[1][1].equals(written[3][1])
    ids = store.repertoires["repertoire_id"].to_numpy()[repertoires]
    assert written[3][0]["repertoire_id"].tolist() == ids.tolist()
    assert written[3][1].num_rows == int(store.offsets[-1])


def test_training_says_why_it_stopped_which_step_it_kept_and_where_it_went(
    cohort, tmp_path, capsys, monkeypatch
):
    _, root = cohort
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        "evidence: []\ntrain: {n_sequences: 100, max_steps: 2000, eval_every: 5, patience: 1}\n"
    )
    monkeypatch.setenv("DEEPRC_PROGRESS_SECONDS", "0")  # a progress line at every step
    model = tmp_path / "fold0.pt"
    assert main(["train", "--store", str(root / "store"), "--folds", str(root / "folds.tsv"),
                 "--fold", "0", "--experiment", str(experiment), "--out", str(model),
                 "--threads", "1"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    saved = torch.load(model, weights_only=True)
    assert saved["steps"] < 2000
    assert f"stopped early at step {saved['steps']} of at most 2000" in captured.out
    kept = next(h for h in saved["history"] if h["step"] == saved["best_step"])
    assert f"kept the model of step {kept['step']}: validation AUC" in captured.out
    assert captured.out.rstrip().endswith(f"-> {model}")
    # the time left is an upper bound, and the log says so
    assert "at most" in captured.err and "stops early when validation AUC" in captured.err


def test_a_small_calibration_set_is_said_in_the_card_and_the_output(cohort, tmp_path, capsys):
    store, root = cohort
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("evidence: []\ntrain: {n_sequences: 100, max_steps: 10}\n")
    model = tmp_path / "fold0.pt"
    assert main(["train", "--store", str(root / "store"), "--folds", str(root / "folds.tsv"),
                 "--fold", "0", "--experiment", str(experiment), "--out", str(model),
                 "--threads", "1", "--no-progress"]) == 0  # fmt: skip
    validation = read_folds(root / "folds.tsv", store, 0)["validation"]
    calibration = torch.load(model, weights_only=True)["calibration"]
    assert calibration["n_repertoires"] == len(validation) < 20
    assert f"only {len(validation)} validation repertoires" in calibration["note"]
    assert "note: probabilities calibrated on only" in capsys.readouterr().out
    main(["show-model", str(model)])
    assert "pulled towards 0.5" in capsys.readouterr().out


def test_platt_targets_keep_separated_scores_finite_and_fit_them_exactly():
    score, y = np.array([-30.0, -20.0, -5.0, 10.0, 25.0]), np.array([0, 0, 0, 1, 1])
    platt = Platt().fit(score, y)
    p = 1 / (1 + np.exp(-platt(score)))
    target = np.where(y == 1, 3 / 4, 1 / 5)  # (n+ + 1) / (n+ + 2), 1 / (n- + 2)
    # the maximum-likelihood conditions: residuals sum to 0 overall and against the score
    assert np.sum(p - target) == pytest.approx(0, abs=1e-6)
    assert np.sum(score * (p - target)) == pytest.approx(0, abs=1e-5)
    assert 0 < platt.slope < 1


def test_permute_labels_trains_a_negative_control_on_shuffled_labels(cohort, tmp_path, capsys):
    store, root = cohort
    roles = read_folds(root / "folds.tsv", store, 0)
    shuffled = permuted_labels(store.labels, roles, seed=1)
    np.testing.assert_array_equal(shuffled[roles["test"]], store.labels[roles["test"]])
    for role in ("train", "validation"):
        assert sorted(shuffled[roles[role]]) == sorted(store.labels[roles[role]])
    assert (shuffled != store.labels).any()
    np.testing.assert_array_equal(shuffled, permuted_labels(store.labels, roles, seed=1))
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("evidence: []\ntrain: {n_sequences: 100, max_steps: 5}\n")
    model = tmp_path / "control.pt"
    assert main(["train", "--store", str(root / "store"), "--folds", str(root / "folds.tsv"),
                 "--fold", "0", "--experiment", str(experiment), "--out", str(model),
                 "--threads", "1", "--no-progress", "--permute-labels", "1"]) == 0  # fmt: skip
    assert "negative control" in capsys.readouterr().out
    data = torch.load(model, weights_only=True)["data"]
    assert data["permuted_labels_seed"] == 1
    train = roles["train"]
    assert data["n_train_positive"] == int((shuffled[train] == 1).sum())
    assert main(["show-model", str(model)]) == 0
    assert "labels shuffled (seed 1)" in capsys.readouterr().out
    assert main(["train", "--store", str(root / "store"), "--all", "--out", str(tmp_path / "f.pt"),
                 "--permute-labels", "1"]) == 2  # fmt: skip


def test_a_negative_controls_checkpoint_is_never_resumed_by_a_run_on_the_true_labels(
    cohort, tmp_path, capsys
):
    _, root = cohort
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(
        "evidence: []\ntrain: {n_sequences: 100, max_steps: 5, checkpoint_every: 5}\n"
    )
    args = ["train", "--store", str(root / "store"), "--folds", str(root / "folds.tsv"),
            "--fold", "0", "--experiment", str(experiment), "--threads", "1",
            "--no-progress"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "control.pt"), "--permute-labels", "1"]) == 0
    # a killed run on the true labels would find the control's checkpoint beside its output
    shutil.copytree(tmp_path / "control.work", tmp_path / "real.work")
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "real.pt")]) == 2
    assert "belongs to another run" in capsys.readouterr().err
