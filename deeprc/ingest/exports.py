"""Rearrangement tables as other tools export them, read as AIRR columns.

Adaptive immunoSEQ exports (v2 and v3 column names) and MiXCR clonotype tables are recognised
by their header and turned, batch by batch, into the AIRR columns the filters read:
``junction_aa``, ``v_call``, ``j_call``, ``productive`` (T/F, where the export has a frame
status) and ``duplicate_count``. Gene names are standardised to IMGT symbols with
``tidytcells`` (``TCRBV07-02*01`` -> ``TRBV7-2*01``); a name it cannot resolve (e.g. an
ambiguous ``TCRBV12-03/12-04``) is kept as written, and a call such as ``unresolved`` is read as
no call. Both tools' CDR3 amino-acid columns hold the conserved C to F/W, as AIRR's junction does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from deeprc.errors import InputError
from deeprc.ingest.quote import shown_path

__all__ = ["Export", "detect_export"]

# what the exports write where there is no gene call
_NO_CALL = {"", "unresolved", "unknown", "na", "null", "none", "-"}
# MiXCR's "TRBV12-3*00(240),TRBV12-4*00(240)": the best hit, its score and an unknown allele off
_MIXCR_HIT = re.compile(r"^([^,(]+?)(?:\*00)?(?:\([^)]*\))?(?:,.*)?$")


@dataclass(frozen=True)
class Export:
    """One export layout: which of its columns hold each AIRR column."""

    name: str
    junction: str
    v_call: str
    j_call: str
    counts: tuple[str, ...]  # the first present is duplicate_count
    productive: str | None = None  # a frame status column: "In" is productive
    best_hit: bool = False  # gene columns list several hits with scores (MiXCR)

    def found(self, header: list[str]) -> int:
        """How many of the layout's columns (junction, V, J, a count, frame status) a header
        has: two tell its layout even when a column it needs is missing."""
        present = set(header)
        wanted = [self.junction, self.v_call, self.j_call, self.productive]
        return sum(c in present for c in wanted) + any(c in present for c in self.counts)

    def source_columns(self, header: list[str]) -> list[str]:
        """The export's columns to read."""
        count = next((c for c in self.counts if c in header), None)
        wanted = [self.junction, self.v_call, self.j_call, count, self.productive]
        return [c for c in wanted if c is not None and c in header]

    def roles(self, header: list[str]) -> dict[str, str | None]:
        """Column roles (as :func:`deeprc.ingest.airr.column_roles`) of :meth:`to_airr`'s
        batches."""
        return {
            "junction": "junction_aa",
            "v_call": "v_call",
            "j_call": "j_call",
            "productive": "productive" if self.productive in header else None,
            "locus": None,
            "duplicate_count": "duplicate_count" if any(c in header for c in self.counts) else None,
            "sequence_id": None,
        }

    def to_airr(self, batch: pa.RecordBatch, header: list[str]) -> pa.RecordBatch:
        """One batch of the export as AIRR columns (row for row, so counts and lines hold)."""
        columns = {
            "junction_aa": batch.column(self.junction),
            "v_call": self._genes(batch.column(self.v_call)),
            "j_call": self._genes(batch.column(self.j_call)),
        }
        if self.productive in header:
            status = batch.column(self.productive)
            # a row with no frame status stays unknown (null), as an empty AIRR productive
            columns["productive"] = pc.if_else(
                pc.equal(pc.utf8_lower(status), "in"), pa.scalar("T"), pa.scalar("F")
            )
        count = next((c for c in self.counts if c in header), None)
        if count is not None:
            columns["duplicate_count"] = batch.column(count)
        return pa.RecordBatch.from_pydict(columns)

    def _genes(self, calls: pa.Array) -> pa.Array:
        """IMGT gene symbols, each distinct call standardised once."""
        encoded = pc.dictionary_encode(calls)
        names = [_standard(str(n), self.best_hit) for n in encoded.dictionary.to_pylist()]
        return pc.take(pa.array(names, pa.string()), encoded.indices)


@cache
def _standard(call: str, best_hit: bool) -> str | None:
    import tidytcells

    call = call.strip()
    if best_hit and (hit := _MIXCR_HIT.match(call)):
        call = hit.group(1).strip()
    if call.lower() in _NO_CALL:
        return None
    standard = tidytcells.tr.standardize(call, enforce_functional=False, log_failures=False)
    if standard is None:  # not a TR gene (an IG export, or an ambiguous call): as written
        standard = tidytcells.ig.standardize(call, enforce_functional=False, log_failures=False)
    return standard or call


EXPORTS = (
    Export(
        "immunoSEQ v2", "aminoAcid", "vGeneName", "jGeneName",
        ("count (templates/reads)", "count (templates)", "count (reads)"), "sequenceStatus",
    ),
    Export(
        "immunoSEQ v3", "amino_acid", "v_resolved", "j_resolved", ("templates", "reads"),
        "frame_type",
    ),
    Export(
        "MiXCR", "aaSeqCDR3", "allVHitsWithScore", "allJHitsWithScore",
        ("cloneCount", "readCount", "uniqueMoleculeCount"), best_hit=True,
    ),
)  # fmt: skip


def detect_export(header: list[str], path: Path) -> Export | None:
    """The export layout a header is written in; None for an AIRR file (or anything else,
    which the AIRR reader then names what is missing for). An export without a column it needs
    is an error naming that column, not the AIRR reader's missing junction_aa."""
    if "junction_aa" in header or "cdr3_aa" in header:
        return None
    export = max(EXPORTS, key=lambda e: e.found(header))
    if export.found(header) < 2:
        return None
    needed = (export.junction, export.v_call, export.j_call)
    if missing := [c for c in needed if c not in header]:
        raise InputError(
            f"{shown_path(path)}: has columns of the {export.name} format but not {missing}, "
            f"which deeprc reads; export it again with {', '.join(needed)}"
        )
    return export
