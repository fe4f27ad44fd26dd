"""A new evidence kind is one class and one registration, with no edit anywhere else: it is
checked in the experiment, fitted on the training repertoires, read beside each sequence,
saved in the model file and read back for prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deeprc.classifier import RepertoireClassifier
from deeprc.cli import main
from deeprc.features import Evidence, register_evidence
from deeprc.store import Store


@register_evidence
class LengthEvidence(Evidence):
    """How much longer a junction is than the training repertoires' mean, in ``scale``s."""

    name = "toy_length"
    size = 1
    prior = (0.5,)

    def __init__(self, scale: float = 2.0) -> None:
        self.scale = scale

    def fit(self, store: Store, repertoires: np.ndarray) -> LengthEvidence:
        rows = np.concatenate(
            [np.arange(store.offsets[r], store.offsets[r + 1]) for r in repertoires]
        )
        self.mean_length_ = np.asarray([float(np.mean(store.lengths[rows]))])
        return self

    def transform(self, store: Store, repertoire: int) -> np.ndarray:
        lengths = np.asarray(
            store.lengths[store.offsets[repertoire] : store.offsets[repertoire + 1]]
        )
        return ((lengths - self.mean_length_[0]) / self.scale)[:, None].astype(np.float32)


def test_a_registered_evidence_kind_trains_saves_and_predicts(h, trained, tmp_path, capsys):
    experiment = (
        "evidence: [{name: toy_length, scale: 4}, {name: kmer, k: 3}]\n"
        "weigh_evidence: false\n"  # one head reading both columns
        "train: {n_sequences: 100, max_steps: 2, eval_every: 1}\n"
    )
    model, _ = h.train_fold0(trained / "store", trained / "folds.tsv", experiment, tmp_path)
    classifier = RepertoireClassifier.load(model)
    toy, kmer = classifier.features.evidence
    assert isinstance(toy, LengthEvidence) and toy.scale == 4.0
    assert 5 < toy.mean_length_[0] < 25  # fitted, saved and read back with weights_only
    assert classifier.network.evidence_size == 2
    assert classifier.card(model)["evidence"] == ["toy_length", "kmer"]
    # its column starts the attention at its prior weight, as the built-in kinds' do
    network = RepertoireClassifier.new(classifier.experiment, Store(trained / "store")).network
    pooling = network.pooling
    columns = torch.zeros(2, pooling.key.in_features)
    columns[1, -2] = 1.0  # one unit of toy evidence
    scores = pooling.sequence_scores(columns, pooling.state)
    assert (scores[:, 1] - scores[:, 0]).tolist() == pytest.approx([0.5], abs=1e-5)


def test_a_registered_kinds_options_are_checked_like_the_built_in_ones(trained, tmp_path, capsys):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("evidence: [{name: toy_length, scael: 4}]\n")
    args = ["--store", str(trained / "store"), "--folds", str(trained / "folds.tsv"), "--fold", "0"]
    assert main(["train", *args, "--experiment", str(experiment),
                 "--out", str(tmp_path / "m.pt")]) == 2  # fmt: skip
    error = capsys.readouterr().err
    assert "evidence[0] (toy_length): unknown key 'scael' (did you mean 'scale'?)" in error
    assert "Traceback" not in error
