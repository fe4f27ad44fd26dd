"""The ``sceptr`` encoder: SCEPTR's pretrained TRB vectors, frozen, under a trainable projection.

SCEPTR (Nagano and Chain; the ``sceptr`` package, MIT, its weights inside its wheel) embeds a
TRB chain from its CDR1 and CDR2 (which the V gene gives) and its junction into 64 numbers
(the beta-chain variant ``B_SCEPTR``). The transformer stays frozen, so its vectors are computed
once per unique clonotype of a store and kept there (deeprc.features.pretrained); the network
reads them as the input ``pretrained`` ``(n, 64)`` and learns only a projection, and one vector
for clonotypes whose V gene SCEPTR cannot read (their input row is all zero; SCEPTR's own vectors
have norm 1). With ``cnn_kernels``, the CNN's vector of the junction is set beside it.

:func:`token_grid` builds SCEPTR's tokens straight from a store's residue tokens (its amino-acid
indices are ours + 2: both alphabets are in the same order) and each V gene's loops once, and
:func:`vectors` runs SCEPTR's modules on them (deeprc.features.pretrained batches clonotypes of
alike length); the package's DataFrame API builds a V-gene object per row instead, which took
74% of its time.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deeprc.errors import InputError
from deeprc.model.embedding import SequenceEmbedding

__all__ = [
    "AMINO_ACIDS", "DIMENSION", "VARIANT", "SceptrEncoder", "load", "loop_tokens", "token_grid",
    "v_loops", "vectors",
]  # fmt: skip

VARIANT = "B_SCEPTR"  # the beta-chain model: the stores hold TRB (or one chain) only
DIMENSION = 64
_CLS, _AA_OFFSET = 2, 2  # libtcrlm's CLS token; its index of an amino acid = ours + 2
_CDR1, _CDR2, _CDR3 = 1, 2, 3  # libtcrlm's compartment indices of one chain
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"  # our tokens 1..20 (deeprc.store), in libtcrlm's order


def load():
    """SCEPTR's beta-chain model (frozen, in eval mode), or what to install when it is absent."""
    try:
        from sceptr._model_saves import load_variant
    except ImportError:
        raise InputError(
            "encoder: sceptr needs the optional sceptr package, which the plain install leaves "
            "out: pip install -e '.[sceptr]' in a clone of deeprc (README.md, 'A pretrained "
            "encoder')"
        ) from None
    return load_variant(VARIANT)


def v_loops(v_genes: list[str]) -> list[str | None]:
    """Each V gene's CDR1 + CDR2 residues as SCEPTR reads them, None for one it refuses
    (not an IMGT functional TRBV gene: SCEPTR has no loops for it)."""
    load()  # the message when sceptr is absent
    from libtcrlm import schema

    loops: list[str | None] = []
    for gene in v_genes:
        try:
            tcr = schema.make_tcr_from_components(None, None, gene, None)
        except Exception:  # libtcrlm raises its own BadV, or ValueError for odd names
            loops.append(None)
            continue
        loops.append(f"{tcr.cdr1b_sequence}|{tcr.cdr2b_sequence or ''}")
    return loops


def loop_tokens(loops: str) -> np.ndarray:
    """``(k, 4)`` libtcrlm tokens of one V gene's CDR1 and CDR2: residue, position, length,
    compartment."""
    rows = []
    for compartment, loop in zip((_CDR1, _CDR2), loops.split("|"), strict=True):
        for i, residue in enumerate(loop):
            if residue in AMINO_ACIDS:  # as libtcrlm's tokeniser, which drops a gap '*'
                token = _AA_OFFSET + 1 + AMINO_ACIDS.index(residue)
                rows.append((token, i + 1, len(loop), compartment))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def vectors(bert, grid: torch.Tensor) -> torch.Tensor:
    """SCEPTR's normalised CLS vectors of a token grid: its own modules and weights, with
    attention as one dense ``scaled_dot_product_attention`` per layer (PyTorch's encoder
    layer took a nested-tensor path here that spent most of its time in per-sequence
    softmaxes) and the last layer computed for the CLS token alone (the only one read)."""
    stack = bert._self_attention_stack
    x = stack._initial_projector(bert._embed(grid))
    attend = (grid[:, :, 0] != 0)[:, None, None, :]  # (b, 1, 1, width): keys that are tokens
    layers = stack._standard_stack._self_attention_stack.layers
    for i, layer in enumerate(layers):
        attention = layer.self_attn
        b, width, size = x.shape
        heads = attention.num_heads
        qkv = F.linear(x, attention.in_proj_weight, attention.in_proj_bias)
        q, k, v = qkv.view(b, width, 3, heads, size // heads).permute(2, 0, 3, 1, 4)
        if i == len(layers) - 1:
            q, x = q[:, :, :1], x[:, :1]
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        x = layer.norm1(x + attention.out_proj(mixed.transpose(1, 2).reshape(b, -1, size)))
        # ReLU, the layers' activation (tests/test_sceptr.py compares with SCEPTR's own API)
        hidden = F.relu(layer.linear1(x), inplace=True)
        x = layer.norm2(x + layer.linear2(hidden))
    return F.normalize(x[:, 0], p=2, dim=1)


def token_grid(
    tokens: np.ndarray,
    lengths: np.ndarray,
    v_index: np.ndarray,
    prefix_len: np.ndarray,
    prefix_table: np.ndarray,
    width: int,
) -> np.ndarray:
    """``(b, width, 4)`` libtcrlm tokens of a batch: CLS, the V gene's loops, the junction;
    zero (padding) after."""
    b = len(tokens)
    t = np.arange(width)[None, :]
    grid = np.zeros((b, width, 4), dtype=np.int64)
    grid[:, 0, 0] = _CLS
    in_loops = (t >= 1) & (t < 1 + prefix_len[:, None])
    r, c = np.nonzero(in_loops)
    grid[r, c] = prefix_table[v_index[r], c - 1]
    start = 1 + prefix_len[:, None]
    in_junction = (t >= start) & (t < start + lengths[:, None])
    r, c = np.nonzero(in_junction)
    j = c - start[r, 0]
    grid[r, c, 0] = tokens[r, j].astype(np.int64) + _AA_OFFSET
    grid[r, c, 1] = j + 1
    grid[r, c, 2] = lengths[r]
    grid[r, c, 3] = _CDR3
    return grid


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

    pretrained = VARIANT  # the store's vectors it reads (deeprc.features.pretrained)

    def __init__(self, *, size: int = 32, cnn_kernels: int = 0, kernel_size: int = 9) -> None:
        super().__init__()
        self.projection = nn.Linear(DIMENSION, size)
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
