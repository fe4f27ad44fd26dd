"""AIRR rearrangement files + a metadata table -> a validated, encoded store.

Every row read is either kept or counted under one named reason, per repertoire:
``rows_read == rows_kept + sum(dropped)``. Files are streamed in Arrow record batches and
processed in parallel worker processes, one file at a time each, so peak memory depends on the
batch size and the number of workers, not on the number or size of the files.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from isal import isal_zlib

from deeprc import __version__
from deeprc.atomic import atomic_directory, refuse_inputs, require_space
from deeprc.errors import InputError
from deeprc.parallel import parallel_map
from deeprc.store import AMINO_ACIDS, LOOKUP, encode_into

__all__ = ["DROP_REASONS", "IngestOptions", "ingest"]

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
REARRANGEMENT_SUFFIXES = (".tsv", ".tsv.gz", ".tsv.gzip", ".txt", ".txt.gz")
_TRUE = pa.array(["T", "TRUE", "True", "true", "1"])
_FALSE = pa.array(["F", "FALSE", "False", "false", "0"])
_BLOCK_SIZE = 1 << 22
_COPY_ROWS = 1 << 16
_ENCODED = ("tokens", "lengths", "counts")
_INVALID = LOOKUP == 0
_SEQUENCE_SCHEMA = pa.schema(
    [
        ("repertoire_index", pa.int32()),
        ("sequence_id", pa.string()),
        ("junction_aa", pa.string()),
        ("v_call", pa.dictionary(pa.int32(), pa.string())),
        ("j_call", pa.dictionary(pa.int32(), pa.string())),
        ("locus", pa.dictionary(pa.int32(), pa.string())),
        ("duplicate_count", pa.int64()),
    ]
)


@dataclass(frozen=True)
class IngestOptions:
    """Row filters and policies; recorded in the store manifest.

    ``lowercase="upper"`` treats lower-case residues as the same amino acids (some tools write
    soft-masked sequences); ``"reject"`` counts such rows as ``invalid_character``.
    """

    min_length: int = 4
    max_length: int = 40
    loci: tuple[str, ...] = ()
    keep_nonproductive: bool = False
    lowercase: Literal["upper", "reject"] = "upper"
    collapse: bool = False
    missing_files: Literal["error", "skip"] = "error"
    unlisted_files: Literal["error", "ignore"] = "error"

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length <= 255:
            raise InputError(
                f"length bounds must satisfy 1 <= min_length <= max_length <= 255, got "
                f"min_length={self.min_length}, max_length={self.max_length}"
            )
        if self.lowercase not in ("upper", "reject"):
            raise InputError(f"lowercase must be 'upper' or 'reject', got {self.lowercase!r}")


@dataclass
class _FileStats:
    """What one worker reports about one repertoire file."""

    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    n_uppercased: int = 0
    total_count: int = 0
    max_length: int = 0
    junction_column: str = ""
    sha256: str = ""


# ----------------------------------------------------------------------------- metadata


def _read_table_text(path: Path) -> pd.DataFrame:
    try:
        with path.open(encoding="utf-8-sig") as fh:  # -sig: pandas drops a BOM too
            first = fh.readline()
    except FileNotFoundError:
        raise InputError(f"metadata file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"metadata file {path} is not UTF-8 ({exc}); re-save it as UTF-8"
        ) from None
    sep = "\t" if "\t" in first or path.suffix.lower() in (".tsv", ".txt") else ","
    # pandas renames a repeated column to 'name.1', and the first one would be used silently
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(next(csv.reader([first.rstrip("\r\n")], delimiter=sep)), 1):
        positions.setdefault(name, []).append(number)
    repeated = {name: at for name, at in positions.items() if name and len(at) > 1}
    if repeated:
        raise InputError(
            f"metadata file {path}: line 1 (header) repeats column name(s) (name: column "
            f"numbers) {repeated}; rename or remove the extra columns so each name is unique"
        )
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"metadata file {path} is not UTF-8 ({exc}); re-save it as UTF-8"
        ) from None


def _read_metadata(
    path: Path,
    *,
    id_column: str,
    file_column: str,
    label_column: str,
    data_dir: Path,
    options: IngestOptions,
    log: Callable[[str], None],
) -> pd.DataFrame:
    """Validated metadata: one row per repertoire with an existing file (line = metadata line)."""
    meta = _read_table_text(path)
    for role, column in (("id", id_column), ("file", file_column), ("label", label_column)):
        if column not in meta.columns:
            raise InputError(
                f"metadata {path}: no {role} column {column!r}; columns are "
                f"{list(meta.columns)}. Pass --{role}-column with the right name."
            )
    meta = meta[[id_column, file_column, label_column]].copy()
    meta.columns = ["repertoire_id", "file", "label"]
    meta = meta.apply(lambda col: col.str.strip())
    meta["line"] = np.arange(len(meta)) + 2
    if meta.empty:
        raise InputError(f"metadata {path} has no rows")
    names = {"repertoire_id": id_column, "file": file_column, "label": label_column}
    for column, name in names.items():
        empty = meta.loc[meta[column] == "", "line"].tolist()
        if empty:
            raise InputError(
                f"metadata {path}: line(s) {empty[:10]} have no value in column {name!r}; "
                "fill it in or remove the row"
            )
    dup = meta[meta.duplicated("repertoire_id", keep=False)]
    if not dup.empty:
        first = dup.groupby("repertoire_id")["line"].apply(list).head(5).to_dict()
        raise InputError(
            f"metadata {path}: repertoire ids must be unique; duplicated (id: lines): {first}"
        )
    meta["path"] = [data_dir / f for f in meta["file"]]
    # resolved, so 'a.tsv' and './a.tsv' are one file (its rows would count twice, maybe
    # under both labels)
    resolved = meta["path"].map(Path.resolve)
    shared = meta[resolved.duplicated(keep=False)]
    if not shared.empty:
        groups = shared.groupby(resolved[shared.index], sort=False)
        found = {g["file"].iloc[0]: g["line"].tolist() for _, g in list(groups)[:5]}
        raise InputError(
            f"metadata {path}: one rearrangement file is listed for more than one repertoire "
            f"(file: lines) {found}; give each repertoire its own file, or remove the extra rows"
        )
    exists = np.array([p.is_file() for p in meta["path"]])
    if not exists.all():
        missing = meta.loc[~exists, ["line", "file"]].to_records(index=False).tolist()
        if options.missing_files == "error":
            raise InputError(
                f"metadata {path}: {len(missing)} file(s) not found in {data_dir} "
                f"(line, file): {missing[:10]}. Fix the file column or --data-dir, or pass "
                "--missing-files skip to leave those repertoires out."
            )
        log(f"skipping {len(missing)} repertoire(s) whose file is missing: {missing[:10]}")
        meta = meta[exists]
        if meta.empty:
            raise InputError(f"metadata {path}: none of the listed files exists in {data_dir}")
    listed = {p.resolve() for p in meta["path"]}
    unlisted = sorted(
        p.name
        for p in data_dir.iterdir()
        if p.is_file()
        and p.name.lower().endswith(REARRANGEMENT_SUFFIXES)
        and p.resolve() != path.resolve()
        and p.resolve() not in listed
        and _looks_like_rearrangements(p)
    )
    if unlisted and options.unlisted_files == "error":
        raise InputError(
            f"{data_dir} holds {len(unlisted)} rearrangement file(s) with no row in metadata "
            f"{path}: {unlisted[:10]}. Add rows for them, or pass --unlisted-files ignore."
        )
    return meta.reset_index(drop=True)


def _looks_like_rearrangements(path: Path) -> bool:
    """A table with a junction column: other TSVs (truth tables, notes) may sit beside the data."""
    try:
        return bool({"junction_aa", "cdr3_aa"} & set(_read_header(path)))
    except InputError:
        return True  # an unreadable file there is worth the user's attention


def _positive_label(labels: pd.Series, positive_label: str | None, path: Path) -> str:
    """The label value that means 'positive': stated, or derived from common conventions."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise InputError(
            f"metadata {path}: every repertoire has label {classes[0]!r}; a classifier needs both "
            "classes. Add repertoires of the other class."
        )
    if len(classes) > 2:
        raise InputError(
            f"metadata {path}: found {len(classes)} labels {classes[:10]}; deeprc classifies two "
            "classes. Map the labels to two values."
        )
    if positive_label is not None:
        if positive_label not in classes:
            raise InputError(
                f"--positive-label {positive_label!r} is not one of the labels {classes} in {path}"
            )
        return positive_label
    for negative, positive in (
        ("0", "1"),
        ("false", "true"),
        ("f", "t"),
        ("negative", "positive"),
        ("neg", "pos"),
        ("no", "yes"),
        ("healthy", "disease"),
        ("control", "case"),
    ):
        lowered = {c.lower(): c for c in classes}
        if set(lowered) == {negative, positive}:
            return lowered[positive]
    a, b = classes
    if a[:-1] == b[:-1] and {a[-1], b[-1]} == {"+", "-"}:
        return a if a.endswith("+") else b
    raise InputError(
        f"metadata {path}: cannot tell which of the labels {classes} is positive; "
        "pass --positive-label"
    )


