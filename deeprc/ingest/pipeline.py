"""Ingest: AIRR rearrangement files + a metadata table -> a validated, encoded store.

Every row read is either kept or counted under one named reason, per repertoire:
``rows_read == rows_kept + sum(dropped)``. Files are streamed in Arrow record batches and
processed in parallel worker processes, one file at a time each, so peak memory depends on the
batch size and the number of workers, not on the number or size of the files. The metadata
(``metadata``), the file format (``airr``), the filters (``filters``) and the store's layout
(``deeprc.store``) each live in one module; this one puts them together.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deeprc import __version__, shards
from deeprc.atomic import atomic_directory, refuse_inputs
from deeprc.errors import InputError
from deeprc.ingest import airr
from deeprc.ingest.airr import (
    BlockTooSmall,
    Source,
    batches,
    column_roles,
    longest_line,
    read_header,
)
from deeprc.ingest.annotations import Annotation, annotation_columns
from deeprc.ingest.exports import detect_export
from deeprc.ingest.filters import collapse, filter_batch
from deeprc.ingest.metadata import positive_class, read_metadata
from deeprc.ingest.options import DROP_REASONS, FileStats, IngestOptions
from deeprc.ingest.quote import quoted, shown_path
from deeprc.parallel import parallel_map
from deeprc.progress import Progress
from deeprc.store import (
    AMINO_ACIDS,
    PartWriter,
    part_path,
    write_encoded,
    write_genes,
    write_tables,
)

__all__ = ["SHARD", "ingest"]

SHARD = "shard.json"  # what a shard directory of ingest --shard counted
_COUNT_MAX = 2**63 - 1  # a repertoire's total count, and so each collapsed count, is int64


def _ingest_file(task: tuple[int, Path, Path, IngestOptions]) -> FileStats:
    """Stream one repertoire file into one Parquet part and raw encoded parts (a worker's job).

    A file with a line longer than the default block is read again, from scratch (the parts
    are rewritten, the stats restarted), with a block twice that line's size: lines of any
    length can be read, while files that parse fine are read once.
    """
    pa.set_cpu_count(1)
    try:
        return _ingest_attempt(task, airr.BLOCK_SIZE)
    except BlockTooSmall:
        longest = longest_line(task[1])
        return _ingest_attempt(task, min(1 << (2 * longest).bit_length(), 2**31 - 1))


def _ingest_attempt(task: tuple[int, Path, Path, IngestOptions], block_size: int) -> FileStats:
    index, path, part, options = task
    header = read_header(path)
    export = detect_export(header, path)  # an immunoSEQ or MiXCR table, read as AIRR columns
    if export is None:
        roles = column_roles(header, path)
        columns = [c for c in roles.values() if c is not None]
    else:
        roles, columns = export.roles(header), export.source_columns(header)
    stats = FileStats(junction_column=export.junction if export else roles["junction"])
    if export is not None and roles["duplicate_count"] is None:
        stats.notes.append(
            f"{shown_path(path)}: {export.name} format without a count column "
            f"({', '.join(export.counts)}): every row counts 1"
        )
    source = Source(path)
    collected: list[pa.Table] = []
    with (
        PartWriter(part, index, options.max_length) as writer,
        io.BufferedReader(source, buffer_size=1 << 20) as stream,
    ):
        for batch in batches(stream, path, header, columns, block_size):
            if export is not None:
                batch = export.to_airr(batch, header)
            kept = filter_batch(batch, roles, options, stats, path, first_line=stats.rows_read + 2)
            stats.total_count += _count_sum(kept["duplicate_count"])
            if stats.total_count > _COUNT_MAX:
                raise InputError(
                    f"{shown_path(path)}: the counts of its rows add up to more than 2**63-1 by "
                    f"line {stats.rows_read + 1}, past what a 64-bit count holds; check its count "
                    "column, or divide the counts so that their sum fits"
                )
            if options.collapse:
                collected.append(kept)
            elif kept.num_rows:
                _write_kept(kept, writer, stats)
        if options.collapse and collected:
            merged = pa.concat_tables(collected)
            collapsed = collapse(merged)
            stats.dropped["collapsed_duplicate"] += merged.num_rows - collapsed.num_rows
            _write_kept(collapsed, writer, stats)
        stats.sha256 = source.sha256.hexdigest()
    return stats


def _write_kept(kept: pa.Table, writer: PartWriter, stats: FileStats) -> None:
    longest = writer.write(kept)
    stats.rows_kept += kept.num_rows
    stats.max_length = max(stats.max_length, longest)


def _count_sum(counts: pa.ChunkedArray) -> int:
    """The exact sum of positive int64 counts, where Arrow's sum would wrap past 2**63-1 (and a
    collapsed count with it): the high and low 32 bits are summed apart, which cannot
    overflow in a batch of under 2**31 rows."""
    high = pc.sum(pc.shift_right(counts, 32)).as_py() or 0
    low = pc.sum(pc.bit_wise_and(counts, 0xFFFFFFFF)).as_py() or 0
    return (high << 32) + low


def _fingerprint(repertoires: pd.DataFrame, options: IngestOptions, positive: str | None) -> str:
    digest = hashlib.sha256()
    digest.update(repertoires[["repertoire_id", "label", "sha256"]].to_csv(index=False).encode())
    annotated = [c for c in repertoires.columns if c.startswith(("target:", "covariate:"))]
    if annotated:  # a store of one label alone keeps the fingerprint it had before them
        digest.update(repertoires[annotated].to_csv(index=False).encode())
    digest.update(json.dumps(asdict(options), sort_keys=True).encode())
    digest.update((positive or "").encode())
    return digest.hexdigest()[:16]


def ingest(
    metadata: Path,
    out: Path,
    *,
    label_column: str | None,
    id_column: str = "repertoire_id",
    file_column: str = "file",
    data_dir: Path | None = None,
    positive_label: str | None = None,
    allow_unlabelled: bool = False,
    options: IngestOptions = IngestOptions(),  # noqa: B008 (frozen, so sharing is safe)
    threads: int = 2,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
    shard: tuple[int, int] | None = None,
    merge: Sequence[Path] = (),
    annotations: Sequence[Annotation] = (),
) -> pd.DataFrame:
    """Build a store at ``out``; returns the ingest report (one row per repertoire).

    Repertoires without a label (no ``label_column``, or empty values with
    ``allow_unlabelled``) get ``y`` = -1: they can be scored, not trained or evaluated on.
    ``annotations`` are more metadata columns kept, typed: targets and covariates
    (deeprc.ingest.annotations).
    Written to a temporary sibling directory and renamed at the end, so a failed or killed run
    never leaves a half store and never touches an existing one.

    On a cluster the files are read in ``n`` jobs side by side: ``shard=(k, n)`` reads every
    ``n``-th file from the ``k``-th into a shard directory at ``out`` (its parts and what was
    counted), and ``merge`` (the ``n`` shard directories, same arguments otherwise) joins them
    into the store without reading the files again: the same store as one ingest.
    """
    metadata, out = Path(metadata), Path(out)
    data_dir = Path(data_dir) if data_dir is not None else metadata.parent
    inputs = [metadata, data_dir, *map(Path, merge)]
    command = "ingest --shard" if shard is not None else "ingest"
    with atomic_directory(out, overwrite=overwrite, inputs=inputs, command=command) as tmp:
        meta = read_metadata(
            metadata,
            id_column=id_column,
            file_column=file_column,
            label_column=label_column,
            data_dir=data_dir,
            options=options,
            log=log,
            allow_unlabelled=allow_unlabelled,
            kept={a.name: a.column for a in annotations},
        )
        annotated, described = annotation_columns(meta, annotations, metadata, log)
        refuse_inputs(out, meta["path"])
        labelled = meta["label"] != ""
        if labelled.any():
            positive = positive_class(meta.loc[labelled, "label"], positive_label, metadata)
        elif positive_label is not None:
            raise InputError("--positive-label names a class, but no repertoire has a label")
        else:
            positive = None
        (tmp / "sequences").mkdir()
        parts = [part_path(tmp, i) for i in range(len(meta))]
        if merge:
            stats = _merged_shards(meta, options, [Path(m) for m in merge], tmp)
        else:
            chosen = list(range(len(meta)))
            if shard is not None:  # every n-th file from the k-th
                chosen = shards.select(chosen, shard, "--shard")
            tasks = [(i, meta["path"].iloc[i], parts[i], options) for i in chosen]
            with Progress("ingest", len(tasks), "files") as progress:
                stats = parallel_map(_ingest_file, tasks, threads, progress=progress)
            for note in (note for s in stats for note in s.notes):
                log(note)
            if shard is not None:
                _refuse_empty(_report(meta.iloc[chosen], stats))
                _write_shard(tmp, shard, meta, chosen, stats, options)
                return _report(meta.iloc[chosen], stats)
        report = _report(meta, stats)
        _refuse_empty(report)
        width = max(s.max_length for s in stats)
        write_encoded(tmp, parts, [s.rows_kept for s in stats], width, options.max_length)
        genes = write_genes(tmp, parts, int(report["rows_kept"].sum()))
        repertoires = pd.DataFrame(
            {
                "repertoire_index": np.arange(len(meta)),
                "repertoire_id": meta["repertoire_id"],
                "label": meta["label"],
                "y": np.where(labelled, meta["label"] == positive, -1).astype(int),
                "n_sequences": report["rows_kept"],
                "offset": np.concatenate([[0], np.cumsum(report["rows_kept"])[:-1]]),
                "total_count": [s.total_count for s in stats],
                "source_file": meta["file"],
                "sha256": [s.sha256 for s in stats],
            }
        ).join(annotated)
        manifest = {
            "deeprc_version": __version__,
            "metadata": str(metadata),
            "label_column": label_column,
            "positive_label": positive,
            "classes": sorted(set(meta.loc[labelled, "label"])),
            "n_unlabelled": int((~labelled).sum()),
            **described,
            "n_repertoires": len(meta),
            "n_sequences": int(report["rows_kept"].sum()),
            "rows_read": int(report["rows_read"].sum()),
            "dropped": {r: int(report[r].sum()) for r in DROP_REASONS},
            "max_length": width,
            "alphabet": AMINO_ACIDS,
            "genes": genes,
            "options": asdict(options),
            "fingerprint": _fingerprint(repertoires, options, positive),
        }
        write_tables(tmp, repertoires, report, manifest)
    return report


def _refuse_empty(report: pd.DataFrame) -> None:
    empty = report[report["rows_kept"] == 0]
    if not empty.empty:
        row = empty.iloc[0]
        reasons = {r: int(row[r]) for r in DROP_REASONS if row[r]}
        raise InputError(
            f"repertoire {quoted(row['repertoire_id'])} ({quoted(row['source_file'])}) has no "
            f"rows left after filtering (read {row['rows_read']}, dropped {reasons}); check the "
            "file or the filters (--min-length, --max-length, --locus, --keep-nonproductive)"
        )


def _files_digest(meta: pd.DataFrame, options: IngestOptions) -> str:
    """What a shard was read from: the metadata's ids and files and the filters."""
    digest = hashlib.sha256(meta[["repertoire_id", "file"]].to_csv(index=False).encode())
    digest.update(json.dumps(asdict(options), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _write_shard(
    tmp: Path,
    shard: tuple[int, int],
    meta: pd.DataFrame,
    chosen: list[int],
    stats: list[FileStats],
    options: IngestOptions,
) -> None:
    record = {
        "shard": list(shard),
        "files_digest": _files_digest(meta, options),
        "stats": {str(i): asdict(s) for i, s in zip(chosen, stats, strict=True)},
    }
    (tmp / SHARD).write_text(json.dumps(record, indent=1) + "\n")


def _merged_shards(
    meta: pd.DataFrame, options: IngestOptions, directories: list[Path], tmp: Path
) -> list[FileStats]:
    """The stats of every file, from shard directories of this very metadata and filters,
    whose parts are linked (or copied, across file systems) into ``tmp``."""
    stats: dict[int, FileStats] = {}
    digest = _files_digest(meta, options)
    records = []
    for shard in directories:
        path = shard / SHARD
        if not path.is_file():
            raise InputError(f"{shard} is not a shard of deeprc ingest --shard (no {SHARD})")
        record = json.loads(path.read_text())
        if record["files_digest"] != digest:
            raise InputError(
                f"{shard} was read from other metadata or with other filters than these; "
                "read the shards again with the same arguments"
            )
        records.append((record["shard"], (shard, record)))
    for shard, record in shards.joined(records, "--shard"):
        for key, value in record["stats"].items():
            i = int(key)
            stats[i] = FileStats(**value)
            for src in part_path(shard, i).parent.glob(part_path(shard, i).stem + ".*"):
                dst = tmp / "sequences" / src.name
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
    return [stats[i] for i in range(len(meta))]


def _report(meta: pd.DataFrame, stats: list[FileStats]) -> pd.DataFrame:
    report = pd.DataFrame(
        {
            "repertoire_id": meta["repertoire_id"],
            "source_file": meta["file"],
            "junction_column": [s.junction_column for s in stats],
            "rows_read": [s.rows_read for s in stats],
            "rows_kept": [s.rows_kept for s in stats],
            **{r: [s.dropped[r] for s in stats] for r in DROP_REASONS},
            "n_uppercased": [s.n_uppercased for s in stats],
        }
    )
    balance = report["rows_read"] - report["rows_kept"] - report[list(DROP_REASONS)].sum(axis=1)
    assert (balance == 0).all(), "ingest lost rows without a reason; this is a bug"
    return report
