import difflib
import json
import math
import os
import re
import shlex
from pathlib import Path

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError

# deeprc itself, for what the workflow must read as deeprc does: metadata tables (one reader,
# for the checks below and for deeprc ingest) and the label column of a simulated cohort
from deeprc.errors import InputError
from deeprc.ingest.annotations import Annotation
from deeprc.ingest.metadata import read_metadata_table
from deeprc.simulate import LABEL_COLUMN as SIMULATED_LABEL_COLUMN

# This file's directory (workflow/rules), also when the workflow is a module of another one.
RULES_DIR = Path(workflow.current_basedir.get_path_or_uri(secret_free=False))
SCHEMA = yaml.safe_load(
    (RULES_DIR.parent / "schemas" / "config.schema.yaml").read_text()
)
# The experiment shipped with the package (deeprc train's default), read from this repository.
PACKAGED_EXPERIMENT = RULES_DIR.parents[1] / "deeprc" / "experiments" / "default.yaml"

if not config:
    raise WorkflowError(
        "no configuration: run from the repository root (workflow/profiles/default then reads "
        "configs/config.yaml) or give your own with --configfile my.yaml "
        "(a template: configs/my_cohort.yaml)"
    )


# ----------------------------------------------------------------------------- config checks
# Every mistake in the configuration stops the workflow before it plans a job, with one line
# naming the file, the key, the value given and what is allowed (no schema dump, no traceback).


def config_source():
    """The configuration files of this run, for messages."""
    names = [os.path.relpath(f) for f in map(str, workflow.configfiles)]
    return ", ".join(names) or "--config"


def key_path(path):
    """Where in the config: 'datasets: my_cohort: ingest: ', 'baselines[0]: ', or ''."""
    keys = []
    for part in path:
        if isinstance(part, int):
            keys[-1] = f"{keys[-1]}[{part}]"
        else:
            keys.append(str(part))
    return "".join(f"{key}: " for key in keys)


def shown(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word, choices, otherwise=""):
    """(did you mean 'label_column'?), else otherwise."""
    close = difflib.get_close_matches(str(word), list(map(str, choices)), n=1)
    return f" (did you mean {close[0]!r}?)" if close else otherwise


TYPE_NAMES = {
    "integer": "an integer",
    "string": "a string",
    "null": "null",
    "array": "a list",
    "object": "a mapping of keys",
    "boolean": "true or false",
    "number": "a number",
}


def describe_error(error):
    """What a schema ValidationError says, in one line: what is wrong, what is allowed."""
    kind, value, rule = error.validator, error.instance, error.validator_value
    if kind in ("additionalProperties", "unevaluatedProperties"):
        allowed = schema_keys(error.schema)
        return "; ".join(
            f"unknown key {key!r}"
            + did_you_mean(key, allowed, f" (keys: {', '.join(allowed)})")
            for key in value
            if key not in allowed
        )
    if kind == "oneOf" and "simulate" in error.schema.get("properties", {}):
        given = [
            key for key in ("simulate", "metadata", "label_column") if key in value
        ]
        if given == ["metadata"]:
            return "missing key 'label_column' (the metadata column holding the label)"
        if given == ["label_column"]:
            return "missing key 'metadata' (the metadata table, one row per repertoire)"
        return (
            f"gives {' and '.join(map(repr, given)) or 'none of them'}: a dataset is either"
            " simulated (simulate: a config) or your files (metadata and label_column)"
        )
    if kind == "required":
        return "missing key " + ", ".join(repr(key) for key in rule if key not in value)
    if kind == "enum":
        choices = ", ".join(map(str, rule))
        return f"{shown(value)} is not allowed{did_you_mean(value, rule)}; choose from {choices}"
    if kind == "type":
        types = [rule] if isinstance(rule, str) else rule
        return f"{shown(value)} is not " + " or ".join(
            TYPE_NAMES.get(t, t) for t in types
        )
    if kind in ("minimum", "maximum"):
        return f"{shown(value)} is {'below' if kind == 'minimum' else 'above'} the {kind}, {rule}"
    if kind in ("minProperties", "minItems"):
        return f"needs at least {rule} entr{'y' if rule == 1 else 'ies'}"
    if kind == "uniqueItems":
        repeated = sorted({str(item) for item in value if value.count(item) > 1})
        return f"lists {', '.join(repeated)} more than once"
    if kind == "pattern" and "description" in error.schema:
        return f"{shown(value)} is not {error.schema['description']}"
    if kind == "pattern":
        return (
            f"the name {value!r} may hold only letters, digits, '_', '.' and '-'"
            " (it names result paths)"
        )
    return error.message[:200]