# ----------------------------------------------------------------------------- one file


class _Source(io.RawIOBase):
    """A file's text, gunzipped when it starts with the gzip magic bytes; hashes the raw bytes.

    Decompressing with ISA-L's zlib-compatible object in large chunks is ~1.5x faster here than
    a gzip file object, and hashing on the way saves a second read of the file. Handles
    multi-member gzip (bgzip) and reports a truncated stream as EOFError.
    """

    _CHUNK = 1 << 20

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self.sha256 = hashlib.sha256()
        self._gzip = self._fh.read(2) == b"\x1f\x8b"
        self._fh.seek(0)
        self._inflate = isal_zlib.decompressobj(31) if self._gzip else None
        self._pending = b""

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._fh.close()
        super().close()

    def _raw(self, n: int) -> bytes:
        chunk = self._fh.read(n)
        self.sha256.update(chunk)
        return chunk

    def readinto(self, buffer: memoryview) -> int:
        data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _read(self, n: int) -> bytes:
        if self._inflate is None:
            return self._raw(n)
        while True:
            if self._inflate.eof:
                rest = self._inflate.unused_data
                while len(rest) < 2 and (more := self._raw(self._CHUNK)):
                    rest += more
                if not rest.strip(b"\0"):
                    return b""
                if rest[:2] != b"\x1f\x8b":
                    raise EOFError("unexpected bytes after the end of the gzip stream")
                self._inflate = isal_zlib.decompressobj(31)
                self._pending = rest
            if not self._pending:
                self._pending = self._raw(self._CHUNK)
                if not self._pending:
                    raise EOFError("the gzip stream ended before its end-of-stream marker")
            data = self._inflate.decompress(self._pending, n)
            self._pending = self._inflate.unconsumed_tail
            if data:
                return data


