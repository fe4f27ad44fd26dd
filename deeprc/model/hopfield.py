"""Modern Hopfield pooling (Ramsauer et al. 2020) over the sequences of a repertoire.

The sequences' projected keys are the stored patterns ``X`` (rows); learned state patterns ``ξ``
(one per head) retrieve from them with the update ``ξ ← Xᵀ softmax(β X ξ)``, which never increases
the energy ``E(ξ) = -lse(β, X ξ) + ½ ξᵀξ``. One update is transformer attention with a learned
query; more updates move ``ξ`` towards a fixed point. The final softmax weights are the
per-sequence association (attention) that interpretation reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Literal

import torch
from torch import nn

__all__ = ["HopfieldPooling", "energy"]


def energy(state: torch.Tensor, stored: torch.Tensor, beta: float) -> torch.Tensor:
    """``-lse(β, X ξ) + ½ ξᵀξ`` for states ``(..., d)`` and stored patterns ``(..., n, d)``."""
    scores = torch.einsum("...nd,...d->...n", stored, state)
    return -torch.logsumexp(beta * scores, dim=-1) / beta + 0.5 * (state * state).sum(-1)


class HopfieldPooling(nn.Module):
    """Pools a variable number of instances into one vector per bag with learned state patterns.

    Parameters
    ----------
    input_size:
        Size of each instance (sequence embedding).
    hidden_size:
        Size of the key (association) and value space of each head.
    num_heads:
        Independent state patterns; outputs are concatenated to ``num_heads * hidden_size``.
    scaling:
        Inverse temperature β; ``None`` means ``1 / sqrt(hidden_size)``.
    update_steps:
        Hopfield updates of the state patterns; 1 is one attention step.
    dropout:
        Dropout on the association weights (training only).
    """

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int = 32,
        num_heads: int = 1,
        scaling: float | None = None,
        update_steps: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if update_steps < 1:
            raise ValueError("update_steps must be >= 1")
        self.num_heads, self.hidden_size = num_heads, hidden_size
        self.beta = scaling if scaling is not None else 1.0 / math.sqrt(hidden_size)
        self.update_steps = update_steps
        self.key = nn.Linear(input_size, num_heads * hidden_size)
        self.value = nn.Linear(input_size, num_heads * hidden_size)
        self.state = nn.Parameter(torch.randn(num_heads, hidden_size) / math.sqrt(hidden_size))
        self.dropout = nn.Dropout(dropout)

    @property
    def output_size(self) -> int:
        return self.num_heads * (self.hidden_size + 1)

    @torch.no_grad()
    def attend_to(
        self, columns: list[int], weights: list[float], *, alone: bool = False,
        heads: list[int] | None = None,
    ) -> None:  # fmt: skip
        """Start the attention score of ``heads`` (default: every head) at ``weights ·
        instance[columns]``: those input columns' keys point along the head's state pattern.
        A warm start for inputs that are evidence already, so that training begins by looking
        where they point. With ``alone`` the head's other key weights and its key bias start
        at 0 (training moves them): the score is then that and nothing else, whatever the
        random start."""
        for head in range(self.num_heads) if heads is None else heads:
            rows = slice(head * self.hidden_size, (head + 1) * self.hidden_size)
            if alone:
                self.key.weight[rows] = 0.0
                self.key.bias[rows] = 0.0
            state = self.state[head]
            along = state / (self.beta * state.dot(state))
            self.key.weight[rows, columns] = torch.outer(along, torch.tensor(weights))

    def values_of(self, instances: torch.Tensor) -> torch.Tensor:
        """The values ``(heads, n, hidden)`` of instances ``(n, input_size)``: what each head
        retrieves of them."""
        return self._heads(self.value, instances)

    def _heads(self, projection: nn.Linear, instances: torch.Tensor) -> torch.Tensor:
        """``(n, input_size)`` -> ``(heads, n, hidden)``."""
        return projection(instances).view(len(instances), self.num_heads, -1).transpose(0, 1)

    def sequence_scores(self, instances: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """``β kᵢ·ξ`` ``(heads, n)`` of instances ``(n, input_size)`` for states ``(heads,
        hidden)``: what the softmax turns into attention, comparable between bags."""
        return self.beta * torch.einsum("hnd,hd->hn", self._heads(self.key, instances), state)

    @torch.no_grad()
    def _update(
        self,
        chunks: Iterable[torch.Tensor],
        state: torch.Tensor,
        retrieve: Literal["keys", "values"],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One retrieval over a bag given in chunks of instances, with a running maximum and sum
        (log-sum-exp), so memory holds one chunk: the softmax-weighted keys or values with the
        log-mean-exp score, ``(heads, hidden + 1)``, and the scores ``(heads, n)``."""
        running_max = torch.full((self.num_heads,), float("-inf"), device=state.device)
        running_sum = torch.zeros(self.num_heads, device=state.device)
        weighted = torch.zeros(self.num_heads, self.hidden_size, device=state.device)
        scores = []
        for instances in chunks:
            keys = self._heads(self.key, instances)
            retrieved = keys if retrieve == "keys" else self._heads(self.value, instances)
            score = self.beta * torch.einsum("hnd,hd->hn", keys, state)
            new_max = torch.maximum(running_max, score.max(dim=1).values)
            rescale = torch.exp(running_max - new_max)
            weights = torch.exp(score - new_max[:, None])
            running_sum = running_sum * rescale + weights.sum(dim=1)
            weighted = weighted * rescale[:, None] + torch.einsum("hn,hnd->hd", weights, retrieved)
            running_max = new_max
            scores.append(score)
        all_scores = torch.cat(scores, dim=1)
        log_mean = running_max + torch.log(running_sum) - math.log(all_scores.shape[1])
        return torch.cat([weighted / running_sum[:, None], log_mean[:, None]], dim=1), all_scores

    @torch.no_grad()
    def final_state(self, chunks: Callable[[], Iterable[torch.Tensor]]) -> torch.Tensor:
        """The state patterns ``(heads, hidden)`` after the updates over a bag in chunks
        (``chunks()`` yields them anew for each pass)."""
        state = self.state
        for _ in range(self.update_steps - 1):
            state = self._update(chunks(), state, "keys")[0][:, :-1]
        return state

    @torch.no_grad()
    def pool_chunks(
        self, chunks: Callable[[], Iterable[torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` (in eval mode) of one bag too large to hold at once, given in chunks:
        the pooled vector ``(heads * (hidden + 1),)`` and the scores ``(heads, n)``. Each
        Hopfield update is one pass over the chunks."""
        pooled, scores = self._update(chunks(), self.final_state(chunks), "values")
        return pooled.reshape(-1), scores

    def split_heads(self, projected: torch.Tensor) -> torch.Tensor:
        """``(batch, n, heads * hidden)`` -> ``(batch, heads, n, hidden)``."""
        batch, n, _ = projected.shape
        return projected.view(batch, n, self.num_heads, self.hidden_size).transpose(1, 2)

    def scores(
        self, keys: torch.Tensor, state: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Association scores ``(batch, heads, n)``; ``-inf`` on masked positions."""
        scores = self.beta * torch.einsum("bhnd,bhd->bhn", keys, state)
        if mask is not None:
            scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        return scores

    def forward(
        self,
        instances: torch.Tensor,
        mask: torch.Tensor | None = None,
        bag_size: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool ``(batch, n, input_size)`` instances; ``mask`` ``(batch, n)`` marks real ones.

        ``bag_size`` ``(batch,)``: how many instances each bag stands for when ``instances``
        are a selection of it (the most attended ones); default: the real instances.

        Returns the pooled ``(batch, num_heads * (hidden_size + 1))`` vectors and the
        association weights ``(batch, num_heads, n)`` (zero on masked positions, summing to one).
        Each head contributes its retrieved value and its log-mean-exp score
        ``lse(β X ξ) - log n``: the softmax-weighted value barely changes between ten and a
        hundred matching sequences, the log-mean-exp grows with their number.
        """
        keys = self.split_heads(self.key(instances))
        values = self.split_heads(self.value(instances))
        state = self.state.expand(instances.shape[0], -1, -1)
        for _ in range(self.update_steps - 1):
            association = torch.softmax(self.scores(keys, state, mask), dim=-1)
            state = torch.einsum("bhn,bhnd->bhd", association, keys)
        scores = self.scores(keys, state, mask)
        association = torch.softmax(scores, dim=-1)
        retrieved = torch.einsum("bhn,bhnd->bhd", self.dropout(association), values)
        if bag_size is None:
            n_real = scores.shape[-1]
            bag_size = (
                mask.sum(-1) if mask is not None else torch.full_like(scores[:, 0, 0], n_real)
            )
        log_mean = torch.logsumexp(scores, dim=-1) - torch.log(bag_size.to(scores.dtype))[:, None]
        pooled = torch.cat([retrieved, log_mean[..., None]], dim=-1)
        return pooled.reshape(instances.shape[0], -1), association
