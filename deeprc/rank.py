"""A cohort's unique clonotypes ranked by the model's evidence that they carry the label.

Signal recovery as the AIRR-ML community scores it: rank the unique (junction_aa, v_call,
j_call) of the scored repertoires, here by the largest attention score (β k·ξ, before the
softmax, so comparable between repertoires) over the repertoires that carry them, and compare
the top N with the true signal set (Jaccard index, precision@N) on simulated data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from deeprc import outputs
from deeprc.errors import InputError

__all__ = ["rank_sequences"]

CLONOTYPE = ["junction_aa", "v_call", "j_call"]


def rank_sequences(
    prediction_dirs: list[Path], *, truth: Path | None = None, top: int | None = None
) -> tuple[pd.DataFrame, dict | None]:
    """The ranked clonotypes of the prediction directories' repertoires, with how many
    positive, negative and unlabelled repertoires carry each; with ``truth`` (a simulated
    cohort) a ``signal`` column and the recovery of the top ``top`` (default: as many as the
    signal set holds)."""
    columns = ["repertoire_id", "sequence_id", *CLONOTYPE, "attention_score"]
    table = pd.concat([outputs.read_attention(d, columns) for d in prediction_dirs])
    labels = pd.concat([outputs.read_predictions(d) for d in prediction_dirs])
    twice = labels["repertoire_id"][labels["repertoire_id"].duplicated()]
    if len(twice):
        raise InputError(
            f"repertoire {twice.iloc[0]!r} is scored in more than one of the prediction "
            "directories; give each repertoire's scores once"
        )
    y = table["repertoire_id"].map(labels.set_index("repertoire_id")["y"])
    table = table.assign(
        positive=(y == 1).fillna(False), negative=(y == 0).fillna(False), unlabelled=y.isna()
    )
    if truth is not None:
        implanted, _ = outputs.read_truth(Path(truth))
        marked = pd.MultiIndex.from_frame(implanted[["repertoire_id", "sequence_id"]])
        rows = pd.MultiIndex.from_frame(table[["repertoire_id", "sequence_id"]].astype(str))
        table["signal"] = rows.isin(marked)
    carriers = table.drop_duplicates([*CLONOTYPE, "repertoire_id"])
    groups = carriers.groupby(CLONOTYPE, sort=False)
    ranked = groups[["positive", "negative", "unlabelled"]].sum().astype(int)
    ranked.columns = ["n_positive", "n_negative", "n_unlabelled"]
    ranked.insert(0, "n_repertoires", ranked.sum(axis=1))
    ranked.insert(0, "score", table.groupby(CLONOTYPE, sort=False)["attention_score"].max())
    if truth is not None:
        ranked["signal"] = table.groupby(CLONOTYPE, sort=False)["signal"].any()
    ranked = ranked.reset_index().sort_values(
        ["score", "n_positive", *CLONOTYPE], ascending=[False, False, True, True, True]
    )
    ranked.insert(0, "rank", range(1, len(ranked) + 1))
    ranked = ranked.reset_index(drop=True)
    if truth is None:
        return ranked, None
    n_signal = int(ranked["signal"].sum())
    n = min(top or n_signal, len(ranked))
    found = int(ranked["signal"].head(n).sum())
    recovery = {
        "n_clonotypes": len(ranked),
        "n_signal": n_signal,
        "top": n,
        "precision_at_top": found / n if n else float("nan"),
        "jaccard": found / (n + n_signal - found) if n + n_signal else float("nan"),
    }
    return ranked, recovery
