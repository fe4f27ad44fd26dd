"""Metadata columns kept beside the label: targets to predict and covariates to read.

A clinician's question is rarely one yes/no: "which of three infections", "how old is this
immune system", "is it the disease or the age". ``deeprc ingest --target COLUMN:KIND`` and
``--covariate COLUMN:KIND`` keep such columns, each typed: ``binary`` (two classes; the
positive one derived as for the label, or stated: ``COLUMN:binary:VALUE``), ``categorical``
(its classes) or ``numeric``. A value that is empty or reads as missing (NA, null, ...) is
missing and counted per column; anything else that does not fit the kind is an error naming
the line. The store keeps the values in ``repertoires.tsv`` (columns ``target:COLUMN`` and
``covariate:COLUMN``) and describes each column in its manifest (``targets``, ``covariates``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deeprc.errors import InputError
from deeprc.ingest.metadata import looks_missing, positive_class
from deeprc.ingest.options import KINDS, LABEL
from deeprc.ingest.quote import quoted, quoted_all

__all__ = ["Annotation", "annotation_columns"]


@dataclass(frozen=True)
class Annotation:
    """One metadata column to keep: its ``role`` (target or covariate), ``column`` and
    ``kind``; a binary target may state its ``positive`` class."""

    role: str
    column: str
    kind: str
    positive: str | None = None

    @classmethod
    def parse(cls, role: str, spec: str) -> Annotation:
        """``COLUMN:KIND`` (``--target``, ``--covariate``), or ``COLUMN:binary:VALUE``."""
        kinds = KINDS[role]
        head, _, last = spec.rpartition(":")
        if head and last in kinds:
            return cls(role, head, last)
        column, _, kind = head.rpartition(":")
        if column and kind == "binary" and "binary" in kinds and last:
            return cls(role, column, kind, positive=last)
        binary = " or COLUMN:binary:POSITIVE_VALUE" if "binary" in kinds else ""
        raise InputError(
            f"--{role} {spec!r}: give the metadata column and its kind, COLUMN:KIND{binary}, "
            f"KIND one of {', '.join(kinds)} (e.g. --{role} age:numeric)"
        )

    @property
    def name(self) -> str:
        """Its column's name in the store's repertoires.tsv."""
        return f"{self.role}:{self.column}"


def annotation_columns(
    meta: pd.DataFrame, annotations: Sequence[Annotation], path: Path, log: Callable[[str], None]
) -> tuple[pd.DataFrame, dict[str, list[dict]]]:
    """The typed values of ``annotations`` for the rows of ``meta`` (read_metadata's, with its
    ``line`` and the raw string columns), one column per annotation (categorical: the class,
    missing None; numeric: a float, missing NaN), and each described for the manifest."""
    seen: dict[str, str] = {}
    for a in annotations:
        if a.column in seen:
            raise InputError(
                f"metadata column {a.column!r} is named twice (--{seen[a.column]} and "
                f"--{a.role}); keep it once, as a target or as a covariate"
            )
        if a.role == "target" and a.column == LABEL:
            raise InputError(
                f"--target {a.column}: deeprc calls the store's own label {LABEL!r} (deeprc "
                f"baseline --target {LABEL}), so a target column cannot have that name; give "
                "the label as --label-column, or rename the column"
            )
        seen[a.column] = a.role
    values, described = {}, {"targets": [], "covariates": []}
    for a in annotations:
        raw = meta[a.name]
        missing = raw.eq("") | raw.map(looks_missing)
        if a.kind == "numeric":
            column, entry = _numeric(raw, missing, meta["line"], a, path)
        else:
            column, entry = _classes(raw, missing, a, path)
        entry = {"column": a.column, "kind": a.kind, **entry, "n_missing": int(missing.sum())}
        if entry["n_missing"]:
            lines = meta.loc[missing, "line"].tolist()
            log(
                f"metadata {path}: {entry['n_missing']} repertoire(s) have no value in "
                f"{a.role} column {a.column!r} (line(s) {lines[:10]}); each is left out of "
                f"what needs that {a.role}"
            )
        values[a.name] = column
        described[f"{a.role}s"].append(entry)
    return pd.DataFrame(values, index=meta.index), described


def _numeric(
    raw: pd.Series, missing: pd.Series, lines: pd.Series, a: Annotation, path: Path
) -> tuple[pd.Series, dict]:
    numbers = pd.to_numeric(raw.where(~missing), errors="coerce")
    bad = ~missing & ~np.isfinite(numbers.astype(float))
    if bad.any():
        shown = [f"({line}, {quoted(v)})" for line, v in zip(lines[bad], raw[bad], strict=True)]
        raise InputError(
            f"metadata {path}: {a.role} column {a.column!r} is numeric, but holds "
            f"{int(bad.sum())} value(s) that are not finite numbers (line, value): "
            f"[{', '.join(shown[:10])}]; fix them, leave them empty (missing), or give the "
            f"column as --{a.role} {a.column}:categorical"
        )
    known = numbers[~missing]
    if known.nunique() < 2:
        raise InputError(_constant(a, path, [str(v) for v in known.unique()]))
    entry = {"min": float(known.min()), "max": float(known.max()), "mean": float(known.mean())}
    entry["sd"] = float(known.std(ddof=1)) if len(known) > 1 else math.nan
    return numbers.astype(float), entry


def _classes(
    raw: pd.Series, missing: pd.Series, a: Annotation, path: Path
) -> tuple[pd.Series, dict]:
    known = raw[~missing]
    classes = sorted(set(known))
    if len(classes) < 2:
        raise InputError(_constant(a, path, classes))
    counts = {c: int((known == c).sum()) for c in classes}
    entry: dict = {"classes": classes, "counts": counts}
    if a.kind == "binary":
        if len(classes) > 2:
            raise InputError(
                f"metadata {path}: binary {a.role} column {a.column!r} holds {len(classes)} "
                f"values {quoted_all(classes[:10])}; give it as --{a.role} "
                f"{a.column}:categorical, or map it to two values"
            )
        if a.positive is not None and a.positive not in classes:
            raise InputError(
                f"--{a.role} {a.column}:binary:{a.positive}: {a.positive!r} is not one of the "
                f"values {quoted_all(classes)} of column {a.column!r} in {path}"
            )
        stated = f"--{a.role} {a.column}:binary:<value>"
        entry["positive"] = positive_class(known, a.positive, path, flag=stated)
    return raw.where(~missing, None), entry


def _constant(a: Annotation, path: Path, values: list[str]) -> str:
    found = f"only {quoted_all(values)}" if values else "no value"
    return (
        f"metadata {path}: {a.role} column {a.column!r} holds {found} once missing values are "
        f"set aside; a {a.role} that never varies tells nothing: leave out --{a.role} "
        f"{a.column}:{a.kind}, or fill in its values"
    )
