"""The evidence kinds by name: what an experiment's ``evidence:`` entries and model files name."""

from __future__ import annotations

from typing import Any

from deeprc.config import named_options
from deeprc.errors import InputError
from deeprc.features.burden_evidence import BurdenEvidence
from deeprc.features.clonotype_evidence import ClonotypeEvidence
from deeprc.features.evidence import Evidence
from deeprc.features.gapped_burden_evidence import GappedBurdenEvidence
from deeprc.features.gapped_evidence import GappedEvidence
from deeprc.features.kmer_evidence import KmerEvidence
from deeprc.features.kmer_regression import KmerRegressionEvidence

__all__ = ["EVIDENCE", "evidence_options", "register_evidence"]

EVIDENCE: dict[str, type[Evidence]] = {
    kind.name: kind
    for kind in (
        ClonotypeEvidence, BurdenEvidence, KmerEvidence, KmerRegressionEvidence, GappedEvidence,
        GappedBurdenEvidence,
    )
}  # fmt: skip


def register_evidence(kind: type[Evidence]) -> type[Evidence]:
    """Make an :class:`Evidence` subclass available by its ``name`` (usable as a decorator)."""
    if kind.name in EVIDENCE and EVIDENCE[kind.name] is not kind:
        raise ValueError(f"an evidence kind named {kind.name!r} exists already")
    EVIDENCE[kind.name] = kind
    return kind


def evidence_options(entry: Any, where: str) -> dict[str, Any]:
    """One ``evidence:`` entry (``{name: kmer, k: 4}``, or a name alone for its defaults)
    checked and completed with the kind's defaults; ``where`` prefixes errors."""
    options = named_options(entry, EVIDENCE, where, "{name: kmer, k: 4}")
    name, params = options["name"], {k: v for k, v in options.items() if k != "name"}
    try:
        EVIDENCE[name](**params)  # the kind's own checks of its values
    except InputError as exc:
        raise InputError(f"{where} ({name}): {exc}") from None
    return options
