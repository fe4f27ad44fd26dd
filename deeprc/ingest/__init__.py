"""AIRR rearrangement files + a metadata table -> a validated, encoded store (see pipeline)."""

from deeprc.ingest.options import DROP_REASONS, IngestOptions
from deeprc.ingest.pipeline import ingest

__all__ = ["DROP_REASONS", "IngestOptions", "ingest"]
