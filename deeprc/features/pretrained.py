"""A pretrained encoder's vectors of a store's clonotypes, computed once and kept in the store.

The ``sceptr`` encoder (deeprc.model.sceptr) reads a frozen transformer's vector of each
sequence. Computing it is the slow part, and it depends only on the clonotype (junction and V
gene), so each unique clonotype of a store is embedded once, the first time a training, a fold
or a prediction needs it, and kept in ``<store>/pretrained_<variant>/``: ``vectors.npy``
``(n_unique + 1, 64)`` float16 (row 0 all zero: the clonotypes whose V gene the encoder
refuses, which the network gives a learned vector), ``rows.npy`` ``(n_rows,)`` uint32 (each
store row's vector) and ``summary.json`` (counts, refused V genes with their rows, time). The
folder is an output of ours inside the store (stamped; ``ingest --overwrite`` replaces the
store with it), written atomically; a run that finds another computing it waits for it.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from deeprc.atomic import atomic_directory, locked
from deeprc.model import sceptr
from deeprc.parallel import parallel_map
from deeprc.progress import Progress
from deeprc.store import EncodedArray, Store

__all__ = ["PretrainedVectors", "pretrained_vectors"]

SUMMARY = "summary.json"
_BATCH = 2048  # clonotypes per CPU batch (throughput flat from 1k to 4k, lower at 16k)


class PretrainedVectors:
    """Read access to a store's cached vectors: ``vectors(rows)`` -> ``(n, 64)`` float16."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.table = EncodedArray(self.directory / "vectors.npy")
        self.rows = EncodedArray(self.directory / "rows.npy")
        self.summary = json.loads((self.directory / SUMMARY).read_text())

    def __call__(self, rows: np.ndarray | slice) -> np.ndarray:
        index = self.rows[rows]
        unique, inverse = np.unique(index, return_inverse=True)  # sorted reads of the table
        return self.table[unique][inverse]


def pretrained_vectors(
    store: Store, variant: str = sceptr.VARIANT, *, device: torch.device | None = None
) -> PretrainedVectors:
    """The store's vectors of ``variant``, embedded now if no run has yet (on ``device``;
    default: a GPU where there is one, else the CPU with as many workers as PyTorch has
    threads)."""
    directory = store.path / f"pretrained_{variant}"
    if not (directory / SUMMARY).is_file():
        sceptr.load()  # the message of the plain install comes before any waiting
        with locked(directory.with_name(f"{directory.name}.wait"), wait=True):
            if not (directory / SUMMARY).is_file():
                with atomic_directory(directory, command="pretrained vectors") as tmp:
                    _embed_store(store, tmp, device)
    return PretrainedVectors(directory)


def _embed_store(store: Store, out: Path, device: torch.device | None) -> None:
    """Embed each unique (junction, V gene) of ``store`` whose V gene SCEPTR reads."""
    started = time.perf_counter()
    n = int(store.offsets[-1])
    v_names = store.gene_names["v"]
    loops = sceptr.v_loops(v_names)
    v = np.asarray(store.genes[:, 0], dtype=np.int64)
    readable = np.array([lo is not None for lo in loops])[v]
    tokens = store.tokens[:]
    keys = np.concatenate([tokens, v.astype("<u2").view(np.uint8).reshape(n, 2)], axis=1)
    keys = np.ascontiguousarray(keys[readable]).view(f"V{keys.shape[1]}").ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    chosen = np.flatnonzero(readable)[first]
    lengths = np.asarray(store.lengths[:], dtype=np.int64)
    with Progress("SCEPTR vectors", len(chosen), "clonotypes") as progress:
        vectors = _embed(tokens[chosen], lengths[chosen], v[chosen], loops, device, progress)
    rows = np.zeros(n, dtype=np.uint32)
    rows[readable] = inverse.ravel() + 1
    np.save(out / "vectors.npy", np.concatenate([np.zeros((1, sceptr.DIMENSION), np.float16),
                                                 vectors]))  # fmt: skip
    np.save(out / "rows.npy", rows)
    refused = np.bincount(v[~readable], minlength=len(v_names))
    seconds = time.perf_counter() - started
    summary = {
        "variant": sceptr.VARIANT,
        "n_rows": n,
        "n_clonotypes_embedded": len(chosen),
        "rows_with_refused_v": int((~readable).sum()),
        "refused_v_genes": {v_names[i] or "(no call)": int(c) for i, c in enumerate(refused) if c},
        "seconds": round(seconds, 2),
        "clonotypes_per_second": round(len(chosen) / max(seconds, 1e-9)),
        "device": _device_name(device),
        "disk_bytes": (out / "vectors.npy").stat().st_size + (out / "rows.npy").stat().st_size,
    }
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"SCEPTR vectors of {store.path}: {len(chosen):,} clonotypes of {n:,} rows in "
        f"{seconds:.1f} s ({summary['clonotypes_per_second']:,}/s); {summary['disk_bytes']:,} "
        f"bytes; {summary['rows_with_refused_v']:,} rows with a V gene SCEPTR does not read "
        f"({', '.join(list(summary['refused_v_genes'])[:5]) or 'none'}) read a learned vector",
        file=sys.stderr,
    )


