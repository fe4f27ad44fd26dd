"""Sequence embedding: a 1-D CNN over amino-acid tokens and position features, max over positions.

A convolution over one-hot input is a sum of table look-ups: the output at position t is
``Σ_j W[:, token[t + j - k//2], j]``, and the position features' part depends only on the
sequence length and t, so it is one more table row. The fast path pre-sums the columns of
three consecutive kernel offsets for every token triple (21^3 rows per group), so a width-9
kernel needs 3 look-ups and one position row per output, sums them with one ``embedding_bag``
(no one-hot tensor), takes the maximum over positions before the SELU (SELU
is increasing, so this is exact and touches n x kernels values instead of n x width x kernels),
and back-propagates only through the arg-max positions with one ``bincount``. The dense path is
the plain one-hot ``conv1d`` it must equal, kept as the reference for tests and benchmarks.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from deeprc.errors import InputError

__all__ = ["N_TOKENS", "SequenceEmbedding", "one_hot", "position_features"]

N_TOKENS = 21  # 0 = padding, 1..20 = amino acids (deeprc.store.AMINO_ACIDS)
N_POSITION_FEATURES = 3
_GROUP = 3  # residues summed by one table row: 21^3 rows per group of kernel columns
_CHUNK_POSITIONS = 65536  # sequence positions summed at once (fastest on 2 cores: 4k-256k)


def position_features(
    lengths: torch.Tensor, width: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Start, centre and end ramps ``(n, 3, width)``, zero beyond each sequence's length."""
    t = torch.arange(width, dtype=dtype, device=lengths.device)
    span = (lengths.to(dtype) - 1).clamp(min=1)[:, None]
    u = t[None, :] / span  # 0 at the first residue, 1 at the last
    inside = (t[None, :] < lengths[:, None]).to(dtype)
    start = (1 - 2 * u).clamp(min=0)
    centre = (1 - (2 * u - 1).abs()).clamp(min=0)
    end = (2 * u - 1).clamp(min=0, max=1)
    return torch.stack([start, centre, end], dim=1) * inside[:, None, :]


