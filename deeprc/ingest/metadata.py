"""The metadata table: one row per repertoire (id, file, label), checked before any file is read."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from deeprc.errors import InputError
from deeprc.ingest.airr import REARRANGEMENT_SUFFIXES, read_header
from deeprc.ingest.exports import detect_export
from deeprc.ingest.options import IngestOptions
from deeprc.ingest.quote import quoted, quoted_all

__all__ = ["looks_missing", "positive_class", "read_metadata", "read_metadata_table"]

# what R, pandas, Excel and SQL write for a missing value: never a class (compared lower-cased)
_MISSING = frozenset({"na", "n/a", "#n/a", "<na>", "nan", "null", "none"})


def looks_missing(value: str) -> bool:
    """Whether a label reads as a missing value (NA, N/A, #N/A, <NA>, nan, null, None; any
    case)."""
    return value.strip().lower() in _MISSING


def read_metadata_table(path: Path | str) -> pd.DataFrame:
    """The metadata table as written, as deeprc ingest and the workflow's configuration check
    both read it: UTF-8 (a byte order mark dropped), separated by tabs when its first line
    holds one or its name ends in .tsv or .txt, else by commas; column names as written (a
    repeated one is refused), every value a string stripped of surrounding white space (an
    empty or missing cell: ''). Whatever cannot be read is an :class:`InputError`."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8-sig") as fh:  # -sig: pandas drops a BOM too
            first = fh.readline()
    except FileNotFoundError:
        raise InputError(f"metadata file {path} does not exist") from None
    except OSError as exc:  # a directory, no permission
        raise InputError(
            f"metadata file {path} cannot be read ({exc.strerror}); give the metadata table"
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"metadata file {path} is not UTF-8 ({exc}); re-save it as UTF-8"
        ) from None
    sep = "\t" if "\t" in first or path.suffix.lower() in (".tsv", ".txt") else ","
    # pandas renames a repeated column to 'name.1', and the first one would be used silently
    positions: dict[str, list[int]] = {}
    for number, name in enumerate(next(csv.reader([first.rstrip("\r\n")], delimiter=sep)), 1):
        positions.setdefault(name, []).append(number)
    repeated = [f"{quoted(name)}: {at}" for name, at in positions.items() if name and len(at) > 1]
    if repeated:
        raise InputError(
            f"metadata file {path}: line 1 (header) repeats column name(s) (name: column "
            f"numbers) {{{', '.join(repeated)}}}; rename or remove the extra columns so each name "
            "is unique"
        )
    _refuse_nul(path, sep)
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"metadata file {path} is not UTF-8 ({exc}); re-save it as UTF-8"
        ) from None
    except pd.errors.EmptyDataError:
        raise InputError(
            f"metadata file {path} is empty; it needs a header line and one row per repertoire"
        ) from None
    except pd.errors.ParserError as exc:  # a row with more fields than the header
        raise InputError(f"metadata file {path} could not be read: {exc}") from None
    return table.apply(lambda col: col.str.strip())


def _refuse_nul(path: Path, sep: str) -> None:
    """A NUL byte makes another id or a file that cannot be opened, and pandas 2's parser cuts
    the value at it silently (pandas 3 keeps it): refused from the bytes, before parsing."""
    raw = path.read_bytes()
    at = raw.find(b"\0")
    if at < 0:
        return
    line = raw.count(b"\n", 0, at) + 1
    start, end = raw.rfind(b"\n", 0, at) + 1, raw.find(b"\n", at)
    fields = raw[start : len(raw) if end < 0 else end].decode("utf-8", "replace")
    fields = fields.rstrip("\r").split(sep)
    header = next(csv.reader([raw.split(b"\n", 1)[0].decode("utf-8-sig", "replace")
                              .rstrip("\r")], delimiter=sep))  # fmt: skip
    column = next(i for i, f in enumerate(fields) if "\0" in f)
    name = header[column] if column < len(header) else f"column {column + 1}"
    raise InputError(
        f"metadata {path}: line {line}, column {name!r} holds a NUL byte in "
        f"{quoted(fields[column].strip())}; remove it (a table saved as UTF-16 is full of them: "
        "re-save it as UTF-8)"
    )


