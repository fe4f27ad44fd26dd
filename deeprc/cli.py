"""The ``deeprc`` command: one sub-command per stage, each a thin shell over a library function."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from deeprc import __version__
from deeprc.errors import InputError

__all__ = ["main"]


def _add_ingest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="AIRR rearrangement files + metadata -> validated, encoded store",
        description="Read AIRR rearrangement TSV(.gz) files listed in a metadata table, filter and "
        "count every dropped row by reason, and write a store (Parquet + encoded arrays).",
    )
    p.add_argument(
        "--metadata", type=Path, required=True, help="CSV or TSV, one row per repertoire"
    )
    p.add_argument("--out", type=Path, required=True, help="store directory to create")
    p.add_argument("--label-column", required=True, help="metadata column holding the label")
    p.add_argument("--id-column", default="repertoire_id", help="default: %(default)s")
    p.add_argument("--file-column", default="file", help="default: %(default)s")
    p.add_argument(
        "--data-dir", type=Path, help="where the files are (default: the metadata's directory)"
    )
    p.add_argument(
        "--positive-label",
        help="label value of the positive class (default: derived from 0/1, negative/positive, "
        "X-/X+ ...)",
    )
    p.add_argument("--min-length", type=int, default=4, help="shortest junction kept (%(default)s)")
    p.add_argument("--max-length", type=int, default=40, help="longest junction kept (%(default)s)")
    p.add_argument(
        "--locus", action="append", default=[], help="keep only this locus (repeatable), e.g. TRB"
    )
    p.add_argument("--keep-nonproductive", action="store_true", help="keep productive=F rows")
    p.add_argument(
        "--lowercase",
        choices=["upper", "reject"],
        default="upper",
        help="lower-case residues: read as upper case, or drop the row (%(default)s)",
    )
    p.add_argument(
        "--collapse",
        action="store_true",
        help="merge identical (junction_aa, v_call, j_call) rows of a repertoire, summing counts",
    )
    p.add_argument("--missing-files", choices=["error", "skip"], default="error")
    p.add_argument("--unlisted-files", choices=["error", "ignore"], default="error")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.set_defaults(run=_run_ingest)


def _run_ingest(args: argparse.Namespace) -> None:
    from deeprc.ingest import DROP_REASONS, IngestOptions, ingest

    options = IngestOptions(
        min_length=args.min_length,
        max_length=args.max_length,
        loci=tuple(args.locus),
        keep_nonproductive=args.keep_nonproductive,
        lowercase=args.lowercase,
        collapse=args.collapse,
        missing_files=args.missing_files,
        unlisted_files=args.unlisted_files,
    )
    report = ingest(
        args.metadata,
        args.out,
        label_column=args.label_column,
        id_column=args.id_column,
        file_column=args.file_column,
        data_dir=args.data_dir,
        positive_label=args.positive_label,
        options=options,
        threads=args.threads,
        overwrite=args.overwrite,
        log=lambda msg: print(msg, file=sys.stderr),
    )
    read, kept = int(report["rows_read"].sum()), int(report["rows_kept"].sum())
    print(f"{len(report)} repertoires -> {args.out}")
    print(f"rows read {read:>12,}")
    print(f"rows kept {kept:>12,}")
    for reason in DROP_REASONS:
        if n := int(report[reason].sum()):
            print(f"  dropped {reason:<20} {n:>12,}")
    print(f"per repertoire: {args.out / 'ingest_report.tsv'}")


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulated cohort with implanted signals: AIRR files, metadata, ground truth",
        description="Draw background repertoires from an OLGA model, implant motifs and public "
        "clonotypes, and write AIRR files, metadata.tsv and the ground truth (truth.tsv).",
    )
    p.add_argument("--config", type=Path, required=True, help="YAML, e.g. configs/simulate/*.yaml")
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--seed", type=int, help="overrides the config's seed")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="worker processes")
    p.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    p.set_defaults(run=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from deeprc.config import load
    from deeprc.simulate import SimulationConfig, simulate

    cfg = load(SimulationConfig, args.config)
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    summary = simulate(cfg, args.out, threads=args.threads, overwrite=args.overwrite)
    print(f"{cfg.n_repertoires} repertoires x {cfg.n_sequences} sequences -> {args.out}")
    for name, n in summary["n_implanted"].items():
        print(f"  signal {name:<20} implanted in {n:>9,} sequences")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deeprc", description=__doc__)
    parser.add_argument("--version", action="version", version=f"deeprc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_ingest(sub)
    _add_simulate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except InputError as exc:
        print(f"deeprc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
