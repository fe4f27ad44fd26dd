"""DeepRC: a multiple-instance classifier of immune repertoires.

sequence embedding (CNN) -> modern-Hopfield attention pooling over the repertoire -> output MLP
-> one logit per repertoire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from deeprc.model.embedding import SequenceEmbedding
from deeprc.model.hopfield import HopfieldPooling

__all__ = ["DeepRC", "ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture; field names are the constructor arguments of :class:`DeepRC`."""

    n_kernels: int = 32
    kernel_size: int = 9
    hidden_size: int = 32
    num_heads: int = 1
    scaling: float | None = None
    update_steps: int = 1
    attention_dropout: float = 0.0
    output_hidden: tuple[int, ...] = ()
    embedding: Literal["lookup", "dense"] = "lookup"


class DeepRC(nn.Module):
    """Repertoire classifier; see :class:`ModelConfig` for the arguments."""

    def __init__(
        self,
        *,
        n_kernels: int = 32,
        kernel_size: int = 9,
        hidden_size: int = 32,
        num_heads: int = 1,
        scaling: float | None = None,
        update_steps: int = 1,
        attention_dropout: float = 0.0,
        output_hidden: tuple[int, ...] = (),
        embedding: Literal["lookup", "dense"] = "lookup",
    ) -> None:
        super().__init__()
        self.embedding = SequenceEmbedding(
            n_kernels=n_kernels, kernel_size=kernel_size, implementation=embedding
        )
        self.pooling = HopfieldPooling(
            input_size=n_kernels,
            hidden_size=hidden_size,
            num_heads=num_heads,
            scaling=scaling,
            update_steps=update_steps,
            dropout=attention_dropout,
        )
        layers: list[nn.Module] = []
        size = self.pooling.output_size
        for hidden in output_hidden:
            layers += [nn.Linear(size, hidden), nn.SELU()]
            size = hidden
        self.output = nn.Sequential(*layers, nn.Linear(size, 1))

    def embed(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, n, width)`` tokens, ``(batch, n)`` lengths -> ``(batch, n, n_kernels)``.

        Padding sequences (length 0) embed to zeros.
        """
        batch, n, width = tokens.shape
        flat = self.embedding(tokens.reshape(batch * n, width), lengths.reshape(-1))
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
