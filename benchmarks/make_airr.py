"""Synthetic AIRR Rearrangement files for ingest benchmarks: all 14 required columns, realistic widths."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

AMINO = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWY", dtype=np.uint8)
NUCS = np.frombuffer(b"ACGT", dtype=np.uint8)
COLUMNS = (
    "sequence_id sequence rev_comp productive v_call d_call j_call sequence_alignment"
    " germline_alignment junction junction_aa v_cigar d_cigar j_cigar duplicate_count locus"
).split()


def _strings(rng: np.random.Generator, alphabet: np.ndarray, lengths: np.ndarray) -> list[str]:
    """Random strings of the given lengths, built from one buffer so that generation stays fast."""
    buf = alphabet[rng.integers(0, len(alphabet), int(lengths.sum()))].tobytes().decode()
    ends = np.cumsum(lengths)
    return [buf[e - n : e] for e, n in zip(ends.tolist(), lengths.tolist())]


def write_file(path: Path, n_rows: int, seed: int) -> None:
    """One repertoire: ~5% non-productive rows, a few junctions with a stop codon or an X."""
    rng = np.random.default_rng(seed)
    junction_len = rng.integers(10, 21, n_rows)
    junction_aa = _strings(rng, AMINO, junction_len)
    junction_nt = _strings(rng, NUCS, junction_len * 3)
    seq = _strings(rng, NUCS, rng.integers(250, 300, n_rows))
    productive = rng.random(n_rows) > 0.05
    noise = rng.random(n_rows)
    v = rng.integers(1, 30, n_rows)
    j = rng.integers(1, 8, n_rows)
    counts = rng.zipf(2.0, n_rows)
    lines = ["\t".join(COLUMNS)]
    for i in range(n_rows):
        aa = junction_aa[i]
        if noise[i] < 0.01:
            aa = aa[:5] + "*" + aa[6:]
        elif noise[i] < 0.02:
            aa = aa[:4] + "X" + aa[5:]
        s = seq[i]
        lines.append(
            f"s{seed}_{i}\t{s}\tF\t{'T' if productive[i] else 'F'}\tTRBV{v[i]}-1*01\tTRBD1*01"
            f"\tTRBJ{j[i] % 2 + 1}-{j[i]}*01\t{s}\t{s}\t{junction_nt[i]}\t{aa}"
            f"\t{len(s) - 40}M\t12M\t40M\t{counts[i]}\tTRB"
        )
    with gzip.open(path, "wt", compresslevel=6) as fh:
        fh.write("\n".join(lines) + "\n")


def write_dataset(out: Path, n_files: int, rows_per_file: int, seed: int = 0) -> Path:
    """Files plus a metadata table (alternating labels); returns the metadata path."""
    out.mkdir(parents=True, exist_ok=True)
    meta = ["repertoire_id\tfile\tstatus"]
    for k in range(n_files):
        name = f"rep{k:04d}.tsv.gz"
        if not (out / name).exists():
            write_file(out / name, rows_per_file, seed + k)
        meta.append(f"rep{k:04d}\t{name}\t{'positive' if k % 2 else 'negative'}")
    (out / "metadata.tsv").write_text("\n".join(meta) + "\n")
    return out / "metadata.tsv"
