"""The on-disk store: its layout, the writer ingest uses, and the reader every later stage uses.

Layout of a store directory::

    manifest.json          format_version, options, positive label, counts, fingerprint,
                           package version
    repertoires.tsv        one row per repertoire: index, id, label, y, n_sequences, offset, ...
    ingest_report.tsv      rows read, kept and dropped by reason, per repertoire
    sequences/part-*.parquet   kept rows, one part per repertoire, in repertoire order
    encoded/tokens.npy     (n_sequences, max_length) uint8, 0 = padding, 1..20 = amino acids
    encoded/lengths.npy    (n_sequences,) uint8
    encoded/counts.npy     (n_sequences,) int64 clone counts
    encoded/genes.npy      (n_sequences, 2) uint16: V and J gene of each row, indices into the
                           manifest's "genes" vocabularies (0 = "", no call)
    encoded/offsets.npy    (n_repertoires + 1,) int64: repertoire r owns rows
                           offsets[r]:offsets[r+1]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from deeprc.atomic import require_space
from deeprc.errors import InputError

__all__ = [
    "AMINO_ACIDS",
    "FORMAT_VERSION",
    "LOOKUP",
    "SEQUENCE_SCHEMA",
    "EncodedArray",
    "PartWriter",
    "Store",
    "decode",
    "encode_into",
    "gene_name",
    "part_path",
    "string_buffers",
    "write_encoded",
    "write_genes",
    "write_tables",
]

# Raised whenever the layout below changes; a store of another version is refused.
FORMAT_VERSION = 2
SEQUENCE_SCHEMA = pa.schema(
    [
        ("repertoire_index", pa.int32()),
        ("sequence_id", pa.string()),
        ("junction_aa", pa.string()),
        ("v_call", pa.dictionary(pa.int32(), pa.string())),
        ("j_call", pa.dictionary(pa.int32(), pa.string())),
        ("locus", pa.dictionary(pa.int32(), pa.string())),
        ("duplicate_count", pa.int64()),
    ]
)
_ENCODED = ("tokens", "lengths", "counts")
_COPY_ROWS = 1 << 16

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
# ASCII byte -> token (0 for anything that is not one of the 20 amino acids)
LOOKUP = np.zeros(256, dtype=np.uint8)
LOOKUP[np.frombuffer(AMINO_ACIDS.encode(), dtype=np.uint8)] = np.arange(1, 21, dtype=np.uint8)


def encode_into(tokens: np.ndarray, data: np.ndarray, offsets: np.ndarray) -> None:
    """Scatter concatenated ASCII residues into a C-contiguous, zeroed, padded token matrix.

    ``data`` holds the residues of ``len(offsets) - 1`` sequences back to back (as an Arrow
    string array stores them); sequence ``i`` is ``data[offsets[i]:offsets[i+1]]``. One
    vectorised scatter instead of a Python loop over sequences.
    """
    lengths = np.diff(offsets)
    row_starts = np.arange(len(lengths)) * tokens.shape[1] - (offsets[:-1] - offsets[0])
    flat = np.arange(offsets[-1] - offsets[0]) + np.repeat(row_starts, lengths)
    tokens.reshape(-1)[flat] = LOOKUP[data[offsets[0] : offsets[-1]]]


def string_buffers(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Zero-copy views of an Arrow string array: int64 offsets (rebased to 0) and the bytes."""
    offs_type = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    _, offs_buf, data_buf = strings.buffers()
    offsets = np.frombuffer(offs_buf, dtype=offs_type)[
        strings.offset : strings.offset + len(strings) + 1
    ].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


def decode(tokens: np.ndarray, length: int) -> str:
    """The amino-acid string of one encoded sequence."""
    return "".join(AMINO_ACIDS[t - 1] for t in tokens[:length])


