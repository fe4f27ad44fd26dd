import csv
import json
import math
import re
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

if not config:
    raise WorkflowError(
        "no configuration: run from the repository root (workflow/profiles/default then reads "
        "configs/config.yaml) or give your own with --configfile my.yaml "
        "(a template: configs/my_cohort.yaml)"
    )
validate(config, "../schemas/config.schema.yaml")
for name, entry in config["apply"].items():
    if entry["model"] not in config["datasets"]:
        raise WorkflowError(
            f"apply: {name}: model {entry['model']!r} is not a dataset; choose one of "
            f"{sorted(config['datasets'])} (its final model scores the cohort)"
        )


wildcard_constraints:
    dataset="|".join(map(re.escape, config["datasets"])),
    fold=r"\d+",
    seed=r"\d+",
    shard=r"\d+",
    group=r"\d+",
    baseline="|".join(map(re.escape, config["baselines"])) or "none",
    cohort="|".join(map(re.escape, config["apply"])) or "none",


def experiment_file():
    return config["experiment"] or str(
        Path(workflow.basedir).parent / "configs" / "experiments" / "default.yaml"
    )


def dataset(wildcards):
    return config["datasets"][wildcards.dataset]


def simulated_dir(wildcards):
    return f"results/{wildcards.dataset}/simulated"


def is_simulated(wildcards):
    return "simulate" in dataset(wildcards)


def metadata_path(wildcards):
    if is_simulated(wildcards):
        return f"{simulated_dir(wildcards)}/metadata.tsv"
    return dataset(wildcards)["metadata"]


def data_dir(wildcards):
    if is_simulated(wildcards):
        return Path(simulated_dir(wildcards))
    entry = dataset(wildcards)
    return Path(entry["data_dir"] or Path(entry["metadata"]).parent)


def ingest_inputs(wildcards):
    """A simulated dataset's directory, or a metadata table and the files it names."""
    if is_simulated(wildcards):
        return {"source": simulated_dir(wildcards)}
    return {"source": metadata_path(wildcards), "files": rearrangement_files(wildcards)}


def rearrangement_files(wildcards):
    """The files a dataset's metadata names, so that a changed file re-runs ingest."""
    entry = dataset(wildcards)
    return listed_files(entry, data_dir(wildcards), entry["ingest"])


def listed_files(entry, directory, ingest):
    """The files a metadata table names; with missing_files: skip, only those that exist
    (ingest leaves the others out)."""
    with open(entry["metadata"], newline="", encoding="utf-8") as fh:
        first = fh.readline()
        fh.seek(0)
        rows = csv.DictReader(fh, delimiter="\t" if "\t" in first else ",")
        files = [directory / row[entry["file_column"]] for row in rows]
    skip = ingest["missing_files"] == "skip"
    return [str(f) for f in files if not skip or f.is_file()]


def ingest_options(wildcards):
    """The dataset's ingest: block as it is, for deeprc ingest --options - (standard input):
    deeprc reads it into IngestOptions, so no option is listed here."""
    return json.dumps(dataset(wildcards)["ingest"])


def ingest_flags(wildcards):
    """The dataset's metadata columns and positive label, each quoted for the shell."""
    entry = dataset(wildcards)
    return metadata_flags(
        entry, data_dir(wildcards), entry.get("label_column", "status")
    )


def metadata_flags(entry, directory, label_column):
    options = [
        ("--data-dir", directory),
        ("--id-column", entry["id_column"]),
        ("--file-column", entry["file_column"]),
    ]
    if label_column is not None:
        options.append(("--label-column", label_column))
    if entry["positive_label"] is not None:
        options.append(("--positive-label", entry["positive_label"]))
    return " ".join(f"{name} {shlex.quote(str(value))}" for name, value in options)


# ----------------------------------------------------------------------------- apply: cohorts


def cohort(wildcards):
    return config["apply"][wildcards.cohort]


def cohort_data_dir(wildcards):
    entry = cohort(wildcards)
    return Path(entry["data_dir"] or Path(entry["metadata"]).parent)