def _read_header(path: Path) -> list[str]:
    with _open_text(path) as fh:
        try:
            raw = fh.readline()
        except (EOFError, OSError, isal_zlib.error) as exc:
            raise _corrupt(path, exc) from None
    try:
        header = raw.decode("utf-8-sig").rstrip("\r\n").split("\t")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: line 1 (header) has a byte that is not UTF-8 at position {exc.start}; "
            "re-save the file as UTF-8"
        ) from None
    if header == [""]:
        raise InputError(f"{path}: the file is empty; an AIRR file starts with a header line")
    return header


def _corrupt(path: Path, exc: BaseException) -> InputError:
    return InputError(
        f"{path}: the gzip stream is truncated or corrupt ({type(exc).__name__}: {exc}); "
        "re-download or re-compress the file"
    )


def _diagnose(path: Path, n_fields: int, cause: BaseException) -> InputError:
    """Find the first line that Arrow's parser refused, so the error can name it."""
    try:
        with _open_text(path) as fh:
            for line_no, raw in enumerate(fh, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return InputError(
                        f"{path}: line {line_no} has a byte that is not UTF-8 "
                        f"(0x{raw[exc.start]:02x} at position {exc.start}); re-save the file "
                        "as UTF-8, e.g. iconv -f latin1 -t utf-8"
                    )
                found = raw.rstrip(b"\r\n").count(b"\t") + 1
                if found != n_fields:
                    return InputError(
                        f"{path}: line {line_no} has {found} tab-separated field(s) but the "
                        f"header has {n_fields}; fix or remove that line"
                    )
    except (EOFError, OSError, isal_zlib.error) as exc:
        return _corrupt(path, exc)
    return InputError(f"{path}: could not be parsed: {cause}")


def _columns(header: list[str], path: Path) -> dict[str, str | None]:
    """Which header column plays which role; an error names what is missing and the fix."""
    present = set(header)
    junction = next((c for c in ("junction_aa", "cdr3_aa") if c in present), None)
    if junction is None:
        raise InputError(
            f"{path}: no junction_aa (or cdr3_aa) column; the header has {header[:20]}. "
            "Name the column holding the junction amino-acid sequence junction_aa."
        )
    for required in ("v_call", "j_call"):
        if required not in present:
            raise InputError(
                f"{path}: required AIRR column {required!r} is missing; the header has "
                f"{header[:20]}. Add it (an empty value is allowed)."
            )
    roles = {
        "junction": junction,
        "v_call": "v_call",
        "j_call": "j_call",
        "productive": "productive" if "productive" in present else None,
        "locus": "locus" if "locus" in present else None,
        "duplicate_count": "duplicate_count" if "duplicate_count" in present else None,
        "sequence_id": "sequence_id" if "sequence_id" in present else None,
    }
    for column in filter(None, roles.values()):
        if header.count(column) > 1:
            raise InputError(f"{path}: column {column!r} appears more than once in the header")
    return roles


def _open_text(path: Path) -> io.BufferedReader:
    return io.BufferedReader(_Source(path), buffer_size=1 << 20)


class _BlockTooSmall(InputError):
    """A line longer than the CSV reader's block: ``_ingest_file`` retries with a larger one."""


def _batches(
    stream: io.BufferedReader, path: Path, header: list[str], columns: list[str], block_size: int
) -> Iterator[pa.RecordBatch]:
    """Record batches of the wanted columns, all as strings; errors name the line at fault."""
    try:
        reader = pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(block_size=block_size, use_threads=False),
            parse_options=pcsv.ParseOptions(
                delimiter="\t", quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pcsv.ConvertOptions(
                include_columns=columns,
                column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=True,
            ),
        )
        yield from reader
    except (EOFError, isal_zlib.error) as exc:
        raise _corrupt(path, exc) from None
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException):
            raise _corrupt(path, exc) from None
        if "straddles two block boundaries" in str(exc):
            raise _BlockTooSmall(
                f"{path}: a line is longer than {block_size} bytes, the most deeprc reads; "
                "shorten or remove it"
            ) from None
        raise _diagnose(path, len(header), exc) from None


