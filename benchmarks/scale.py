"""The workflow's stages on a CMV-shaped cohort: time, peak memory, disk and rate per stage.

    python benchmarks/scale.py --out scale --sequences 2500 25000     # 1/100 and 1/10
    python benchmarks/scale.py --out scale --sequences 250000         # full size

Emerson et al.'s cytomegalovirus cohort has ~800 repertoires of ~200,000-300,000 unique TCRβ.
For each repertoire size given, this makes 800 repertoires with ``deeprc simulate`` (OLGA's
human TRB model, so lengths and V/J usage are OLGA's; a pool of --pool-size rearrangements
shared by all repertoires; the 4-mer SLRF in 0.1% of positives' sequences), then runs each
stage as the workflow does, as its own ``deeprc`` process: simulate, ingest, split, training of
fold 0 for a fixed --steps (not to convergence), prediction of fold 0's test repertoires, the
baselines on fold 0 and interpret. Per stage: wall seconds, peak RSS of the process tree
(sampled every 10 ms; pages forked workers share are counted once per process, so this
over-states) and its anonymous part (RSS less the file pages mapped, such as the store's
memory-mapped arrays, which the kernel drops under memory pressure), the disk its output
takes, and its rate. Each stage is skipped when its result is
recorded, so a stopped run resumes; OUT/scale.md is the table and OUT/scale.json every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ingest import peak_rss  # noqa: E402

REPO = HERE.parent
BASELINES = ["kmer4_logistic", "emerson_burden", "kmer3_logistic", "minmax_svm"]


def run(command: list[str], log: Path) -> tuple[float, int, int]:
    """Wall seconds, peak tree RSS and its peak anonymous part (bytes) of one command; its
    output goes to ``log``."""
    started = time.perf_counter()
    with open(log, "w") as out:
        env = os.environ | {"DEEPRC_PROGRESS_SECONDS": "60"}
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        with peak_rss(proc) as peak:
            proc.wait()
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(command)}; see {log}")
    return time.perf_counter() - started, peak[0], peak[1]


def disk(path: Path) -> int:
    """Bytes the files under ``path`` take."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def deeprc(*args: object) -> list[str]:
    return [sys.executable, "-m", "deeprc.cli", *map(str, args)]


def stages(root: Path, n_sequences: int, args) -> list[tuple[str, list[str], Path, str, int]]:
    """(name, command, output, unit, amount) of each stage, in order; the amounts are read
    from the store once it exists."""
    data, store, folds = root / "simulated", root / "store", root / "folds.tsv"
    threads = ("--threads", args.threads)
    rows = args.repertoires * n_sequences
    test_rows = train_rows = rows
    if (store / "manifest.json").exists() and folds.exists():
        import pandas as pd

        from deeprc.split import read_folds
        from deeprc.store import Store

        s = Store(store)
        roles = read_folds(folds, s, 0)
        sizes = pd.Series(s.repertoires["n_sequences"].to_numpy())
        test_rows = int(sizes.iloc[roles["test"]].sum())
        train_rows = int(sizes.iloc[list(roles["train"]) + list(roles["validation"])].sum())
    fold = ("--store", store, "--folds", folds, "--fold", 0)
    out = [
        ("simulate", deeprc("simulate", "--config", root / "simulate.yaml", "--out", data,
                            *threads), data, "sequences", rows),
        ("ingest", deeprc("ingest", "--metadata", data / "metadata.tsv", "--out", store,
                          "--label-column", "status", *threads), store, "rows", rows),
        ("split", deeprc("split", "--store", store, "--out", folds, "--k", 5), folds,
         "repertoires", args.repertoires),
        (f"train fold 0, {args.steps} steps", deeprc("train", *fold, "--experiment",
         root / "experiment.yaml", "--out", root / "fold0.pt", *threads), root / "fold0.pt",
         "steps", args.steps),
        ("predict fold 0 (test)", deeprc("predict", *fold, "--model", root / "fold0.pt",
         "--out", root / "pred0", *threads), root / "pred0", "sequences", test_rows),
    ]  # fmt: skip
    for name in args.baselines:
        out.append(
            (f"baseline {name}", deeprc("baseline", name, *fold, "--out", root / name),
             root / name, "rows", train_rows + test_rows)
        )  # fmt: skip
    out.append(
        ("interpret fold 0", deeprc("interpret", "--store", store, "--models", root / "fold0.pt",
         "--predictions", root / "pred0", "--out", root / "interpret"), root / "interpret",
         "sequences", test_rows)
    )  # fmt: skip
    return out


