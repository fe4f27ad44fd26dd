"""The sequences the model looked at: top-attended sequences per repertoire or across a cohort."""

from __future__ import annotations

from pathlib import Path

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
    frames = [outputs.read_attention(d, COLUMNS, repertoire) for d in prediction_dirs]
    table = pd.concat(frames, ignore_index=True)
    if table.empty:
        raise InputError(
            f"no sequences of repertoire {repertoire!r} in {list(map(str, prediction_dirs))}"
        )
    table["enrichment"] = table["attention"] * table.groupby("repertoire_id")[
        "attention"
    ].transform("size")
    top = table.sort_values(["enrichment", "repertoire_id"], ascending=[False, True]).head(n)
    top.insert(0, "rank", range(1, len(top) + 1))
    return top.reset_index(drop=True)