def _embed(
    tokens: np.ndarray,
    lengths: np.ndarray,
    v_index: np.ndarray,
    loops: list[str | None],
    device: torch.device | None,
    progress: Progress,
) -> np.ndarray:
    """``(n, 64)`` float16 vectors. Clonotypes are sorted by token count so that a batch pads
    little; on the CPU, batches go to one forked worker per PyTorch thread (--threads), each on
    one thread (faster than threads on these small matrices); on a GPU, one process with larger
    batches."""
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bert = sceptr.load()._bert.eval().to(device)
    prefix = [sceptr.loop_tokens(lo or "|") for lo in loops]  # a refused gene: none of its rows
    table = np.zeros((len(loops), max(max(map(len, prefix), default=0), 1), 4), np.int64)
    for i, p in enumerate(prefix):
        table[i, : len(p)] = p
    prefix_len = np.array([len(p) for p in prefix], dtype=np.int64)[v_index]
    total = 1 + prefix_len + lengths
    order = np.argsort(total, kind="stable")
    on_cpu = device.type == "cpu"
    batch = _BATCH if on_cpu else 16 * _BATCH
    batches = np.array_split(order, max(1, -(-len(order) // batch)))
    processes = torch.get_num_threads() if on_cpu else 1  # --threads
    _WORKER.update(bert=bert, device=device, tokens=tokens, lengths=lengths, v=v_index,
                   prefix_len=prefix_len, table=table, total=total,
                   threads=1 if processes > 1 else None)  # fmt: skip
    try:
        parts = parallel_map(_embed_batch, batches, processes, progress=progress,
                             sizes=[len(b) for b in batches])  # fmt: skip
    finally:
        _WORKER.clear()
    out = np.empty((len(tokens), sceptr.DIMENSION), dtype=np.float16)
    for rows, part in zip(batches, parts, strict=True):
        out[rows] = part
    return out


_WORKER: dict = {}


def _device_name(device: torch.device | None) -> str:
    if device is not None and device.type == "cuda" or device is None and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({torch.get_num_threads()} workers)"


def _embed_batch(rows: np.ndarray) -> np.ndarray:
    w = _WORKER
    if w["threads"] is not None and torch.get_num_threads() != w["threads"]:
        torch.set_num_threads(w["threads"])
    grid = sceptr.token_grid(
        w["tokens"][rows], w["lengths"][rows], w["v"][rows], w["prefix_len"][rows],
        w["table"], int(w["total"][rows].max()),
    )  # fmt: skip
    with torch.inference_mode():
        vectors = sceptr.vectors(w["bert"], torch.from_numpy(grid).to(w["device"]))
    return vectors.float().cpu().numpy().astype(np.float16)
