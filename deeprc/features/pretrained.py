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

SCEPTR (Nagano and Chain; the ``sceptr`` package, MIT, its weights inside its wheel) reads a
TRB chain's CDR1 and CDR2 (which the V gene gives) and junction. :func:`token_grid` builds its
tokens straight from the store's residue tokens (its amino-acid indices are ours + 2: both
alphabets are in the same order) and each V gene's loops, worked out once; clonotypes are
batched by length so that batches pad little, and :func:`sceptr_vectors` runs SCEPTR's own
modules on them. The package's DataFrame API builds a V-gene object per row instead, which took
74% of its time (docs/benchmarks.md has both speeds).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deeprc.atomic import atomic_directory, locked
from deeprc.errors import InputError
from deeprc.parallel import parallel_map
from deeprc.progress import Progress
from deeprc.store import AMINO_ACIDS, EncodedArray, Store

if TYPE_CHECKING:
    import torch

__all__ = ["PretrainedVectors", "pretrained_vectors"]

SUMMARY = "summary.json"
SCEPTR = "B_SCEPTR"  # the beta-chain model: a store holds TRB (or one chain) only

_CLS, _AA_OFFSET = 2, 2  # libtcrlm's CLS token; its index of an amino acid = ours + 2
_CDR1, _CDR2, _CDR3 = 1, 2, 3  # libtcrlm's compartment indices of one chain


def load_sceptr():
    """SCEPTR's beta-chain model (frozen, in eval mode), or what to install when it is absent."""
    try:
        from sceptr._model_saves import load_variant
    except ImportError:
        raise InputError(
            "encoder: sceptr needs the optional sceptr package, which the plain install leaves "
            "out: pip install -e '.[sceptr]' in a clone of deeprc (README.md, 'A pretrained "
            "encoder')"
        ) from None
    return load_variant(SCEPTR)


def v_loops(v_genes: list[str]) -> list[str | None]:
    """Each V gene's CDR1 + CDR2 residues as SCEPTR reads them, None for one it refuses
    (not an IMGT functional TRBV gene: SCEPTR has no loops for it)."""
    load_sceptr()  # the message when sceptr is absent
    from libtcrlm import schema

    loops: list[str | None] = []
    for gene in v_genes:
        try:
            tcr = schema.make_tcr_from_components(None, None, gene, None)
        except Exception:  # libtcrlm raises its own BadV, or ValueError for odd names
            loops.append(None)
            continue
        loops.append(f"{tcr.cdr1b_sequence}|{tcr.cdr2b_sequence or ''}")
    return loops


def loop_tokens(loops: str) -> np.ndarray:
    """``(k, 4)`` libtcrlm tokens of one V gene's CDR1 and CDR2: residue, position, length,
    compartment."""
    rows = []
    for compartment, loop in zip((_CDR1, _CDR2), loops.split("|"), strict=True):
        for i, residue in enumerate(loop):
            if residue in AMINO_ACIDS:  # as libtcrlm's tokeniser, which drops a gap '*'
                token = _AA_OFFSET + 1 + AMINO_ACIDS.index(residue)
                rows.append((token, i + 1, len(loop), compartment))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def sceptr_vectors(bert, grid: torch.Tensor) -> torch.Tensor:
    """SCEPTR's normalised CLS vectors of a token grid: its own modules and weights, with
    attention as one dense ``scaled_dot_product_attention`` per layer (PyTorch's encoder
    layer took a nested-tensor path here that spent most of its time in per-sequence
    softmaxes) and the last layer computed for the CLS token alone (the only one read)."""
    import torch.nn.functional as F

    stack = bert._self_attention_stack
    x = stack._initial_projector(bert._embed(grid))
    attend = (grid[:, :, 0] != 0)[:, None, None, :]  # (b, 1, 1, width): keys that are tokens
    layers = stack._standard_stack._self_attention_stack.layers
    for i, layer in enumerate(layers):
        attention = layer.self_attn
        b, width, size = x.shape
        heads = attention.num_heads
        qkv = F.linear(x, attention.in_proj_weight, attention.in_proj_bias)
        q, k, v = qkv.view(b, width, 3, heads, size // heads).permute(2, 0, 3, 1, 4)
        if i == len(layers) - 1:
            q, x = q[:, :, :1], x[:, :1]
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        x = layer.norm1(x + attention.out_proj(mixed.transpose(1, 2).reshape(b, -1, size)))
        # ReLU, the layers' activation (tests/test_sceptr.py compares with SCEPTR's own API)
        hidden = F.relu(layer.linear1(x), inplace=True)
        x = layer.norm2(x + layer.linear2(hidden))
    return F.normalize(x[:, 0], p=2, dim=1)


def token_grid(
    tokens: np.ndarray,
    lengths: np.ndarray,
    v_index: np.ndarray,
    prefix_len: np.ndarray,
    prefix_table: np.ndarray,
    width: int,
) -> np.ndarray:
    """``(b, width, 4)`` libtcrlm tokens of a batch: CLS, the V gene's loops, the junction;
    zero (padding) after."""
    b = len(tokens)
    t = np.arange(width)[None, :]
    grid = np.zeros((b, width, 4), dtype=np.int64)
    grid[:, 0, 0] = _CLS
    in_loops = (t >= 1) & (t < 1 + prefix_len[:, None])
    r, c = np.nonzero(in_loops)
    grid[r, c] = prefix_table[v_index[r], c - 1]
    start = 1 + prefix_len[:, None]
    in_junction = (t >= start) & (t < start + lengths[:, None])
    r, c = np.nonzero(in_junction)
    j = c - start[r, 0]
    grid[r, c, 0] = tokens[r, j].astype(np.int64) + _AA_OFFSET
    grid[r, c, 1] = j + 1
    grid[r, c, 2] = lengths[r]
    grid[r, c, 3] = _CDR3
    return grid


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
    store: Store, variant: str = SCEPTR, *, device: torch.device | None = None
) -> PretrainedVectors:
    """The store's vectors of ``variant``, embedded now if no run has yet (on ``device``;
    default: a GPU where there is one, else the CPU with as many workers as PyTorch has
    threads)."""
    if variant != SCEPTR:
        raise InputError(f"no pretrained vectors named {variant!r}; this deeprc has {SCEPTR}")
    directory = store.path / f"pretrained_{variant}"
    if not (directory / SUMMARY).is_file():
        load_sceptr()  # the message of the plain install comes before any waiting
        with locked(directory.with_name(f"{directory.name}.wait"), wait=True):
            if not (directory / SUMMARY).is_file():
                with atomic_directory(directory, command="pretrained vectors") as tmp:
                    _embed_store(store, tmp, device)
    return PretrainedVectors(directory)


