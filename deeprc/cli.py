"""The ``deeprc`` command: one sub-command per stage, each a thin shell over a library function."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from deeprc import __version__
from deeprc.atomic import no_space
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
    summary = simulate(
        cfg, args.out, threads=args.threads, overwrite=args.overwrite, inputs=[args.config]
    )
    print(f"{cfg.n_repertoires} repertoires x {cfg.n_sequences} sequences -> {args.out}")
    for name, n in summary["n_implanted"].items():
        print(f"  signal {name:<20} implanted in {n:>9,} sequences")


def _add_split(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "split",
        help="stratified k-fold cross-validation folds with an inner validation split",
        description="Write folds.tsv: one row per (fold, repertoire) with role train, "
        "validation or test.",
    )
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="folds table (TSV) to write")
    p.add_argument("--k", type=int, default=5, help="folds (%(default)s)")
    p.add_argument("--validation-fraction", type=float, default=0.2, help="(%(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--test-ids",
        type=Path,
        help="file of repertoire ids (one a line) forming a fixed test cohort: one fold, "
        "trained on all other repertoires (--k is then ignored)",
    )
    p.set_defaults(run=_run_split)


def _run_split(args: argparse.Namespace) -> None:
    from deeprc.split import fixed_split, make_folds, write_folds
    from deeprc.store import Store

    store = Store(args.store)
    ids = store.repertoires["repertoire_id"].tolist()
    fraction = args.validation_fraction
    if args.test_ids is not None:
        if not args.test_ids.is_file():
            raise InputError(f"{args.test_ids} does not exist")
        test_ids = [line.strip() for line in args.test_ids.read_text().splitlines() if line.strip()]
        folds = fixed_split(
            ids, store.labels, test_ids, validation_fraction=fraction, seed=args.seed
        )
    else:
        folds = make_folds(
            ids, store.labels, k=args.k, validation_fraction=fraction, seed=args.seed
        )
    write_folds(folds, store, args.out)
    n_folds = folds["fold"].nunique()
    print(f"{n_folds} fold(s) of {len(store.repertoires)} repertoires -> {args.out}")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train DeepRC on one fold (resumes from its checkpoint when restarted)",
        description="Train on the fold's train repertoires, select the model by validation AUC.",
    )
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--folds", type=Path, required=True, help="from deeprc split")
    p.add_argument("--fold", type=int, required=True)
    p.add_argument("--experiment", type=Path, required=True, help="configs/experiments/*.yaml")
    p.add_argument("--out", type=Path, required=True, help="model file to write (.pt)")
    p.add_argument("--seed", type=int, help="overrides the experiment's train.seed")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="intra-op threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> None:
    from dataclasses import asdict, replace

    import torch

    from deeprc.atomic import locked
    from deeprc.config import load
    from deeprc.model import build_model
    from deeprc.model.files import save_model
    from deeprc.split import read_folds
    from deeprc.store import Store
    from deeprc.train import Experiment, fit

    experiment = load(Experiment, args.experiment)
    if args.seed is not None:
        experiment = replace(experiment, train=replace(experiment.train, seed=args.seed))
    torch.set_num_threads(args.threads)
    store = Store(args.store)
    roles = read_folds(args.folds, store, args.fold)
    model = build_model(experiment.model, experiment.train.seed)
    with locked(args.out):  # the model and its .work directory: one run at a time
        state = fit(
            model,
            store,
            roles["train"],
            roles["validation"],
            experiment.train,
            out_dir=args.out.with_suffix(".work"),
            experiment=asdict(experiment),
            device=_device(args.device),
            progress=not args.no_progress,
        )
        ids = store.repertoires["repertoire_id"].to_numpy().astype(str)
        save_model(
            args.out, state["best_state"], experiment=asdict(experiment),
            store_fingerprint=store.manifest["fingerprint"], train_ids=ids[roles["train"]].tolist(),
            validation_ids=ids[roles["validation"]].tolist(), steps=state["step"],
            history=state["history"],
        )  # fmt: skip
    best = state["best"]["val_auc"]
    print(f"fold {args.fold}: {state['step']} steps, best validation AUC {best:.3f}")


def _add_select_model(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "select-model",
        help="keep the best of several training runs (seeds) of one fold",
        description="Copy the model with the highest validation AUC (then the lowest validation "
        "loss) to --out.",
    )
    p.add_argument("models", type=Path, nargs="+", help="model files written by deeprc train")
    p.add_argument("--out", type=Path, required=True, help="model file to write")
    p.set_defaults(run=_run_select_model)


def _run_select_model(args: argparse.Namespace) -> None:
    import shutil

    from deeprc.atomic import atomic_file
    from deeprc.model.files import select_model

    chosen, scores = select_model(args.models)
    for score in scores:
        mark = "*" if score["model"] == str(chosen) else " "
        print(
            f"{mark} {score['model']}: validation AUC {score['val_auc']:.3f}, "
            f"loss {score['val_loss']:.3f} (step {score['step']})"
        )
    with atomic_file(args.out, inputs=args.models) as tmp:
        shutil.copyfile(chosen, tmp)
    print(f"-> {args.out}")


def _device(name: str):
    """``auto`` means CUDA when PyTorch sees a GPU, else the CPU."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="score whole repertoires and write per-sequence attention",
        description="Stream each repertoire through the model in chunks; write predictions.tsv "
        "and attention.parquet.",
    )
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--folds", type=Path, help="with --fold: predict that fold's test set")
    p.add_argument("--fold", type=int)
    p.add_argument("--chunk", type=int, default=20_000, help="sequences per chunk (%(default)s)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> None:
    import torch

    from deeprc.model.files import load_model
    from deeprc.predict import predict, repertoires_to_score
    from deeprc.split import read_folds
    from deeprc.store import Store

    torch.set_num_threads(args.threads)
    store = Store(args.store)
    if (args.folds is None) != (args.fold is None):
        raise InputError("--folds and --fold go together")
    model, saved = load_model(args.model)
    test = read_folds(args.folds, store, args.fold)["test"] if args.folds is not None else None
    repertoires, in_training = repertoires_to_score(store, saved, test, args.model, args.fold)
    if in_training:
        print(
            f"note: {in_training} of the scored repertoires were in the model's training or "
            "validation set; their scores are not test results",
            file=sys.stderr,
        )
    model.to(_device(args.device))
    provenance = {"model": str(args.model), "fold": args.fold}
    provenance |= {k: saved.get(k) for k in ("experiment", "steps", "deeprc_version")}
    provenance["model_store_fingerprint"] = saved["store_fingerprint"]
    provenance["store_fingerprint"] = store.manifest["fingerprint"]
    provenance["scored_training_repertoires"] = in_training
    inputs = [args.store, args.model] + ([args.folds] if args.folds is not None else [])
    predictions = predict(
        model, store, repertoires, args.out, chunk=args.chunk, provenance=provenance,
        overwrite=args.overwrite, inputs=inputs,
    )  # fmt: skip
    print(f"{len(predictions)} repertoires scored -> {args.out}")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="cross-validated metrics (ROC AUC, PR AUC, balanced accuracy) from fold predictions",
        description="Read predictions.tsv of each fold and write metrics.json: per fold and "
        "mean +- sd over folds.",
    )
    p.add_argument("predictions", type=Path, nargs="+", help="prediction directories, one a fold")
    p.add_argument("--out", type=Path, required=True, help="metrics.json to write")
    p.add_argument("--threshold", type=float, default=0.5, help="score threshold (%(default)s)")
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> None:
    from deeprc.evaluate import evaluate_folds, summary_lines

    result = evaluate_folds(args.predictions, args.out, threshold=args.threshold)
    print("\n".join(summary_lines(result)))
    print(f"-> {args.out}")