def _longest_line(path: Path) -> int:
    """Bytes in the file's longest line, streamed line by line (files may exceed memory)."""
    try:
        with _open_text(path) as fh:
            return max(map(len, fh), default=0)
    except (EOFError, OSError, isal_zlib.error) as exc:
        raise _corrupt(path, exc) from None


def _bad_value(path: Path, column: str, values: pa.Array, bad: pa.Array, first_line: int, fix: str):
    index = pc.index(bad, True).as_py()
    return InputError(
        f"{path}: line {first_line + index}, column {column!r}: invalid value "
        f"{values[index].as_py()!r}; {fix}"
    )


def _string_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Zero-copy views of an Arrow string array: int64 offsets (rebased to 0) and the bytes."""
    offs_type = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    _, offs_buf, data_buf = strings.buffers()
    offsets = np.frombuffer(offs_buf, dtype=offs_type)[
        strings.offset : strings.offset + len(strings) + 1
    ].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


class _Residues:
    """Per-row residue checks from one pass over the junction bytes (not a regex per row)."""

    def __init__(self, junction: pa.Array, *, uppercase: bool) -> None:
        offsets, data = _string_buffers(junction)
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
                f"{path}: line {first_line + index}, column 'duplicate_count': {problem} "
                f"{value!r}; a count must be a whole number from -2**63 to 2**63-1 (empty means 1)"
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
    number = int(value) if value.lstrip("+-").isdigit() else float(value)
    if not -(2**63) <= number < 2**63:
        raise ValueError("out-of-range value")
    if number % 1:
        raise ValueError("invalid value")
    return int(number)


def _filter_batch(
    batch: pa.RecordBatch,
    roles: dict[str, str | None],
    options: IngestOptions,
    stats: _FileStats,
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


def _collapse(table: pa.Table) -> pa.Table:
    """Merge identical (junction_aa, v_call, j_call) rows, summing counts; first-seen order."""
    grouped = table.group_by(["junction_aa", "v_call", "j_call"], use_threads=False).aggregate(
        [("duplicate_count", "sum"), ("sequence_id", "first"), ("locus", "first")]
    )
    return grouped.rename_columns(
        ["junction_aa", "v_call", "j_call", "duplicate_count", "sequence_id", "locus"]
    )


def _to_store_columns(table: pa.Table, repertoire_index: int) -> pa.Table:
    columns = {
        "repertoire_index": pa.array(np.full(table.num_rows, repertoire_index, dtype=np.int32)),
        "sequence_id": table["sequence_id"],
        "junction_aa": table["junction_aa"],
        "v_call": pc.dictionary_encode(table["v_call"]),
        "j_call": pc.dictionary_encode(table["j_call"]),
        "locus": pc.dictionary_encode(table["locus"]),
        "duplicate_count": table["duplicate_count"],
    }
    return pa.table(columns, schema=_SEQUENCE_SCHEMA)


def _ingest_file(task: tuple[int, Path, Path, IngestOptions]) -> _FileStats:
    """Stream one repertoire file into one Parquet part and raw encoded parts (a worker's job).

    A file with a line longer than the default block is read again, from scratch (the parts
    are rewritten, the stats restarted), with a block twice that line's size: lines of any
    length can be read, while files that parse fine are read once.
    """
    pa.set_cpu_count(1)
    try:
        return _ingest_attempt(task, _BLOCK_SIZE)
    except _BlockTooSmall:
        longest = _longest_line(task[1])
        return _ingest_attempt(task, min(1 << (2 * longest).bit_length(), 2**31 - 1))


def _ingest_attempt(task: tuple[int, Path, Path, IngestOptions], block_size: int) -> _FileStats:
    index, path, part, options = task
    header = _read_header(path)
    roles = _columns(header, path)
    stats = _FileStats(junction_column=roles["junction"])
    source = _Source(path)
    columns = [c for c in roles.values() if c is not None]
    collected: list[pa.Table] = []
    with (
        pq.ParquetWriter(
            part.with_suffix(".parquet"),
            _SEQUENCE_SCHEMA,
            compression="zstd",
            use_dictionary=["v_call", "j_call", "locus"],
            write_statistics=["repertoire_index", "duplicate_count"],
        ) as writer,
        _EncodedParts(part, options.max_length) as encoded,
        io.BufferedReader(source, buffer_size=1 << 20) as stream,
    ):
        for batch in _batches(stream, path, header, columns, block_size):
            kept = _filter_batch(batch, roles, options, stats, path, first_line=stats.rows_read + 2)
            if options.collapse:
                collected.append(kept)
            elif kept.num_rows:
                _write_kept(kept, index, writer, encoded, stats)
        if options.collapse and collected:
            merged = pa.concat_tables(collected)
            collapsed = _collapse(merged)
            stats.dropped["collapsed_duplicate"] += merged.num_rows - collapsed.num_rows
            _write_kept(collapsed, index, writer, encoded, stats)
        stats.sha256 = source.sha256.hexdigest()
    return stats


class _EncodedParts:
    """Raw token/length/count files of one repertoire, appended batch by batch."""

    def __init__(self, part: Path, width: int) -> None:
        self.width = width
        self.files = {name: part.with_suffix(f".{name}").open("wb") for name in _ENCODED}

    def __enter__(self) -> _EncodedParts:
        return self

    def __exit__(self, *exc: object) -> None:
        for fh in self.files.values():
            fh.close()

    def append(self, junction: pa.ChunkedArray, counts: pa.ChunkedArray) -> int:
        """Encode and append; returns the longest junction seen in this batch."""
        offsets, data = _string_buffers(junction.combine_chunks())
        tokens = np.zeros((len(offsets) - 1, self.width), dtype=np.uint8)
        encode_into(tokens, data, offsets)
        lengths = np.diff(offsets).astype(np.uint8)
        self.files["tokens"].write(tokens.tobytes())
        self.files["lengths"].write(lengths.tobytes())
        self.files["counts"].write(counts.to_numpy().astype(np.int64).tobytes())
        return int(lengths.max(initial=0))


def _write_kept(
    kept: pa.Table, index: int, writer: pq.ParquetWriter, encoded: _EncodedParts, stats: _FileStats
) -> None:
    writer.write_table(_to_store_columns(kept, index))
    longest = encoded.append(kept["junction_aa"], kept["duplicate_count"])
    stats.rows_kept += kept.num_rows
    stats.total_count += pc.sum(kept["duplicate_count"]).as_py() or 0
    stats.max_length = max(stats.max_length, longest)


# ----------------------------------------------------------------------------- the store


def _concatenate_encoded(
    tmp: Path, parts: list[Path], n_kept: list[int], width: int, part_width: int
) -> None:
    """One memory-mappable array per field, copied part by part (memory stays flat).

    Written with plain writes, not into a memory map: on a full disk a write into a memory map
    kills the process with SIGBUS, while ``write`` raises ENOSPC, which becomes a message.
    """
    enc = tmp / "encoded"
    enc.mkdir()
    offsets = np.concatenate([[0], np.cumsum(n_kept)]).astype(np.int64)
    n = int(offsets[-1])
    require_space(
        tmp.parent, n * (width + 1 + 8) + offsets.nbytes, f"writing the encoded arrays ({n:,} rows)"
    )
    np.save(enc / "offsets.npy", offsets)
    for name, dtype, shape in (
        ("tokens", np.uint8, (n, width)),
        ("lengths", np.uint8, (n,)),
        ("counts", np.int64, (n,)),
    ):
        with (enc / f"{name}.npy").open("wb") as out:
            header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(out, header)
            for part, start, stop in zip(parts, offsets[:-1], offsets[1:], strict=True):
                raw = part.with_suffix(f".{name}")
                if stop > start:
                    src = np.memmap(
                        raw, dtype=dtype, mode="r", shape=(stop - start, part_width)[: len(shape)]
                    )
                    for lo in range(0, len(src), _COPY_ROWS):
                        block = src[lo : lo + _COPY_ROWS]
                        out.write(
                            np.ascontiguousarray(block[:, :width] if name == "tokens" else block)
                        )
                    del src
                raw.unlink()


def _fingerprint(repertoires: pd.DataFrame, options: IngestOptions, positive: str) -> str:
    digest = hashlib.sha256()
    digest.update(repertoires[["repertoire_id", "label", "sha256"]].to_csv(index=False).encode())
    digest.update(json.dumps(asdict(options), sort_keys=True).encode())
    digest.update(positive.encode())
    return digest.hexdigest()[:16]


def ingest(
    metadata: Path,
    out: Path,
    *,
    label_column: str,
    id_column: str = "repertoire_id",
    file_column: str = "file",
    data_dir: Path | None = None,
    positive_label: str | None = None,
    options: IngestOptions = IngestOptions(),  # noqa: B008 (frozen, so sharing is safe)
    threads: int = 2,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Build a store at ``out``; returns the ingest report (one row per repertoire).

    Written to a temporary sibling directory and renamed at the end, so a failed or killed run
    never leaves a half store and never touches an existing one.
    """
    metadata, out = Path(metadata), Path(out)
    data_dir = Path(data_dir) if data_dir is not None else metadata.parent
    inputs = [metadata, data_dir]
    with atomic_directory(out, overwrite=overwrite, inputs=inputs, command="ingest") as tmp:
        meta = _read_metadata(
            metadata,
            id_column=id_column,
            file_column=file_column,
            label_column=label_column,
            data_dir=data_dir,
            options=options,
            log=log,
        )
        refuse_inputs(out, meta["path"])
        positive = _positive_label(meta["label"], positive_label, metadata)
        (tmp / "sequences").mkdir()
        parts = [tmp / "sequences" / f"part-{i:06d}.parquet" for i in range(len(meta))]
        tasks = [
            (i, p, part, options)
            for i, (p, part) in enumerate(zip(meta["path"], parts, strict=True))
        ]
        stats = parallel_map(_ingest_file, tasks, threads)
        report = _report(meta, stats)
        empty = report[report["rows_kept"] == 0]
        if not empty.empty:
            row = empty.iloc[0]
            reasons = {r: int(row[r]) for r in DROP_REASONS if row[r]}
            raise InputError(
                f"repertoire {row['repertoire_id']!r} ({row['source_file']}) has no rows left "
                f"after filtering (read {row['rows_read']}, dropped {reasons}); check the file "
                "or the filters (--min-length, --max-length, --locus, --keep-nonproductive)"
            )
        width = max(s.max_length for s in stats)
        _concatenate_encoded(tmp, parts, [s.rows_kept for s in stats], width, options.max_length)
        repertoires = pd.DataFrame(
            {
                "repertoire_index": np.arange(len(meta)),
                "repertoire_id": meta["repertoire_id"],
                "label": meta["label"],
                "y": (meta["label"] == positive).astype(int),
                "n_sequences": report["rows_kept"],
                "offset": np.concatenate([[0], np.cumsum(report["rows_kept"])[:-1]]),
                "total_count": [s.total_count for s in stats],
                "source_file": meta["file"],
                "sha256": [s.sha256 for s in stats],
            }
        )
        repertoires.to_csv(tmp / "repertoires.tsv", sep="\t", index=False)
        report.to_csv(tmp / "ingest_report.tsv", sep="\t", index=False)
        manifest = {
            "deeprc_version": __version__,
            "metadata": str(metadata),
            "label_column": label_column,
            "positive_label": positive,
            "classes": sorted(set(meta["label"])),
            "n_repertoires": len(meta),
            "n_sequences": int(report["rows_kept"].sum()),
            "rows_read": int(report["rows_read"].sum()),
            "dropped": {r: int(report[r].sum()) for r in DROP_REASONS},
            "max_length": width,
            "alphabet": AMINO_ACIDS,
            "options": asdict(options),
            "fingerprint": _fingerprint(repertoires, options, positive),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return report


def _report(meta: pd.DataFrame, stats: list[_FileStats]) -> pd.DataFrame:
    report = pd.DataFrame(
        {
            "repertoire_id": meta["repertoire_id"],
            "source_file": meta["file"],
            "junction_column": [s.junction_column for s in stats],
            "rows_read": [s.rows_read for s in stats],
            "rows_kept": [s.rows_kept for s in stats],
            **{r: [s.dropped[r] for s in stats] for r in DROP_REASONS},
            "n_uppercased": [s.n_uppercased for s in stats],
        }
    )
    balance = report["rows_read"] - report["rows_kept"] - report[list(DROP_REASONS)].sum(axis=1)
    assert (balance == 0).all(), "ingest lost rows without a reason; this is a bug"
    return report
