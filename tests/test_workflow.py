"""The Snakemake workflow, really run by the snakemake command on tiny data."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).parents[1]
SNAKEFILE = ROOT / "workflow" / "Snakefile"
sys.path.insert(0, str(ROOT / "benchmarks"))
from make_airr import write_dataset  # noqa: E402


def snakemake(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["snakemake", "--snakefile", str(SNAKEFILE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with its own config (replacing, not merged into, the default)."""
    write_dataset(tmp_path / "data", n_files=6, rows_per_file=200, seed=11)
    (tmp_path / "sim.yaml").write_text(
        "n_repertoires: 6\nn_sequences: 150\npool_size: 1500\nseed: 2\n"
        "motifs:\n  - {name: m, motif: SLRF, witness_rate: 0.02}\n"
    )
    (tmp_path / "experiment.yaml").write_text(
        "train: {n_sequences: 100, max_steps: 10, eval_every: 5, checkpoint_every: 5}\n"
    )
    config = {
        "experiment": "experiment.yaml",
        "datasets": {
            "tiny": {"metadata": "data/metadata.tsv", "label_column": "status", "folds": 3},
            "sim": {"simulate": "sim.yaml", "folds": 3},
        },
    }
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_lint_is_clean():
    result = snakemake("--lint", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "good condition" in result.stdout + result.stderr


def test_a_dataset_needs_either_metadata_or_simulate(workdir):
    both = {"datasets": {"x": {"simulate": "s.yaml", "metadata": "m.tsv", "label_column": "s"}}}
    (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(both))
    result = snakemake("--cores", "1", "--dry-run", cwd=workdir)
    assert result.returncode != 0
    assert "oneOf" in result.stdout + result.stderr or "valid under each" in result.stderr


def test_invalid_config_is_rejected_naming_the_key(workdir):
    bad = {"datasets": {"tiny": {"metadata": "m.tsv", "label_column": "s", "lable": "x"}}}
    (workdir / "configs" / "config.yaml").write_text(yaml.safe_dump(bad))
    result = snakemake("--cores", "1", "--dry-run", cwd=workdir)
    assert result.returncode != 0
    assert "lable" in result.stdout + result.stderr


def test_workflow_ingests_and_does_not_redo_finished_work(workdir):
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
    again = snakemake(*args, cwd=workdir)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr


def test_changing_a_rearrangement_file_reruns_ingest(workdir):
    args = ("--cores", "1", "--configfile", "configs/config.yaml", "--replace-workflow-config")
    assert snakemake(*args, cwd=workdir).returncode == 0
    shutil.copy(workdir / "data" / "rep0001.tsv.gz", workdir / "data" / "rep0000.tsv.gz")
    dry = snakemake(*args, "--dry-run", cwd=workdir)
    assert "ingest_repertoires" in dry.stdout
