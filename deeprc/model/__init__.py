"""The DeepRC network: a sequence encoder, modern-Hopfield attention pooling, an output network.

A pure network: built from a config and the sizes of its inputs, it knows no store and no
fitted features (deeprc.features; the classifier, deeprc.classifier, joins them)."""

from deeprc.model.deeprc import DeepRC, ModelConfig, NetworkInputs, build_model, count_on_start
from deeprc.model.embedding import SequenceEmbedding
from deeprc.model.encoders import (
    ENCODERS,
    Encoder,
    pretrained_input,
    reads_residues,
    register_encoder,
)
from deeprc.model.hopfield import HopfieldPooling

__all__ = [
    "ENCODERS",
    "DeepRC",
    "Encoder",
    "HopfieldPooling",
    "ModelConfig",
    "NetworkInputs",
    "SequenceEmbedding",
    "build_model",
    "count_on_start",
    "pretrained_input",
    "reads_residues",
    "register_encoder",
]