def read_metadata(
    path: Path,
    *,
    id_column: str,
    file_column: str,
    label_column: str | None,
    data_dir: Path,
    options: IngestOptions,
    log: Callable[[str], None],
    allow_unlabelled: bool = False,
    kept: Mapping[str, str] = MappingProxyType({}),
) -> pd.DataFrame:
    """Validated metadata: one row per repertoire with an existing file (line = metadata line).

    Without a ``label_column`` every repertoire has the empty label (no label); with one, an
    empty value is an error unless ``allow_unlabelled``. ``kept`` maps more columns to keep,
    as written, to their names here (targets and covariates: deeprc.ingest.annotations)."""
    meta = read_metadata_table(path)
    columns = {"id": id_column, "file": file_column}
    if label_column is not None:
        columns["label"] = label_column
    for role, column in columns.items():
        if column not in meta.columns:
            raise InputError(
                f"metadata {path}: no {role} column {column!r}; columns are "
                f"{quoted_all(meta.columns[:20])}. Pass --{role}-column with the right name."
            )
    for name, column in kept.items():
        if column not in meta.columns:
            raise InputError(
                f"metadata {path}: no column {column!r} (--{name.split(':')[0]} "
                f"{column}:...); columns are {quoted_all(meta.columns[:20])}"
            )
    meta = meta[list(columns.values()) + list(kept.values())].copy()
    meta.columns = ["repertoire_id", "file", "label"][: len(columns)] + list(kept)
    if label_column is None:
        meta["label"] = ""
    meta["line"] = np.arange(len(meta)) + 2
    if meta.empty:
        raise InputError(f"metadata {path} has no rows")
    required = {"repertoire_id": id_column, "file": file_column}
    if label_column is not None and not allow_unlabelled:
        required["label"] = label_column
    for column, name in required.items():
        empty = meta.loc[meta[column] == "", "line"].tolist()
        if empty:
            hint = " (or pass --allow-unlabelled to keep them without a label)"
            raise InputError(
                f"metadata {path}: line(s) {empty[:10]} have no value in column {name!r}; "
                f"fill it in or remove the row{hint if column == 'label' else ''}"
            )
    if label_column is not None:
        _unlabel_missing(meta, path, label_column, log, allow_unlabelled=allow_unlabelled)
    dup = meta[meta.duplicated("repertoire_id", keep=False)]
    if not dup.empty:
        first = dup.groupby("repertoire_id", sort=False)["line"].apply(list).head(5).items()
        raise InputError(
            f"metadata {path}: repertoire ids must be unique; duplicated (id: lines): "
            f"{{{', '.join(f'{quoted(i)}: {lines}' for i, lines in first)}}}"
        )
    meta["path"] = [data_dir / f for f in meta["file"]]
    located = [_locate(path, *row) for row in meta[["line", "file", "path"]].itertuples(False)]
    # resolved, so 'a.tsv' and './a.tsv' are one file (its rows would count twice, maybe
    # under both labels)
    resolved = pd.Series([r for r, _ in located], index=meta.index)
    shared = meta[resolved.duplicated(keep=False)]
    if not shared.empty:
        groups = list(shared.groupby(resolved[shared.index], sort=False))[:5]
        found = ", ".join(f"{quoted(g['file'].iloc[0])}: {g['line'].tolist()}" for _, g in groups)
        raise InputError(
            f"metadata {path}: one rearrangement file is listed for more than one repertoire "
            f"(file: lines) {{{found}}}; give each repertoire its own file, or remove the extra "
            "rows"
        )
    exists = np.array([is_file for _, is_file in located])
    if not exists.all():
        missing = [
            f"({line}, {quoted(file)})" for line, file in meta.loc[~exists, ["line", "file"]].values
        ]
        shown = f"[{', '.join(missing[:10])}]"
        if options.missing_files == "error":
            raise InputError(
                f"metadata {path}: {len(missing)} file(s) not found in {data_dir} "
                f"(line, file): {shown}. Fix the file column or --data-dir, or pass "
                "--missing-files skip to leave those repertoires out."
            )
        log(f"skipping {len(missing)} repertoire(s) whose file is missing: {shown}")
        meta, resolved = meta[exists], resolved[exists]
        if meta.empty:
            raise InputError(f"metadata {path}: none of the listed files exists in {data_dir}")
    inside = Path(os.path.abspath(data_dir))
    outside = [
        f for f, p in zip(meta["file"], meta["path"], strict=True) if not _lexically_in(p, inside)
    ]
    if outside:
        log(
            f"metadata {path}: {len(outside)} file(s) lie outside the data directory "
            f"{data_dir} (read all the same): {quoted_all(outside[:10])}"
        )
    listed = set(resolved)
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
            f"{path}: {quoted_all(unlisted[:10])}. Add rows for them, or pass "
            "--unlisted-files ignore."
        )
    return meta.reset_index(drop=True)


