"""Row filters: every row of a batch is kept or counted under the first drop reason that applies."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deeprc.errors import InputError
from deeprc.ingest.options import FileStats, IngestOptions
from deeprc.ingest.quote import quoted, shown_path
from deeprc.store import LOOKUP, string_buffers

__all__ = ["collapse", "filter_batch"]

_TRUE = pa.array(["T", "TRUE", "True", "true", "1"])
_FALSE = pa.array(["F", "FALSE", "False", "false", "0"])
_INVALID = LOOKUP == 0


def _bad_value(path: Path, column: str, values: pa.Array, bad: pa.Array, first_line: int, fix: str):
    index = pc.index(bad, True).as_py()
    return InputError(
        f"{shown_path(path)}: line {first_line + index}, column {column!r}: invalid value "
        f"{quoted(values[index].as_py())}; {fix}"
    )


class _Residues:
    """Per-row residue checks from one pass over the junction bytes (not a regex per row)."""

    def __init__(self, junction: pa.Array, *, uppercase: bool) -> None:
        offsets, data = string_buffers(junction)
        self.lengths = np.diff(offsets)
        lower = (data >= ord("a")) & (data <= ord("z"))
        self.n_lower = self._per_row(lower, offsets)
        self.strings = junction
        if uppercase and self.n_lower.any():
            data = data - (lower.astype(np.uint8) << 5)
            validity = pc.is_valid(junction).buffers()[1] if junction.null_count else None
            self.strings = pa.Array.from_buffers(
                pa.string(),
                len(junction),
                [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)],
            )
        self.n_stop = self._per_row(data == ord("*"), offsets)
        self.n_invalid = self._per_row(np.take(_INVALID, data), offsets)

    @staticmethod
    def _per_row(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """How many residues of each row the mask marks (fast when marks are rare)."""
        rows = np.searchsorted(offsets, np.flatnonzero(mask), side="right") - 1
        return np.bincount(rows, minlength=len(offsets) - 1)


def _parse_counts(raw: pa.Array, path: Path, first_line: int) -> pa.Array:
    """duplicate_count as int64: whole numbers, also written as decimals ("2.0"); empty -> 1."""
    try:
        return pc.fill_null(pc.cast(raw, pa.int64()), 1)
    except pa.ArrowInvalid:
        pass
    try:
        as_float = pc.cast(raw, pa.float64())
        if pc.all(pc.equal(pc.floor(as_float), as_float)).as_py() is not False:
            return pc.fill_null(pc.cast(as_float, pa.int64()), 1)
    except pa.ArrowInvalid:
        pass
    counts = []
    for index, value in enumerate(raw.to_pylist()):
        try:
            counts.append(_parse_count(value))
        except ValueError as problem:
            raise InputError(
                f"{shown_path(path)}: line {first_line + index}, column 'duplicate_count': "
                f"{problem} {quoted(value)}; a count must be a whole number from -2**63 to 2**63-1 "
                "(empty means 1)"
            ) from None
    return pa.array(counts, pa.int64())


# The numbers Arrow's string casts accept (Python's int/float also take spaces, '_', 'nan', ...).
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _parse_count(value: str | None) -> int:
    """One count, exactly: the slow path for a batch that Arrow's casts refuse, to name the row
    at fault (or to read integers near 2**63, which the float cast rounds out of range)."""
    if value is None:
        return 1
    if not _NUMBER.fullmatch(value):
        raise ValueError("invalid value")
    # int() refuses strings of over 4300 digits (sys.int_info), all out of range: float() is inf
    exact = value.lstrip("+-").isdigit() and len(value) < 100
    number = int(value) if exact else float(value)
    if not -(2**63) <= number < 2**63:
        raise ValueError("out-of-range value")
    if number % 1:
        raise ValueError("invalid value")
    return int(number)


def filter_batch(
    batch: pa.RecordBatch,
    roles: dict[str, str | None],
    options: IngestOptions,
    stats: FileStats,
    path: Path,
    first_line: int,
) -> pa.Table:
    """Kept rows of one batch, in store columns; updates ``stats`` with counts per reason."""
    n = batch.num_rows
    keep = np.ones(n, dtype=bool)

    def drop(reason: str, mask: pa.Array | np.ndarray) -> None:
        if isinstance(mask, pa.Array):
            mask = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        hit = keep & mask
        stats.dropped[reason] += int(hit.sum())
        keep[hit] = False

    def column(role: str) -> pa.Array | None:
        name = roles[role]
        return None if name is None else batch.column(name)

    # Blank lines stay rows (the parser does not skip them) so that error line numbers are exact.
    drop("empty_row", functools.reduce(pc.and_, [pc.is_null(c) for c in batch.columns]))

    v_call, j_call = column("v_call"), column("j_call")
    locus = column("locus")
    inferred = pc.utf8_slice_codeunits(v_call, 0, 3)
    locus = inferred if locus is None else pc.coalesce(locus, inferred)
    if options.loci:
        drop("other_locus", pc.invert(pc.is_in(locus, pa.array(options.loci))))

    productive = column("productive")
    if productive is not None:
        is_false = pc.is_in(productive, _FALSE)
        bad = pc.and_not(pc.is_valid(productive), pc.or_(pc.is_in(productive, _TRUE), is_false))
        if pc.any(bad).as_py():
            raise _bad_value(
                path, roles["productive"], productive, bad, first_line,
                "AIRR booleans are T or F (also accepted: true/false, TRUE/FALSE, 1/0); "
                "empty means unknown",
            )  # fmt: skip
        if not options.keep_nonproductive:
            drop("non_productive", is_false)

    junction = column("junction")
    drop("missing_junction", pc.is_null(junction))
    residues = _Residues(junction, uppercase=options.lowercase == "upper")
    drop("stop_codon", residues.n_stop > 0)
    drop("invalid_character", residues.n_invalid > 0)
    drop("too_short", residues.lengths < options.min_length)
    drop("too_long", residues.lengths > options.max_length)

    raw_count = column("duplicate_count")
    if raw_count is None:
        count = pa.array(np.ones(n, dtype=np.int64))
    else:
        count = _parse_counts(raw_count, path, first_line)
        drop("zero_count", pc.less_equal(count, 0))
    stats.n_uppercased += int((keep & (residues.n_lower > 0)).sum())

    sequence_id = column("sequence_id")
    if sequence_id is None:
        sequence_id = pa.nulls(n, pa.string())
    # An empty call is a value (a file without J assignments), so the store holds "", not null.
    kept = pa.table(
        {
            "sequence_id": sequence_id,
            "junction_aa": residues.strings,
            "v_call": pc.fill_null(v_call, ""),
            "j_call": pc.fill_null(j_call, ""),
            "locus": pc.fill_null(locus, ""),
            "duplicate_count": count,
        }
    ).filter(pa.array(keep))
    stats.rows_read += n
    return kept


def collapse(table: pa.Table) -> pa.Table:
    """Merge identical (junction_aa, v_call, j_call) rows, summing counts; first-seen order."""
    grouped = table.group_by(["junction_aa", "v_call", "j_call"], use_threads=False).aggregate(
        [("duplicate_count", "sum"), ("sequence_id", "first"), ("locus", "first")]
    )
    return grouped.rename_columns(
        ["junction_aa", "v_call", "j_call", "duplicate_count", "sequence_id", "locus"]
    )
