import csv
import json
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


wildcard_constraints:
    dataset="|".join(map(re.escape, config["datasets"])),
    fold=r"\d+",
    seed=r"\d+",
    baseline="|".join(map(re.escape, config["baselines"])) or "none",


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
    """The files the metadata names, so that a changed file re-runs ingest; with
    missing_files: skip, only those that exist (ingest leaves the others out)."""
    entry = dataset(wildcards)
    with open(entry["metadata"], newline="", encoding="utf-8") as fh:
        first = fh.readline()
        fh.seek(0)
        rows = csv.DictReader(fh, delimiter="\t" if "\t" in first else ",")
        files = [data_dir(wildcards) / row[entry["file_column"]] for row in rows]
    skip = entry["ingest"]["missing_files"] == "skip"
    return [str(f) for f in files if not skip or f.is_file()]


def ingest_options(wildcards):
    """The dataset's ingest: block as it is, for deeprc ingest --options - (standard input):
    deeprc reads it into IngestOptions, so no option is listed here."""
    return json.dumps(dataset(wildcards)["ingest"])


def ingest_flags(wildcards):
    """The dataset's metadata columns and positive label, each quoted for the shell."""
    entry = dataset(wildcards)
    options = [
        ("--data-dir", data_dir(wildcards)),
        ("--label-column", entry.get("label_column", "status")),
        ("--id-column", entry["id_column"]),
        ("--file-column", entry["file_column"]),
    ]
    if entry["positive_label"] is not None:
        options.append(("--positive-label", entry["positive_label"]))
    return " ".join(f"{name} {shlex.quote(str(value))}" for name, value in options)


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
