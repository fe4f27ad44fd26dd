"""What ingest may drop, and the options that decide it (recorded in the store manifest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from deeprc.errors import InputError

__all__ = ["DROP_REASONS", "KINDS", "LABEL", "FileStats", "IngestOptions"]

# the kinds of metadata column ingest keeps beside the label (deeprc.ingest.annotations), and
# the name the label itself goes by among the targets (deeprc.targets)
KINDS = {"target": ("binary", "categorical", "numeric"), "covariate": ("categorical", "numeric")}
LABEL = "label"

# In the order they are tested: a row is counted under the first reason that applies.
DROP_REASONS = (
    "empty_row",
    "other_locus",
    "non_productive",
    "missing_junction",
    "stop_codon",
    "invalid_character",
    "too_short",
    "too_long",
    "zero_count",
    "collapsed_duplicate",
)


@dataclass(frozen=True)
class IngestOptions:
    """Row filters and policies; recorded in the store manifest.

    ``lowercase="upper"`` treats lower-case residues as the same amino acids (some tools write
    soft-masked sequences); ``"reject"`` counts such rows as ``invalid_character``.
    """

    min_length: int = field(default=4, metadata={"help": "shortest junction kept"})
    max_length: int = field(default=40, metadata={"help": "longest junction kept"})
    loci: tuple[str, ...] = field(
        default=(),
        metadata={"flag": "locus", "help": "keep only this locus (repeatable), e.g. TRB"},
    )
    keep_nonproductive: bool = field(default=False, metadata={"help": "keep productive=F rows"})
    lowercase: Literal["upper", "reject"] = field(
        default="upper",
        metadata={"help": "lower-case residues: read as upper case, or drop the row"},
    )
    collapse: bool = field(
        default=False,
        metadata={
            "help": "merge identical (junction_aa, v_call, j_call) rows of a repertoire, "
            "summing counts"
        },
    )
    missing_files: Literal["error", "skip"] = field(
        default="error", metadata={"help": "a listed file that does not exist"}
    )
    unlisted_files: Literal["error", "ignore"] = field(
        default="error", metadata={"help": "a rearrangement file the metadata does not list"}
    )

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length <= 255:
            raise InputError(
                f"length bounds must satisfy 1 <= min_length <= max_length <= 255, got "
                f"min_length={self.min_length}, max_length={self.max_length}"
            )
        if self.lowercase not in ("upper", "reject"):
            raise InputError(f"lowercase must be 'upper' or 'reject', got {self.lowercase!r}")


@dataclass
class FileStats:
    """What one worker reports about one repertoire file."""

    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    n_uppercased: int = 0
    total_count: int = 0
    max_length: int = 0
    junction_column: str = ""
    sha256: str = ""
    notes: list[str] = field(default_factory=list)  # for the user, logged by the parent
