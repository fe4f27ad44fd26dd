"""The accuracy table of docs/model.md: DeepRC and the four baselines, k-fold CV, same folds.

    python benchmarks/accuracy.py --out accuracy                       # every cohort, seed 0
    python benchmarks/accuracy.py --out accuracy --cohorts motif_0.1pct --split-seeds 0 1 2
    python benchmarks/accuracy.py --out draws --draws 20 --seed 1     # cohorts drawn at random

A cohort is a preset of configs/simulate/ (simulated once, ingested once); each split seed
gives its own k folds, on which DeepRC (one experiment file per `--experiment NAME=PATH`) and
every baseline are trained and tested. Each step calls the deeprc command line and is skipped
when its output exists, so a stopped run resumes where it stopped (outputs are written to a
temporary path and renamed). Writes OUT/accuracy.md (the table) and OUT/accuracy.json (every
fold's test ROC AUC, seconds and top-100 precision); a later run with other cohorts or seeds
adds its rows to them. With ``--draws N --seed S`` the cohorts are N designs drawn at random
(benchmarks/cohort_draws.py, each written to OUT/designs/) instead of presets, and OUT/draws.md
gets one row per draw (its design, each method's mean AUC, model minus the best baseline,
seconds per fold) and the summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml
from cohort_draws import draw_design, kinds_of, summary

REPO = Path(__file__).resolve().parent.parent
COHORTS = [
    "motif_0.1pct",
    "motif_0.05pct",
    "gapped_motif",
    "multi_motif",
    "public_clonotypes",
    "hard",
]
BASELINES = [
    "kmer3_logistic", "kmer4_logistic", "minmax_svm", "emerson_burden", "repertoire_size",
    "gapped_kmer_burden",
]  # fmt: skip


def deeprc(*args: object, log: Path | None = None) -> float:
    """Run one deeprc command; its seconds. A failure stops the benchmark with its log."""
    command = [sys.executable, "-m", "deeprc.cli", *map(str, args)]
    started = time.perf_counter()
    with open(log or "/dev/null", "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")
    return round(time.perf_counter() - started, 1)


def timed_once(seconds_file: Path, output: Path, *args: object) -> float:
    """Run a command unless its seconds, kept beside its output, are; an output without them
    (the run stopped in between) is made again."""
    if not seconds_file.exists():
        if output.is_dir():
            shutil.rmtree(output)
        output.unlink(missing_ok=True)
        seconds = deeprc(*args, log=seconds_file.with_suffix(".log"))
        write_text(seconds_file, f"{seconds}\n")
    return float(seconds_file.read_text())


def run_seed(cohort: Path, seed: int, args, experiments: dict[str, Path]) -> dict:
    store, sim = cohort / "store", cohort / "simulated"
    run = cohort / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    folds = run / "folds.tsv"
    if not folds.exists():
        deeprc("split", "--store", store, "--out", folds, "--k", args.k, "--seed", seed)
    threads = ("--threads", args.threads)
    result = {}
    for name, experiment in experiments.items():
        method = run / name
        method.mkdir(exist_ok=True)
        seconds, predictions, models = [], [], []
        for k in range(args.k):
            fold = ("--store", store, "--folds", folds, "--fold", k, *threads)
            model, pred = method / f"fold{k}.pt", method / f"pred{k}"
            train = ("train", *fold, "--experiment", experiment, "--out", model, "--no-progress")
            seconds.append(timed_once(method / f"train{k}.seconds", model, *train))
            if not pred.exists():
                deeprc("predict", *fold, "--model", model, "--out", pred)
            models.append(model)
            predictions.append(pred)
        interpretation = method / "interpretation"
        if not interpretation.exists():
            interpret = ("interpret", "--store", store, "--models", *models)
            interpret += ("--predictions", *predictions, "--truth", sim, "--out", interpretation)
            deeprc(*interpret, log=method / "interpret.log")
        truth = json.loads((interpretation / "interpretation.json").read_text())["ground_truth"]
        result[name] = evaluated(method, predictions, seconds) | {
            "precision_at_100": [f["precision_at_100"] for f in truth["per_fold"]]
        }
    for name in args.baselines:
        method = run / name
        method.mkdir(exist_ok=True)
        outputs = [method / f"fold{k}" for k in range(args.k)]
        seconds = [
            timed_once(
                method / f"fold{k}.seconds",
                out,
                *("baseline", name, "--store", store, "--folds", folds, "--fold", k, "--out", out),
            )
            for k, out in enumerate(outputs)
        ]
        result[name] = evaluated(method, outputs, seconds)
    return result


def evaluated(method: Path, predictions: list[Path], seconds: list[float]) -> dict:
    metrics = method / "metrics.json"
    if not metrics.exists():
        deeprc("evaluate", *predictions, "--out", metrics)
    folds = json.loads(metrics.read_text())["folds"]
    return {
        "roc_auc": [fold["roc_auc"] for fold in folds],
        "balanced_accuracy": [fold["balanced_accuracy"] for fold in folds],
        "seconds": seconds,
    }


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def table(results: dict) -> str:
    """One row per cohort and split seed: each method's mean ± sd ROC AUC over the folds (the
    lowest fold in brackets; "-" where it was not run), the best baseline, and each DeepRC
    recipe's seconds per fold and top-100 precision. The methods are those in ``results``."""
    runs = [run for seeds in results.values() for run in seeds.values()]
    names = list(dict.fromkeys(name for run in runs for name in run))
    experiments = [n for n in names if any("precision_at_100" in run.get(n, {}) for run in runs)]
    baselines = [n for n in names if n not in experiments]
    head = ["cohort", "split seed", *experiments, *baselines, "best baseline"]
    for name in experiments:
        head += [f"{name} s/fold", f"{name} top-100 precision"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cohort, seeds in results.items():
        for seed, result in seeds.items():
            row = [cohort, seed]
            for name in experiments + baselines:
                aucs = result.get(name, {}).get("roc_auc")
                row.append(f"{mean_sd(aucs)} (min {min(aucs):.3f})" if aucs else "-")
            ran = [n for n in baselines if n in result]
            best = max(ran, key=lambda n: statistics.mean(result[n]["roc_auc"]), default=None)
            row.append(f"{best} {statistics.mean(result[best]['roc_auc']):.3f}" if best else "-")
            for name in experiments:
                run = result.get(name)
                row += (
                    [f"{statistics.mean(run['seconds']):.0f}", mean_sd(run["precision_at_100"])]
                    if run
                    else ["-", "-"]
                )
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory (resumed if it exists)")
    parser.add_argument(
        "--cohorts",
        nargs="+",
        default=COHORTS,
        help="names of configs/simulate presets, or simulation YAML files",
    )
    parser.add_argument("--draws", type=int, help="N cohorts drawn at random, not presets")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --draws")
    parser.add_argument("--split-seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--k", type=int, default=5, help="folds")
    parser.add_argument(
        "--experiment",
        action="append",
        metavar="NAME=PATH",
        help="a DeepRC recipe to measure (repeatable; default deeprc=the default experiment; "
        "none: the baselines only)",
    )
    parser.add_argument("--baselines", nargs="*", default=BASELINES)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    experiments = dict(
        item.split("=", 1)
        for item in args.experiment or [f"deeprc={REPO}/deeprc/experiments/default.yaml"]
        if item != "none"
    )
    experiments = {name: Path(path).resolve() for name, path in experiments.items()}

    saved = args.out / "accuracy.json"
    results = json.loads(saved.read_text()) if saved.exists() else {}
    presets = [
        Path(given) if given.endswith(".yaml") else REPO / "configs/simulate" / f"{given}.yaml"
        for given in args.cohorts
    ]
    if args.draws:
        presets = drawn_presets(args.out / "designs", args.draws, args.seed)
    for preset in presets:
        name = preset.stem
        cohort = args.out / name
        cohort.mkdir(parents=True, exist_ok=True)
        sim, store = cohort / "simulated", cohort / "store"
        if not sim.exists():
            deeprc("simulate", "--config", preset, "--out", sim, "--threads", args.threads)
        if not store.exists():
            source = ("--metadata", sim / "metadata.tsv", "--label-column", "status")
            deeprc("ingest", *source, "--out", store, "--threads", args.threads)
        for seed in args.split_seeds:
            ran = run_seed(cohort, seed, args, experiments)  # methods not run now are kept
            results.setdefault(name, {}).setdefault(str(seed), {}).update(ran)
            write_results(args.out, results)
        print(table({name: results[name]}), flush=True)
        if args.draws:
            write_text(args.out / "draws.md", draws_table(results, presets, args))


def drawn_presets(designs: Path, n: int, seed: int) -> list[Path]:
    """The simulation configs of draws 0..n-1 of ``seed``, written once (a rerun reads them)."""
    designs.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(n):
        path = designs / f"draw{seed}_{index:02d}.yaml"
        if not path.exists():
            write_text(path, yaml.safe_dump(draw_design(seed, index, str(REPO)), sort_keys=False))
        paths.append(path)
    return paths


def draws_table(results: dict, presets: list[Path], args) -> str:
    """One row per draw run so far (its design; each method's mean test AUC over the folds of
    the first split seed; each DeepRC recipe minus the best baseline, and its seconds per fold),
    then per recipe: the share of draws within 0.02 of the best baseline, the median
    difference, and the mean difference where the signals mix kinds. Draws where no baseline
    ran are left out."""
    rows = []
    for preset in presets:
        result = results.get(preset.stem, {}).get(str(args.split_seeds[0]))
        if result:
            rows.append((preset, yaml.safe_load(preset.read_text()), result))
    if not rows:
        return ""
    names = list(dict.fromkeys(name for *_, result in rows for name in result))
    experiments = [n for n in names if any("precision_at_100" in r.get(n, {}) for *_, r in rows)]
    baselines = [n for n in names if n not in experiments]
    rows = [row for row in rows if any(n in row[2] for n in baselines)]
    if not rows:
        return "No baseline has run on these draws: the table compares each recipe with the best.\n"
    head = ["draw", "design", "kinds", *experiments, *baselines, "best baseline"]
    head += [f"{e} - best" for e in experiments] + [f"{e} s/fold" for e in experiments]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    differences: dict[str, list[tuple[float, bool]]] = {e: [] for e in experiments}
    for preset, design, result in rows:
        mean = {name: statistics.mean(run["roc_auc"]) for name, run in result.items()}
        best = max((n for n in baselines if n in mean), key=mean.__getitem__)
        kinds = kinds_of(design)
        row = [preset.stem, summary(design), "+".join(kinds)]
        row += [f"{mean[n]:.3f}" if n in mean else "-" for n in experiments + baselines]
        row.append(f"{best} {mean[best]:.3f}")
        for e in experiments:
            if e in mean:
                differences[e].append((mean[e] - mean[best], len(kinds) > 1))
            row.append(f"{mean[e] - mean[best]:+.3f}" if e in mean else "-")
        row += [
            f"{statistics.mean(result[e]['seconds']):.0f}" if e in result else "-"
            for e in experiments
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for e, found in differences.items():
        values = [d for d, _ in found]
        mixed = [d for d, is_mixed in found if is_mixed]
        close = sum(d >= -0.02 for d in values)
        lines.append(
            f"- **{e}**: {len(values)} draws; within 0.02 of the best baseline in "
            f"{close} ({100 * close / len(values):.0f}%); "
            f"median difference {statistics.median(values):+.3f}; "
            + (
                f"mixed kinds: {len(mixed)} draws, mean {statistics.mean(mixed):+.3f}, "
                f"min {min(mixed):+.3f}"
                if mixed
                else "no draw mixes kinds"
            )
        )
    return "\n".join(lines) + "\n"


def write_results(out: Path, results: dict) -> None:
    write_text(out / "accuracy.json", json.dumps(results, indent=1) + "\n")
    write_text(out / "accuracy.md", table(results))


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file, so that a stopped run leaves the old file whole."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


if __name__ == "__main__":
    main()
