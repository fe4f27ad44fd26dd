"""benchmarks/accuracy.py, the one command behind docs/model.md's table, on a tiny cohort."""

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_accuracy_table_is_written_and_a_second_run_resumes(tmp_path):
    cohort = tmp_path / "tiny.yaml"
    cohort.write_text(
        "n_repertoires: 24\nn_sequences: 200\nseed: 1\n"
        "motifs:\n  - {name: m, motif: SLRF, witness_rate: 0.05}\n"
    )
    experiment = tmp_path / "quick.yaml"
    experiment.write_text(
        "train: {n_sequences: 200, max_steps: 20, eval_every: 10, checkpoint_every: 10}\n"
    )
    command = [
        sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--out", str(tmp_path / "out"),
        "--cohorts", str(cohort), "--k", "3", "--experiment", f"quick={experiment}",
        "--baselines", "kmer3_logistic", "--threads", "1",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    results = json.loads((tmp_path / "out" / "accuracy.json").read_text())
    run = results["tiny"]["0"]
    assert set(run) == {"quick", "kmer3_logistic"}
    for method in run.values():
        assert len(method["roc_auc"]) == 3 and all(0 <= a <= 1 for a in method["roc_auc"])
    assert len(run["quick"]["precision_at_100"]) == 3
    table = (tmp_path / "out" / "accuracy.md").read_text().splitlines()
    assert table[0].startswith("| cohort | split seed | quick | kmer3_logistic | best baseline")
    assert table[2].startswith("| tiny | 0 | ")

    model = tmp_path / "out" / "tiny" / "seed0" / "quick" / "fold0.pt"
    written = model.stat().st_mtime_ns
    subprocess.run(command, check=True, capture_output=True)
    assert model.stat().st_mtime_ns == written, "the second run trained the fold again"
    assert json.loads((tmp_path / "out" / "accuracy.json").read_text()) == results
    # a later run of other methods adds them and keeps what the first run measured
    others = [*command[: command.index("--experiment")], "--experiment", "none",
              "--baselines", "emerson_burden", "--threads", "1"]  # fmt: skip
    subprocess.run(others, check=True, capture_output=True)
    run = json.loads((tmp_path / "out" / "accuracy.json").read_text())["tiny"]["0"]
    assert set(run) == {"quick", "kmer3_logistic", "emerson_burden"}
    assert run["quick"] == results["tiny"]["0"]["quick"]


def test_the_draws_table_of_recipes_without_baselines_says_so(tmp_path, monkeypatch):
    """A run of recipes alone (``--baselines`` with none) has nothing to compare with."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as when run as a script
    spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks" / "accuracy.py")
    accuracy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(accuracy)
    design = tmp_path / "draw1_00.yaml"
    design.write_text(
        "n_repertoires: 100\nn_sequences: 2000\npositive_fraction: 0.5\nlabel_noise: 0.0\n"
    )
    run = {"roc_auc": [0.9, 0.8], "seconds": [1.0, 2.0], "precision_at_100": [0.5, 0.5]}
    results = {"draw1_00": {"0": {"recipe": run}}}
    args = argparse.Namespace(split_seeds=[0])
    assert accuracy.draws_table(results, [design], args).startswith("No baseline has run")
    results["draw1_00"]["0"]["kmer3_logistic"] = {"roc_auc": [0.7, 0.7], "seconds": [1.0, 1.0]}
    table = accuracy.draws_table(results, [design], args)
    assert "| kmer3_logistic 0.700 | +0.150 |" in table, table


def test_targets_and_covariates_get_their_own_table(tmp_path):
    """--targets and --covariates: each categorical or numeric target is predicted by the
    baselines of any target on the label's folds, and the covariates-only baseline joins the
    label's."""
    cohort = tmp_path / "tri.yaml"
    cohort.write_text(
        "n_repertoires: 30\nn_sequences: 200\npositive_fraction: 0.667\nseed: 2\n"
        "conditions: [flu, cmv]\nnumbers: [{name: age, low: 20, high: 80, positive_from: 0.5}]\n"
        "motifs:\n  - {name: f, motif: WWQ, witness_rate: 0.05, condition: flu}\n"
        "  - {name: c, motif: MMH, witness_rate: 0.05, condition: cmv}\n"
    )
    command = [
        sys.executable, str(ROOT / "benchmarks" / "accuracy.py"), "--out", str(tmp_path / "out"),
        "--cohorts", str(cohort), "--k", "3", "--experiment", "none", "--baselines",
        "kmer3_logistic", "--targets", "condition:categorical", "--covariates", "age:numeric",
        "--threads", "1",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    run = json.loads((tmp_path / "out" / "accuracy.json").read_text())["tri"]["0"]
    assert set(run) == {"kmer3_logistic", "covariates", "targets"}
    condition = run["targets"]["condition"]
    assert condition["kind"] == "categorical"
    assert set(condition) == {"kind", "kmer3_regression", "kmer4_regression", "repertoire_size",
                              "covariates"}  # fmt: skip
    assert len(condition["kmer3_regression"]["roc_auc_macro"]) == 3
    table = (tmp_path / "out" / "targets.md").read_text()
    assert "**tri**, split seed 0, target `condition` (categorical)" in table
    assert "| method | roc_auc_macro | balanced_accuracy | brier | s/fold |" in table
    label = (tmp_path / "out" / "accuracy.md").read_text().splitlines()
    assert label[0].startswith("| cohort | split seed | kmer3_logistic | covariates | best base")
    assert "| kmer3_logistic " in label[2]  # the covariates are never the best baseline
    # a store ingested without a target asked for later is refused, not silently reused
    again = [*command[: command.index("--targets")], "--targets", "age:numeric"]
    refused = subprocess.run(again, capture_output=True, text=True)
    assert refused.returncode != 0 and "was ingested without targets ['age:numeric']" in (
        refused.stderr
    )
