"""DeepRC: a multiple-instance classifier of immune repertoires.

``DeepRC(encoder, pooling, output)``: a sequence encoder (chosen by name from :data:`ENCODERS`)
-> modern-Hopfield attention pooling over the repertoire -> output MLP -> one logit. The model
owns all of its maths: training batches (:meth:`DeepRC.forward`), whole repertoires streamed in
chunks (:meth:`DeepRC.score_bag`, for prediction and validation) and differentiable
per-sequence scores from residue channels (:meth:`DeepRC.sequence_scores`, for integrated
gradients) all go through the same modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deeprc.errors import InputError
from deeprc.model.embedding import SequenceEmbedding
from deeprc.model.hopfield import HopfieldPooling

__all__ = ["ENCODERS", "DeepRC", "ModelConfig", "build_model"]

Chunks = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture (the ``model:`` part of an experiment file)."""

    encoder: str = "cnn"  # a name in ENCODERS
    n_kernels: int = 32
    kernel_size: int = 9
    hidden_size: int = 32
    num_heads: int = 1
    scaling: float | None = None
    update_steps: int = 1
    attention_dropout: float = 0.0
    output_hidden: tuple[int, ...] = ()
    embedding: Literal["lookup", "dense"] = "lookup"

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise InputError(f"encoder {self.encoder!r} is not one of {sorted(ENCODERS)}")


# Sequence encoders by name: (n, width) tokens + (n,) lengths -> (n, output_size), with
# from_one_hot(residues, lengths) for integrated gradients (see SequenceEmbedding).
ENCODERS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "cnn": lambda cfg: SequenceEmbedding(
        n_kernels=cfg.n_kernels, kernel_size=cfg.kernel_size, implementation=cfg.embedding
    ),
}


def build_model(cfg: ModelConfig, seed: int | None = None) -> DeepRC:
    """The model a config describes, initialised from ``seed`` (when given)."""
    if seed is not None:
        torch.manual_seed(seed)
    encoder = ENCODERS[cfg.encoder](cfg)
    pooling = HopfieldPooling(
        input_size=encoder.output_size,
        hidden_size=cfg.hidden_size,
        num_heads=cfg.num_heads,
        scaling=cfg.scaling,
        update_steps=cfg.update_steps,
        dropout=cfg.attention_dropout,
    )
    layers: list[nn.Module] = []
    size = pooling.output_size
    for hidden in cfg.output_hidden:
        layers += [nn.Linear(size, hidden), nn.SELU()]
        size = hidden
    return DeepRC(encoder, pooling, nn.Sequential(*layers, nn.Linear(size, 1)))


class DeepRC(nn.Module):
    """Repertoire classifier composed of a sequence encoder, Hopfield pooling and an output
    network (as the original DeepRC composes its three networks)."""

    def __init__(self, encoder: nn.Module, pooling: HopfieldPooling, output: nn.Module) -> None:
        super().__init__()
        self.encoder, self.pooling, self.output = encoder, pooling, output
        # slope and intercept from the output's logit to calibrated log-odds (see calibrate)
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))

    def calibrate(self, slope: float, intercept: float) -> None:
        """Set the map from whole-repertoire logits to calibrated log-odds (Platt scaling on
        held-out repertoires, after training; training itself sees the raw logits)."""
        self.calibration.copy_(torch.tensor([slope, intercept]))

    def embed(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, n, width)`` tokens, ``(batch, n)`` lengths -> ``(batch, n, embedding)``.

        Padding sequences (length 0) embed to zeros.
        """
        batch, n, width = tokens.shape
        flat = self.encoder(tokens.reshape(batch * n, width), lengths.reshape(-1))
        return flat.masked_fill(lengths.reshape(-1, 1) == 0, 0.0).view(batch, n, -1)

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor, bag_size: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(batch,)`` and association weights ``(batch, heads, n)``.

        ``tokens`` ``(batch, n, width)``, ``lengths`` ``(batch, n)``; length 0 marks padding.
        ``bag_size``: see :meth:`HopfieldPooling.forward`.
        """
        embedded = self.embed(tokens, lengths)
        pooled, association = self.pooling(embedded, mask=lengths > 0, bag_size=bag_size)
        return self.output(pooled).squeeze(-1), association

    def _embedded(self, chunks: Chunks) -> Callable[[], Iterable[torch.Tensor]]:
        device = next(self.parameters()).device

        def embedded() -> Iterable[torch.Tensor]:
            for tokens, lengths in chunks():
                yield self.embed(tokens[None].to(device), lengths[None].to(device))[0]

        return embedded

    @torch.no_grad()
    def final_state(self, chunks: Chunks) -> torch.Tensor:
        """The state patterns ``(heads, hidden)`` after the Hopfield updates over one bag,
        given as ``chunks()``: an iterable of ``(n, width)`` tokens and ``(n,)`` lengths."""
        self.eval()
        return self.pooling.final_state(self._embedded(chunks))

    @torch.no_grad()
    def score_bag(self, chunks: Chunks) -> tuple[float, torch.Tensor, torch.Tensor]:
        """Calibrated log-odds of one whole bag in chunks (memory: one chunk), its attention
        ``(heads, n)`` and the attention scores before the softmax (``β kᵢ·ξ``, comparable
        between bags); before :meth:`calibrate`, equal to :meth:`forward`'s logit on the whole
        bag (tested)."""
        self.eval()
        pooled, scores = self.pooling.pool_chunks(self._embedded(chunks))
        slope, intercept = self.calibration.tolist()
        logit = slope * self.output(pooled[None]).item() + intercept
        return logit, torch.softmax(scores, dim=1), scores

    def sequence_scores(
        self, residues: torch.Tensor, lengths: torch.Tensor, state: torch.Tensor
    ) -> torch.Tensor:
        """Attention scores ``(n, heads)`` of ``(n, 20, width)`` residue channels (one-hot or
        on a path to it), differentiable: what integrated gradients attribute."""
        return self.pooling.sequence_scores(self.encoder.from_one_hot(residues, lengths), state).T
