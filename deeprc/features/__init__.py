"""Features fitted on a fold's repertoires, under both the network and the baselines: k-mers,
clonotype hashes and carriers, the association test, the gene vocabulary and the evidence
providers that the model reads beside each sequence."""

from deeprc.features.evidence import Evidence
from deeprc.features.featureset import FeatureSet, RowInputs
from deeprc.features.genes import GeneVocabulary
from deeprc.features.registry import EVIDENCE, evidence_options, register_evidence

__all__ = [
    "EVIDENCE",
    "Evidence",
    "FeatureSet",
    "GeneVocabulary",
    "RowInputs",
    "evidence_options",
    "register_evidence",
]
