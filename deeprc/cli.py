"""The ``deeprc`` command: one sub-command per stage, each a thin shell over a library function."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from deeprc import __version__, progress, shards
from deeprc.atomic import no_space
from deeprc.config import add_flags, flags_over_file
from deeprc.errors import InputError
from deeprc.ingest.options import KINDS, IngestOptions
from deeprc.split import VALIDATION_FRACTION

__all__ = ["main"]

DEFAULT_EXPERIMENT = Path(__file__).parent / "experiments" / "default.yaml"


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


def _progress() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--no-progress", action="store_true",
        help="no progress bar (on a terminal) or progress lines (in a log)",
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
        parents=[_threads(), _overwrite(), _progress()],
        help="AIRR rearrangement files + metadata -> validated, encoded store",
        description="Read AIRR rearrangement TSV(.gz) files listed in a metadata table, filter and "
        "count every dropped row by reason, and write a store (Parquet + encoded arrays).",
    )
    p.add_argument(
        "--metadata", type=Path, required=True, help="CSV or TSV, one row per repertoire"
    )
    p.add_argument("--out", type=Path, required=True, help="store directory to create")
    p.add_argument(
        "--label-column",
        help="metadata column holding the label (leave out for a cohort to score, not train on)",
    )
    p.add_argument(
        "--allow-unlabelled", action="store_true",
        help="repertoires with an empty label are kept without one (scored, never trained on)",
    )  # fmt: skip
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
    for role, what in (("target", "to predict"), ("covariate", "for the model to read")):
        binary = "; COLUMN:binary:VALUE names a binary one's positive value" * (role == "target")
        p.add_argument(
            f"--{role}", action="append", default=[], metavar="COLUMN:KIND",
            help=f"a metadata column kept beside the label, {what}; KIND is "
            f"{' or '.join(KINDS[role])}{binary} (repeatable; an empty or NA value is missing "
            "and counted)",
        )  # fmt: skip
    p.add_argument(
        "--options",
        type=Path,
        help="YAML file of the row filters below (a dataset's ingest: block; - reads standard "
        "input); flags given here override it",
    )
    cluster = p.add_argument_group("on a cluster: read the files in N jobs, then merge")
    cluster.add_argument(
        "--shard", type=_k_of_n("--shard"), metavar="K/N",
        help="read every N-th file from the K-th (K counts from 0) into a shard at --out",
    )  # fmt: skip
    cluster.add_argument(
        "--merge", type=Path, nargs="+", metavar="SHARD",
        help="join the N shard directories of --shard into the store at --out (same metadata "
        "and filters; the files are not read again)",
    )  # fmt: skip
    add_flags(p.add_argument_group("row filters and policies"), IngestOptions)
    p.set_defaults(run=_run_ingest)


def _seed(text: str) -> int:
    """A seed: a whole number from 0 (NumPy's generators take no negative seed)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: a seed is a whole number from 0")
    return int(text)


def _k_of_n(flag: str) -> Callable[[str], tuple[int, int]]:
    """The type of ``flag`` K/N (--shard, --group): :func:`deeprc.shards.parse`."""

    def k_of_n(text: str) -> tuple[int, int]:
        try:
            return shards.parse(text, flag)
        except InputError:  # argparse names the flag itself
            raise argparse.ArgumentTypeError(f"{text!r}: {shards.explained(flag)}") from None

    return k_of_n


def _run_ingest(args: argparse.Namespace) -> None:
    from deeprc.ingest import DROP_REASONS, ingest
    from deeprc.ingest.annotations import Annotation
    from deeprc.store import Store

    if args.shard and args.merge:
        raise InputError("--shard reads files into a shard, --merge joins shards: give one")

    report = ingest(
        args.metadata,
        args.out,
        label_column=args.label_column,
        id_column=args.id_column,
        file_column=args.file_column,
        data_dir=args.data_dir,
        positive_label=args.positive_label,
        allow_unlabelled=args.allow_unlabelled,
        options=flags_over_file(IngestOptions, args, args.options),
        threads=args.threads,
        overwrite=args.overwrite,
        log=lambda msg: print(msg, file=sys.stderr),
        shard=args.shard,
        merge=args.merge or (),
        annotations=[
            Annotation.parse(role, spec)
            for role in ("target", "covariate")
            for spec in getattr(args, role)
        ],  # fmt: skip
    )
    read, kept = int(report["rows_read"].sum()), int(report["rows_kept"].sum())
    shard = f" (shard {args.shard[0]}/{args.shard[1]})" if args.shard else ""
    print(f"{len(report)} repertoires -> {args.out}{shard}")
    print(f"rows read {read:>12,}")
    print(f"rows kept {kept:>12,}")
    for reason in DROP_REASONS:
        if n := int(report[reason].sum()):
            print(f"  dropped {reason:<20} {n:>12,}")
    if args.shard:
        return
    store = Store(args.out)
    if n_unlabelled := store.manifest["n_unlabelled"]:
        print(f"{n_unlabelled} repertoires have no label: they can be scored, not trained on")
    for role in ("target", "covariate"):
        for a in store.annotations(role):
            what = (
                f"range {a['min']:g} to {a['max']:g}" if a["kind"] == "numeric"
                else ", ".join(f"{c} {n}" for c, n in a["counts"].items())
            )  # fmt: skip
            print(f"{role} {a['column']} ({a['kind']}): {what}; {a['n_missing']} missing")
    print(f"per repertoire: {args.out / 'ingest_report.tsv'}")


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        parents=[_threads(), _overwrite(), _progress()],
        help="simulated cohort with implanted signals: AIRR files, metadata, ground truth",
        description="Draw background repertoires from an OLGA model (or resample the real "
        "rearrangements of the config's background file), implant motifs, public "
        "clonotypes and real antigen-specific sequences, and write AIRR files, metadata.tsv "
        "and the ground truth (truth.tsv).",
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
    epitopes = [replace(e, file=str(args.config.parent / e.file)) for e in cfg.epitope_sequences]
    cfg = replace(cfg, epitope_sequences=tuple(epitopes))
    inputs += [Path(e.file) for e in epitopes]
    summary = simulate(cfg, args.out, threads=args.threads, overwrite=args.overwrite, inputs=inputs)
    print(f"{cfg.n_repertoires} repertoires x {cfg.n_sequences} sequences -> {args.out}")
    for name, n in summary["n_implanted"].items():
        print(f"  signal {name:<20} implanted in {n:>9,} sequences")


def _add_split(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "split",
        parents=[_store(), _overwrite()],
        help="stratified k-fold cross-validation folds with an inner validation split",
        description="Write folds.tsv: one row per (fold, repertoire) with role train, "
        "validation or test.",
    )
    p.add_argument("--out", type=Path, required=True, help="folds table (TSV) to write")
    p.add_argument("--k", type=int, default=5, help="folds (%(default)s)")
    p.add_argument(
        "--validation-fraction", type=float, default=VALIDATION_FRACTION, help="(%(default)s)"
    )
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument(
        "--test-ids",
        type=Path,
        help="file of repertoire ids (one a line) forming a fixed test cohort: one fold, "
        "trained on all other repertoires (--k is then ignored)",
    )
    p.add_argument(
        "--stratify", metavar="TARGET",
        help="stratify by the label and this binary or categorical target's class (ingest "
        "--target), so that each fold tests on every class",
    )  # fmt: skip
    p.set_defaults(run=_run_split)


def _run_split(args: argparse.Namespace) -> None:
    from deeprc.split import split_store
    from deeprc.store import Store

    store = Store(args.store)
    folds = split_store(
        store, args.out, k=args.k, validation_fraction=args.validation_fraction,
        seed=args.seed, test_ids=args.test_ids, overwrite=args.overwrite, stratify=args.stratify,
    )  # fmt: skip
    n_folds = folds["fold"].nunique()
    print(f"{n_folds} fold(s) of {len(store.repertoires)} repertoires -> {args.out}")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        parents=[_store(), _fold(required=False), _threads(), _device(), _overwrite(), _progress()],
        help="train DeepRC on one fold, or the final model on all labelled repertoires "
        "(resumes from its checkpoint when restarted)",
        description="Train on the fold's train repertoires (--folds, --fold) or on all of the "
        "store's (--all, with a stratified validation part), select the model by validation AUC "
        "and calibrate it on the validation repertoires.",
    )
    p.add_argument(
        "--all", action="store_true",
        help="the final model: train on every repertoire but a validation part",
    )  # fmt: skip
    p.add_argument(
        "--validation-fraction", type=float, default=VALIDATION_FRACTION,
        help="with --all: share held out for validation (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--split-seed", type=int, default=0,
        help="with --all: seed of the validation split (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--cv-metrics", type=Path,
        help="with --all: metrics.json of this recipe's cross-validation, kept in the model file",
    )  # fmt: skip
    p.add_argument(
        "--experiment", type=Path, default=DEFAULT_EXPERIMENT,
        help="hyper-parameters, e.g. configs/experiments/*.yaml (default: the packaged "
        "deeprc/experiments/default.yaml)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="model file to write (.pt)")
    p.add_argument("--seed", type=_seed, help="overrides the experiment's train.seed")
    p.add_argument(
        "--permute-labels", type=_seed, metavar="SEED",
        help="a negative control: shuffle the labels of the training and validation "
        "repertoires with this seed before training (test labels stay true, so a sound "
        "evaluation then gives an AUC near 0.5)",
    )  # fmt: skip
    p.set_defaults(run=_run_train)


def _run_train(args: argparse.Namespace) -> None:
    from dataclasses import replace

    import torch

    from deeprc.classifier import RepertoireClassifier, cross_validation_card
    from deeprc.config import load
    from deeprc.experiment import Experiment
    from deeprc.split import final_split, read_folds
    from deeprc.store import Store

    if args.all == (args.folds is not None or args.fold is not None):
        raise InputError("give --folds and --fold (one fold), or --all (the final model)")
    if not args.all and (args.folds is None or args.fold is None):
        raise InputError("--folds and --fold go together")
    if args.cv_metrics is not None and not args.all:
        raise InputError("--cv-metrics describes a final model: it goes with --all")
    if args.permute_labels is not None and args.all:
        raise InputError("--permute-labels makes a fold's negative control: use it with --fold")
    if not 0 < args.validation_fraction < 1:
        raise InputError(f"--validation-fraction {args.validation_fraction}: a share in (0, 1)")
    experiment = load(Experiment, args.experiment)
    if args.seed is not None:
        experiment = replace(experiment, train=replace(experiment.train, seed=args.seed))
    torch.set_num_threads(args.threads)
    store = Store(args.store)
    if args.all:
        roles = final_split(
            store, validation_fraction=args.validation_fraction, seed=args.split_seed
        )
        cv = None
        if args.cv_metrics is not None:
            cv = cross_validation_card(args.cv_metrics, store, experiment)
    else:
        roles, cv = read_folds(args.folds, store, args.fold), None
    classifier = RepertoireClassifier.fit(
        store, args.out, experiment=experiment, roles=roles, device=_torch_device(args.device),
        cross_validation=cv, permute_labels=args.permute_labels, overwrite=args.overwrite,
        inputs=tuple(filter(None, [args.experiment, args.folds, args.cv_metrics])),
    )  # fmt: skip
    which = "final model" if args.all else f"fold {args.fold}"
    card = classifier.card(args.out)
    print("\n".join(_training_summary(which, experiment.train, card, args.out)))


def _weighed(weighing: dict) -> str:
    """The kept providers' standardised weights and their soft burdens' inner-CV AUC."""
    weights = ", ".join(f"{k} {v:.2f}" for k, v in weighing["weights"].items())
    if covariates := weighing.get("covariate_weights"):
        weights += "; covariates " + ", ".join(f"{k} {v:.2f}" for k, v in covariates.items())
    return f"{weights} (training repertoires' soft-burden AUC {weighing['weighed_auc']:.3f})"


def _validation_text(entry: dict) -> str:
    """A history entry's validation score: the label's AUC, or the mean of several heads'
    scores on AUC's scale with each (deeprc.heads.Heads.validation)."""
    if "val_auc" in entry:
        return f"validation AUC {entry['val_auc']:.3f}"
    each = ", ".join(f"{k[4:]} {v:.3f}" for k, v in entry.items() if k.startswith("val:"))
    return f"validation score {entry['val_score']:.3f} (the mean of {each})"


def _training_summary(which: str, cfg, card: dict, out: Path) -> list[str]:
    """How training ended, which step's model was kept, and where it went (from the model
    card, as show-model shows it)."""
    best, steps = card["best_validation"], card["steps"]
    if cfg.max_steps == 0:
        why = "no training step (train.max_steps 0): the model is the network's start"
    elif steps < cfg.max_steps:
        why = (
            f"stopped early at step {steps} of at most {cfg.max_steps}: validation "
            f"{'AUC' if 'val_auc' in best else 'score'} did not improve in {cfg.patience} "
            "evaluations in a row (train.patience)"
        )
    else:
        why = f"ran all {steps} steps (train.max_steps)"
    lines = [f"{which}: {why}"]
    if weighing := card.get("evidence_weights"):
        lines.append(f"evidence weighed by the training repertoires: {_weighed(weighing)}")
    lines.append(
        f"kept the model of step {best.get('step', '?')}: {_validation_text(best)}, "
        f"loss {best['val_loss']:.3f}"
    )
    if note := (card["calibration"] or {}).get("note"):
        lines.append(f"note: {note}")
    if (card["data"] or {}).get("permuted_labels_seed") is not None:
        lines.append("negative control: trained on shuffled labels; expect a test AUC near 0.5")
    return [*lines, f"-> {out}"]


def _add_show_model(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show-model",
        help="what a model file was trained on, with which recipe, and how well it did",
        description="Print a model file's card: the store and repertoires it was trained on, "
        "labels and positive class, encoder and hyper-parameters, training and calibration, "
        "the cross-validated metrics of its recipe (final models), version and date.",
    )
    p.add_argument("model", type=Path, help="model file (.pt)")
    p.add_argument("--json", action="store_true", help="the card as JSON")
    p.set_defaults(run=_run_show_model)


def _card_lines(card: dict) -> list[str]:
    from deeprc.evaluate import METRICS, summary_text

    data = card["data"] or {}
    model, train = card["experiment"]["model"], card["experiment"]["train"]
    lines = [
        f"model            {card['model']}",
        f"deeprc           {card['deeprc_version']}, saved {card['saved_at'] or 'unknown'}",
        f"store            {data.get('store', 'unknown')} (fingerprint "
        f"{card['store_fingerprint']})",
    ]
    if data:
        lines.append(
            f"labels           column {data['label_column']!r}, positive class "
            f"{data['positive_label']!r} of {data['classes']}"
        )
    for role in ("train", "validation"):
        counts = ""
        if f"n_{role}_positive" in data:
            counts = (
                f" ({data[f'n_{role}_positive']} positive, {data[f'n_{role}_negative']} negative)"
            )
        lines.append(f"{role:<16} {card[f'n_{role}']} repertoires{counts}")
    genes = ", ".join(f"{n} {k.upper()}" for k, n in card["genes"].items()) or "none"
    targets = ", ".join(
        f"{t['name']} ({t['kind']}{', ' + '/'.join(t['classes']) if t['classes'] else ''}, "
        f"weight {t['weight']:g})"
        for t in card["targets"]
    )
    lines += [
        f"predicts         {targets}; covariates: {', '.join(card['covariates']) or 'none'}",
        f"attention heads  {card['attention_heads']}"
        + (" (one per kept evidence provider)" if card.get("evidence_weights") else ""),
        f"encoder          {model['encoder']['name']} ({json.dumps(model, sort_keys=True)})",
        f"genes            {genes}; evidence: {', '.join(card['evidence']) or 'none'}",
    ]
    if weighing := card.get("evidence_weights"):
        aucs = ", ".join(f"{k} {v:.3f}" for k, v in weighing["soft_burden_auc"].items())
        lines.append(f"evidence weighed {_weighed(weighing)}; each alone: {aucs}")
    if pretrained := card.get("pretrained"):
        refused = ", ".join(f"{g} {n:,}" for g, n in pretrained["refused_v_genes"].items())
        lines.append(
            f"pretrained       {pretrained['variant']} vectors of "
            f"{pretrained['n_clonotypes_embedded']:,} clonotypes; "
            f"{pretrained['rows_with_refused_v']:,} rows of V genes it refuses read a learned "
            f"vector ({refused or 'none'})"
        )
    lines += [
        f"training         {json.dumps(train, sort_keys=True)}",
        f"steps            {card['steps']}, best validation {json.dumps(card['best_validation'])}",
        f"calibration      {json.dumps(card['calibration'])}",
    ]
    if data.get("permuted_labels_seed") is not None:
        lines.append(
            f"negative control labels shuffled (seed {data['permuted_labels_seed']}) within "
            "training and validation: not a model to score with"
        )
    cv = card["cross_validation"]
    if cv is None:
        lines.append(
            "cross-validation not recorded (a fold's model, or trained without --cv-metrics)"
        )
    else:
        what = "one test set" if cv["n_folds"] == 1 else f"{cv['n_folds']} folds"
        lines.append(f"cross-validation {what} ({cv['metrics']})")
        n = cv["n_folds"]
        lines += [f"  {m:<18} {summary_text(cv['summary'][m], n_folds=n)}" for m in METRICS]
    return lines


def _run_show_model(args: argparse.Namespace) -> None:
    from deeprc.classifier import RepertoireClassifier

    card = RepertoireClassifier.load(args.model).card(args.model)
    print(json.dumps(card, indent=2) if args.json else "\n".join(_card_lines(card)))


def _add_select_model(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "select-model",
        parents=[_overwrite()],
        help="keep the best of several training runs (seeds) of one fold",
        description="Copy the model with the highest validation score (the label's AUC, or the "
        "mean of its targets' scores; then the lowest validation loss) to --out.",
    )
    p.add_argument("models", type=Path, nargs="+", help="model files written by deeprc train")
    p.add_argument("--out", type=Path, required=True, help="model file to write")
    p.set_defaults(run=_run_select_model)


def _run_select_model(args: argparse.Namespace) -> None:
    from deeprc.classifier import RepertoireClassifier

    chosen, scores = RepertoireClassifier.select(args.models, args.out, overwrite=args.overwrite)
    for score in scores:
        mark = "*" if score["model"] == str(chosen) else " "
        print(
            f"{mark} {score['model']}: {_validation_text(score)}, "
            f"loss {score['val_loss']:.3f} (step {score['step']})"
        )
    print(f"-> {args.out}")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        parents=[_store(), _fold(required=False), _threads(), _device(), _overwrite(), _progress()],
        help="score whole repertoires and write per-sequence attention",
        description="Stream each repertoire through the model in chunks; write predictions.tsv "
        "and attention.parquet. With --folds and --fold: that fold's test set, else every "
        "repertoire of the store.",
    )
    p.add_argument(
        "--model", type=Path, required=True,
        help="model file of deeprc train (a fold's model, or a final model for a new cohort)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument(
        "--chunk", type=int, default=argparse.SUPPRESS,
        help="sequences embedded at once (default: deeprc.data.CHUNK, 20000)",
    )  # fmt: skip
    cluster = p.add_argument_group("on a cluster: score the repertoires in N jobs, then merge")
    cluster.add_argument(
        "--group", type=_k_of_n("--group"), metavar="K/N",
        help="score every N-th repertoire from the K-th (K counts from 0) into --out",
    )  # fmt: skip
    cluster.add_argument(
        "--merge", type=Path, nargs="+", metavar="GROUP",
        help="join the N group directories of --group (same model, store and fold) into --out",
    )  # fmt: skip
    p.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> None:
    import torch

    from deeprc.predict import predict_with
    from deeprc.store import Store

    if args.group and args.merge:
        raise InputError("--group scores a group, --merge joins groups: give one")
    # one repertoire per thread, each op on one core: faster than two cores per op
    store = Store(args.store)
    workers = max(1, min(args.threads, len(store.repertoires)))
    torch.set_num_threads(max(1, args.threads // workers))
    predictions, in_training, provenance = predict_with(
        args.model, store, args.out, folds=args.folds, fold=args.fold,
        workers=workers, device=_torch_device(args.device), overwrite=args.overwrite,
        group=args.group, merge=args.merge or (),
        **({"chunk": args.chunk} if "chunk" in args else {}),
    )  # fmt: skip
    for key, unseen in provenance["unknown_genes"].items():
        if unseen:
            names = ", ".join(list(unseen)[:5]) + (" ..." if len(unseen) > 5 else "")
            print(
                f"note: {sum(unseen.values())} sequences carry {len(unseen)} {key.upper()} "
                f"gene(s) the model never saw ({names}); they are read as no call",
                file=sys.stderr,
            )
    if calibration_note := (provenance.get("calibration") or {}).get("note"):
        print(f"note: {calibration_note}", file=sys.stderr)
    if in_training:
        print(
            f"note: {in_training} of the scored repertoires were in the model's training or "
            "validation set; their scores are not test results",
            file=sys.stderr,
        )
    done = "joined" if args.merge else "scored"
    print(f"{len(predictions)} repertoires {done} -> {args.out}")


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        parents=[_overwrite()],
        help="cross-validated metrics (ROC AUC, PR AUC, balanced accuracy) from fold predictions",
        description="Read predictions.tsv of each fold and write metrics.json: per fold and "
        "mean +- sd over folds.",
    )
    p.add_argument("predictions", type=Path, nargs="+", help="prediction directories, one a fold")
    p.add_argument("--out", type=Path, required=True, help="metrics.json to write")
    p.add_argument("--threshold", type=float, default=0.5, help="score threshold (%(default)s)")
    p.add_argument(
        "--compare", action="append", default=[], metavar="NAME=METRICS",
        help="another method's metrics.json on the same folds: records this minus NAME's pooled "
        "ROC AUC with a paired bootstrap interval (repeat for each method)",
    )  # fmt: skip
    p.add_argument(
        "--seed", type=_seed, default=0,
        help="seed of the bootstrap draws and label permutations (%(default)s)",
    )  # fmt: skip
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> None:
    from deeprc.evaluate import evaluate_folds, pooled_lines, summary_lines

    compare = {}
    for item in args.compare:
        name, sep, path = item.partition("=")
        if not sep or not name or not path or name in compare:
            raise InputError(f"--compare {item!r}: write NAME=path/to/metrics.json, one per name")
        compare[name] = Path(path)
    result = evaluate_folds(
        args.predictions, args.out, threshold=args.threshold, compare=compare, seed=args.seed,
        overwrite=args.overwrite,
    )  # fmt: skip
    print("\n".join(summary_lines(result) + pooled_lines(result)))
    print(f"-> {args.out}")


def _add_baseline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "baseline",
        parents=[_store(), _fold(required=True), _overwrite(), _progress()],
        help="a simple baseline on one fold (k-mer logistic regression, MinMax SVM, Emerson)",
        description="Fit a baseline on the fold's train and validation repertoires and score "
        "its test repertoires; writes predictions.tsv in deeprc predict's format.",
    )
    p.add_argument(
        "name", metavar="NAME", choices=_RegistryNames("deeprc.baselines", "BASELINE_NAMES"),
        help="the baseline: %(choices)s",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--target", metavar="NAME",
        help="a target the store keeps (ingest --target) instead of the label; a categorical "
        "or numeric one takes kmer3_regression, kmer4_regression, covariates or "
        "repertoire_size",
    )  # fmt: skip
    p.set_defaults(run=_run_baseline)


