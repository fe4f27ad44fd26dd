"""The accuracy table of docs/model.md: DeepRC and the four baselines, k-fold CV, same folds.

    python benchmarks/accuracy.py --out accuracy                       # every cohort, seed 0
    python benchmarks/accuracy.py --out accuracy --cohorts motif_0.1pct --split-seeds 0 1 2
    python benchmarks/accuracy.py --out draws --draws 20 --seed 1     # cohorts drawn at random
    python benchmarks/accuracy.py --out targets --cohorts three_conditions \
        --targets condition:categorical severity:numeric                # targets beyond the label

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

With ``--targets`` and ``--covariates`` (``COLUMN:KIND``, as deeprc ingest takes them) the
cohorts are ingested keeping those columns; each categorical or numeric target is predicted by
the baselines of any target (k-mer regressions, depth, the covariates alone) on the same folds,
into OUT/targets.md (per target: each method's metrics, mean ± sd over the folds), and the
covariates-only baseline joins the label's baselines.
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
# the baselines of a categorical or numeric target (deeprc baseline --target)
TARGET_BASELINES = ["kmer3_regression", "kmer4_regression", "repertoire_size", "covariates"]
# what deeprc evaluate reports for each kind of target, in the table's order
TARGET_METRICS = {
    "categorical": ["roc_auc_macro", "balanced_accuracy", "brier"],
    "numeric": ["r2", "spearman", "mae"],
}


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
        targets = predicted_targets(experiment)
        if targets != ["label"]:  # one head per target: each evaluated where predict wrote it
            for i, target in enumerate(targets):
                where = [p if i == 0 else p / "targets" / target for p in predictions]
                found = evaluated(method / target, where, seconds)
                if target == "label":
                    result[name] = found
                    continue
                metrics = json.loads((method / target / "metrics.json").read_text())
                kind = metrics["target"]["kind"]
                result.setdefault("targets", {}).setdefault(target, {"kind": kind})[name] = found
            continue
        interpretation = method / "interpretation"
        if not interpretation.exists():
            interpret = ("interpret", "--store", store, "--models", *models)
            interpret += ("--predictions", *predictions, "--truth", sim, "--out", interpretation)
            deeprc(*interpret, log=method / "interpret.log")
        truth = json.loads((interpretation / "interpretation.json").read_text())["ground_truth"]
        result[name] = evaluated(method, predictions, seconds) | {
            "precision_at_100": [f["precision_at_100"] for f in truth["per_fold"]]
        }
    covariates = ["covariates"] if args.covariates else []
    for name in [*args.baselines, *covariates]:
        result[name] = baseline_run(run / name, name, store, folds, args.k)
    for spec in args.targets:
        target, kind = spec.split(":")[:2]
        if kind == "binary":
            continue  # predicted as the label is: ingest it as the label to measure it
        for name in [n for n in TARGET_BASELINES if n != "covariates" or args.covariates]:
            method = run / "targets" / target / name
            found = baseline_run(method, name, store, folds, args.k, target=target)
            result.setdefault("targets", {}).setdefault(target, {"kind": kind})[name] = found
    return result


def predicted_targets(experiment: Path) -> list[str]:
    """The targets an experiment file's model predicts, in order (``targets:``; the label
    where it names none)."""
    entries = (yaml.safe_load(experiment.read_text()) or {}).get("targets")
    return [entry["name"] for entry in entries] if entries else ["label"]


def baseline_run(
    method: Path, name: str, store: Path, folds: Path, k: int, target: str | None = None
) -> dict:
    """A baseline on every fold (of the label, or of ``target``), then evaluated."""
    method.mkdir(parents=True, exist_ok=True)
    outputs = [method / f"fold{i}" for i in range(k)]
    chosen = ("--target", target) if target else ()
    seconds = [
        timed_once(
            method / f"fold{i}.seconds",
            out,
            *("baseline", name, "--store", store, "--folds", folds, "--fold", i, "--out", out),
            *chosen,
        )
        for i, out in enumerate(outputs)
    ]
    return evaluated(method, outputs, seconds)


def evaluated(method: Path, predictions: list[Path], seconds: list[float]) -> dict:
    metrics = method / "metrics.json"
    if not metrics.exists():
        deeprc("evaluate", *predictions, "--out", metrics)
    found = json.loads(metrics.read_text())
    kind = found.get("target", {}).get("kind", "binary")
    names = TARGET_METRICS.get(kind, ["roc_auc", "balanced_accuracy"])
    return {name: [fold[name] for fold in found["folds"]] for name in names} | {"seconds": seconds}


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def precision(run: dict) -> str:
    """The top-100 precision against the ground truth; a model of several targets is not
    interpreted."""
    return mean_sd(run["precision_at_100"]) if "precision_at_100" in run else "-"


def table(results: dict) -> str:
    """One row per cohort and split seed: each method's mean ± sd ROC AUC over the folds (the
    lowest fold in brackets; "-" where it was not run), the best baseline, and each DeepRC
    recipe's seconds per fold and top-100 precision. The methods are those in ``results``; the
    covariates-only baseline reads no repertoire, so it is never the best baseline."""
    runs = [run for seeds in results.values() for run in seeds.values()]
    names = list(dict.fromkeys(name for run in runs for name in run if name != "targets"))
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
            ran = [n for n in baselines if n in result and n != "covariates"]
            best = max(ran, key=lambda n: statistics.mean(result[n]["roc_auc"]), default=None)
            row.append(f"{best} {statistics.mean(result[best]['roc_auc']):.3f}" if best else "-")
            for name in experiments:
                run = result.get(name)
                row += (
                    [f"{statistics.mean(run['seconds']):.0f}", precision(run)]
                    if run
                    else ["-", "-"]
                )
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def targets_table(results: dict) -> str:
    """One row per cohort, split seed, target and method: each metric's mean ± sd over the
    folds (deeprc evaluate's; for a numeric target R², Spearman and MAE)."""
    lines = []
    for cohort, seeds in results.items():
        for seed, result in seeds.items():
            for target, methods in result.get("targets", {}).items():
                kind = methods["kind"]
                metrics = TARGET_METRICS[kind]
                lines += [
                    f"**{cohort}**, split seed {seed}, target `{target}` ({kind})", "",
                    "| method | " + " | ".join(metrics) + " | s/fold |",
                    "|---|" + "---|" * (len(metrics) + 1),
                ]  # fmt: skip
                for name, run in methods.items():
                    if name == "kind":
                        continue
                    cells = [mean_sd([v for v in run[m] if v == v]) for m in metrics]
                    seconds = f"{statistics.mean(run['seconds']):.0f}"
                    lines.append(f"| {name} | " + " | ".join(cells) + f" | {seconds} |")
                lines.append("")
    return "\n".join(lines)


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
    parser.add_argument(
        "--targets", nargs="*", default=[], metavar="COLUMN:KIND",
        help="metadata columns kept as targets (deeprc ingest --target), each predicted by "
        "the baselines of any target",
    )  # fmt: skip
    parser.add_argument(
        "--covariates", nargs="*", default=[], metavar="COLUMN:KIND",
        help="metadata columns kept as covariates (deeprc ingest --covariate): the "
        "covariates-only baseline joins the others",
    )  # fmt: skip
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
        kept = [f for spec in args.targets for f in ("--target", spec)]
        kept += [f for spec in args.covariates for f in ("--covariate", spec)]
        if not store.exists():
            source = ("--metadata", sim / "metadata.tsv", "--label-column", "status")
            deeprc("ingest", *source, *kept, "--out", store, "--threads", args.threads)
        check_kept(store, args)
        for seed in args.split_seeds:
            ran = run_seed(cohort, seed, args, experiments)  # methods not run now are kept
            results.setdefault(name, {}).setdefault(str(seed), {}).update(ran)
            write_results(args.out, results)
        print(table({name: results[name]}), flush=True)
        if args.draws:
            write_text(args.out / "draws.md", draws_table(results, presets, args))


def check_kept(store: Path, args) -> None:
    """Stop when an existing store lacks a target or covariate asked for (it was ingested by
    an earlier run without it): its folds and results would not be this run's."""
    manifest = json.loads((store / "manifest.json").read_text())
    for role, specs in (("targets", args.targets), ("covariates", args.covariates)):
        have = {entry["column"] for entry in manifest.get(role, [])}
        missing = [spec for spec in specs if spec.split(":")[0] not in have]
        if missing:
            sys.exit(f"{store} was ingested without {role} {missing}: give another --out")


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
    names = list(dict.fromkeys(n for *_, result in rows for n in result if n != "targets"))
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
        mean = {n: statistics.mean(result[n]["roc_auc"]) for n in names if n in result}
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
    if targets := targets_table(results):
        write_text(out / "targets.md", targets)


def write_text(path: Path, text: str) -> None:
    """Write through a temporary file, so that a stopped run leaves the old file whole."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


if __name__ == "__main__":
    main()
