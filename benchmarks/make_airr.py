"""Synthetic AIRR Rearrangement files: all 14 required AIRR columns plus duplicate_count and locus.

Rows look like bulk TRB amplicon data. ``full`` rows carry a 100-160 nt read, its aligned and
germline copies and CIGARs (about 510 bytes a row uncompressed, as an aligner writes them);
``sparse`` rows carry an 87 nt read and leave the alignment columns empty (about 170 bytes a
row, as files converted from immunoSEQ exports look). About 5% of rows are
non-productive, 1% carry a stop codon and 1% an X in the junction. Used by the ingest benchmark
and to make the shipped example under data/::

    python benchmarks/make_airr.py data/example --files 6 --rows 500 --seed 7
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from isal import igzip

AMINO = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWY", dtype=np.uint8)
NUCS = np.frombuffer(b"ACGT", dtype=np.uint8)
COLUMNS = [
    *("sequence_id", "sequence", "rev_comp", "productive", "v_call", "d_call", "j_call"),
    *("sequence_alignment", "germline_alignment", "junction", "junction_aa"),
    *("v_cigar", "d_cigar", "j_cigar", "duplicate_count", "locus"),
]


def _strings(rng: np.random.Generator, alphabet: np.ndarray, lengths: np.ndarray) -> list[str]:
    """Random strings of the given lengths, cut from one buffer so generation stays fast."""
    buf = alphabet[rng.integers(0, len(alphabet), int(lengths.sum()))].tobytes().decode()
    ends = np.cumsum(lengths).tolist()
    return [buf[e - n : e] for e, n in zip(ends, lengths.tolist(), strict=True)]


def write_file(path: Path, n_rows: int, seed: int, layout: str = "full") -> None:
    rng = np.random.default_rng(seed)
    sparse = layout == "sparse"
    middle = _strings(rng, AMINO, rng.integers(6, 14, n_rows))
    junction_aa = [f"CAS{m}F" for m in middle]
    junction_nt = _strings(rng, NUCS, np.array([3 * len(j) for j in junction_aa]))
    read_len = np.full(n_rows, 87) if sparse else rng.integers(100, 161, n_rows)
    reads = _strings(rng, NUCS, read_len)
    productive = np.where(rng.random(n_rows) > 0.05, "T", "F")
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
        read = reads[i]
        aligned, cigars = ("", "\t\t") if sparse else (read, f"{read_len[i] - 40}M\t12M\t40M")
        lines.append(
            f"s{seed}_{i}\t{read}\tF\t{productive[i]}\tTRBV{v[i]}-1*01\tTRBD1*01"
            f"\tTRBJ{j[i] % 2 + 1}-{j[i]}*01\t{aligned}\t{aligned}\t{junction_nt[i]}\t{aa}"
            f"\t{cigars}\t{counts[i]}\tTRB"
        )
    with igzip.open(path, "wb", compresslevel=2) as fh:
        fh.write(("\n".join(lines) + "\n").encode())


def _write(args: tuple[Path, int, int, str]) -> None:
    write_file(*args)


def write_dataset(
    out: Path, n_files: int, rows_per_file: int, seed: int = 0, layout: str = "full"
) -> Path:
    """Files (written in parallel, kept when present) and a metadata table; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    meta = ["repertoire_id\tfile\tstatus"]
    todo = []
    for k in range(n_files):
        name = f"rep{k:04d}.tsv.gz"
        if not (out / name).exists():
            todo.append((out / name, rows_per_file, seed + k, layout))
        meta.append(f"rep{k:04d}\t{name}\t{'positive' if k % 2 else 'negative'}")
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write, todo))
    (out / "metadata.tsv").write_text("\n".join(meta) + "\n")
    return out / "metadata.tsv"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", choices=["full", "sparse"], default="full")
    args = parser.parse_args()
    print(write_dataset(args.out, args.files, args.rows, args.seed, args.layout))