def _run_baseline(args: argparse.Namespace) -> None:
    import numpy as np

    from deeprc.baselines import run_baseline
    from deeprc.split import read_folds
    from deeprc.store import Store
    from deeprc.targets import Target

    store = Store(args.store)
    roles = read_folds(args.folds, store, args.fold)
    predictions = run_baseline(
        args.name, store, np.concatenate([roles["train"], roles["validation"]]), roles["test"],
        args.out, seed=args.seed, overwrite=args.overwrite, inputs=[args.store, args.folds],
        fold=args.fold, target=Target.of(store, args.target),
    )  # fmt: skip
    print(f"{args.name}: {len(predictions)} repertoires scored -> {args.out}")


def _add_interpret(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "interpret",
        parents=[_store(), _overwrite(), _progress()],
        help="per-position contributions of the top-attended sequences, motifs, PWMs",
        description="For each fold: the most attended test sequences (by attention score), "
        "integrated gradients of their scores over the residues, then the motifs that carry "
        "the contributions across folds. With --truth (a simulated cohort's directory): "
        "precision of the top sequences, attention AUC and the implanted motifs' ranks.",
    )
    p.add_argument(
        "--models", type=Path, nargs="+", required=True,
        help="one model per fold (or the final model of a scored cohort)",
    )  # fmt: skip
    p.add_argument(
        "--predictions", type=Path, nargs="+", required=True,
        help="each model's predictions (a fold's test set, or the scored cohort)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, required=True, help="directory to create")
    p.add_argument("--top", type=int, default=100, help="sequences per fold (%(default)s)")
    p.add_argument("--steps", type=int, default=64, help="integration steps (%(default)s)")
    p.add_argument("--truth", type=Path, help="simulated cohort directory (truth.tsv)")
    p.set_defaults(run=_run_interpret)


def _run_interpret(args: argparse.Namespace) -> None:
    from deeprc.classifier import RepertoireClassifier
    from deeprc.interpret import interpret
    from deeprc.store import Store

    models = [RepertoireClassifier.load(path) for path in args.models]
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
        parents=[_store(), _overwrite()],
        help="one self-contained HTML report (results, baselines, top sequences, motifs)",
        description="Write one HTML file with embedded figures: ingest summary, cross-validated "
        "results beside the baselines, ROC and PR curves, top-attended sequences, motif logos, "
        "ground-truth checks and provenance.",
    )
    p.add_argument(
        "--metrics", type=Path,
        help="metrics.json of deeprc evaluate (with --predictions: of those predictions)",
    )  # fmt: skip
    p.add_argument(
        "--predictions", type=Path,
        help="a cohort scored by a trained model (deeprc predict): report its scores instead "
        "of a cross-validation",
    )  # fmt: skip
    p.add_argument(
        "--baseline", action="append", default=[], metavar="NAME=METRICS",
        help="a baseline's metrics.json (repeat for each baseline)",
    )  # fmt: skip
    p.add_argument("--interpretation", type=Path, help="directory written by deeprc interpret")
    p.add_argument(
        "--negative-control", type=Path, metavar="METRICS",
        help="metrics.json of the model retrained with shuffled training labels (deeprc train "
        "--permute-labels), shown beside the real result",
    )  # fmt: skip
    p.add_argument(
        "--repeat", nargs=3, action="append", default=[],
        metavar=("SPLIT_SEED", "METHOD", "METRICS"),
        help="the same cross-validation split with another seed: METHOD is deeprc (the model) "
        "or a --baseline's NAME (repeat for each seed and method)",
    )  # fmt: skip
    p.add_argument(
        "--split-seed", type=int, default=0,
        help="split seed of the folds of --metrics and --baseline (%(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--target", nargs=2, action="append", default=[], metavar=("METHOD", "METRICS"),
        help="metrics.json of a target beyond the label (deeprc evaluate of its predictions), "
        "METHOD deeprc (the model) or a baseline's name (repeat for each target and method)",
    )  # fmt: skip
    p.add_argument("--title", default="deeprc report")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    p.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> None:
    from deeprc.report import report, scoring_report
    from deeprc.store import Store

    if args.predictions is not None:
        if args.baseline or args.negative_control or args.repeat or args.target:
            raise InputError(
                "--baseline, --negative-control, --repeat and --target belong to a "
                "cross-validation report"
            )
        scoring_report(
            store=Store(args.store), predictions=args.predictions, metrics=args.metrics,
            interpretation=args.interpretation, out=args.out, title=args.title,
            overwrite=args.overwrite,
        )  # fmt: skip
        print(f"-> {args.out}")
        return
    if args.metrics is None:
        raise InputError("give --metrics (a cross-validation) or --predictions (a scored cohort)")

    baselines = {}
    for item in args.baseline:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"--baseline {item!r}: write NAME=path/to/metrics.json")
        if name in baselines:
            raise InputError(f"--baseline {name} is given twice; give each baseline once")
        baselines[name] = Path(path)
    report(
        store=Store(args.store), metrics=args.metrics, out=args.out, baselines=baselines,
        interpretation=args.interpretation, title=args.title,
        negative_control=args.negative_control, repeats=args.repeat, split_seed=args.split_seed,
        targets=[(method, Path(path)) for method, path in args.target], overwrite=args.overwrite,
    )  # fmt: skip
    print(f"-> {args.out}")


