import csv
from pathlib import Path

from snakemake.utils import validate

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
    """The files the metadata names, so that a changed file re-runs ingest."""
    entry = dataset(wildcards)
    with open(entry["metadata"], newline="", encoding="utf-8") as fh:
        first = fh.readline()
        fh.seek(0)
        rows = csv.DictReader(fh, delimiter="\t" if "\t" in first else ",")
        return [str(data_dir(wildcards) / row[entry["file_column"]]) for row in rows]


def ingest_flags(wildcards):
    entry = dataset(wildcards)
    opts = entry["ingest"]
    flags = [
        f"--data-dir {data_dir(wildcards)}",
        f"--label-column {entry.get('label_column', 'status')}",
        f"--id-column {entry['id_column']}",
        f"--file-column {entry['file_column']}",
        f"--min-length {opts['min_length']}",
        f"--max-length {opts['max_length']}",
        f"--lowercase {opts['lowercase']}",
        *(f"--locus {locus}" for locus in opts["loci"]),
    ]
    if entry["positive_label"] is not None:
        flags.append(f"--positive-label {entry['positive_label']}")
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
        return f"--test-ids {entry['test_ids']}"
    return f"--k {entry['folds']}"
