"""Whole-repertoire prediction: each repertoire streamed through the model in chunks
(:meth:`deeprc.model.DeepRC.score_bag`, memory: one chunk), written as per-repertoire scores
and per-sequence attention."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from deeprc.atomic import atomic_directory
from deeprc.data import score_repertoire
from deeprc.model import DeepRC
from deeprc.store import Store

__all__ = ["predict"]


def predict(
    model: DeepRC,
    store: Store,
    repertoires: np.ndarray,
    out: Path,
    *,
    chunk: int = 20_000,
    provenance: dict | None = None,
    overwrite: bool = False,
    inputs: Iterable[Path] = (),
) -> pd.DataFrame:
    """Write ``out/predictions.tsv`` and ``out/attention.parquet``; returns the predictions.

    The attention table has one row per sequence: repertoire_id, sequence_id, row (index into
    the store's encoded arrays), junction_aa, v_call, j_call, duplicate_count, attention (the
    largest over heads), attention_score (the largest score before the softmax) and, with
    several heads, attention_h<k>. ``provenance`` (model, training config, ...) goes to
    ``out/provenance.json``, which ``deeprc evaluate`` copies into metrics.json.
    """
    out = Path(out)
    rows = []
    writer = None
    with atomic_directory(out, overwrite=overwrite, inputs=inputs, command="predict") as tmp:
        for r in repertoires:
            logit, attention, scores = score_repertoire(model, store, int(r), chunk=chunk)
            meta = store.repertoires.iloc[int(r)]
            rows.append((meta["repertoire_id"], int(meta["y"]), logit, 1 / (1 + np.exp(-logit))))
            sequences = store.sequences(int(r))
            table = {
                "repertoire_id": pa.array([meta["repertoire_id"]] * len(sequences)),
                "sequence_id": pa.array(sequences["sequence_id"].astype(str), pa.string()),
                "row": pa.array(np.arange(store.offsets[r], store.offsets[r + 1])),
                "junction_aa": pa.array(sequences["junction_aa"], pa.string()),
                "v_call": pa.array(sequences["v_call"].astype(object).fillna(""), pa.string()),
                "j_call": pa.array(sequences["j_call"].astype(object).fillna(""), pa.string()),
                "duplicate_count": pa.array(sequences["duplicate_count"]),
                "attention": pa.array(attention.max(axis=0)),
                "attention_score": pa.array(scores.max(axis=0)),
            }
            if attention.shape[0] > 1:
                table |= {f"attention_h{h}": pa.array(a) for h, a in enumerate(attention)}
            batch = pa.table(table)
            if writer is None:
                writer = pq.ParquetWriter(tmp / "attention.parquet", batch.schema)
            writer.write_table(batch)
        if writer is not None:
            writer.close()
        predictions = pd.DataFrame(rows, columns=["repertoire_id", "y", "logit", "score"])
        predictions.to_csv(tmp / "predictions.tsv", sep="\t", index=False)
        if provenance is not None:
            (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return predictions