class EncodedArray:
    """One of a store's encoded arrays (``.npy``), read by indexing as a NumPy array is.

    Each read maps the file, copies the rows out and unmaps it again: a mapping kept open
    would keep every page a pass over the store touched in the process's resident memory
    (gigabytes at 10^8 rows: page cache, but counted as the process's, as a cluster's memory
    accounting does), while this way the process holds only the rows it reads.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        header = np.load(path, mmap_mode="r")
        self.shape, self.dtype = header.shape, header.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[index])

    def __iter__(self):
        return iter(self[:])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[:] if dtype is None else self[:].astype(dtype)


@dataclass(frozen=True)
class Store:
    """Read access to a store; the encoded arrays are read by rows (:class:`EncodedArray`),
    never loaded whole."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        missing = [
            name
            for name in ("manifest.json", "repertoires.tsv", "encoded/offsets.npy")
            if not (self.path / name).is_file()
        ]
        if missing:
            what = "does not exist" if not self.path.exists() else f"lacks {missing}"
            raise InputError(
                f"{self.path} is not a deeprc store ({what}); make one with deeprc ingest"
            )
        self.manifest  # noqa: B018 (checks the format version now, not at first use)

    @cached_property
    def manifest(self) -> dict:
        path = self.path / "manifest.json"
        try:
            manifest = json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path} is damaged ({exc}); ingest the store again") from None
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            newer = isinstance(version, int) and version > FORMAT_VERSION
            made = "a newer deeprc" if newer else "an older deeprc"
            raise InputError(
                f"{self.path} is a store of format {version} (made by {made}); this deeprc "
                f"reads format {FORMAT_VERSION}. Ingest the data again with this deeprc"
                + (", or upgrade deeprc" if newer else "")
            )
        return manifest

    @cached_property
    def repertoires(self) -> pd.DataFrame:
        """One row per repertoire: id, label, y, counts, file, and the kept targets and
        covariates (columns ``target:COLUMN``, ``covariate:COLUMN``; a missing value is NaN)."""
        text = {"repertoire_id": str, "label": str}
        for role in ("target", "covariate"):
            text |= {f"{role}:{a['column']}": str for a in self.annotations(role)
                     if a["kind"] != "numeric"}  # fmt: skip
        return pd.read_csv(self.path / "repertoires.tsv", sep="\t", dtype=text)

    def annotations(self, role: str) -> list[dict]:
        """The targets (``role`` "target") or covariates ingest kept beside the label, as the
        manifest describes them: column, kind, classes (and the positive one) or the range,
        missing values (deeprc.ingest.annotations); none in a store of one label."""
        return self.manifest.get(f"{role}s", [])

    def _array(self, name: str) -> EncodedArray:
        return EncodedArray(self.path / "encoded" / f"{name}.npy")

    @cached_property
    def tokens(self) -> EncodedArray:
        return self._array("tokens")

    @cached_property
    def lengths(self) -> EncodedArray:
        return self._array("lengths")

    @cached_property
    def counts(self) -> EncodedArray:
        return self._array("counts")

    @cached_property
    def offsets(self) -> np.ndarray:
        """In memory: small, and read at every repertoire."""
        return np.load(self.path / "encoded" / "offsets.npy")

    @cached_property
    def genes(self) -> EncodedArray:
        """``(n_sequences, 2)`` V and J gene indices into :attr:`gene_names`."""
        return self._array("genes")

    @property
    def gene_names(self) -> dict[str, list[str]]:
        """``{"v": [...], "j": [...]}``: gene names by index; index 0 is "" (no call)."""
        return self.manifest["genes"]

    @property
    def labels(self) -> np.ndarray:
        """Binary targets (1 = the positive class recorded in the manifest; -1 = no label)."""
        return self.repertoires["y"].to_numpy()

    def with_labels(self, labels: np.ndarray) -> Store:
        """The same store read with other labels (a negative control's shuffled ones); the
        files and the fingerprint stay, so its models score the store as it is."""
        other = Store(self.path)
        other.__dict__["repertoires"] = self.repertoires.assign(y=np.asarray(labels))
        return other

    def require_labels(self, purpose: str) -> None:
        """Refuse a store with unlabelled repertoires for what needs every label (``purpose``:
        "cross-validation", "training", ...); scoring needs none."""
        missing = int((self.labels < 0).sum())
        if missing:
            raise InputError(
                f"store {self.path}: {missing} of its {len(self.labels)} repertoires have no "
                f"label, and {purpose} needs labels. Score an unlabelled cohort with deeprc "
                "predict --model <a model trained elsewhere>, or ingest it with --label-column"
            )

    def sequences(self, repertoire: int) -> pd.DataFrame:
        """The kept rows of one repertoire (junction_aa, v_call, j_call, counts, ...)."""
        return pd.read_parquet(part_path(self.path, repertoire))


# ----------------------------------------------------------------------------- writing a store


def part_path(directory: Path, repertoire: int) -> Path:
    """Where repertoire ``repertoire``'s kept rows live (its raw encoded files beside it)."""
    return Path(directory) / "sequences" / f"part-{repertoire:06d}.parquet"


class PartWriter:
    """One repertoire's kept rows, appended batch by batch: its Parquet part (``SEQUENCE_SCHEMA``)
    and raw token/length/count files of fixed ``width``, which :func:`write_encoded` joins."""

    def __init__(self, part: Path, repertoire: int, width: int) -> None:
        self.repertoire, self.width = repertoire, width
        self.parquet = pq.ParquetWriter(
            part,
            SEQUENCE_SCHEMA,
            compression="zstd",
            use_dictionary=["v_call", "j_call", "locus"],
            write_statistics=["repertoire_index", "duplicate_count"],
        )
        self.files = {name: part.with_suffix(f".{name}").open("wb") for name in _ENCODED}

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.parquet.close()
        for fh in self.files.values():
            fh.close()

    def write(self, kept: pa.Table) -> int:
        """Append rows (sequence_id, junction_aa, v_call, j_call, locus, duplicate_count);
        returns the longest junction among them."""
        columns = {
            "repertoire_index": pa.array(np.full(kept.num_rows, self.repertoire, dtype=np.int32)),
            "sequence_id": kept["sequence_id"],
            "junction_aa": kept["junction_aa"],
            "v_call": pc.dictionary_encode(kept["v_call"]),
            "j_call": pc.dictionary_encode(kept["j_call"]),
            "locus": pc.dictionary_encode(kept["locus"]),
            "duplicate_count": kept["duplicate_count"],
        }
        self.parquet.write_table(pa.table(columns, schema=SEQUENCE_SCHEMA))
        offsets, data = string_buffers(kept["junction_aa"].combine_chunks())
        tokens = np.zeros((len(offsets) - 1, self.width), dtype=np.uint8)
        encode_into(tokens, data, offsets)
        lengths = np.diff(offsets).astype(np.uint8)
        self.files["tokens"].write(tokens.tobytes())
        self.files["lengths"].write(lengths.tobytes())
        self.files["counts"].write(kept["duplicate_count"].to_numpy().astype(np.int64).tobytes())
        return int(lengths.max(initial=0))


