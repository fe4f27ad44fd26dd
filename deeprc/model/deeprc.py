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
from deeprc.evidence import evidence_prior, evidence_size
from deeprc.model.embedding import SequenceEmbedding
from deeprc.model.hopfield import HopfieldPooling

__all__ = ["ENCODERS", "DeepRC", "GeneEmbedding", "ModelConfig", "build_model"]

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
    gene_embedding: int = 0  # size of the learned V and J gene vectors (0: the junction only)
    clonotype_evidence: bool = False  # how many training positives/negatives carry the clonotype
    burden_evidence: float = 0.0  # p: is the clonotype associated (Emerson's test, p < this)?
    kmer_evidence: int = 4  # k: largest training log-ratio (positives : negatives) of its k-mers

    def __post_init__(self) -> None:
        if not 0.0 <= self.burden_evidence < 1.0:
            raise InputError(
                f"burden_evidence is a p-value threshold in (0, 1), or 0 for off; got "
                f"{self.burden_evidence}"
            )
        if self.encoder not in ENCODERS:
            raise InputError(f"encoder {self.encoder!r} is not one of {sorted(ENCODERS)}")


# Sequence encoders by name: (n, width) tokens + (n,) lengths -> (n, output_size), with
# from_one_hot(residues, lengths) for integrated gradients (see SequenceEmbedding).
ENCODERS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "cnn": lambda cfg: SequenceEmbedding(
        n_kernels=cfg.n_kernels, kernel_size=cfg.kernel_size, implementation=cfg.embedding
    ),
}


