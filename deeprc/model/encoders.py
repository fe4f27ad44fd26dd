"""Sequence encoders by name, and the interface every encoder follows.

An experiment chooses one as ``encoder: {name: cnn, n_kernels: 32, ...}``: the name picks the
class from :data:`ENCODERS`, the other keys are its constructor's parameters (checked against
its signature). A new encoder is one module with a class that follows :class:`Encoder` and one
entry here (or :func:`register_encoder` from outside the package).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from deeprc.config import named_options
from deeprc.model.embedding import SequenceEmbedding
from deeprc.model.sceptr import SceptrEncoder

__all__ = [
    "ENCODERS",
    "Encoder",
    "build_encoder",
    "encoder_options",
    "pretrained_input",
    "reads_residues",
    "register_encoder",
]


@runtime_checkable
class Encoder(Protocol):
    """One vector per sequence, from its residue tokens.

    ``output_size``: the vector's size. Called with ``(n, width)`` tokens (0: padding,
    1..20: residues) and ``(n,)`` lengths, returns ``(n, output_size)``. An encoder with a
    class attribute ``pretrained`` (a name, deeprc.features.pretrained) also reads the store's
    cached vectors of that name, ``(n, d)``, as a third argument, here and in
    :meth:`from_input`. Integrated gradients
    need an input they can move along a path: :meth:`differentiable_input` maps tokens to
    ``(n, channels, width)`` floats (the baseline is all zeros) and :meth:`from_input` encodes
    any point on that path, differentiably; ``from_input(differentiable_input(t), l)`` equals
    ``encoder(t, l)``. Contributions are summed over the channels of each position.

    Two attributes are optional, with defaults for an encoder that lacks them (read them
    through :func:`pretrained_input` and :func:`reads_residues`): ``pretrained`` (None) and
    ``reads_residues`` (True; False where no residue input exists to attribute, as for
    pretrained vectors alone).
    """

    output_size: int

    def __call__(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor: ...

    def differentiable_input(self, tokens: torch.Tensor) -> torch.Tensor: ...

    def from_input(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor: ...


def pretrained_input(encoder: nn.Module | type[nn.Module]) -> str | None:
    """The store's pretrained vectors an encoder (class or instance) reads; None: none."""
    return getattr(encoder, "pretrained", None)


def reads_residues(encoder: nn.Module) -> bool:
    """Whether integrated gradients can attribute an encoder's vector to residue positions."""
    return getattr(encoder, "reads_residues", True)


ENCODERS: dict[str, type[nn.Module]] = {"cnn": SequenceEmbedding, "sceptr": SceptrEncoder}


def register_encoder(name: str, kind: type[nn.Module]) -> type[nn.Module]:
    """Make an encoder class (an ``nn.Module`` following :class:`Encoder`) available by name."""
    if name in ENCODERS and ENCODERS[name] is not kind:
        raise ValueError(f"an encoder named {name!r} exists already")
    ENCODERS[name] = kind
    return kind


def encoder_options(entry: Any, where: str) -> dict[str, Any]:
    """An ``encoder:`` entry (``{name: cnn, n_kernels: 32}``, or a name alone for its
    defaults) checked and completed with the encoder's defaults; ``where`` prefixes errors."""
    return named_options(entry, ENCODERS, where, "{name: cnn, n_kernels: 32}")


def build_encoder(options: dict[str, Any]) -> nn.Module:
    """The encoder a completed ``encoder:`` entry (:func:`encoder_options`) describes."""
    encoder = ENCODERS[options["name"]](**{k: v for k, v in options.items() if k != "name"})
    if not isinstance(encoder, Encoder):
        raise TypeError(f"encoder {options['name']!r} does not follow deeprc.model.Encoder")
    return encoder
