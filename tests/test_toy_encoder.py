"""A new encoder is one class and one registration, with no edit anywhere else: an experiment
names it with its options, it trains, saves, predicts and is interpreted (integrated gradients
over its own differentiable input)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deeprc.classifier import RepertoireClassifier
from deeprc.cli import main
from deeprc.model import register_encoder
from deeprc.outputs import read_interpretation


class ResidueCounts(nn.Module):
    """A bag of residues: how often each amino acid occurs, through one linear layer."""

    def __init__(self, size: int = 8) -> None:
        super().__init__()
        self.output_size = size
        self.linear = nn.Linear(20, size)

    def differentiable_input(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.one_hot(tokens.long(), 21)[..., 1:].transpose(1, 2).float()

    def from_input(self, residues: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.linear(residues.sum(dim=2))

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.from_input(self.differentiable_input(tokens), lengths)


register_encoder("toy_counts", ResidueCounts)


def test_a_registered_encoder_trains_predicts_and_is_interpreted(h, trained, tmp_path, capsys):
    experiment = (
        "model: {encoder: {name: toy_counts, size: 6}}\nevidence: []\n"
        "train: {n_sequences: 100, max_steps: 2, eval_every: 1}\n"
    )
    store = ["--store", str(trained / "store")]
    model, predictions = h.train_fold0(
        trained / "store", trained / "folds.tsv", experiment, tmp_path
    )
    classifier = RepertoireClassifier.load(model)
    assert isinstance(classifier.network.encoder, ResidueCounts)
    assert classifier.network.encoder.output_size == 6
    assert main(["show-model", str(model)]) == 0
    assert "encoder          toy_counts" in capsys.readouterr().out
    out = tmp_path / "interpretation"
    assert main(["interpret", *store, "--models", str(model), "--predictions", str(predictions),
                 "--out", str(out), "--top", "5", "--steps", "8"]) == 0  # fmt: skip
    table = read_interpretation(out).top
    assert len(table) == 5
    # a bag of residues: each position's contribution is its residue's, wherever it stands
    for sequence, parts in zip(table["junction_aa"], table["contributions"], strict=True):
        by_residue = {}
        for residue, part in zip(sequence, parts, strict=True):
            by_residue.setdefault(residue, []).append(part)
        for residue, values in by_residue.items():
            assert max(values) - min(values) < 1e-5, (sequence, residue, values)


def test_an_encoders_options_are_checked_against_its_signature(trained, tmp_path, capsys):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("model: {encoder: {name: toy_counts, sise: 6}}\n")
    args = ["--store", str(trained / "store"), "--folds", str(trained / "folds.tsv"), "--fold", "0"]
    assert main(["train", *args, "--experiment", str(experiment),
                 "--out", str(tmp_path / "m.pt")]) == 2  # fmt: skip
    error = capsys.readouterr().err
    assert "model: encoder (toy_counts): unknown key 'sise' (did you mean 'size'?)" in error
