"""The DeepRC model: sequence embedding, modern-Hopfield attention pooling, output network."""

from deeprc.model.deeprc import DeepRC
from deeprc.model.embedding import SequenceEmbedding
from deeprc.model.hopfield import HopfieldPooling

__all__ = ["DeepRC", "HopfieldPooling", "SequenceEmbedding"]
