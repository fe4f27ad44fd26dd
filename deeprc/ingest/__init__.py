"""AIRR rearrangement files + a metadata table -> a validated, encoded store (see pipeline)."""

from deeprc.ingest.options import DROP_REASONS, IngestOptions

__all__ = ["DROP_REASONS", "IngestOptions", "ingest"]


def __getattr__(name: str):
    """``ingest`` on first use (PEP 562), so that the command line, which reads the options
    here, starts without loading pandas and pyarrow."""
    if name == "ingest":
        from deeprc.ingest.pipeline import ingest

        return ingest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