def _embed_store(store: Store, out: Path, device: torch.device | None) -> None:
    """Embed each unique (junction, V gene) of ``store`` whose V gene SCEPTR reads."""
    import torch

    started = time.perf_counter()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    n = int(store.offsets[-1])
    v_names = store.gene_names["v"]
    loops = v_loops(v_names)
    v = np.asarray(store.genes[:, 0], dtype=np.int64)
    readable = np.array([lo is not None for lo in loops])[v]
    keys = _clonotype_keys(store, v, readable)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    del keys
    chosen = np.flatnonzero(readable)[first]
    tokens = store.tokens[chosen]
    lengths = np.asarray(store.lengths[chosen], dtype=np.int64)
    with Progress("SCEPTR vectors", len(chosen), "clonotypes") as progress:
        vectors = _embed(tokens, lengths, v[chosen], loops, device, progress)
    rows = np.zeros(n, dtype=np.uint32)
    rows[readable] = inverse.ravel() + 1
    zero = np.zeros((1, vectors.shape[1]), np.float16)  # the rows of refused V genes
    np.save(out / "vectors.npy", np.concatenate([zero, vectors]))
    np.save(out / "rows.npy", rows)
    refused = np.bincount(v[~readable], minlength=len(v_names))
    seconds = time.perf_counter() - started
    summary = {
        "variant": SCEPTR,
        "n_rows": n,
        "n_clonotypes_embedded": len(chosen),
        "rows_with_refused_v": int((~readable).sum()),
        "refused_v_genes": {v_names[i] or "(no call)": int(c) for i, c in enumerate(refused) if c},
        "seconds": round(seconds, 2),
        "clonotypes_per_second": round(len(chosen) / max(seconds, 1e-9)),
        "device": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else f"cpu ({torch.get_num_threads()} workers)"
        ),
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


def _clonotype_keys(store: Store, v: np.ndarray, readable: np.ndarray) -> np.ndarray:
    """One comparable key (tokens, then the V index) per ``readable`` row, read in chunks so
    that no second copy of the store's tokens is held."""
    width = store.tokens.shape[1]
    keys = np.empty((int(readable.sum()), width + 2), np.uint8)
    filled = 0
    for start in range(0, len(v), _KEY_CHUNK):
        part = slice(start, start + _KEY_CHUNK)
        kept = readable[part]
        k = int(kept.sum())
        keys[filled : filled + k, :width] = store.tokens[part][kept]
        keys[filled : filled + k, width:] = v[part][kept].astype("<u2").view(np.uint8).reshape(k, 2)
        filled += k
    return keys.view(f"V{width + 2}").ravel()


_KEY_CHUNK = 1_000_000  # store rows read at once for the keys


def _embed(
    tokens: np.ndarray,
    lengths: np.ndarray,
    v_index: np.ndarray,
    loops: list[str | None],
    device: torch.device,
    progress: Progress,
) -> np.ndarray:
    """``(n, 64)`` float16 vectors. Clonotypes are sorted by token count so that a batch pads
    little; on the CPU, batches go to one forked worker per PyTorch thread (--threads), each on
    one thread (faster than threads on these small matrices); on a GPU, one process with larger
    batches."""
    import torch

    bert = load_sceptr()._bert.eval().to(device)
    prefix = [loop_tokens(lo or "|") for lo in loops]  # a refused gene: none of its rows
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
    out = np.empty((len(tokens), bert.d_model), dtype=np.float16)
    for rows, part in zip(batches, parts, strict=True):
        out[rows] = part
    return out


_WORKER: dict = {}


def _embed_batch(rows: np.ndarray) -> np.ndarray:
    import torch

    w = _WORKER
    if w["threads"] is not None and torch.get_num_threads() != w["threads"]:
        torch.set_num_threads(w["threads"])
    grid = token_grid(
        w["tokens"][rows], w["lengths"][rows], w["v"][rows], w["prefix_len"][rows],
        w["table"], int(w["total"][rows].max()),
    )  # fmt: skip
    with torch.inference_mode():
        vectors = sceptr_vectors(w["bert"], torch.from_numpy(grid).to(w["device"]))
    return vectors.float().cpu().numpy().astype(np.float16)
