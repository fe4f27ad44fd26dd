"""Whole-repertoire prediction, streamed in chunks.

Hopfield pooling is a softmax over all sequences of a repertoire. It is computed chunk by chunk
with a running maximum and sum (the log-sum-exp trick), so memory holds one chunk of embeddings,
not the repertoire; only one float per sequence and head (the raw score) is kept, to report the
final attention. Each extra Hopfield update step is one more pass.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from deeprc.atomic import atomic_directory
from deeprc.model import DeepRC
from deeprc.store import Store

__all__ = ["predict", "score_repertoire"]


def _chunks(store: Store, repertoire: int, chunk: int) -> Iterator[tuple[torch.Tensor, ...]]:
    start, stop = int(store.offsets[repertoire]), int(store.offsets[repertoire + 1])
    for lo in range(start, stop, chunk):
        hi = min(lo + chunk, stop)
        tokens = torch.from_numpy(np.array(store.tokens[lo:hi]))
        lengths = torch.from_numpy(np.asarray(store.lengths[lo:hi], dtype=np.int64))
        yield tokens, lengths


@torch.no_grad()
def _retrieve(
    model: DeepRC, store: Store, repertoire: int, state: torch.Tensor, chunk: int, target: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax-weighted sum of keys or values ``(heads, hidden)`` and the raw scores."""
    pooling = model.pooling
    device = state.device
    running_max = torch.full((pooling.num_heads,), float("-inf"), device=device)
    running_sum = torch.zeros(pooling.num_heads, device=device)
    weighted = torch.zeros(pooling.num_heads, pooling.hidden_size, device=device)
    scores = []
    for tokens, lengths in _chunks(store, repertoire, chunk):
        embedded = model.embed(tokens[None].to(device), lengths[None].to(device))
        keys = pooling.split_heads(pooling.key(embedded))[0]  # (heads, n, hidden)
        retrieved = keys if target == "keys" else pooling.split_heads(pooling.value(embedded))[0]
        score = pooling.beta * torch.einsum("hnd,hd->hn", keys, state)
        new_max = torch.maximum(running_max, score.max(dim=1).values)
        rescale = torch.exp(running_max - new_max)
        weights = torch.exp(score - new_max[:, None])
        running_sum = running_sum * rescale + weights.sum(dim=1)
        weighted = weighted * rescale[:, None] + torch.einsum("hn,hnd->hd", weights, retrieved)
        running_max = new_max
        scores.append(score)
    all_scores = torch.cat(scores, dim=1)
    log_sum = running_max + torch.log(running_sum)
    log_mean = log_sum - math.log(all_scores.shape[1])
    return torch.cat([weighted / running_sum[:, None], log_mean[:, None]], dim=1), all_scores


@torch.no_grad()
def final_state(model: DeepRC, store: Store, repertoire: int, *, chunk: int = 20_000):
    """The state patterns ``(heads, hidden)`` after the Hopfield updates over one repertoire."""
    model.eval()
    state = model.pooling.state
    for _ in range(model.pooling.update_steps - 1):
        state = _retrieve(model, store, repertoire, state, chunk, "keys")[0][:, :-1]
    return state


@torch.no_grad()
def score_repertoire(
    model: DeepRC, store: Store, repertoire: int, *, chunk: int = 20_000
) -> tuple[float, np.ndarray, np.ndarray]:
    """Logit of one whole repertoire, its attention ``(heads, n_sequences)`` and the attention
    scores before the softmax (``β kᵢ·ξ``, comparable between repertoires)."""
    state = final_state(model, store, repertoire, chunk=chunk)
    pooled, scores = _retrieve(model, store, repertoire, state, chunk, "values")
    logit = model.output(pooled.reshape(1, -1)).item()
    attention = torch.softmax(scores, dim=1)
    return logit, attention.cpu().numpy(), scores.cpu().numpy()


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