def _add_rank_sequences(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rank-sequences",
        parents=[_overwrite()],
        help="the cohort's unique clonotypes ranked by the model's evidence for the label",
        description="Rank the unique (junction_aa, v_call, j_call) of scored repertoires by "
        "their largest attention score, with how many positive, negative and unlabelled "
        "repertoires carry each; with --truth, the Jaccard index and precision of the top N "
        "against the implanted signal.",
    )
    p.add_argument("predictions", type=Path, nargs="+", help="prediction directories")
    p.add_argument("--out", type=Path, required=True, help="TSV to write")
    p.add_argument("--truth", type=Path, help="a simulated cohort's directory (deeprc simulate)")
    p.add_argument("--top", type=int, help="N for --truth (default: the signal set's size)")
    p.set_defaults(run=_run_rank_sequences)


def _run_rank_sequences(args: argparse.Namespace) -> None:
    from deeprc.atomic import atomic_file, check_file_output
    from deeprc.outputs import write_tsv
    from deeprc.rank import rank_sequences

    inputs = [*args.predictions, *filter(None, [args.truth])]
    ranking = {"kind": "ranking", "overwrite": args.overwrite, "inputs": inputs}
    recovering = {"kind": "recovery", "overwrite": args.overwrite, "inputs": inputs}
    recovery_out = args.out.with_suffix(".recovery.json")
    check_file_output(args.out, **ranking)  # both outputs, before the work
    if args.truth is not None:
        check_file_output(recovery_out, **recovering)
    ranked, recovery = rank_sequences(args.predictions, truth=args.truth, top=args.top)
    with atomic_file(args.out, **ranking) as tmp:
        write_tsv(tmp, ranked)
    print(f"{len(ranked)} clonotypes ranked -> {args.out}")
    if recovery is not None:
        print(
            f"top {recovery['top']} against {recovery['n_signal']} signal clonotypes: "
            f"precision {recovery['precision_at_top']:.3f}, Jaccard {recovery['jaccard']:.3f}"
        )
        with atomic_file(recovery_out, **recovering) as tmp:
            tmp.write_text(json.dumps(recovery, indent=2) + "\n")


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
    from deeprc.outputs import read_provenance
    from deeprc.top import top_sequences

    models = {(read_provenance(d) or {}).get("model") for d in args.predictions}
    if len(models) > 1 and args.repertoire is None:
        print(
            f"note: these predictions come from {len(models)} models (one per fold?), whose "
            "attention scores are on their own scales; the ranking across them is rough. "
            "Give one model's predictions for a ranking that means what it says.",
            file=sys.stderr,
        )
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
        _add_show_model, _add_rank_sequences,
    ):  # fmt: skip
        add(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's cancel, ``kill``): unwound like Ctrl-C, so clean-up runs."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help(sys.stderr)  # a newcomer's first try: show the commands
        return 2
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    progress.enabled = not getattr(args, "no_progress", False)
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
    finally:
        progress.enabled = True  # a caller's later stages (main called in-process) show theirs
    return 0


if __name__ == "__main__":
    sys.exit(main())
