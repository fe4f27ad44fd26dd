"""The ``deeprc`` command: one sub-command per stage, each a thin shell over a library function."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from deeprc import __version__
from deeprc.atomic import no_space
from deeprc.config import add_flags, flags_over_file
from deeprc.errors import InputError
from deeprc.ingest.options import IngestOptions

__all__ = ["main"]


class _RegistryNames:
    """The names of a registry, read on first use: choices for a command without importing
    the registry's heavy module (scikit-learn, PyTorch) for every other command."""

    def __init__(self, module: str, registry: str) -> None:
        self.module, self.registry = module, registry

    def _names(self) -> list[str]:
        return sorted(getattr(importlib.import_module(self.module), self.registry))

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())


# ----------------------------------------------------------------------------- shared options


def _store() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--store", type=Path, required=True, help="store written by deeprc ingest")
    return p


def _fold(*, required: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--folds", type=Path, required=required, help="folds table of deeprc split")
    p.add_argument("--fold", type=int, required=required, help="fold number (from 0)")
    return p


def _threads() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1,
        help="CPU threads: worker processes, or PyTorch's threads (default: all, %(default)s)",
    )  # fmt: skip
    return p


def _device() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto",
        help="auto: CUDA when PyTorch sees a GPU, else the CPU (%(default)s)",
    )  # fmt: skip
    return p


def _overwrite() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace an output this command wrote before (never anything deeprc did not make)",
    )  # fmt: skip
    return p