def _unlabel_missing(
    meta: pd.DataFrame,
    path: Path,
    label_column: str,
    log: Callable[[str], None],
    *,
    allow_unlabelled: bool,
) -> None:
    """Labels that read as missing values (NA, null, ...): with ``allow_unlabelled`` emptied,
    i.e. no label, and noted; otherwise an error, as such a label would be a class of its own
    (or the negative class, beside ``--positive-label``)."""
    missing = meta["label"].map(looks_missing)
    if not missing.any():
        return
    lines = meta.loc[missing, "line"].tolist()
    values = quoted_all(sorted(set(meta.loc[missing, "label"]))[:10])
    if not allow_unlabelled:
        raise InputError(
            f"metadata {path}: column {label_column!r} holds {values} on {len(lines)} line(s) "
            f"{lines[:10]}, which look like missing values, not classes; fill in those labels, "
            "or leave them empty and pass --allow-unlabelled to keep the repertoires without a "
            "label, or remove the rows"
        )
    meta.loc[missing, "label"] = ""
    log(
        f"metadata {path}: {len(lines)} repertoire(s) labelled {values} in column "
        f"{label_column!r} (line(s) {lines[:10]}) are kept without a label: the value looks "
        "like a missing value (--allow-unlabelled)"
    )


def _locate(metadata: Path, line: int, name: str, path: Path) -> tuple[Path, bool]:
    """A listed file's resolved path and whether it is a file; one that cannot be followed
    (a symlink loop, a name too long) or is not a file (a directory) is an error naming its
    line, not a traceback or a file 'not found'."""
    try:
        resolved, is_file = path.resolve(), path.is_file()
        kind = None if is_file or not path.exists() else _kind(path)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, before Python 3.13
        reason = exc.strerror if isinstance(exc, OSError) else "a symlink loop"
        raise InputError(
            f"metadata {metadata}: line {line}, file {quoted(name)} cannot be opened "
            f"({reason}); fix the file column, or the link it names"
        ) from None
    if kind is not None:
        raise InputError(
            f"metadata {metadata}: line {line}, file {quoted(name)} is {kind}, not a "
            "rearrangement file; fix the file column"
        )
    return resolved, is_file


def _kind(path: Path) -> str:
    """What a path that exists but is not a regular file is (reading a FIFO would block)."""
    return "a directory" if path.is_dir() else "not a regular file (a FIFO, socket or device)"


def _lexically_in(path: Path, directory: Path) -> bool:
    """Whether a listed name ('../x.tsv', '/abs/x.tsv') stays in the data directory, by the
    name alone: links inside it that point elsewhere are the user's own layout."""
    return Path(os.path.abspath(path)).is_relative_to(directory)


def _looks_like_rearrangements(path: Path) -> bool:
    """A table with a junction column: other TSVs (truth tables, notes) may sit beside the data."""
    try:
        header = read_header(path)
        return (
            bool({"junction_aa", "cdr3_aa"} & set(header))
            or detect_export(header, path) is not None
        )
    except InputError:
        return True  # an unreadable file there is worth the user's attention


def positive_class(
    labels: pd.Series, positive_label: str | None, path: Path, flag: str = "--positive-label"
) -> str:
    """The label value that means 'positive': stated, or derived from common conventions
    (else an error that says to state it with ``flag``)."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise InputError(
            f"metadata {path}: every repertoire has label {quoted(classes[0])}; a classifier needs "
            "both classes. Add repertoires of the other class."
        )
    if len(classes) > 2:
        empty = " With --allow-unlabelled, a repertoire whose label is empty is kept without one."
        raise InputError(
            f"metadata {path}: found {len(classes)} labels {quoted_all(classes[:10])}; deeprc "
            f"classifies two classes. Map the labels to two values.{empty}"
        )
    if positive_label is not None:
        if positive_label not in classes:
            raise InputError(
                f"--positive-label {positive_label!r} is not one of the labels "
                f"{quoted_all(classes)} in {path}"
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
        f"metadata {path}: cannot tell which of the labels {quoted_all(classes)} is positive; "
        f"pass {flag}."
    )