def schema_keys(schema):
    """The keys an object of this (sub)schema may hold: its properties, after those of the
    definition it refers to ($ref: "#/$defs/...")."""
    keys = list(schema.get("properties", {}))
    if "$ref" in schema:
        referred = SCHEMA
        for part in schema["$ref"].removeprefix("#/").split("/"):
            referred = referred[part]
        keys = schema_keys(referred) + keys
    return keys


def schema_problem(config):
    """Check config against the schema, filling in the default of every key left out (also
    of the keys a $ref brings in: the validator descends into it, properties and all); the
    first problem (the one nearest the top of the file), or None."""
    base = jsonschema.Draft202012Validator
    properties = base.VALIDATORS["properties"]

    def set_defaults(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub:
                    instance.setdefault(key, json.loads(json.dumps(sub["default"])))
        yield from properties(validator, props, instance, schema)

    validator = jsonschema.validators.extend(base, {"properties": set_defaults})(SCHEMA)
    errors = list(validator.iter_errors(config))
    if not errors:
        return None
    error = min(errors, key=lambda e: (len(e.absolute_path), e.validator == "oneOf"))
    return f"{key_path(error.absolute_path)}{describe_error(error)}"


def missing_path(path, kind="file"):
    """Why a path the configuration names is not there, or None (relative paths are read from
    the working directory)."""
    if path is None or (
        Path(path).is_dir() if kind == "directory" else Path(path).is_file()
    ):
        return None
    place = (
        "" if Path(path).is_absolute() else f" (relative paths start in {os.getcwd()})"
    )
    return f"no such {kind} {str(path)!r}{place}"


def listed_files(entry, directory, ingest, table=None):
    """The files a metadata table (read as deeprc ingest reads it, unless given) names; with
    missing_files: skip, only those that exist (ingest leaves the others out)."""
    if table is None:
        table = read_metadata_table(entry["metadata"])
    # no such column, or a row without a file: left to deeprc ingest, which names it
    names = table[entry["file_column"]] if entry["file_column"] in table.columns else []
    files = [directory / name for name in names if name]
    skip = ingest["missing_files"] == "skip"
    return [str(f) for f in files if not skip or f.is_file()]


def annotation_specs(entry):
    """The targets and covariates a dataset keeps: (role, COLUMN:KIND) pairs, as deeprc
    ingest --target and --covariate take them."""
    return [
        (role, spec)
        for role in ("target", "covariate")
        for spec in entry.get(f"{role}s", [])
    ]


def experiment_targets(path):
    """The targets an experiment file's model predicts, in order (its targets:, else the
    label alone)."""
    try:
        entries = (yaml.safe_load(Path(path).read_text()) or {}).get("targets")
    except (yaml.YAMLError, AttributeError):
        return ["label"]  # deeprc train says what is wrong with the file
    if not isinstance(entries, list) or not entries:
        return ["label"]
    return [e.get("name") if isinstance(e, dict) else e for e in entries]


def targets_problem(entry):
    """An experiment that predicts what the dataset does not keep, or not the label first (the
    workflow's metrics, baselines and report are the label's; each further target is
    evaluated beside it)."""
    path = entry.get("experiment") or config["experiment"] or PACKAGED_EXPERIMENT
    predicted = experiment_targets(path)
    if predicted[0] != "label":
        return (
            f"experiment {path} predicts {predicted[0]!r} first; in the workflow the label "
            "comes first (targets: [{name: label}, ...]), its other targets beside it"
        )
    kept = [spec.split(":")[0] for spec in entry.get("targets", [])]
    for name in predicted[1:]:
        if name not in kept:
            return (
                f"experiment {path} predicts target {name!r}, which the dataset does not keep;"
                f" add {name}:KIND to its targets: ({', '.join(kept) or 'none'})"
            )
    return None


def table_problem(entry, directory, label_column, ingest):
    """A metadata table that is not there, lacks a column the entry names, or names files
    that are not there (unless missing_files: skip): "key: what", or None."""
    for key, kind in (("metadata", "file"), ("data_dir", "directory")):
        if problem := missing_path(entry[key], kind):
            return f"{key}: {problem}"
    try:
        table = read_metadata_table(entry["metadata"])
    except InputError as e:
        return f"metadata: {e}"
    columns = list(table.columns)
    files = listed_files(entry, directory, ingest, table)
    named = [
        (key, label_column if key == "label_column" else entry[key])
        for key in ("id_column", "file_column", "label_column")
    ]
    named += [
        (f"{role}s", Annotation.parse(role, spec).column)
        for role, spec in annotation_specs(entry)
    ]
    for key, column in named:
        if column is not None and column not in columns:
            return (
                f"{key}: {column!r} is not a column of {entry['metadata']}"
                f"{did_you_mean(column, columns)}; its columns: {', '.join(columns)}"
            )
    missing = [Path(f).name for f in files if not Path(f).is_file()]
    if missing:
        names = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        return (
            f"{len(missing)} file(s) in {entry['metadata']}'s column {entry['file_column']!r}"
            f" are not in {str(directory)!r}: {names} (set data_dir; or ingest: missing_files:"
            " skip leaves their rows out)"
        )
    return None


def paths_problem(config):
    """Paths and names the schema cannot check, each named by its key path, or None."""
    if problem := missing_path(config["experiment"]):
        return f"experiment: {problem}"
    for name, entry in config["datasets"].items():
        if problem := missing_path(entry.get("experiment")):
            return f"datasets: {name}: experiment: {problem}"
        if problem := targets_problem(entry):
            return f"datasets: {name}: {problem}"
        if "simulate" in entry:
            if problem := missing_path(entry["simulate"]):
                return f"datasets: {name}: simulate: {problem}"
            continue
        directory = Path(entry["data_dir"] or Path(entry["metadata"]).parent)
        problem = table_problem(
            entry, directory, entry["label_column"], entry["ingest"]
        )
        if problem is None and (missing := missing_path(entry["test_ids"])):
            problem = f"test_ids: {missing}"
        if problem:
            return f"datasets: {name}: {problem}"
    for name, entry in config["apply"].items():
        model = entry["model"]
        if model not in config["datasets"]:
            datasets = list(config["datasets"])
            return (
                f"apply: {name}: model: {model!r} is not a dataset{did_you_mean(model, datasets)};"
                f" name the dataset whose final model scores the cohort: {', '.join(datasets)}"
            )
        directory = Path(entry["data_dir"] or Path(entry["metadata"]).parent)
        ingest = {"missing_files": "error"} | config["datasets"][model].get(
            "ingest", {}
        )
        if problem := table_problem(entry, directory, entry["label_column"], ingest):
            return f"apply: {name}: {problem}"
    return None


if problem := schema_problem(config) or paths_problem(config):
    raise WorkflowError(f"{config_source()}: {problem}")


# The cross-validation is repeated with these split seeds beside the main one, `seed`, whose
# results stay in results/<dataset>/: results/<dataset>/split_seeds/<split seed>/.
REPEAT_SEEDS = [s for s in config["split_seeds"] if s != config["seed"]]


wildcard_constraints:
    dataset="|".join(map(re.escape, config["datasets"])),
    fold=r"\d+",
    seed=r"\d+",
    split_seed=r"\d+",
    shard=r"\d+",
    group=r"\d+",
    baseline="|".join(map(re.escape, config["baselines"])) or "none",
    target="[^/]+",
    target_baseline="|".join(map(re.escape, config["target_baselines"])) or "none",
    cohort="|".join(map(re.escape, config["apply"])) or "none",


def dataset_experiment(wildcards):
    """The experiment the dataset's models train with: its own, config's, or the one shipped
    with the package (deeprc/experiments/default.yaml), an input either way, so that editing it
    retrains."""
    given = config["datasets"][wildcards.dataset]["experiment"] or config["experiment"]
    return given or str(PACKAGED_EXPERIMENT)


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


def ingest_options(wildcards):
    """The dataset's ingest: block as it is, for deeprc ingest --options - (standard input):
    deeprc reads it into IngestOptions, so no option is listed here."""
    return json.dumps(dataset(wildcards)["ingest"])


def ingest_flags(wildcards):
    """The dataset's metadata columns, positive label, targets and covariates, each quoted
    for the shell."""
    entry = dataset(wildcards)
    flags = metadata_flags(
        entry, data_dir(wildcards), entry.get("label_column", SIMULATED_LABEL_COLUMN)
    )
    kept = [f"--{role} {shlex.quote(spec)}" for role, spec in annotation_specs(entry)]
    return " ".join([flags, *kept])


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
    inputs = {
        "store": f"{results}/store",
        "predictions": f"{results}/predictions",
        "interpretation": f"{results}/interpretation",
    }
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


def cv_results(wildcards):
    """Where a cross-validation's results go: results/<dataset>, or with another split seed
    (rules *_repeat) results/<dataset>/split_seeds/<split seed>."""
    if "split_seed" in wildcards.keys():
        return f"results/{wildcards.dataset}/split_seeds/{wildcards.split_seed}"
    return f"results/{wildcards.dataset}"


def prediction_groups(wildcards):
    """The groups a fold's test repertoires are scored in (config predict_groups), if more
    than one."""
    pattern = (
        f"{cv_results(wildcards)}/predictions/fold{wildcards.fold}.groups/{{part}}"
    )
    return parts(pattern, config["predict_groups"])


def fold_outputs(pattern):
    """An input function: pattern for every fold of the cross-validation, with {fold}, the
    wildcards, and {results} (cv_results)."""

    def inputs(wildcards):
        values = dict(wildcards.items(), results=cv_results(wildcards))
        return [pattern.format(**values, fold=k) for k in range(n_folds(wildcards))]

    return inputs


def baseline_metrics(wildcards):
    """Every baseline's metrics.json of the cross-validation."""
    results = cv_results(wildcards)
    return [f"{results}/baselines/{name}/metrics.json" for name in config["baselines"]]


def compare_flags(wildcards, input):
    """deeprc evaluate --compare NAME=METRICS for each baseline."""
    return " ".join(
        shlex.quote(f"--compare={name}={path}")
        for name, path in zip(config["baselines"], input.baselines)
    )


def control_model(wildcards):
    """A fold's negative-control model (the first training seed)."""
    return (
        f"results/{wildcards.dataset}/negative_control/models/fold{wildcards.fold}/"
        f"seed{config['seeds'][0]}.pt"
    )


def negative_control_metrics(wildcards):
    """The negative control's metrics.json, where the dataset asks for one."""
    if not dataset(wildcards)["negative_control"]:
        return []
    return [f"results/{wildcards.dataset}/negative_control/metrics.json"]


def negative_control_flag(wildcards):
    return " ".join(
        f"--negative-control {shlex.quote(path)}"
        for path in negative_control_metrics(wildcards)
    )


def target_metrics(wildcards):
    """(method, metrics.json) of each target the dataset keeps beyond the label: the model's
    where its experiment predicts the target (method deeprc), and each target baseline's.
    """
    entry = dataset(wildcards)
    results = f"results/{wildcards.dataset}/targets"
    predicted = experiment_targets(dataset_experiment(wildcards))
    found = []
    for spec in entry.get("targets", []):
        name = spec.split(":")[0]
        if name in predicted:
            found.append(("deeprc", f"{results}/{name}/metrics.json"))
        for baseline in config["target_baselines"]:
            if baseline != "covariates" or entry.get("covariates"):
                found.append(
                    (baseline, f"{results}/{name}/baselines/{baseline}/metrics.json")
                )
    return found


def target_flags(wildcards):
    """deeprc report --target METHOD METRICS for each of target_metrics."""
    return " ".join(
        f"--target {method} {shlex.quote(path)}"
        for method, path in target_metrics(wildcards)
    )


def repeated_metrics(wildcards):
    """(split seed, method, metrics.json) of the model (method deeprc) and each baseline in
    each repeat of the cross-validation (config split_seeds)."""
    methods = [("deeprc", "metrics.json")] + [
        (name, f"baselines/{name}/metrics.json") for name in config["baselines"]
    ]
    return [
        (seed, method, f"results/{wildcards.dataset}/split_seeds/{seed}/{path}")
        for seed in REPEAT_SEEDS
        for method, path in methods
    ]


def repeat_flags(wildcards):
    """deeprc report --split-seed (of the main metrics) and --repeat SEED METHOD METRICS."""
    return " ".join(
        [f"--split-seed {config['seed']}"]
        + [
            f"--repeat {seed} {method} {shlex.quote(path)}"
            for seed, method, path in repeated_metrics(wildcards)
        ]
    )


def quoted_paths(paths):
    """An input's path, or its list of paths, quoted for the shell."""
    return " ".join(map(shlex.quote, [paths] if isinstance(paths, str) else paths))


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


def modified(path):
    """A file's modification time (ns), None when it does not exist."""
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


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
