"""The sequences the model looked at: top-attended sequences per repertoire or across a cohort."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deeprc import outputs
from deeprc.errors import InputError

__all__ = ["top_sequences"]

COLUMNS = ["repertoire_id", "junction_aa", "v_call", "j_call", "duplicate_count", "attention"]


def top_sequences(
    prediction_dirs: list[Path], *, repertoire: str | None = None, n: int = 20
) -> pd.DataFrame:
    """The ``n`` most attended sequences of one repertoire, or of all repertoires together.

    Attention sums to one within each repertoire, so across repertoires sequences are ranked by
    ``enrichment`` = attention x repertoire size (how many times the uniform weight they get).
    """
    if repertoire is not None:
        frames = [outputs.read_attention(d, COLUMNS, repertoire) for d in prediction_dirs]
        table = pd.concat(frames, ignore_index=True)
        if table.empty:
            raise InputError(
                f"no sequences of repertoire {repertoire!r} in {list(map(str, prediction_dirs))}"
            )
        return _ranked(table.assign(enrichment=table["attention"] * len(table)), n)
    best = None  # one repertoire in memory at a time, whatever the cohort
    for directory in prediction_dirs:
        for _, rows in outputs.attention_by_repertoire(directory, COLUMNS):
            enrichment = rows["attention"].to_numpy() * len(rows)
            keep = np.argsort(-enrichment, kind="stable")[:n]
            found = rows.take(keep).to_pandas().assign(enrichment=enrichment[keep])
            best = _ranked(found if best is None else pd.concat([best, found]), n)
    if best is None:
        raise InputError(f"no scored sequences in {list(map(str, prediction_dirs))}")
    return best


def _ranked(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` rows of highest enrichment (ties: by repertoire id), ranked from 1."""
    top = table.sort_values(["enrichment", "repertoire_id"], ascending=[False, True]).head(n)
    top = top.drop(columns="rank", errors="ignore").reset_index(drop=True)
    top.insert(0, "rank", range(1, len(top) + 1))
    return top
