"""The sequences the model looked at: top-attended sequences per repertoire or across a cohort."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deeprc import outputs
from deeprc.errors import InputError

__all__ = ["top_sequences"]

COLUMNS = [
    "repertoire_id", "junction_aa", "v_call", "j_call", "duplicate_count", "attention",
    "attention_score",
]  # fmt: skip


def top_sequences(
    prediction_dirs: list[Path], *, repertoire: str | None = None, n: int = 20
) -> pd.DataFrame:
    """The ``n`` most attended sequences of one repertoire, or of all repertoires together,
    with each repertoire's label where it has one.

    Ranked by ``attention_score`` (the score before the softmax), which means the same in
    every repertoire scored by one model (each fold's model has its own scale). The softmax
    weight (``attention``) does not: it sums to one within a
    repertoire, so one middling sequence that has no rival in a repertoire of a negative
    gets a weight near 1 and would top a cohort ranked by weight or by weight x size.
    """
    labels: dict[str, str] = {}
    for directory in prediction_dirs:
        labels |= outputs.read_labels(directory)
    if repertoire is not None:
        frames = [outputs.read_attention(d, COLUMNS, repertoire) for d in prediction_dirs]
        table = pd.concat(frames, ignore_index=True)
        if table.empty:
            raise InputError(
                f"no sequences of repertoire {repertoire!r} in {list(map(str, prediction_dirs))}"
            )
        return _ranked(table, n, labels)
    best = None  # one repertoire in memory at a time, whatever the cohort
    for directory in prediction_dirs:
        for _, rows in outputs.attention_by_repertoire(directory, COLUMNS):
            score = rows["attention_score"].to_numpy()
            found = rows.take(np.argsort(-score, kind="stable")[:n]).to_pandas()
            best = _ranked(found if best is None else pd.concat([best, found]), n, labels)
    if best is None:
        raise InputError(f"no scored sequences in {list(map(str, prediction_dirs))}")
    return best


def _ranked(table: pd.DataFrame, n: int, labels: dict[str, str]) -> pd.DataFrame:
    """The ``n`` rows of highest attention score (ties: by repertoire id), ranked from 1,
    the repertoire's label beside its id."""
    order = ["attention_score", "repertoire_id"]
    top = table.sort_values(order, ascending=[False, True], kind="stable").head(n)
    top = top.drop(columns=["rank", "label"], errors="ignore").reset_index(drop=True)
    top.insert(0, "rank", range(1, len(top) + 1))
    top.insert(2, "label", top["repertoire_id"].map(labels).fillna(""))
    return top
