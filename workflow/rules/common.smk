import csv
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
    dataset="|".join(config["datasets"]),
    fold=r"\d+",
    seed=r"\d+",
    baseline="|".join(config["baselines"]) or "none",


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


def ingest_flags(wildcards):
    """The deeprc ingest options of a dataset, each value quoted for the shell."""
    entry = dataset(wildcards)
    opts = entry["ingest"]
    options = [
        ("--data-dir", data_dir(wildcards)),
        ("--label-column", entry.get("label_column", "status")),
        ("--id-column", entry["id_column"]),
        ("--file-column", entry["file_column"]),
        ("--min-length", opts["min_length"]),
        ("--max-length", opts["max_length"]),
        ("--lowercase", opts["lowercase"]),
        ("--missing-files", opts["missing_files"]),
        ("--unlisted-files", opts["unlisted_files"]),
        *(("--locus", locus) for locus in opts["loci"]),
    ]
    if entry["positive_label"] is not None:
        options.append(("--positive-label", entry["positive_label"]))
    flags = [f"{name} {shlex.quote(str(value))}" for name, value in options]
    if opts["keep_nonproductive"]:
        flags.append("--keep-nonproductive")
    if opts["collapse"]:
        flags.append("--collapse")
    return " ".join(flags)


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
