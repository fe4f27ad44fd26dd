"""The ``sceptr`` encoder: SCEPTR's pretrained TRB vectors, frozen, under a trainable projection.

SCEPTR (Nagano and Chain; the ``sceptr`` package, MIT, its weights inside its wheel) embeds a
TRB chain from its CDR1 and CDR2 (which the V gene gives) and its junction into 64 numbers
(the beta-chain variant ``B_SCEPTR``). The transformer stays frozen, so its vectors are computed
once per unique clonotype of a store and kept there (deeprc.features.pretrained); the network
reads them as the input ``pretrained`` ``(n, 64)`` and learns only a projection, and one vector
for clonotypes whose V gene SCEPTR cannot read (their input row is all zero; SCEPTR's own vectors
have norm 1). With ``cnn_kernels``, the CNN's vector of the junction is set beside it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deeprc.errors import InputError
from deeprc.model.embedding import SequenceEmbedding

__all__ = ["SceptrEncoder"]

_DIMENSION = 64  # the size of B_SCEPTR's vectors


class SceptrEncoder(nn.Module):
    """The ``sceptr`` encoder of :data:`deeprc.model.ENCODERS`: a sequence's SCEPTR vector
    (the input ``pretrained``, see the module) through a trainable projection and SELU, and a
    learned vector for those SCEPTR could not embed; with ``cnn_kernels`` > 0, the CNN
    encoder's vector of the junction beside it (its differentiable input is the CNN's).

    Parameters
    ----------
    size:
        Size of the projected SCEPTR vector.
    cnn_kernels:
        Kernels of a CNN set beside it (0: SCEPTR alone).
    kernel_size:
        The CNN's kernel width.
    """

    pretrained = "B_SCEPTR"  # the store's vectors it reads (deeprc.features.pretrained)

    def __init__(self, *, size: int = 32, cnn_kernels: int = 0, kernel_size: int = 9) -> None:
        super().__init__()
        self.projection = nn.Linear(_DIMENSION, size)
        self.unknown = nn.Parameter(torch.zeros(size))
        self.cnn = SequenceEmbedding(n_kernels=cnn_kernels, kernel_size=kernel_size) if (
            cnn_kernels
        ) else None  # fmt: skip
        self.output_size = size + cnn_kernels

    def _projected(self, pretrained: torch.Tensor) -> torch.Tensor:
        known = pretrained.abs().amax(dim=1, keepdim=True) > 0
        return torch.where(known, F.selu(self.projection(pretrained.float())), self.unknown)

    def forward(
        self, tokens: torch.Tensor, lengths: torch.Tensor, pretrained: torch.Tensor
    ) -> torch.Tensor:
        projected = self._projected(pretrained)
        if self.cnn is None:
            return projected
        return torch.cat([projected, self.cnn(tokens, lengths).to(projected.dtype)], dim=1)

    @property
    def reads_residues(self) -> bool:
        """Whether contributions of residue positions exist (integrated gradients): only
        through the CNN beside it; SCEPTR's vectors are fixed inputs."""
        return self.cnn is not None

    def differentiable_input(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.cnn is None:
            raise InputError(
                "encoder: sceptr reads fixed pretrained vectors, so its residues have no "
                "contributions; give it cnn_kernels (a CNN beside it) to attribute positions"
            )
        return self.cnn.differentiable_input(tokens)

    def from_input(
        self, inputs: torch.Tensor, lengths: torch.Tensor, pretrained: torch.Tensor
    ) -> torch.Tensor:
        projected = self._projected(pretrained)
        return torch.cat([projected, self.cnn.from_input(inputs, lengths)], dim=1)
