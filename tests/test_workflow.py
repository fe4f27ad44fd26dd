"""The Snakemake workflow, really run by the snakemake command on tiny data."""

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import time
import typing

import pandas as pd
import pytest
import yaml
from conftest import LEARNED_KMER, ROOT, SNAKEFILE, snakemake

from deeprc.baselines import BASELINES
from deeprc.cli import main
from deeprc.ingest import IngestOptions
from deeprc.store import Store


def test_lint_is_clean():
    result = snakemake("--lint", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "good condition" in result.stdout + result.stderr


def planned_datasets(dry: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"wildcards: dataset=([\w.-]+)", dry.stdout))


@pytest.mark.parametrize("profile", [(), ("--profile", "workflow/profiles/slurm")])
def test_a_configfile_replaces_the_demo_config_instead_of_merging_into_it(profile):
    """README: `snakemake --cores 2 --configfile my.yaml` runs only my.yaml's datasets, also
    through the SLURM profile; without --configfile the demo (configs/config.yaml) runs."""
    dry = ("--cores", "2", "--dry-run", "--forceall", *profile)
    own = snakemake(*dry, "--configfile", "configs/my_cohort.yaml", cwd=ROOT)
    assert own.returncode == 0, own.stdout + own.stderr
    assert planned_datasets(own) == {"my_cohort"}
    assert "results/simulated" not in own.stdout and "results/example" not in own.stdout
    assert "--metadata data/example/metadata.tsv --out results/my_cohort/store" in own.stdout
    demo = snakemake(*dry, cwd=ROOT)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert planned_datasets(demo) == {"simulated", "example"}


def test_no_configuration_at_all_is_a_clear_error(workdir):
    result = snakemake("--cores", "1", "--dry-run", "--workflow-profile", "none", cwd=workdir)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "no configuration" in output and "--configfile my.yaml" in output


