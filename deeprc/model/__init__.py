"""The DeepRC model: a sequence encoder, modern-Hopfield attention pooling, an output network."""

from deeprc.model.deeprc import ENCODERS, DeepRC, ModelConfig, build_model
from deeprc.model.embedding import SequenceEmbedding
from deeprc.model.hopfield import HopfieldPooling

__all__ = [
    "ENCODERS",
    "DeepRC",
    "HopfieldPooling",
    "ModelConfig",
    "SequenceEmbedding",
    "build_model",
]
