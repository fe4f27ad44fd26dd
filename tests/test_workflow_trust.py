"""What the workflow tells a user is true: one-line configuration errors, the jobs and commands
planned for a negative control, repeated splits and scored cohorts (dry runs), the shipped
configurations' examples, and where the reports are at the end of a run (one small real run)."""

import re
import shutil
import subprocess

import pytest
import yaml
from conftest import LEARNED_KMER, ROOT, snakemake

from deeprc.baselines import BASELINES

EXAMPLE = ROOT / "data" / "example" / "metadata.tsv"


def write_config(directory, config) -> str:
    (directory / "mine.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return "mine.yaml"


def dry_run(directory, config, *targets) -> subprocess.CompletedProcess:
    args = ("--dry-run", "--printshellcmds", "--cores", "1", "--replace-workflow-config")
    # the targets first: --configfile takes every path after it
    result = snakemake(*targets, *args, "--configfile", write_config(directory, config),
                       cwd=directory)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def planned(dry: subprocess.CompletedProcess) -> dict[str, list[dict[str, str]]]:
    """The jobs of a dry run by rule: each job's output, wildcards and shell command."""
    jobs: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:\n)", dry.stdout):
        rule = re.match(r"(?:local)?rule (\w+):\n", block)
        if rule:
            fields = {"output": "", "wildcards": ""}
            fields |= dict(re.findall(r"^\s+(output|wildcards): (.*)$", block, re.M))
            shell = re.search(r"^Shell command: (.*)$", block, re.M)
            fields["shell"] = shell.group(1) if shell else ""
            jobs.setdefault(rule.group(1), []).append(fields)
    return jobs


def dataset(**keys):
    return {"metadata": str(EXAMPLE), "label_column": "status", "folds": 3, **keys}


# ----------------------------------------------------------------------------- config errors

