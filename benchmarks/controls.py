"""Does the evaluation catch what it should? The negative control and the depth confound.

    python benchmarks/controls.py --out controls                     # both cohorts, split seed 0
    python benchmarks/controls.py --out controls --split-seeds 0 1 2

For each cohort (a preset of configs/simulate/) and split seed: k-fold cross-validation of
DeepRC (the packaged default experiment), the same folds trained again with the labels
shuffled within each fold's training and validation repertoires (`deeprc train
--permute-labels`, the negative control), and the `repertoire_size` baseline; then `deeprc
evaluate` (pooled AUC, bootstrap interval, permutation p-value) and `deeprc report` with the
control and the baseline, whose HTML is checked for the depth warning. Expected: on
motif_1pct the control near 0.5 and p < 0.01 for the real labels; on depth_confound
repertoire_size >= 0.9 and the warning. Steps whose output exists are skipped (resumable).
Writes OUT/controls.md and OUT/controls.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from accuracy import REPO, deeprc, mean_sd, timed_once

COHORTS = ["motif_1pct", "depth_confound"]


def run_seed(cohort: Path, seed: int, k: int, threads: int) -> dict:
    store, run = cohort / "store", cohort / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    folds = run / "folds.tsv"
    if not folds.exists():
        deeprc("split", "--store", store, "--out", folds, "--k", k, "--seed", seed)
    methods = {"deeprc": (), "negative_control": ("--permute-labels", seed)}
    for name, extra in methods.items():
        for fold in range(k):
            where = ("--store", store, "--folds", folds, "--fold", fold, "--threads", threads)
            model, pred = run / name / f"fold{fold}.pt", run / name / f"pred{fold}"
            model.parent.mkdir(exist_ok=True)
            train = ("train", *where, "--out", model, "--no-progress", *extra)
            timed_once(run / name / f"train{fold}.seconds", model, *train)
            if not pred.exists():
                deeprc("predict", *where, "--model", model, "--out", pred)
    for fold in range(k):
        out = run / "repertoire_size" / f"fold{fold}"
        if not out.exists():
            deeprc("baseline", "repertoire_size", "--store", store, "--folds", folds,
                   "--fold", fold, "--out", out)  # fmt: skip
    metrics = {}
    for name in (*methods, "repertoire_size"):
        metrics[name] = run / name / "metrics.json"
        if not metrics[name].exists():
            predictions = [run / name / (f"pred{f}" if name in methods else f"fold{f}")
                           for f in range(k)]  # fmt: skip
            deeprc("evaluate", *predictions, "--out", metrics[name])
    report = run / "report.html"
    if not report.exists():
        deeprc("report", "--store", store, "--metrics", metrics["deeprc"],
               "--baseline", f"repertoire_size={metrics['repertoire_size']}",
               "--negative-control", metrics["negative_control"], "--out", report)  # fmt: skip
    read = {name: json.loads(path.read_text()) for name, path in metrics.items()}
    return {
        name: {
            "roc_auc": [fold["roc_auc"] for fold in result["folds"]],
            "pooled": result["pooled"],
        }
        for name, result in read.items()
    } | {"depth_warning": "sequencing depth alone separates" in report.read_text()}


def _pooled(method: dict) -> str:
    block = method["pooled"]
    return f"{block['roc_auc']:.3f} [{block['ci95'][0]:.3f}, {block['ci95'][1]:.3f}]"


def table(results: dict) -> str:
    head = ["cohort", "split seed", "DeepRC ROC AUC", "pooled [95% interval]", "p vs chance",
            "negative control", "control pooled [95% interval]", "repertoire_size",
            "depth warning"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for cohort, seeds in results.items():
        for seed, run in seeds.items():
            row = [cohort, seed, mean_sd(run["deeprc"]["roc_auc"]), _pooled(run["deeprc"]),
                   f"{run['deeprc']['pooled']['p_value']:.2g}",
                   mean_sd(run["negative_control"]["roc_auc"]), _pooled(run["negative_control"]),
                   mean_sd(run["repertoire_size"]["roc_auc"]),
                   "yes" if run["depth_warning"] else "no"]  # fmt: skip
            lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cohorts", nargs="+", default=COHORTS, choices=COHORTS)
    parser.add_argument("--split-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    results_file = args.out / "controls.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for name in args.cohorts:
        cohort = args.out / name
        sim, store = cohort / "simulated", cohort / "store"
        if not sim.exists():
            config = REPO / "configs" / "simulate" / f"{name}.yaml"
            deeprc("simulate", "--config", config, "--out", sim, "--threads", args.threads)
        if not store.exists():
            deeprc("ingest", "--metadata", sim / "metadata.tsv", "--label-column", "status",
                   "--out", store, "--threads", args.threads)  # fmt: skip
        for seed in args.split_seeds:
            run = run_seed(cohort, seed, args.k, args.threads)
            results.setdefault(name, {})[str(seed)] = run
            results_file.write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "controls.md").write_text(table(results))
    print(table(results), end="")


if __name__ == "__main__":
    main()