def prepare(root: Path, n_sequences: int, args) -> None:
    """The simulation config and the fixed-steps experiment of one size."""
    root.mkdir(parents=True, exist_ok=True)
    total = args.repertoires * n_sequences
    simulate = {
        "n_repertoires": args.repertoires,
        "n_sequences": n_sequences,
        "pool_size": min(args.pool_size, total),
        "model": "human_T_beta",
        "seed": 1,
        "motifs": [{"name": "motif_SLRF", "motif": "SLRF", "witness_rate": 0.001}],
    }
    (root / "simulate.yaml").write_text(yaml.safe_dump(simulate, sort_keys=False))
    experiment = yaml.safe_load(args.experiment.read_text())
    experiment["train"] |= {"max_steps": args.steps, "eval_every": args.steps // 2}
    (root / "experiment.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))


def measure_size(n_sequences: int, args, results: dict) -> None:
    root = args.out / f"n{n_sequences}"
    prepare(root, n_sequences, args)
    size = results.setdefault(str(n_sequences), {"repertoires": args.repertoires, "stages": {}})
    recorded = size["stages"]
    for i in range(len(stages(root, n_sequences, args))):
        name, command, output, unit, amount = stages(root, n_sequences, args)[i]
        if name in recorded:
            continue
        print(f"{n_sequences:,} sequences x {args.repertoires}: {name} ...", flush=True)
        seconds, peak, anonymous = run(command, root / f"{i:02d}.log")
        recorded[name] = {
            "seconds": round(seconds, 2),
            "peak_rss_bytes": peak,
            "peak_anonymous_bytes": anonymous,
            "disk_bytes": disk(output),
            "unit": unit,
            "amount": amount,
            "rate": amount / seconds,
        }
        if name.startswith("train"):
            history = [json.loads(x) for x in (root / "fold0.work/train_log.jsonl").open()]
            if "validation_seconds" in history[0]:  # earlier versions did not record it
                validation = [h["validation_seconds"] for h in history]
                recorded[name]["validation_seconds"] = validation
                # history's seconds count from the first step: steps plus evaluations
                steps = history[-1]["seconds"] - sum(validation)
                recorded[name]["step_seconds"] = round(steps, 2)
        write(args.out, results)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError


def write(out: Path, results: dict) -> None:
    (out / "scale.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = []
    for n, size in results.items():
        repertoires = size["repertoires"]
        lines += [
            f"\n**{repertoires} x {int(n):,} sequences** ({repertoires * int(n):,} rows)\n",
            "| stage | seconds | rate | peak RSS (anonymous) | disk |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in size["stages"].items():
            extra = ""
            if "validation_seconds" in r:
                each = ", ".join(f"{s:.0f}" for s in r["validation_seconds"])
                extra = f" (steps {r['step_seconds']:.0f}, validations {each})"
            rate = f"{r['rate']:,.0f}" if r["rate"] >= 10 else f"{r['rate']:.2f}"
            anonymous = r.get("peak_anonymous_bytes")  # earlier runs did not record it
            memory = _size(r["peak_rss_bytes"]) + (f" ({_size(anonymous)})" if anonymous else "")
            lines.append(
                f"| {name} | {r['seconds']:,.1f}{extra} | {rate} {r['unit']}/s | {memory} | "
                f"{_size(r['disk_bytes'])} |"
            )
    (out / "scale.md").write_text("\n".join(lines).lstrip() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory (resumed if it exists)")
    parser.add_argument("--sequences", type=int, nargs="+", default=[2_500, 25_000])
    parser.add_argument("--repertoires", type=int, default=800)
    parser.add_argument("--pool-size", type=int, default=2_000_000)
    parser.add_argument("--steps", type=int, default=200, help="training steps of fold 0")
    parser.add_argument(
        "--experiment", type=Path, default=REPO / "deeprc/experiments/default.yaml",
        help="recipe trained for --steps (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--baselines", nargs="*", default=BASELINES)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "scale.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for n in args.sequences:
        measure_size(n, args, results)
    print((args.out / "scale.md").read_text())


if __name__ == "__main__":
    main()