def _torch_device(name: str):
    """``auto`` means CUDA when PyTorch sees a GPU, else the CPU."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


# ----------------------------------------------------------------------------- commands


def _add_ingest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        parents=[_threads(), _overwrite()],
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
    p.add_argument(
        "--options",
        type=Path,
        help="YAML file of the row filters below (a dataset's ingest: block; - reads standard "
        "input); flags given here override it",
    )
    add_flags(p.add_argument_group("row filters and policies"), IngestOptions)
    p.set_defaults(run=_run_ingest)


def _run_ingest(args: argparse.Namespace) -> None:
    from deeprc.ingest import DROP_REASONS, ingest

    report = ingest(
        args.metadata,
        args.out,
        label_column=args.label_column,
        id_column=args.id_column,
        file_column=args.file_column,
        data_dir=args.data_dir,
        positive_label=args.positive_label,
        options=flags_over_file(IngestOptions, args, args.options),
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
        parents=[_threads(), _overwrite()],
        help="simulated cohort with implanted signals: AIRR files, metadata, ground truth",
        description="Draw background repertoires from an OLGA model (or resample the real "
        "rearrangements of the config's background file), implant motifs and public "
        "clonotypes, and write AIRR files, metadata.tsv and the ground truth (truth.tsv).",
    )
    p.add_argument("--config", type=Path, required=True, help="YAML, e.g. configs/simulate/*.yaml")
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--seed", type=int, help="overrides the config's seed")
    p.set_defaults(run=_run_simulate)


def _run_simulate(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from deeprc.config import load
    from deeprc.simulate import SimulationConfig, simulate

    cfg = load(SimulationConfig, args.config)
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    inputs = [args.config]
    if cfg.background is not None:
        cfg = replace(cfg, background=str(args.config.parent / cfg.background))
        inputs.append(Path(cfg.background))
    summary = simulate(cfg, args.out, threads=args.threads, overwrite=args.overwrite, inputs=inputs)
    print(f"{cfg.n_repertoires} repertoires x {cfg.n_sequences} sequences -> {args.out}")
    for name, n in summary["n_implanted"].items():
        print(f"  signal {name:<20} implanted in {n:>9,} sequences")


def _add_split(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "split",
        parents=[_store()],
        help="stratified k-fold cross-validation folds with an inner validation split",
        description="Write folds.tsv: one row per (fold, repertoire) with role train, "
        "validation or test.",
    )
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
    from deeprc.split import split_store
    from deeprc.store import Store

    store = Store(args.store)
    folds = split_store(
        store, args.out, k=args.k, validation_fraction=args.validation_fraction,
        seed=args.seed, test_ids=args.test_ids,
    )  # fmt: skip
    n_folds = folds["fold"].nunique()
    print(f"{n_folds} fold(s) of {len(store.repertoires)} repertoires -> {args.out}")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        parents=[_store(), _fold(required=True), _threads(), _device()],
        help="train DeepRC on one fold (resumes from its checkpoint when restarted)",
        description="Train on the fold's train repertoires, select the model by validation AUC.",
    )
    p.add_argument("--experiment", type=Path, required=True, help="configs/experiments/*.yaml")
    p.add_argument("--out", type=Path, required=True, help="model file to write (.pt)")
    p.add_argument("--seed", type=int, help="overrides the experiment's train.seed")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> None:
    from dataclasses import replace

    import torch

    from deeprc.config import load
    from deeprc.split import read_folds
    from deeprc.store import Store
    from deeprc.train import Experiment, train_fold

    experiment = load(Experiment, args.experiment)
    if args.seed is not None:
        experiment = replace(experiment, train=replace(experiment.train, seed=args.seed))
    torch.set_num_threads(args.threads)
    store = Store(args.store)
    state = train_fold(
        experiment, store, read_folds(args.folds, store, args.fold), args.out,
        device=_torch_device(args.device), progress=not args.no_progress,
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
    from deeprc.model.files import select_model

    chosen, scores = select_model(args.models, args.out)
    for score in scores:
        mark = "*" if score["model"] == str(chosen) else " "
        print(
            f"{mark} {score['model']}: validation AUC {score['val_auc']:.3f}, "
            f"loss {score['val_loss']:.3f} (step {score['step']})"
        )
    print(f"-> {args.out}")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        parents=[_store(), _fold(required=False), _threads(), _device(), _overwrite()],
        help="score whole repertoires and write per-sequence attention",
        description="Stream each repertoire through the model in chunks; write predictions.tsv "
        "and attention.parquet. With --folds and --fold: that fold's test set, else every "
        "repertoire of the store.",
    )
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--chunk", type=int, default=20_000, help="sequences per chunk (%(default)s)")
    p.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> None:
    import torch

    from deeprc.predict import predict_with
    from deeprc.store import Store

    torch.set_num_threads(args.threads)
    predictions, in_training = predict_with(
        args.model, Store(args.store), args.out, folds=args.folds, fold=args.fold,
        chunk=args.chunk, device=_torch_device(args.device), overwrite=args.overwrite,
    )  # fmt: skip
    if in_training:
        print(
            f"note: {in_training} of the scored repertoires were in the model's training or "
            "validation set; their scores are not test results",
            file=sys.stderr,
        )
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
        parents=[_store(), _fold(required=True), _overwrite()],
        help="a simple baseline on one fold (k-mer logistic regression, MinMax SVM, Emerson)",
        description="Fit a baseline on the fold's train and validation repertoires and score "
        "its test repertoires; writes predictions.tsv in deeprc predict's format.",
    )
    p.add_argument(
        "name", metavar="NAME", choices=_RegistryNames("deeprc.baselines", "BASELINES"),
        help="the baseline: %(choices)s",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_run_baseline)


def _run_baseline(args: argparse.Namespace) -> None:
    import numpy as np

    from deeprc.baselines import run_baseline
    from deeprc.split import read_folds
    from deeprc.store import Store

    store = Store(args.store)
    roles = read_folds(args.folds, store, args.fold)
    predictions = run_baseline(
        args.name, store, np.concatenate([roles["train"], roles["validation"]]), roles["test"],
        args.out, seed=args.seed, overwrite=args.overwrite, inputs=[args.store, args.folds],
    )  # fmt: skip
    print(f"{args.name}: {len(predictions)} repertoires scored -> {args.out}")


def _add_interpret(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpret",
        parents=[_store(), _overwrite()],
        help="per-position contributions of the top-attended sequences, motifs, PWMs",
        description="For each fold: the most attended test sequences (by attention score), "
        "integrated gradients of their scores over the residues, then the motifs that carry "
        "the contributions across folds. With --truth (a simulated cohort's directory): "
        "precision of the top sequences, attention AUC and the implanted motifs' ranks.",
    )
    p.add_argument("--models", type=Path, nargs="+", required=True, help="one model per fold")
    p.add_argument(
        "--predictions", type=Path, nargs="+", required=True, help="that fold's predictions"
    )
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--top", type=int, default=100, help="sequences per fold (%(default)s)")
    p.add_argument("--steps", type=int, default=64, help="integration steps (%(default)s)")
    p.add_argument("--truth", type=Path, help="simulated cohort directory (truth.tsv)")
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
        parents=[_store()],
        help="one self-contained HTML report (results, baselines, top sequences, motifs)",
        description="Write one HTML file with embedded figures: ingest summary, cross-validated "
        "results beside the baselines, ROC and PR curves, top-attended sequences, motif logos, "
        "ground-truth checks and provenance.",
    )
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
    for add in (
        _add_ingest, _add_simulate, _add_split, _add_train, _add_select_model, _add_predict,
        _add_evaluate, _add_baseline, _add_interpret, _add_report, _add_top_sequences,
    ):  # fmt: skip
        add(sub)
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
