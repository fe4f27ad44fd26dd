"""The metadata table: one row per repertoire (id, file, label), checked before any file is read."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from deeprc.errors import InputError
from deeprc.ingest.airr import REARRANGEMENT_SUFFIXES, read_header
from deeprc.ingest.exports import detect_export
from deeprc.ingest.options import IngestOptions

__all__ = ["positive_class", "read_metadata"]


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
) -> pd.DataFrame:
    """Validated metadata: one row per repertoire with an existing file (line = metadata line).

    Without a ``label_column`` every repertoire has the empty label (no label); with one, an
    empty value is an error unless ``allow_unlabelled``."""
    meta = _read_table_text(path)
    columns = {"id": id_column, "file": file_column}
    if label_column is not None:
        columns["label"] = label_column
    for role, column in columns.items():
        if column not in meta.columns:
            raise InputError(
                f"metadata {path}: no {role} column {column!r}; columns are "
                f"{list(meta.columns)}. Pass --{role}-column with the right name."
            )
    meta = meta[list(columns.values())].copy()
    meta.columns = ["repertoire_id", "file", "label"][: len(columns)]
    meta = meta.apply(lambda col: col.str.strip())
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
        header = read_header(path)
        return bool({"junction_aa", "cdr3_aa"} & set(header)) or detect_export(header) is not None
    except InputError:
        return True  # an unreadable file there is worth the user's attention


def positive_class(labels: pd.Series, positive_label: str | None, path: Path) -> str:
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