def build_model(
    cfg: ModelConfig, seed: int | None = None, gene_names: dict[str, list[str]] | None = None
) -> DeepRC:
    """The model a config describes, initialised from ``seed`` (when given). With
    ``gene_embedding``, ``gene_names`` (a store's V and J vocabularies) size the gene tables
    and are kept with the model, so that another store's genes map to them by name."""
    if seed is not None:
        torch.manual_seed(seed)
    encoder = ENCODERS[cfg.encoder](cfg)
    genes = None
    if cfg.gene_embedding:
        if gene_names is None:
            raise ValueError("a model with gene_embedding needs the store's gene names")
        genes = GeneEmbedding(gene_names, cfg.gene_embedding)
    pooling = HopfieldPooling(
        input_size=encoder.output_size + (genes.output_size if genes else 0) + evidence_size(cfg),
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
    output = nn.Sequential(*layers, nn.Linear(size, 1))
    if evidence_size(cfg):
        columns = range(pooling.key.in_features - evidence_size(cfg), pooling.key.in_features)
        pooling.attend_to(list(columns), evidence_prior(cfg))
    model = DeepRC(encoder, pooling, output, genes, evidence_size=evidence_size(cfg))
    if cfg.burden_evidence and not cfg.output_hidden:
        count_on_start(output[-1], cfg.num_heads)
        model.starts_as_count = True
    return model


@torch.no_grad()
def count_on_start(output: nn.Linear, num_heads: int) -> None:
    """Start the output at the mean of the heads' log-mean-exp scores, each head's soft count
    of the sequences its warm-started attention points to (the pooled values get weight 0):
    with burden evidence, the untrained model is then a soft burden test, which training must
    beat on the validation repertoires to be kept (deeprc.train.fit evaluates step 0). On
    public clonotypes, training from it degraded the test AUC (docs/model.md)."""
    output.weight.zero_()
    output.weight.view(num_heads, -1)[:, -1] = 1.0 / num_heads
    output.bias.zero_()


class GeneEmbedding(nn.Module):
    """Learned vectors of a sequence's V and J genes, set beside its junction's embedding
    (index 0, no call, has its own vector)."""

    def __init__(self, gene_names: dict[str, list[str]], size: int) -> None:
        super().__init__()
        self.names = {key: list(gene_names[key]) for key in ("v", "j")}
        self.v = nn.Embedding(len(self.names["v"]), size)
        self.j = nn.Embedding(len(self.names["j"]), size)
        self.output_size = 2 * size

    def forward(self, genes: torch.Tensor) -> torch.Tensor:
        """``(n, 2)`` V and J indices -> ``(n, 2 * size)``."""
        genes = genes.long()
        return torch.cat([self.v(genes[:, 0]), self.j(genes[:, 1])], dim=1)


class DeepRC(nn.Module):
    """Repertoire classifier composed of a sequence encoder (with, optionally, V and J gene
    vectors), Hopfield pooling and an output network (as the original DeepRC composes its
    three networks)."""

    def __init__(
        self,
        encoder: nn.Module,
        pooling: HopfieldPooling,
        output: nn.Module,
        genes: GeneEmbedding | None = None,
        *,
        evidence_size: int = 0,
    ) -> None:
        super().__init__()
        self.encoder, self.pooling, self.output, self.genes = encoder, pooling, output, genes
        # evidence_size numbers per sequence from its training repertoires (deeprc.evidence):
        # the providers, which training fits and the model file keeps
        self.evidence_size = evidence_size
        self.evidence: list = []
        self.starts_as_count = False  # see count_on_start
        # slope and intercept from the output's logit to calibrated log-odds (see calibrate)
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))

    def calibrate(self, slope: float, intercept: float) -> None:
        """Set the map from whole-repertoire logits to calibrated log-odds (Platt scaling on
        held-out repertoires, after training; training itself sees the raw logits)."""
        self.calibration.copy_(torch.tensor([slope, intercept]))

    def _beside(
        self, encoded: torch.Tensor, genes: torch.Tensor | None, evidence: torch.Tensor | None
    ) -> torch.Tensor:
        """The junction's vector with the gene vectors and clonotype evidence the model reads."""
        parts = [encoded]
        if self.genes is not None:
            if genes is None:
                raise ValueError("this model reads V and J genes: pass genes")
            parts.append(self.genes(genes.reshape(-1, 2)))
        if self.evidence_size:
            if evidence is None:
                raise ValueError("this model reads evidence: pass evidence")
            parts.append(evidence.reshape(-1, self.evidence_size).to(encoded.dtype))
        return torch.cat(parts, dim=1) if len(parts) > 1 else encoded

    def embed(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        genes: torch.Tensor | None = None,
        evidence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(batch, n, width)`` tokens, ``(batch, n)`` lengths (and ``(batch, n, 2)`` V and J
        indices, ``(batch, n, m)`` evidence (deeprc.evidence) when the model reads them) ->
        ``(batch, n, embedding)``.

        Padding sequences (length 0) embed to zeros.
        """
        batch, n, width = tokens.shape
        flat = self.encoder(tokens.reshape(batch * n, width), lengths.reshape(-1))
        flat = self._beside(flat, genes, evidence)
        return flat.masked_fill(lengths.reshape(-1, 1) == 0, 0.0).view(batch, n, -1)

    def forward(
        self,
        tokens: torch.Tensor,
        lengths: torch.Tensor,
        bag_size: torch.Tensor | None = None,
        genes: torch.Tensor | None = None,
        evidence: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(batch,)`` and association weights ``(batch, heads, n)``.

        ``tokens`` ``(batch, n, width)``, ``lengths`` ``(batch, n)``; length 0 marks padding.
        ``bag_size``: see :meth:`HopfieldPooling.forward`. ``genes``, ``evidence``: see
        :meth:`embed`.
        """
        embedded = self.embed(tokens, lengths, genes, evidence)
        pooled, association = self.pooling(embedded, mask=lengths > 0, bag_size=bag_size)
        return self.output(pooled).squeeze(-1), association

    def _embedded(self, chunks: Chunks) -> Callable[[], Iterable[torch.Tensor]]:
        device = next(self.parameters()).device

        def embedded() -> Iterable[torch.Tensor]:
            for tokens, lengths, *side in chunks():
                side = [t[None].to(device) if t is not None else None for t in side]
                yield self.embed(tokens[None].to(device), lengths[None].to(device), *side)[0]

        return embedded

    @torch.no_grad()
    def final_state(self, chunks: Chunks) -> torch.Tensor:
        """The state patterns ``(heads, hidden)`` after the Hopfield updates over one bag,
        given as ``chunks()``: an iterable of ``(n, width)`` tokens, ``(n,)`` lengths, ``(n, 2)``
        gene indices and ``(n, m)`` evidence (None where the model reads neither)."""
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
        self,
        residues: torch.Tensor,
        lengths: torch.Tensor,
        state: torch.Tensor,
        genes: torch.Tensor | None = None,
        evidence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attention scores ``(n, heads)`` of ``(n, 20, width)`` residue channels (one-hot or
        on a path to it), with the sequences' genes and evidence, differentiable in the
        residues: what integrated gradients attribute."""
        encoded = self._beside(self.encoder.from_one_hot(residues, lengths), genes, evidence)
        return self.pooling.sequence_scores(encoded, state).T