BAD_CONFIGS = {
    "misspelled key": (
        {"datasets": {"my_cohort": {"metadata": str(EXAMPLE), "label_colum": "status"}}},
        "datasets: my_cohort: unknown key 'label_colum' (did you mean 'label_column'?)",
    ),
    "misspelled top-level key": (
        {"dataset": {"my_cohort": dataset()}},
        "mine.yaml: unknown key 'dataset' (did you mean 'datasets'?)",
    ),
    "misspelled ingest key": (
        {"datasets": {"my_cohort": dataset(ingest={"min_lenght": 3})}},
        "datasets: my_cohort: ingest: unknown key 'min_lenght' (did you mean 'min_length'?)",
    ),
    "wrong metadata path": (
        {"datasets": {"my_cohort": dataset(metadata="data/nope.tsv")}},
        "datasets: my_cohort: metadata: no such file 'data/nope.tsv' (relative paths start in",
    ),
    "wrong data_dir": (
        {"datasets": {"my_cohort": dataset(data_dir="nowhere")}},
        "datasets: my_cohort: data_dir: no such directory 'nowhere'",
    ),
    "files not in data_dir": (
        {"datasets": {"my_cohort": dataset(data_dir=".")}},
        "datasets: my_cohort: 6 file(s) in ",
    ),
    "wrong test_ids path": (
        {"datasets": {"my_cohort": dataset(test_ids="ids.txt")}},
        "datasets: my_cohort: test_ids: no such file 'ids.txt'",
    ),
    "label column not in the metadata": (
        {"datasets": {"my_cohort": dataset(label_column="stat")}},
        "datasets: my_cohort: label_column: 'stat' is not a column of",
    ),
    "target column not in the metadata": (
        {"datasets": {"my_cohort": dataset(targets=["age:numeric"])}},
        "datasets: my_cohort: targets: 'age' is not a column of",
    ),
    "target without its kind": (
        {"datasets": {"my_cohort": dataset(covariates=["status"])}},
        "datasets: my_cohort: covariates[0]: 'status' is not COLUMN:KIND, KIND categorical or "
        "numeric (e.g. sex:categorical)",
    ),
    "neither metadata nor simulate": (
        {"datasets": {"my_cohort": {"metadata": str(EXAMPLE)}}},
        "datasets: my_cohort: missing key 'label_column'",
    ),
    "wrong type": (
        {"datasets": {"my_cohort": dataset(folds="three")}},
        "datasets: my_cohort: folds: 'three' is not an integer",
    ),
    "unknown baseline": (
        {"baselines": ["kmer5_logistic"], "datasets": {"my_cohort": dataset()}},
        "baselines[0]: 'kmer5_logistic' is not allowed (did you mean 'kmer4_logistic'?);"
        " choose from kmer3_logistic, kmer4_logistic, minmax_svm, emerson_burden,"
        " repertoire_size",
    ),
    "negative split seed": (
        {"split_seeds": [-1], "datasets": {"my_cohort": dataset()}},
        "split_seeds[0]: -1 is below the minimum, 0",
    ),
    "negative_control not a boolean": (
        {"datasets": {"my_cohort": dataset(negative_control="sometimes")}},
        "datasets: my_cohort: negative_control: 'sometimes' is not true or false",
    ),
    "missing experiment": (
        {"experiment": "exp.yaml", "datasets": {"my_cohort": dataset()}},
        "experiment: no such file 'exp.yaml'",
    ),
    "missing dataset experiment": (
        {"datasets": {"my_cohort": dataset(experiment="mine.yml")}},
        "datasets: my_cohort: experiment: no such file 'mine.yml'",
    ),
    "apply with an unknown model": (
        {
            "datasets": {"my_cohort": dataset()},
            "apply": {"new": {"model": "my_cohrt", "metadata": str(EXAMPLE)}},
        },
        "apply: new: model: 'my_cohrt' is not a dataset (did you mean 'my_cohort'?)",
    ),
    "apply with a wrong metadata path": (
        {
            "datasets": {"my_cohort": dataset()},
            "apply": {"new": {"model": "my_cohort", "metadata": "new.tsv"}},
        },
        "apply: new: metadata: no such file 'new.tsv'",
    ),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_config_error_is_one_short_message_naming_the_key(tmp_path, case):
    config, message = BAD_CONFIGS[case]
    result = snakemake("-n", "--configfile", write_config(tmp_path, config),
                       "--replace-workflow-config", cwd=tmp_path)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert message in output, output
    assert len(output.splitlines()) < 15, output
    assert "Traceback" not in output and "InputFunctionException" not in output, output
    assert "Failed validating" not in output  # no JSON-schema dump


# ------------------------------------------------------------------- controls and repeats


def test_a_dry_run_plans_the_negative_control_and_the_repeated_splits(tmp_path):
    """negative_control: each fold trained again with permuted labels (one training seed),
    scored and evaluated; split_seeds: the cross-validation and the baselines again for each
    other split seed, beside the main seed's unchanged paths; the report gets them all. A
    dataset that asks for neither gets neither."""
    config = {
        "seed": 2,
        "split_seeds": [2, 5],
        "seeds": [0, 1],
        "predict_groups": 2,
        "baselines": ["kmer3_logistic", "repertoire_size"],
        "datasets": {"ex": dataset(negative_control=True), "plain": dataset()},
    }
    jobs = planned(dry_run(tmp_path, config))

    def of(rule, name):
        return [job for job in jobs.get(rule, []) if f"dataset={name}," in job["wildcards"] + ","]

    # the negative control: 3 folds x the first training seed
    control = of("train_control", "ex")
    assert sorted(job["output"] for job in control) == [
        f"results/ex/negative_control/models/fold{k}/seed0.pt" for k in range(3)
    ]
    assert all("--permute-labels 2" in job["shell"] for job in control)  # the split seed
    assert not any("--permute-labels" in job["shell"] for job in jobs["train_model"])
    assert len(of("predict_control", "ex")) == 3
    (evaluated,) = of("evaluate_control", "ex")
    assert evaluated["output"] == "results/ex/negative_control/metrics.json"
    assert "results/ex/negative_control/predictions/fold2" in evaluated["shell"]
    # the repeat with split seed 5 (2 is the main seed: not repeated)
    (split,) = of("split_folds_repeat", "ex")
    assert split["output"] == "results/ex/split_seeds/5/folds.tsv" and "--seed 5" in split["shell"]
    assert len(of("train_model_repeat", "ex")) == 3 * 2  # folds x training seeds
    assert len(of("predict_group_repeat", "ex")) == 3 * 2  # folds x predict_groups
    joined = sorted(of("predict_fold_repeat", "ex"), key=lambda job: job["output"])
    assert [job["output"] for job in joined] == [
        f"results/ex/split_seeds/5/predictions/fold{k}" for k in range(3)
    ]
    assert "--merge results/ex/split_seeds/5/predictions/fold0.groups/0" in joined[0]["shell"]
    assert len(of("baseline_fold_repeat", "ex")) == 3 * 2  # folds x baselines
    (repeat,) = of("evaluate_model_repeat", "ex")
    assert repeat["output"] == "results/ex/split_seeds/5/metrics.json"
    assert ("--compare=repertoire_size=results/ex/split_seeds/5/baselines/repertoire_size/"
            "metrics.json") in repeat["shell"]  # fmt: skip
    assert "split_seeds/2" not in "".join(job["output"] for rule in jobs.values() for job in rule)
    # the main seed's paths as before, the model compared with each baseline
    (folds,) = of("split_folds", "ex")
    assert folds["output"] == "results/ex/folds.tsv" and "--seed 2" in folds["shell"]
    (main,) = of("evaluate_model", "ex")
    assert main["output"] == "results/ex/metrics.json"
    compare = "--compare=kmer3_logistic=results/ex/baselines/kmer3_logistic/metrics.json"
    assert compare in main["shell"]
    (report,) = of("render_report", "ex")
    for flag in (
        "--negative-control results/ex/negative_control/metrics.json",
        "--split-seed 2",
        "--repeat 5 deeprc results/ex/split_seeds/5/metrics.json",
        "--repeat 5 kmer3_logistic results/ex/split_seeds/5/baselines/kmer3_logistic/metrics.json",
        "--repeat 5 repertoire_size results/ex/split_seeds/5/baselines/repertoire_size/"
        "metrics.json",
    ):
        assert flag in report["shell"], flag
    # plain: no control; its split seeds are the same top-level list
    assert not of("train_control", "plain") and len(of("train_model_repeat", "plain")) == 6
    (plain,) = of("render_report", "plain")
    assert "--negative-control" not in plain["shell"] and "--repeat 5 deeprc" in plain["shell"]


def test_by_default_there_is_no_control_and_no_repeat_and_repertoire_size_is_a_baseline(
    tmp_path,
):
    """The schema's defaults: one split seed, no negative control, every baseline; the
    packaged experiment (deeprc/experiments/default.yaml) is an input of training."""
    jobs = planned(dry_run(tmp_path, {"datasets": {"ex": dataset()}}))
    assert not [rule for rule in jobs if rule.endswith(("_control", "_repeat"))]
    baselines = {job["wildcards"].split("baseline=")[1].split(",")[0]
                 for job in jobs["evaluate_baseline"]}  # fmt: skip
    assert "repertoire_size" in baselines and baselines == set(BASELINES)
    (report,) = jobs["render_report"]
    assert "--repeat" not in report["shell"] and "--negative-control" not in report["shell"]
    assert "--split-seed 0" in report["shell"]
    packaged = ROOT / "deeprc" / "experiments" / "default.yaml"
    assert all(f"--experiment {packaged}" in job["shell"] for job in jobs["train_model"])


def test_a_dataset_trains_with_its_own_experiment_and_the_others_with_the_top_level_one(
    tmp_path,
):
    """The demo's 6-repertoire dataset trains on 1 repertoire of each class: too few for the
    default experiment, so it names its own; the final model follows."""
    own = ROOT / "configs" / "experiments" / "small_cohort.yaml"
    config = {
        "datasets": {"few": dataset(experiment=str(own)), "many": dataset()},
        "apply": {"new": {"model": "few", "metadata": str(EXAMPLE)}},
    }
    jobs = planned(dry_run(tmp_path, config))
    packaged = ROOT / "deeprc" / "experiments" / "default.yaml"
    for rule, expected in (("train_model", {"few": own, "many": packaged}),
                           ("train_final", {"few": own})):  # fmt: skip
        shells = [job["shell"] for job in jobs[rule]]
        used = {
            s.split("--store results/")[1].split("/")[0]: s.split("--experiment ")[1].split()[0]
            for s in shells
        }
        assert used == {k: str(v) for k, v in expected.items()}, (rule, used)


# ----------------------------------------------------------------------------- apply:


def test_a_scored_cohort_gets_ranked_clonotypes_and_an_interpretation_in_its_report(tmp_path):
    config = {
        "baselines": ["kmer3_logistic"],
        "datasets": {"ex": dataset()},
        "apply": {"new": {"model": "ex", "metadata": str(EXAMPLE)}},
    }
    dry = dry_run(tmp_path, config, "results/apply/new/report.html",
                  "results/apply/new/clonotypes.tsv")  # fmt: skip
    jobs = planned(dry)
    (ranked,) = jobs["rank_cohort"]
    assert ranked["shell"].startswith(
        "deeprc rank-sequences results/apply/new/predictions --out results/apply/new/clonotypes.tsv"
    )
    (interpreted,) = jobs["interpret_cohort"]
    assert interpreted["shell"].startswith(
        "deeprc interpret --store results/apply/new/store --models results/ex/final/model.pt"
        " --predictions results/apply/new/predictions --out results/apply/new/interpretation"
    )
    (report,) = jobs["render_cohort_report"]
    assert "--interpretation results/apply/new/interpretation" in report["shell"]
    # the final model keeps the cross-validation without waiting for the baselines
    (final,) = jobs["train_final"]
    assert "--cv-metrics results/ex/final/cv_metrics.json" in final["shell"]
    assert "baseline_fold" not in jobs and "evaluate_model" not in jobs
    # the default target includes the ranked list
    everything = planned(dry_run(tmp_path, config))
    assert everything["rank_cohort"] and everything["render_report"]


@pytest.mark.parametrize("name", ["config.yaml", "my_cohort.yaml"])
def test_the_shipped_configs_commented_apply_example_works_once_uncommented(tmp_path, name):
    """configs/*.yaml show scoring a new cohort in comments under `apply: {}`: uncommented
    (pointing at the example data) they plan the cohort's jobs."""
    text = (ROOT / "configs" / name).read_text()
    head, example = text.split("apply: {}\n")
    lines = [line[1:] for line in example.splitlines() if line.startswith("#  ")]
    apply = yaml.safe_load("\n".join(lines))
    assert len(apply) == 1, lines
    ((cohort, entry),) = apply.items()
    entry["metadata"] = "data/example/metadata.tsv"
    config = yaml.safe_load(head) | {"apply": apply}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake(f"results/apply/{cohort}/report.html", "--dry-run", "--cores", "1",
                    "--configfile", str(tmp_path / "mine.yaml"), cwd=ROOT)  # fmt: skip
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert {"score_cohort", "interpret_cohort", "render_cohort_report"} <= set(planned(dry))


def test_the_demo_runs_a_negative_control_on_the_simulated_dataset_only():
    dry = snakemake("--dry-run", "--cores", "1", "--forceall", cwd=ROOT)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    jobs = planned(dry)
    assert {job["wildcards"].split(",")[0] for job in jobs["train_control"]} == {
        "dataset=simulated"
    }
    assert len(jobs["train_control"]) == 5  # its 5 folds, one training seed
    assert not [rule for rule in jobs if rule.endswith("_repeat")]


# ----------------------------------------------------------------------------- a real run


def test_the_end_of_a_run_says_where_the_reports_are(tmp_path):
    """The one test here that runs jobs: the example data with a fixed test cohort (one fold),
    no baselines and a 10-step training."""
    shutil.copytree(EXAMPLE.parent, tmp_path / "data")
    (tmp_path / "test_ids.txt").write_text("rep0000\nrep0001\n")
    (tmp_path / "exp.yaml").write_text(
        LEARNED_KMER
        + "train: {n_sequences: 100, max_steps: 10, eval_every: 5, checkpoint_every: 5}\n"
    )
    config = {
        "experiment": "exp.yaml",
        "baselines": [],
        "interpret": {"top": 20},
        "datasets": {"ex": {"metadata": "data/metadata.tsv", "label_column": "status",
                            "test_ids": "test_ids.txt"}},
    }  # fmt: skip
    args = ("--cores", "2", "--configfile", write_config(tmp_path, config),
            "--replace-workflow-config")  # fmt: skip
    result = snakemake(*args, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    report = tmp_path / "results" / "ex" / "report.html"
    assert report.is_file()
    assert f"Reports written (open them in a browser):\n  {report}\n" in output
    again = snakemake(*args, cwd=tmp_path)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert "Reports written" not in again.stdout + again.stderr


def test_a_datasets_targets_and_covariates_reach_the_store(tmp_path):
    """targets: and covariates: are passed to deeprc ingest, really run: the store keeps the
    columns, typed, and its manifest describes them."""
    data = tmp_path / "data"
    shutil.copytree(EXAMPLE.parent, data)
    table = (data / "metadata.tsv").read_text().splitlines()
    rows = [f"{line}\t{30 + 7 * i}\t{'FM'[i % 2]}" for i, line in enumerate(table[1:])]
    (data / "metadata.tsv").write_text("\n".join([f"{table[0]}\tage\tsex", *rows]) + "\n")
    entry = dataset(metadata=str(data / "metadata.tsv"), targets=["age:numeric"],
                    covariates=["sex:categorical"])  # fmt: skip
    config = write_config(tmp_path, {"datasets": {"ex": entry}})
    result = snakemake("results/ex/store", "--cores", "1", "--configfile", config,
                       "--replace-workflow-config", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = yaml.safe_load((tmp_path / "results/ex/store/manifest.json").read_text())
    [age], [sex] = manifest["targets"], manifest["covariates"]
    assert (age["kind"], age["min"], age["max"]) == ("numeric", 30.0, 30.0 + 7 * (len(rows) - 1))
    assert sex["classes"] == ["F", "M"] and sex["n_missing"] == 0


TRI_COHORT = (
    "n_repertoires: 30\nn_sequences: 200\npool_size: 4000\npositive_fraction: 0.667\nseed: 3\n"
    "conditions: [flu, cmv]\nmotifs:\n"
    "  - {name: f, motif: WWQ, witness_rate: 0.1, condition: flu}\n"
    "  - {name: c, motif: MMH, witness_rate: 0.1, condition: cmv}\n"
)
TWO_HEADS = (
    "model: {encoder: {name: cnn, n_kernels: 8}, hidden_size: 8}\nevidence: []\n"
    "targets: [{name: label}, {name: condition}]\n"
    "train: {n_sequences: 200, batch_size: 8, max_steps: 20, eval_every: 10, patience: 5,\n"
    "        validation_sequences: 200, checkpoint_every: 10}\n"
)


def test_each_target_is_evaluated_beside_its_baselines_and_reported(tmp_path):
    """A dataset's targets: with an experiment that predicts one of them beside the label:
    the workflow evaluates the model's predictions of it and its target baselines on the
    label's folds, and the report shows them."""
    (tmp_path / "tri.yaml").write_text(TRI_COHORT)
    (tmp_path / "heads.yaml").write_text(TWO_HEADS)
    entry = {"simulate": "tri.yaml", "folds": 3, "targets": ["condition:categorical"],
             "experiment": "heads.yaml", "negative_control": False}  # fmt: skip
    config = {"datasets": {"tri": entry}, "baselines": ["kmer3_logistic"],
              "target_baselines": ["kmer3_regression", "covariates"]}  # fmt: skip
    result = snakemake("results/tri/report.html", "--cores", "2", "--configfile",
                       write_config(tmp_path, config), "--replace-workflow-config",
                       cwd=tmp_path, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    targets = tmp_path / "results/tri/targets/condition"
    model = yaml.safe_load((targets / "metrics.json").read_text())
    assert model["target"]["name"] == "condition" and len(model["folds"]) == 3
    baseline = yaml.safe_load((targets / "baselines/kmer3_regression/metrics.json").read_text())
    assert baseline["target"]["kind"] == "categorical"
    assert not (targets / "baselines/covariates").exists()  # the dataset keeps no covariates
    page = (tmp_path / "results/tri/report.html").read_text()
    assert (
        "Targets beyond the label" in page and "condition (categorical: cmv, flu, healthy)" in page
    )
    label = yaml.safe_load((tmp_path / "results/tri/metrics.json").read_text())
    assert "target" not in label  # the label's metrics stay the label's


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (
            "[{name: condition}, {name: label}]",
            "predicts 'condition' first; in the workflow the label",
        ),
        (
            "[{name: label}, {name: severity}]",
            "predicts target 'severity', which the dataset does not keep",
        ),
    ],
)
def test_an_experiment_must_predict_the_label_first_and_what_the_dataset_keeps(
    tmp_path, targets, message
):
    (tmp_path / "tri.yaml").write_text(TRI_COHORT)
    (tmp_path / "heads.yaml").write_text(f"targets: {targets}\n")
    entry = {"simulate": "tri.yaml", "folds": 3, "targets": ["condition:categorical"],
             "experiment": "heads.yaml"}  # fmt: skip
    result = snakemake("--dry-run", "--cores", "1", "--configfile",
                       write_config(tmp_path, {"datasets": {"tri": entry}}),
                       "--replace-workflow-config", cwd=tmp_path)  # fmt: skip
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