def one_hot(tokens: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``(n, width)`` tokens -> ``(n, 20, width)`` residue channels (padding: all zero)."""
    return F.one_hot(tokens.long(), N_TOKENS)[..., 1:].transpose(1, 2).to(dtype)


class SequenceEmbedding(nn.Module):
    """One vector per sequence: conv (kernels x width) -> SELU -> max over the sequence.

    The ``cnn`` encoder of :data:`deeprc.model.ENCODERS` (see :class:`deeprc.model.Encoder`);
    its differentiable input is the one-hot of the residues, 20 channels per position.

    Parameters
    ----------
    n_kernels:
        Output size (number of convolution kernels).
    kernel_size:
        Width of each kernel in residues (odd).
    implementation:
        ``"lookup"`` (fast, the default) or ``"dense"`` (one-hot conv1d reference).
    """

    def __init__(
        self,
        *,
        n_kernels: int = 32,
        kernel_size: int = 9,
        implementation: Literal["lookup", "dense"] = "lookup",
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise InputError(f"kernel_size must be odd; got {kernel_size}")
        self.n_kernels, self.kernel_size, self.implementation = (
            n_kernels,
            kernel_size,
            implementation,
        )
        self.output_size = n_kernels
        in_channels = N_TOKENS - 1 + N_POSITION_FEATURES
        self.conv = nn.Conv1d(in_channels, n_kernels, kernel_size, padding=kernel_size // 2)
        nn.init.normal_(self.conv.weight, std=1.0 / (in_channels * kernel_size) ** 0.5)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(n, width)`` uint8/long tokens and ``(n,)`` lengths -> ``(n, n_kernels)``.

        Tokens after a sequence's length must be 0 (padding), as the store writes them.
        """
        tokens, lengths = tokens.long(), lengths.long().clamp(max=tokens.shape[1])
        if self.implementation == "dense":
            return self._dense(tokens, lengths)
        width = tokens.shape[1]
        table = self._table(width)
        # Sequences of one length at a time, so that no work goes to padding, in chunks that
        # keep the (sequences x positions x kernels) sums in cache (together ~5x faster on CPU).
        order = torch.argsort(lengths)
        sorted_lengths, counts = torch.unique_consecutive(lengths[order], return_counts=True)
        pieces, start = [], 0
        for length, count in zip(sorted_lengths.tolist(), counts.tolist(), strict=True):
            span = max(length, 1)
            chunk = max(1, _CHUNK_POSITIONS // span)
            for lo in range(start, start + count, chunk):
                chosen = order[lo : min(lo + chunk, start + count)]
                rows = self._rows(tokens[chosen, :span], length, width)
                pieces.append(_SumMax.apply(rows, table, self.n_kernels))
            start += count
        if not pieces:
            return table.new_zeros(0, self.n_kernels)
        return F.selu(torch.cat(pieces)[torch.argsort(order)])

    def _rows(self, tokens: torch.Tensor, length: int, width: int) -> torch.Tensor:
        """Table rows to sum at each position of sequences of one ``length``: one per group of
        three residues (code a*21^2 + b*21 + c) and one for the position ramps and bias."""
        n, span = tokens.shape
        groups = -(-self.kernel_size // _GROUP)
        half = self.kernel_size // 2
        padded = F.pad(tokens, (half, _GROUP * groups - 1 - half))
        rows = torch.empty(n, span, groups + 1, dtype=torch.long, device=tokens.device)
        for g in range(groups):
            first = _GROUP * g
            code = padded[:, first : first + span] * N_TOKENS**2 + g * N_TOKENS**_GROUP
            code += padded[:, first + 1 : first + 1 + span] * N_TOKENS
            code += padded[:, first + 2 : first + 2 + span]
            rows[..., g] = code
        position_row = groups * N_TOKENS**_GROUP + length * width
        rows[..., groups] = position_row + torch.arange(span, device=tokens.device)
        return rows

    def _table(self, width: int) -> torch.Tensor:
        """Rows to sum: per group, the kernel's three columns for each token triple; then one
        row per (length, position) with the position ramps' part and the bias."""
        weight = self.conv.weight
        groups = -(-self.kernel_size // _GROUP)
        columns = F.pad(weight[:, : N_TOKENS - 1], (0, _GROUP * groups - self.kernel_size))
        columns = F.pad(columns, (0, 0, 1, 0))  # token 0 (padding) has a zero column
        columns = columns.permute(2, 1, 0).reshape(groups, _GROUP, N_TOKENS, self.n_kernels)
        triples = (
            columns[:, 0, :, None, None]
            + columns[:, 1, None, :, None]
            + columns[:, 2, None, None, :]
        )  # (groups, 21, 21, 21, n_kernels)
        lengths = torch.arange(width + 1, device=weight.device)
        positions = F.conv1d(
            position_features(lengths, width, weight.dtype),
            weight[:, N_TOKENS - 1 :],
            self.conv.bias,
            padding=self.kernel_size // 2,
        ).transpose(1, 2)  # (width + 1, width, n_kernels)
        outside = torch.arange(width, device=weight.device)[None, :] >= lengths[:, None]
        positions = positions.masked_fill(outside[..., None], float("-inf"))
        return torch.cat(
            [triples.reshape(-1, self.n_kernels), positions.reshape(-1, self.n_kernels)]
        )

    def _dense(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.from_input(self.differentiable_input(tokens), lengths)

    def differentiable_input(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(n, width)`` tokens -> ``(n, 20, width)`` one-hot residue channels."""
        return one_hot(tokens, self.conv.weight.dtype)

    def from_input(self, residues: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(n, 20, width)`` residue channels (one-hot, or any point on a path to it, for
        integrated gradients) and ``(n,)`` lengths -> ``(n, n_kernels)``; differentiable."""
        width = residues.shape[2]
        positions = position_features(lengths, width, residues.dtype)
        activations = F.selu(self.conv(torch.cat([residues, positions], dim=1)))
        inside = torch.arange(width, device=residues.device)[None, None, :] < lengths[:, None, None]
        return activations.masked_fill(~inside, float("-inf")).amax(dim=2)


class _SumMax(torch.autograd.Function):
    """``max_t Σ_b table[rows[n, t, b]]`` per kernel; the gradient reaches only arg-max rows."""

    @staticmethod
    def forward(ctx, rows: torch.Tensor, table: torch.Tensor, n_kernels: int) -> torch.Tensor:
        n, width, bag = rows.shape
        summed = F.embedding_bag(rows.reshape(-1, bag), table, mode="sum")
        # max_pool1d over the whole width is ~6x faster here than Tensor.max(dim=1)
        maxima, where = F.max_pool1d(
            summed.view(n, width, n_kernels).transpose(1, 2), width, return_indices=True
        )
        maxima, where = maxima.squeeze(2), where.squeeze(2)  # (n, n_kernels)
        ctx.save_for_backward(rows, where)
        ctx.table_rows = table.shape[0]
        return maxima

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        rows, where = ctx.saved_tensors
        n, _, bag = rows.shape
        n_kernels = where.shape[1]
        chosen = rows.gather(1, where[:, :, None].expand(n, n_kernels, bag))  # (n, kernels, bag)
        flat = chosen * n_kernels + torch.arange(n_kernels, device=grad.device)[None, :, None]
        weights = grad[:, :, None].expand(n, n_kernels, bag)
        table_grad = torch.bincount(
            flat.reshape(-1), weights.reshape(-1), minlength=ctx.table_rows * n_kernels
        )
        return None, table_grad.view(ctx.table_rows, n_kernels).to(grad.dtype), None