def write_encoded(
    tmp: Path, parts: list[Path], n_kept: list[int], width: int, part_width: int
) -> None:
    """The store's encoded arrays from the parts' raw files, copied part by part (memory stays
    flat; each raw file is removed once copied).

    Written with plain writes, not into a memory map: on a full disk a write into a memory map
    kills the process with SIGBUS, while ``write`` raises ENOSPC, which becomes a message.
    """
    enc = tmp / "encoded"
    enc.mkdir()
    offsets = np.concatenate([[0], np.cumsum(n_kept)]).astype(np.int64)
    n = int(offsets[-1])
    require_space(
        tmp.parent,
        n * (width + 1 + 8 + 4) + offsets.nbytes,
        f"writing the encoded arrays ({n:,} rows)",
    )
    np.save(enc / "offsets.npy", offsets)
    for name, dtype, shape in (
        ("tokens", np.uint8, (n, width)),
        ("lengths", np.uint8, (n,)),
        ("counts", np.int64, (n,)),
    ):
        with (enc / f"{name}.npy").open("wb") as out:
            header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(out, header)
            for part, start, stop in zip(parts, offsets[:-1], offsets[1:], strict=True):
                raw = part.with_suffix(f".{name}")
                if stop > start:
                    src = np.memmap(
                        raw, dtype=dtype, mode="r", shape=(stop - start, part_width)[: len(shape)]
                    )
                    for lo in range(0, len(src), _COPY_ROWS):
                        block = src[lo : lo + _COPY_ROWS]
                        out.write(
                            np.ascontiguousarray(block[:, :width] if name == "tokens" else block)
                        )
                    del src
                raw.unlink()


def gene_name(call: str) -> str:
    """The gene of an AIRR call: its first call (``TRBV6-2*01,TRBV6-3*01``), allele dropped
    (``TRBV6-2``): alleles are often guessed, and a model should pool them."""
    return call.split(",", 1)[0].split("*", 1)[0].strip()


def write_genes(tmp: Path, parts: list[Path], n: int) -> dict[str, list[str]]:
    """``encoded/genes.npy`` from the parts' V and J calls; returns the vocabularies ("" first,
    then sorted names), which the manifest keeps. Two passes over the parts' small dictionary
    columns, so that memory holds one part, not the whole store's indices."""
    columns = {"v": "v_call", "j": "j_call"}

    def calls(part: Path) -> dict[str, pa.DictionaryArray]:
        table = pq.read_table(part, columns=list(columns.values()))
        return {key: table[column].combine_chunks() for key, column in columns.items()}

    found: dict[str, set[str]] = {"v": {""}, "j": {""}}
    for part in parts:
        for key, array in calls(part).items():
            found[key].update(gene_name(str(c)) for c in array.dictionary.to_pylist())
    names = {key: sorted(genes, key=lambda g: (g != "", g)) for key, genes in found.items()}
    index = {key: {g: i for i, g in enumerate(genes)} for key, genes in names.items()}
    with (tmp / "encoded" / "genes.npy").open("wb") as out:
        header = {"descr": np.dtype(np.uint16).str, "fortran_order": False, "shape": (n, 2)}
        np.lib.format.write_array_header_1_0(out, header)
        for part in parts:
            codes = []
            for key, array in calls(part).items():
                lookup = [index[key][gene_name(str(c))] for c in array.dictionary.to_pylist()]
                indices = array.indices.to_numpy(zero_copy_only=False)
                codes.append(np.asarray(lookup, dtype=np.uint16)[indices])
            out.write(np.ascontiguousarray(np.stack(codes, axis=1), dtype=np.uint16))
    return names


def write_tables(
    directory: Path, repertoires: pd.DataFrame, report: pd.DataFrame, manifest: dict
) -> None:
    """repertoires.tsv, ingest_report.tsv and manifest.json (stamped with FORMAT_VERSION)."""
    directory = Path(directory)
    repertoires.to_csv(directory / "repertoires.tsv", sep="\t", index=False)
    report.to_csv(directory / "ingest_report.tsv", sep="\t", index=False)
    manifest = {"format_version": FORMAT_VERSION, **manifest}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