def _add_baseline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "baseline",
        help="a simple baseline on one fold (k-mer logistic regression, MinMax SVM, Emerson)",
        description="Fit a baseline on the fold's train and validation repertoires and score "
        "its test repertoires; writes predictions.tsv in deeprc predict's format.",
    )
    p.add_argument("name", help="kmer3_logistic, kmer4_logistic, minmax_svm or emerson_burden")
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--folds", type=Path, required=True, help="from deeprc split")
    p.add_argument("--fold", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(run=_run_baseline)


def _run_baseline(args: argparse.Namespace) -> None:
    import numpy as np

    from deeprc.baselines import run_baseline
    from deeprc.split import read_folds
    from deeprc.store import Store

    store = Store(args.store)
    roles = read_folds(args.folds, store, args.fold)
    train = np.concatenate([roles["train"], roles["validation"]])
    predictions = run_baseline(
        args.name, store, train, roles["test"], args.out, seed=args.seed,
        overwrite=args.overwrite, inputs=[args.store, args.folds],
    )  # fmt: skip
    print(f"{args.name}: {len(predictions)} repertoires scored -> {args.out}")


def _add_interpret(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpret",
        help="per-position contributions of the top-attended sequences, motifs, PWMs",
        description="For each fold: the most attended test sequences (by attention score), "
        "integrated gradients of their scores over the residues, then the motifs that carry "
        "the contributions across folds. With --truth (a simulated cohort's directory): "
        "precision of the top sequences, attention AUC and the implanted motifs' ranks.",
    )
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--models", type=Path, nargs="+", required=True, help="one model per fold")
    p.add_argument(
        "--predictions", type=Path, nargs="+", required=True, help="that fold's predictions"
    )
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--top", type=int, default=100, help="sequences per fold (%(default)s)")
    p.add_argument("--steps", type=int, default=64, help="integration steps (%(default)s)")
    p.add_argument("--truth", type=Path, help="simulated cohort directory (truth.tsv)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(run=_run_interpret)


def _run_interpret(args: argparse.Namespace) -> None:
    from deeprc.interpret import interpret
    from deeprc.model.files import load_model
    from deeprc.store import Store

    models = [load_model(path)[0] for path in args.models]
    summary = interpret(
        Store(args.store), models, args.predictions, args.out,
        top=args.top, steps=args.steps, truth_dir=args.truth, overwrite=args.overwrite,
        inputs=[args.store, *args.models, *args.predictions, *([args.truth] if args.truth else [])],
    )  # fmt: skip
    print("top motifs: " + ", ".join(summary["motifs"]))
    if "ground_truth" in summary:
        truth = summary["ground_truth"]
        for key, value in truth["mean"].items():
            print(f"{key:<18} {value:.3f}")
        for motif, rank in truth["implanted_motif_rank"].items():
            print(f"implanted {motif}: rank {rank if rank else 'not among the mined motifs'}")
    print(f"-> {args.out}")


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML report (results, baselines, top sequences, motifs)",
        description="Write one HTML file with embedded figures: ingest summary, cross-validated "
        "results beside the baselines, ROC and PR curves, top-attended sequences, motif logos, "
        "ground-truth checks and provenance.",
    )
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--metrics", type=Path, required=True, help="metrics.json of deeprc evaluate")
    p.add_argument(
        "--baseline", action="append", default=[], metavar="NAME=METRICS",
        help="a baseline's metrics.json (repeat for each baseline)",
    )  # fmt: skip
    p.add_argument("--interpretation", type=Path, help="directory written by deeprc interpret")
    p.add_argument("--title", default="deeprc report")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    p.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> None:
    from deeprc.report import report
    from deeprc.store import Store

    baselines = {}
    for item in args.baseline:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--baseline {item!r}: write NAME=path/to/metrics.json")
        baselines[name] = Path(path)
    report(
        store=Store(args.store), metrics=args.metrics, out=args.out, baselines=baselines,
        interpretation=args.interpretation, title=args.title,
    )  # fmt: skip
    print(f"-> {args.out}")


def _add_top_sequences(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "top-sequences",
        help="print the most attended sequences of a repertoire or of the cohort",
        description="Read attention.parquet of one or more prediction directories and print "
        "the top-attended sequences.",
    )
    p.add_argument("predictions", type=Path, nargs="+", help="prediction directories")
    p.add_argument("--repertoire", help="one repertoire id (default: all repertoires together)")
    p.add_argument("-n", type=int, default=20, help="rows (%(default)s)")
    p.add_argument("--tsv", action="store_true", help="tab-separated output for other programs")
    p.set_defaults(run=_run_top_sequences)


def _run_top_sequences(args: argparse.Namespace) -> None:
    from deeprc.top import top_sequences

    top = top_sequences(args.predictions, repertoire=args.repertoire, n=args.n)
    if args.tsv:
        print(top.to_csv(sep="\t", index=False), end="")
    else:
        print(top.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deeprc", description=__doc__)
    parser.add_argument("--version", action="version", version=f"deeprc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_ingest(sub)
    _add_simulate(sub)
    _add_split(sub)
    _add_train(sub)
    _add_select_model(sub)
    _add_predict(sub)
    _add_evaluate(sub)
    _add_baseline(sub)
    _add_interpret(sub)
    _add_report(sub)
    _add_top_sequences(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's cancel, ``kill``): unwound like Ctrl-C, so clean-up runs."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    name = f"deeprc {args.command}"
    try:
        args.run(args)
    except InputError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        how = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
        print(f"{name}: stopped by {how}; no partial output was left", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except BrokenPipeError:
        # the program reading our output (e.g. head) has what it wanted: end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if not no_space(exc):
            raise
        where = exc.filename or "the output"
        print(
            f"{name}: error: no space left on the device while writing {where}; free space "
            "there or write the output to a larger disk",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
