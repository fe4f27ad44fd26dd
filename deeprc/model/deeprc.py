"""DeepRC: a multiple-instance classifier of immune repertoires, as a network.

``DeepRC(encoder, pooling, output)``: a sequence encoder (chosen by name, see
:mod:`deeprc.model.encoders`) -> modern-Hopfield attention pooling over the repertoire ->
output MLP (reading the pooled repertoire and, where given, its covariates) -> one output per
head: one logit for the label, or the heads of several targets side by side (deeprc.heads).
The network owns all of its maths: training batches
(:meth:`DeepRC.forward`), whole repertoires streamed in chunks (:meth:`DeepRC.score_bag`, for
prediction and validation) and differentiable per-sequence scores from the encoder's input
(:meth:`DeepRC.sequence_scores`, for integrated gradients) all go through the same modules.

It is built from a config and the sizes of what it reads beside the residues
(:class:`NetworkInputs`), and holds nothing fitted but its weights: the gene vocabulary,
evidence providers and calibration belong to the classifier (deeprc.classifier). Beside each
sequence it reads, by name, ``genes`` ``(..., 2)`` V and J indices, ``evidence``
``(..., m)`` numbers and, for an encoder that reads them, ``pretrained`` ``(..., d)`` vectors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from deeprc.model.encoders import build_encoder, encoder_options, pretrained_input
from deeprc.model.hopfield import HopfieldPooling

__all__ = ["DeepRC", "GeneEmbedding", "ModelConfig", "NetworkInputs", "build_model"]

Inputs = Mapping[str, torch.Tensor]


class Sequences(Protocol):
    """A chunk of one bag's sequences (deeprc.data.Batch without its batch dimension)."""

    tokens: torch.Tensor  # (n, width)
    lengths: torch.Tensor  # (n,)
    inputs: Inputs  # by name, (n, ...)