def test_ingest_options_and_quoted_paths_reach_deeprc_ingest(workdir):
    """A data directory with a space in its name and a metadata row whose file is missing,
    left out with missing_files: skip."""
    shutil.copytree(workdir / "data", workdir / "my data")
    metadata = workdir / "my data" / "metadata.tsv"
    metadata.write_text(metadata.read_text() + "gone\tgone.tsv.gz\tpositive\n")
    (workdir / "my data" / "notes.tsv").write_text("junction_aa\nCASSF\n")  # not listed
    entry = {"metadata": "my data/metadata.tsv", "label_column": "status", "folds": 3,
             "ingest": {"missing_files": "skip", "unlisted_files": "ignore"}}  # fmt: skip
    (workdir / "mine.yaml").write_text(yaml.safe_dump({"datasets": {"mine": entry}}))
    args = ("results/mine/store", "--cores", "1", "--configfile", "mine.yaml")
    result = snakemake(*args, cwd=workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "--metadata 'my data/metadata.tsv'" in output and "--data-dir 'my data'" in output
    assert "deeprc ingest --options -" in output
    manifest = json.loads((workdir / "results" / "mine" / "store" / "manifest.json").read_text())
    assert manifest["n_repertoires"] == 6
    # the schema's defaults filled in the rest of the block, and all of it reached the store
    assert manifest["options"] == dataclasses.asdict(
        IngestOptions(missing_files="skip", unlisted_files="ignore")
    ) | {"loci": []}


def test_a_dataset_needs_either_metadata_or_simulate(workdir):
    both = {"datasets": {"x": {"simulate": "s.yaml", "metadata": "m.tsv", "label_column": "s"}}}
    (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(both))
    result = snakemake("--cores", "1", "--dry-run", cwd=workdir)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "a dataset is either simulated (simulate: a config) or your files" in output


def test_invalid_config_is_rejected_naming_the_key(workdir):
    bad = {"datasets": {"tiny": {"metadata": "m.tsv", "label_column": "s", "lable": "x"}}}
    (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(bad))
    result = snakemake("--cores", "1", "--dry-run", cwd=workdir)
    assert result.returncode != 0
    assert "lable" in result.stdout + result.stderr


def test_workflow_ingests_and_does_not_redo_finished_work(workdir):
    config = yaml.safe_load((workdir / "configs" / "config.yaml").read_text())
    config["baselines"].append("emerson_burden")  # which once failed on tiny's empty calls
    (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(config))
    args = ("--cores", "2", "--configfile", "configs/config.yaml", "--replace-workflow-config")
    result = snakemake(*args, cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    store = workdir / "results" / "tiny" / "store"
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["n_repertoires"] == 6
    assert manifest["rows_read"] == 1200
    assert manifest["n_sequences"] + sum(manifest["dropped"].values()) == 1200
    assert (store / "encoded" / "tokens.npy").stat().st_size > 0
    log = (workdir / "logs" / "ingest_repertoires" / "tiny.log").read_text()
    assert "rows read" in log
    simulated = json.loads((workdir / "results" / "sim" / "store" / "manifest.json").read_text())
    assert simulated["n_repertoires"] == 6 and simulated["n_sequences"] == 6 * 150
    truth = (workdir / "results" / "sim" / "simulated" / "truth.tsv").read_text().splitlines()
    assert len(truth) == 1 + 3 * 3  # header + 3 positives x 2% of 150
    predicted = [
        pd.read_csv(workdir / "results" / "sim" / "predictions" / f"fold{k}" / "predictions.tsv",
                    sep="\t")
        for k in range(3)
    ]  # fmt: skip
    assert sum(len(p) for p in predicted) == 6  # every repertoire tested once
    metrics = json.loads((workdir / "results" / "sim" / "metrics.json").read_text())
    assert len(metrics["folds"]) == 3 and "roc_auc" in metrics["summary"]
    assert (workdir / "results" / "tiny" / "models" / "fold2.pt").exists()
    baseline = json.loads((workdir / "results" / "sim" / "baselines" / "kmer3_logistic" /
                           "metrics.json").read_text())  # fmt: skip
    assert len(baseline["folds"]) == 3
    interpretation = json.loads(
        (workdir / "results" / "sim" / "interpretation" / "interpretation.json").read_text()
    )
    assert "ground_truth" in interpretation and len(interpretation["motifs"]) >= 1
    page = (workdir / "results" / "sim" / "report.html").read_text()
    assert "kmer3_logistic" in page and "Against the ground truth" in page
    tiny_page = (workdir / "results" / "tiny" / "report.html").read_text()
    assert "Against the ground truth" not in tiny_page
    emerson = json.loads((workdir / "results" / "tiny" / "baselines" / "emerson_burden" /
                          "metrics.json").read_text())  # fmt: skip
    assert len(emerson["folds"]) == 3 and "emerson_burden" in tiny_page
    assert "Metrics n/a: fold test sets hold at most 1 positive and 1 negative" in tiny_page
    # empty calls stay empty: in the store, the attention tables and the report's top sequences
    calls = pd.concat(
        pd.read_parquet(workdir / "results" / "tiny" / "predictions" / f"fold{k}" /
                        "attention.parquet", columns=["v_call", "j_call"])
        for k in range(3)
    )  # fmt: skip
    assert calls.notna().all().all() and not calls.isin(["nan", "None"]).any().any()
    assert (calls["j_call"] == "").mean() > 0.25 and (calls["v_call"] == "").mean() > 0.15
    top = tiny_page.split("<h2>What the model looked at</h2>")[1].split("<h2>Motifs</h2>")[0]
    assert '<td class="text"></td>' in top and not re.search(r">\s*(nan|None)\s*<", top)
    again = snakemake(*args, cwd=workdir)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_the_apply_section_scores_cohorts_with_the_final_model_and_reports_them(workdir, h):
    """config apply: one cohort without labels and one with some, both scored by tiny's final
    model (trained on all of tiny with its cross-validation in the model file)."""
    config = yaml.safe_load((workdir / "configs" / "config.yaml").read_text())
    del config["datasets"]["sim"]
    meta = pd.read_csv(workdir / "data" / "metadata.tsv", sep="\t", dtype=str)
    meta.drop(columns="status").to_csv(workdir / "new.tsv", sep="\t", index=False)
    meta.loc[meta.index[:2], "status"] = ""
    meta.to_csv(workdir / "data" / "partly.tsv", sep="\t", index=False)
    config["apply"] = {
        "new": {"model": "tiny", "metadata": "new.tsv", "data_dir": "data"},
        "partly": {"model": "tiny", "metadata": "data/partly.tsv", "label_column": "status"},
    }
    (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(config))
    args = ("--cores", "2", "--configfile", "configs/config.yaml", "--replace-workflow-config")
    targets = ["results/apply/new/report.html", "results/apply/partly/report.html"]
    result = snakemake(*args, *targets, cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "rule baseline_fold" not in output  # scoring needs the model, not the baselines
    applied = workdir / "results" / "apply"
    scored = pd.read_csv(applied / "new" / "predictions" / "predictions.tsv", sep="\t")
    assert len(scored) == 6 and scored["y"].isna().all()
    assert not (applied / "new" / "metrics.json").exists()
    fold = json.loads((applied / "partly" / "metrics.json").read_text())["folds"][0]
    assert fold["n_unlabelled"] == 2 and fold["n_repertoires"] == 4
    assert main(["show-model", str(workdir / "results" / "tiny" / "final" / "model.pt")]) == 0
    provenance = json.loads((applied / "new" / "predictions" / "provenance.json").read_text())
    card = provenance["model_card"]
    assert card["n_train"] + card["n_validation"] == 6
    assert card["cross_validation"]["n_folds"] == 3
    page = (applied / "new" / "report.html").read_text()
    assert "no label" in page and "cross-validation of the recipe (3 folds)" in page
    assert "roc_auc" not in page.split("<h2>Scores</h2>")[1].split("<img")[0]
    labelled_page = (applied / "partly" / "report.html").read_text()
    assert "2 without a label are scored only" in labelled_page
    assert h.render_in_chromium(applied / "new" / "report.html", workdir / "new.png") > 100


def test_a_fixed_test_cohort_makes_one_fold(workdir):
    config = yaml.safe_load((workdir / "configs" / "config.yaml").read_text())
    (workdir / "test_ids.txt").write_text("rep0000\nrep0001\n")
    config["datasets"]["tiny"]["test_ids"] = "test_ids.txt"
    (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake("--cores", "1", "--dry-run", "--configfile", "configs/config.yaml",
                    "--replace-workflow-config", cwd=workdir)  # fmt: skip
    assert dry.returncode == 0, dry.stdout + dry.stderr
    jobs = re.findall(r"rule train_model:\n(?:.*\n)*?\s+wildcards: dataset=(\w+), fold=(\d+)",
                      dry.stdout)  # fmt: skip
    assert sorted(set(jobs)) == [("sim", "0"), ("sim", "1"), ("sim", "2"), ("tiny", "0")]
    assert "--test-ids test_ids.txt" in dry.stdout


def test_changing_a_rearrangement_file_reruns_ingest(workdir):
    args = ("--cores", "1", "--configfile", "configs/config.yaml", "--replace-workflow-config")
    target = "results/tiny/store"
    assert snakemake(target, *args, cwd=workdir).returncode == 0
    assert "Nothing to be done" in snakemake(target, *args, "--dry-run", cwd=workdir).stdout
    shutil.copy(workdir / "data" / "rep0001.tsv.gz", workdir / "data" / "rep0000.tsv.gz")
    dry = snakemake(target, *args, "--dry-run", cwd=workdir)
    assert "ingest_repertoires" in dry.stdout


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_a_killed_run_resumes_without_redoing_finished_jobs_or_leaving_partial_outputs(
    workdir, signal_name
):
    """Ctrl-C (SIGINT to the process group), or SIGKILL as in a power loss, during training;
    then the same command again (after ``--unlock``, which Snakemake asks for after SIGKILL)."""
    config = yaml.safe_load((workdir / "configs" / "config.yaml").read_text())
    del config["datasets"]["sim"]
    (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(config))
    # 1000 steps: training still runs when the signal lands, seconds after the first checkpoint
    (workdir / "experiment.yaml").write_text(
        LEARNED_KMER + "train: {n_sequences: 100, max_steps: 1000, eval_every: 20,"
        " checkpoint_every: 5, patience: 1000}\n"
    )
    args = ("--cores", "1", "--configfile", "configs/config.yaml", "--replace-workflow-config")
    # an ignored SIGINT is inherited across exec: one suite run saw the whole workflow finish
    # after the signal, as if the run had been started with SIGINT ignored; start it as a
    # terminal would, with the default action (and say what the test process had)
    inherited = signal.getsignal(signal.SIGINT)
    run = subprocess.Popen(
        ["snakemake", "--snakefile", str(SNAKEFILE), *args],
        cwd=workdir, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    models = workdir / "results" / "tiny" / "models"
    checkpoint = models / "fold0" / "seed0.work" / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.exists() and run.poll() is None, "training never got under way"
    os.killpg(run.pid, getattr(signal, signal_name))
    try:
        run.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        pytest.fail(f"the run went on after {signal_name} (the test process's SIGINT: {inherited})")

    tiny = workdir / "results" / "tiny"
    log = workdir / "logs" / "train_model" / "tiny" / "fold0" / "seed0.log"
    # no model from a half-run
    assert not (models / "fold0" / "seed0.pt").exists(), log.read_text()
    finished = {
        p: p.stat().st_mtime_ns for p in (tiny / "store" / "manifest.json", tiny / "folds.tsv")
    }
    if signal_name == "SIGKILL":
        assert snakemake("--unlock", *args, cwd=workdir).returncode == 0
    again = snakemake(*args, cwd=workdir)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert "rule ingest_repertoires" not in output and "rule split_folds" not in output
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    assert "resuming from" in log.read_text()
    assert len(json.loads((tiny / "metrics.json").read_text())["folds"]) == 3
    assert not [p for p in tiny.rglob("*") if ".tmp-" in p.name]  # no temporary leftovers


def test_the_schemas_ingest_block_agrees_with_ingest_options():
    """One truth for ingest options: every IngestOptions field is a schema key with the same
    default (and the same choices for Literal fields), and the schema has no other key."""
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    dataset = schema["properties"]["datasets"]["additionalProperties"]
    ingest = next(
        part["properties"]["ingest"]["properties"]
        for part in [dataset, *dataset.get("allOf", []), *dataset.get("oneOf", [])]
        if "ingest" in part.get("properties", {})
    )
    fields = {f.name: f for f in dataclasses.fields(IngestOptions)}
    assert set(ingest) == set(fields)
    hints = typing.get_type_hints(IngestOptions)
    for name, field in fields.items():
        default = field.default
        assert ingest[name]["default"] == (list(default) if isinstance(default, tuple) else default)
        if typing.get_origin(hints[name]) is typing.Literal:
            assert ingest[name]["enum"] == list(typing.get_args(hints[name])), name


def test_the_schemas_baselines_are_the_registrys():
    """A baseline added to BASELINES must be offered by the workflow too, and only those."""
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    baselines = schema["properties"]["baselines"]
    assert sorted(baselines["items"]["enum"]) == sorted(BASELINES)
    assert sorted(baselines["default"]) == sorted(BASELINES)


def test_ingest_options_from_a_file_and_flags_give_the_same_store(h, tmp_path, capsys):
    """The workflow's way (the ingest: block on standard input) and a person's (flags) reach
    the same IngestOptions; a flag overrides the file, and a wrong key names the file."""
    metadata = h.make_study(tmp_path / "study")
    argv = ["ingest", "--metadata", str(metadata), "--label-column", "label",
            "--threads", "1"]  # fmt: skip
    block = tmp_path / "ingest.yaml"
    block.write_text("min_length: 12\nloci: [TRB]\ncollapse: true\n")
    assert main([*argv, "--out", str(tmp_path / "a"), "--options", str(block)]) == 0
    assert main([*argv, "--out", str(tmp_path / "b"), "--min-length", "12", "--locus", "TRB",
                 "--collapse"]) == 0  # fmt: skip
    options = [Store(tmp_path / s).manifest["options"] for s in ("a", "b")]
    assert options[0] == options[1]
    assert options[0]["min_length"] == 12 and options[0]["loci"] == ["TRB"]
    assert main([*argv, "--out", str(tmp_path / "c"), "--options", str(block),
                 "--min-length", "5", "--no-collapse"]) == 0  # fmt: skip
    overridden = Store(tmp_path / "c").manifest["options"]
    assert (overridden["min_length"], overridden["collapse"]) == (5, False)
    block.write_text("min_lenght: 12\n")
    capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "d"), "--options", str(block)]) == 2
    assert not (tmp_path / "d").exists()
    error = capsys.readouterr().err
    assert f"{block} and the command line: unknown key 'min_lenght'" in error
    assert "did you mean 'min_length'?" in error


def test_the_workflow_runs_from_any_directory_with_its_own_files(tmp_path):
    """As a module of another project: the working directory holds only the user's config, and
    the workflow still finds its schema, environment and default experiment."""
    metadata = ROOT / "data" / "example" / "metadata.tsv"
    config = {"datasets": {"ex": {"metadata": str(metadata), "label_column": "status", "folds": 3}}}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    result = snakemake("--configfile", "mine.yaml", "--dry-run", "--printshellcmds",
                       "--cores", "1", cwd=tmp_path)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    shipped = ROOT / "deeprc" / "experiments" / "default.yaml"
    assert f"--experiment {shipped}" in output
    assert "results/ex/report.html" in output


def test_cluster_run_times_grow_with_the_input_and_shrink_with_its_shards(workdir):
    """sbatch --time comes from each job's input: a cohort of 2 x 40 GiB of AIRR files asks
    for more than the smallest, and each of 4 shards for a quarter of one job's time."""
    config = yaml.safe_load((workdir / "configs" / "config.yaml").read_text())
    del config["datasets"]["sim"]
    for path in sorted((workdir / "data").glob("*.tsv.gz"))[:2]:
        os.truncate(path, 40 * 2**30)  # sparse: the size without the disk

    def planned(shards: int) -> dict[str, set[int]]:
        config["ingest_shards"] = shards
        (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(config))
        dry = snakemake("--cores", "1", "--dry-run", "--configfile", "configs/config.yaml",
                        "--replace-workflow-config", cwd=workdir)  # fmt: skip
        assert dry.returncode == 0, dry.stdout + dry.stderr
        found = re.findall(r"rule (\w+):\n(?:.*\n)*?\s+resources: .*?runtime=(\d+)", dry.stdout)
        times: dict[str, set[int]] = {}
        for rule, minutes in found:
            times.setdefault(rule, set()).add(int(minutes))
        return times

    one, four = planned(1), planned(4)
    (whole,), (shard,) = one["ingest_repertoires"], four["ingest_shard"]
    assert whole > 60 and abs(shard - whole / 4) <= 1, (whole, shard)
    assert one["train_model"] == {120}  # the floor: the store does not exist yet