def cohort_ingest(wildcards):
    """The ingest block of the dataset whose model scores the cohort: its rows are filtered
    as the model's training rows were (a simulated dataset: the defaults)."""
    return config["datasets"][cohort(wildcards)["model"]].get("ingest", {})


def cohort_inputs(wildcards):
    entry = cohort(wildcards)
    files = listed_files(
        entry,
        cohort_data_dir(wildcards),
        {"missing_files": "error"} | cohort_ingest(wildcards),
    )
    return {"metadata": entry["metadata"], "files": files}


def cohort_flags(wildcards):
    """Metadata columns; labels, where given, may be empty for some repertoires."""
    entry = cohort(wildcards)
    flags = metadata_flags(entry, cohort_data_dir(wildcards), entry["label_column"])
    return flags + (" --allow-unlabelled" if entry["label_column"] is not None else "")


def cohort_report_inputs(wildcards):
    results = f"results/apply/{wildcards.cohort}"
    inputs = {"store": f"{results}/store", "predictions": f"{results}/predictions"}
    if cohort(wildcards)["label_column"] is not None:
        inputs["metrics"] = f"{results}/metrics.json"
    return inputs


def final_model(wildcards):
    return f"results/{cohort(wildcards)['model']}/final/model.pt"


def interpret_inputs(wildcards):
    """The store, and each fold's own model beside that fold's predictions."""
    folds = range(n_folds(wildcards))
    results = f"results/{wildcards.dataset}"
    inputs = {
        "store": f"{results}/store",
        "models": [f"{results}/models/fold{k}.pt" for k in folds],
        "predictions": [f"{results}/predictions/fold{k}" for k in folds],
    }
    if is_simulated(wildcards):
        inputs["truth"] = simulated_dir(wildcards)
    return inputs


def n_folds(wildcards):
    """One fold for a fixed test cohort (test_ids), else the cross-validation's k."""
    entry = dataset(wildcards)
    return 1 if entry["test_ids"] else entry["folds"]


def split_flags(wildcards):
    entry = dataset(wildcards)
    if entry["test_ids"]:
        return f"--test-ids {shlex.quote(entry['test_ids'])}"
    return f"--k {entry['folds']}"


def truth_flag(wildcards):
    """A simulated dataset's ground truth, for deeprc interpret."""
    return (
        f"--truth {shlex.quote(simulated_dir(wildcards))}"
        if is_simulated(wildcards)
        else ""
    )


def parts(pattern, n):
    """The n jobs' outputs that a rule joins, or none when one job does the whole."""
    return [pattern.format(part=k) for k in range(n)] if n > 1 else []


def merge_flag(wildcards, input):
    """--merge and the parts' directories, or nothing: the rule then does the work itself."""
    return " ".join(["--merge", *map(shlex.quote, input.parts)]) if input.parts else ""


# Run time in minutes per GiB of input (AIRR files for ingest, the store for the rest) on a
# 2-core node: about 4x docs/benchmarks.md's rates at 2 x 10^8 rows (ingest 0.38, train 0.26
# beside its fixed steps, predict 0.35 per GiB of a fold's share, kmer4_logistic 0.55)
INGEST_MINUTES_PER_GIB = 2
TRAIN_MINUTES_PER_GIB = 1
PREDICT_MINUTES_PER_GIB = 2
BASELINE_MINUTES_PER_GIB = 3
INTERPRET_MINUTES_PER_GIB = 1


def input_gib(paths):
    """GiB of the files at paths (a directory: the files under it)."""
    total = 0
    for path in map(Path, paths):
        if path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        elif path.is_file():
            total += path.stat().st_size
    return total / 2**30


def growing_runtime(minutes_per_gib, floor, jobs=lambda wildcards: 1):
    """A run time in minutes that grows with the job's input (AIRR files or a store), at
    minutes_per_gib, shared by the jobs(wildcards) that split it, at least floor, doubled on
    a retry. The rates are docs/benchmarks.md's CMV-scale figures on a 2-core node
    with 4x room; Snakemake computes them again once the inputs exist."""

    def runtime(wildcards, input, attempt):
        share = minutes_per_gib * input_gib(input) / jobs(wildcards)
        return attempt * max(floor, math.ceil(share))

    return runtime