Chunks = Callable[[], Iterable[Sequences]]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture (the ``model:`` part of an experiment file)."""

    # {name: <a name in deeprc.model.ENCODERS>, <its options>}, completed with its defaults
    encoder: dict[str, Any] = field(default_factory=lambda: {"name": "cnn"})
    hidden_size: int = 32
    num_heads: int = 1
    scaling: float | None = None
    update_steps: int = 1
    attention_dropout: float = 0.0
    output_hidden: tuple[int, ...] = ()
    gene_embedding: int = 0  # size of the learned V and J gene vectors (0: the junction only)
    # one more attention head per target, learned from the start, that only its output reads
    # (beside the shared heads); false: every target reads the same attention
    attention_per_target: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoder", encoder_options(self.encoder, "encoder"))


@dataclass(frozen=True)
class NetworkInputs:
    """What the network reads beside the residues, as sizes (the features themselves are the
    classifier's): the V and J vocabulary sizes (None: no genes), one starting attention
    weight per evidence column (HopfieldPooling.attend_to), whether the output starts as
    the count of the sequences that evidence marks (count_on_start), and, where the evidence
    providers are weighed, the number of columns of each (``evidence_heads``): one attention
    head per provider, reading its columns (empty: every head reads all of them); the
    outputs of each target's head (``head_sizes``, deeprc.heads.Heads) and the ``covariates``
    numbers per repertoire beside the pooled one (deeprc.covariates.Covariates.size)."""

    genes: tuple[int, int] | None = None
    evidence_prior: tuple[float, ...] = ()
    starts_as_count: bool = False
    evidence_heads: tuple[int, ...] = ()
    head_sizes: tuple[int, ...] = (1,)
    covariates: int = 0


def build_model(
    cfg: ModelConfig, inputs: NetworkInputs = NetworkInputs(), seed: int | None = None
) -> DeepRC:
    """The network a config describes, reading ``inputs``, initialised from ``seed`` (when
    given)."""
    if seed is not None:
        torch.manual_seed(seed)
    encoder = build_encoder(cfg.encoder)
    genes = None
    if cfg.gene_embedding:
        if inputs.genes is None:
            raise ValueError("a model with gene_embedding needs the gene vocabulary's sizes")
        genes = GeneEmbedding(inputs.genes, cfg.gene_embedding)
    n_evidence = len(inputs.evidence_prior)
    num_heads = cfg.num_heads
    if inputs.evidence_heads:
        if cfg.num_heads != 1 or sum(inputs.evidence_heads) != n_evidence:
            raise ValueError(
                "weighed evidence makes one head per provider: leave model: num_heads at 1"
            )
        num_heads = len(inputs.evidence_heads)
    shared = num_heads
    if cfg.attention_per_target:
        if cfg.output_hidden:
            raise ValueError("attention_per_target reads each head's output directly: leave "
                             "model: output_hidden empty")  # fmt: skip
        num_heads += len(inputs.head_sizes)
    pooling = HopfieldPooling(
        input_size=encoder.output_size + (genes.output_size if genes else 0) + n_evidence,
        hidden_size=cfg.hidden_size,
        num_heads=num_heads,
        scaling=cfg.scaling,
        update_steps=cfg.update_steps,
        dropout=cfg.attention_dropout,
    )
    layers: list[nn.Module] = []
    size = pooling.output_size + inputs.covariates
    for hidden in cfg.output_hidden:
        layers += [nn.Linear(size, hidden), nn.SELU()]
        size = hidden
    output = nn.Sequential(*layers, nn.Linear(size, sum(inputs.head_sizes)))
    counts = bool(n_evidence) and inputs.starts_as_count and not cfg.output_hidden
    counts = counts and not cfg.attention_per_target
    if counts and inputs.head_sizes != (1,):
        raise ValueError("a network that starts as a count has one logit")
    first = pooling.key.in_features - n_evidence
    prior = list(inputs.evidence_prior)
    if inputs.evidence_heads:
        ends = np.cumsum([0, *inputs.evidence_heads])
        for head, (start, stop) in enumerate(itertools.pairwise(ends.tolist())):
            columns = list(range(first + start, first + stop))
            pooling.attend_to(columns, prior[start:stop], alone=counts, heads=[head])
    elif n_evidence:
        columns = list(range(first, first + n_evidence))
        pooling.attend_to(columns, prior, alone=counts, heads=list(range(shared)))
    model = DeepRC(
        encoder, pooling, output, genes, evidence_size=n_evidence, covariate_size=inputs.covariates
    )
    if cfg.attention_per_target:
        model.output_mask = _own_heads(inputs.head_sizes, shared, pooling, inputs.covariates)
    if counts:
        count_on_start(
            output[-1], [1.0 / num_heads] * num_heads, covariates=[0.0] * inputs.covariates
        )
        model.starts_as_count = True
    return model


def _own_heads(
    head_sizes: Sequence[int], shared: int, pooling: HopfieldPooling, covariates: int
) -> torch.Tensor:
    """``(outputs, inputs)`` of the output layer: 1 where a target's outputs may read, 0 for
    the attention heads of the other targets (the last ones, one per target, in order)."""
    per_head = pooling.output_size // pooling.num_heads
    mask = torch.ones(sum(head_sizes), pooling.output_size + covariates)
    ends = np.cumsum([0, *head_sizes]).tolist()
    for target, (start, stop) in enumerate(itertools.pairwise(ends)):
        for other in range(len(head_sizes)):
            if other != target:
                head = shared + other
                mask[start:stop, head * per_head : (head + 1) * per_head] = 0.0
    return mask


@torch.no_grad()
def count_on_start(
    output: nn.Linear,
    weights: Sequence[float],
    bias: float = 0.0,
    *,
    covariates: Sequence[float] = (),
) -> None:
    """Start the output at ``weights`` · the heads' log-mean-exp scores + ``bias`` (+ the
    ``covariates``' weights · their values, one weight per covariate column the output
    reads): each
    head's soft count of the sequences its warm-started attention points to (the pooled
    values get weight 0, and the attention reads the evidence alone:
    HopfieldPooling.attend_to). With burden evidence and equal weights, the untrained model is
    then exactly a soft burden test; with weighed providers, the logistic regression of the
    training repertoires on their soft burdens (deeprc.features.FeatureSet.weighed). Training
    must beat that start on the validation repertoires to be kept (deeprc.train.fit
    evaluates step 0). On public clonotypes, training from it degraded the test AUC
    (docs/model.md)."""
    beside = list(covariates)
    pooled = output.in_features - len(beside)
    output.weight.zero_()
    dtype = output.weight.dtype
    output.weight[:, :pooled].view(len(weights), -1)[:, -1] = torch.tensor(weights, dtype=dtype)
    output.weight[0, pooled:] = torch.tensor(beside, dtype=dtype)
    output.bias.fill_(bias)


class GeneEmbedding(nn.Module):
    """Learned vectors of a sequence's V and J genes, set beside its junction's embedding
    (index 0, no call, has its own vector)."""

    def __init__(self, vocabulary: tuple[int, int], size: int) -> None:
        super().__init__()
        self.v = nn.Embedding(vocabulary[0], size)
        self.j = nn.Embedding(vocabulary[1], size)
        self.output_size = 2 * size

    def forward(self, genes: torch.Tensor) -> torch.Tensor:
        """``(n, 2)`` V and J indices -> ``(n, 2 * size)``."""
        genes = genes.long()
        return torch.cat([self.v(genes[:, 0]), self.j(genes[:, 1])], dim=1)


class DeepRC(nn.Module):
    """Repertoire classifier network composed of a sequence encoder (with, optionally, V and J
    gene vectors and evidence numbers beside it), Hopfield pooling and an output network (as
    the original DeepRC composes its three networks)."""

    def __init__(
        self,
        encoder: nn.Module,
        pooling: HopfieldPooling,
        output: nn.Module,
        genes: GeneEmbedding | None = None,
        *,
        evidence_size: int = 0,
        covariate_size: int = 0,
    ) -> None:
        super().__init__()
        self.encoder, self.pooling, self.output, self.genes = encoder, pooling, output, genes
        self.evidence_size = evidence_size  # evidence numbers read beside each sequence
        self.covariate_size = covariate_size  # covariate numbers read beside each repertoire
        # attention_per_target: which pooled columns each output reads (_own_heads)
        self.register_buffer("output_mask", None)
        self.starts_as_count = False  # see count_on_start

    def _pretrained(self, inputs: Inputs | None) -> tuple[torch.Tensor, ...]:
        """The encoder's third argument, where it reads pretrained vectors (Encoder)."""
        if pretrained_input(self.encoder) is None:
            return ()
        if not inputs or "pretrained" not in inputs:
            raise ValueError("this model's encoder reads pretrained vectors: pass them")
        vectors = inputs["pretrained"]
        return (vectors.reshape(-1, vectors.shape[-1]),)

    def _beside(self, encoded: torch.Tensor, inputs: Inputs | None) -> torch.Tensor:
        """The junction's vector with the gene vectors and evidence the network reads."""
        inputs = inputs or {}
        parts = [encoded]
        if self.genes is not None:
            if "genes" not in inputs:
                raise ValueError("this model reads V and J genes: pass inputs['genes']")
            parts.append(self.genes(inputs["genes"].reshape(-1, 2)))
        if self.evidence_size:
            if "evidence" not in inputs:
                raise ValueError("this model reads evidence: pass inputs['evidence']")
            evidence = inputs["evidence"].reshape(-1, self.evidence_size)
            parts.append(evidence.to(encoded.dtype))
        return torch.cat(parts, dim=1) if len(parts) > 1 else encoded

    def embed(
        self, tokens: torch.Tensor, lengths: torch.Tensor, inputs: Inputs | None = None
    ) -> torch.Tensor:
        """``(batch, n, width)`` tokens, ``(batch, n)`` lengths (and ``inputs`` by name,
        ``(batch, n, ...)``, see the module) -> ``(batch, n, embedding)``.

        Padding sequences (length 0) embed to zeros.
        """
        batch, n, width = tokens.shape
        flat = self.encoder(
            tokens.reshape(batch * n, width), lengths.reshape(-1), *self._pretrained(inputs)
        )
        flat = self._beside(flat, inputs)
        return flat.masked_fill(lengths.reshape(-1, 1) == 0, 0.0).view(batch, n, -1)

    def _output(self, pooled: torch.Tensor, covariates: torch.Tensor | None) -> torch.Tensor:
        """The output network on the pooled repertoires ``(batch, pooled)`` and their
        covariates ``(batch, m)``."""
        if self.covariate_size:
            if covariates is None:
                raise ValueError("this model reads covariates: pass them")
            pooled = torch.cat([pooled, covariates.to(pooled.device, pooled.dtype)], dim=-1)
        if self.output_mask is not None:
            last = self.output[-1]
            return nn.functional.linear(pooled, last.weight * self.output_mask, last.bias)
        return self.output(pooled)

    def forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        bag_size: torch.Tensor | None = None,
        inputs: Inputs | None = None,
        covariates: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs ``(batch, outputs)`` (one logit: ``(batch,)``) and association weights
        ``(batch, heads, n)``.

        ``tokens`` ``(batch, n, width)``, ``lengths`` ``(batch, n)``; length 0 marks padding.
        ``bag_size``: see :meth:`HopfieldPooling.forward`. ``inputs``: see :meth:`embed`.
        ``covariates``: ``(batch, m)``, for a network that reads them.
        """
        embedded = self.embed(tokens, lengths, inputs)
        pooled, association = self.pooling(embedded, mask=lengths > 0, bag_size=bag_size)
        return self._output(pooled, covariates).squeeze(-1), association

    def _embedded(self, chunks: Chunks) -> Callable[[], Iterable[torch.Tensor]]:
        device = next(self.parameters()).device

        def embedded() -> Iterable[torch.Tensor]:
            for chunk in chunks():
                inputs = {k: v[None].to(device) for k, v in chunk.inputs.items()}
                tokens, lengths = chunk.tokens[None].to(device), chunk.lengths[None].to(device)
                yield self.embed(tokens, lengths, inputs)[0]

        return embedded

    @torch.no_grad()
    def final_state(self, chunks: Chunks) -> torch.Tensor:
        """The state patterns ``(heads, hidden)`` after the Hopfield updates over one bag,
        given as ``chunks()``: an iterable of :class:`Sequences`."""
        self.eval()
        return self.pooling.final_state(self._embedded(chunks))

    @torch.no_grad()
    def score_bag(
        self, chunks: Chunks, covariates: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The outputs ``(outputs,)`` of one whole bag in chunks (memory: one chunk), with its
        ``covariates`` ``(m,)``, its attention ``(heads, n)`` and the attention scores before
        the softmax (``β kᵢ·ξ``, comparable between bags); equal to :meth:`forward`'s on the
        whole bag (tested)."""
        self.eval()
        pooled, scores = self.pooling.pool_chunks(self._embedded(chunks))
        covariates = None if covariates is None else covariates[None]
        outputs = self._output(pooled[None], covariates)[0].cpu()
        return outputs, torch.softmax(scores, dim=1), scores

    @torch.no_grad()
    def pulls(self, chunks: Chunks, chosen: Sequences) -> torch.Tensor | None:
        """Each ``chosen`` sequence's share of each output, ``(outputs, m)``: per head, its
        attention in the whole bag (``chunks()``) times the output layer's weights on that
        head's retrieved value, applied to the sequence's value, summed over heads. With a
        linear output network these shares over a bag's sequences, plus the heads'
        log-mean-exp scores, the covariates and the bias, are its outputs; so they say which
        sequences pull an output (a class's logit) up or down. None with hidden layers."""
        if len(self.output) != 1:
            return None
        self.eval()
        embedded = self._embedded(chunks)
        state = self.pooling.final_state(embedded)
        _, scores = self.pooling.pool_chunks(embedded)
        device = next(self.parameters()).device
        inputs = {k: v[None].to(device) for k, v in chosen.inputs.items()}
        x = self.embed(chosen.tokens[None].to(device), chosen.lengths[None].to(device), inputs)[0]
        attention = torch.exp(
            self.pooling.sequence_scores(x, state) - torch.logsumexp(scores, dim=1)[:, None]
        )
        weight = self.output[-1].weight
        if self.output_mask is not None:
            weight = weight * self.output_mask
        heads, hidden = self.pooling.num_heads, self.pooling.hidden_size
        on_values = weight[:, : heads * (hidden + 1)].view(len(weight), heads, hidden + 1)
        values = self.pooling.values_of(x)
        return torch.einsum("ohd,hmd,hm->om", on_values[:, :, :hidden], values, attention)

    def sequence_scores(
        self,
        encoder_input: torch.Tensor,
        lengths: torch.Tensor,
        state: torch.Tensor,
        inputs: Inputs | None = None,
    ) -> torch.Tensor:
        """Attention scores ``(n, heads)`` of the encoder's differentiable input (see
        :class:`deeprc.model.Encoder`; any point on a path to it), with the sequences'
        other ``inputs``: differentiable in ``encoder_input``, what integrated gradients
        attribute."""
        encoded = self.encoder.from_input(encoder_input, lengths, *self._pretrained(inputs))
        encoded = self._beside(encoded, inputs)
        return self.pooling.sequence_scores(encoded, state).T
