"""Model files never run code, folds/models/stores are tied together so that test sets cannot
leak, and damaged inputs are messages (exit 2, no traceback), not tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from deeprc.cli import main
from deeprc.model import ENCODERS

DEEPRC = [sys.executable, "-m", "deeprc.cli"]


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([*DEEPRC, *map(str, args)], capture_output=True, text=True, timeout=300)


def refused(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result.stderr


class _Payload:
    """Unpickling this runs a command: what a hostile 'model file' does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def fold_args(root: Path, fold: int = 0, store: Path | None = None, folds: Path | None = None):
    return ["--store", store or root / "store", "--folds", folds or root / "folds.tsv",
            "--fold", str(fold)]  # fmt: skip


@pytest.fixture(scope="module")
def other_store(trained: Path) -> Path:
    """The same cohort ingested with other filters: another store (another fingerprint)."""
    out = trained / "other_store"
    if not out.exists():
        assert main(["ingest", "--metadata", str(trained / "sim" / "metadata.tsv"),
                     "--label-column", "status", "--min-length", "5", "--out", str(out),
                     "--threads", "1"]) == 0  # fmt: skip
        assert main(["split", "--store", str(out), "--out", str(trained / "other_folds.tsv"),
                     "--k", "3"]) == 0  # fmt: skip
    return out


# ----------------------------------------------------------------------------- item 6


def test_a_model_file_that_would_run_code_is_refused_without_running_it(trained, tmp_path):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "deeprc-model", "payload": _Payload(marker)}, evil)
    result = run("predict", "--store", trained / "store", "--model", evil, "--out", tmp_path / "p")
    refused(result, str(evil), "not a deeprc model file")
    assert not marker.exists(), "loading the model file ran its code"
    assert not (tmp_path / "p").exists()


def test_models_and_checkpoints_load_with_weights_only(trained):
    model = torch.load(trained / "fold0.pt", weights_only=True)
    assert model["format"] == "deeprc-model" and model["train_ids"] and model["validation_ids"]
    evidence = model.pop("evidence")  # the default model's providers: tensors and numbers
    assert evidence and all(
        isinstance(v, torch.Tensor | int | float | str | list) for e in evidence for v in e.values()
    )
    json.dumps({k: v for k, v in model.items() if k != "model_state"})  # plain values only
    checkpoint = torch.load(trained / "fold0.work" / "checkpoint.pt", weights_only=True)
    assert checkpoint["format"] == "deeprc-checkpoint"


# ----------------------------------------------------------------------------- item 7


def test_folds_of_another_store_are_refused(trained, other_store, tmp_path):
    experiment = trained / "exp.yaml"
    result = run("train", *fold_args(trained, store=other_store), "--experiment", experiment,
                 "--out", tmp_path / "m.pt")  # fmt: skip
    refused(result, "was made from the store with fingerprint", str(other_store))
    result = run("baseline", "kmer3_logistic", *fold_args(trained, store=other_store),
                 "--out", tmp_path / "b")  # fmt: skip
    refused(result, "deeprc split")


def test_predict_refuses_a_test_set_the_model_was_trained_on(trained, other_store, tmp_path):
    model = trained / "fold0.pt"
    # fold 1's test set holds repertoires that fold 0's model trained on
    refused(
        run("predict", *fold_args(trained, fold=1), "--model", model, "--out", tmp_path / "a"),
        "trained or validated on",
        "fold 1",
    )
    # another store's fold, scored by this store's model
    result = run("predict", *fold_args(trained, store=other_store,
                                       folds=trained / "other_folds.tsv"),
                 "--model", model, "--out", tmp_path / "b")  # fmt: skip
    refused(result, "trained on another store", "leave out --folds")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # scoring a whole store is allowed: provenance says which store made the model, and how
    # many scored repertoires it was trained on
    result = run("predict", "--store", other_store, "--model", model, "--out", tmp_path / "c")
    assert result.returncode == 0, result.stderr
    provenance = json.loads((tmp_path / "c" / "provenance.json").read_text())
    saved = torch.load(model, weights_only=True)
    assert provenance["model_store_fingerprint"] == saved["store_fingerprint"]
    assert provenance["store_fingerprint"] != saved["store_fingerprint"]
    result = run("predict", "--store", trained / "store", "--model", model, "--out", tmp_path / "d")
    assert result.returncode == 0 and "not test results" in result.stderr
    provenance = json.loads((tmp_path / "d" / "provenance.json").read_text())
    assert provenance["scored_training_repertoires"] == len(saved["train_ids"]) + len(
        saved["validation_ids"]
    )


def test_a_folds_table_with_a_repertoire_in_two_roles_is_refused(trained, tmp_path):
    folds = pd.read_csv(trained / "folds.tsv", sep="\t", dtype=str)
    fold0 = folds[folds["fold"] == "0"]
    leaked = fold0[fold0["role"] == "train"].iloc[[0]].assign(role="test")
    bad = tmp_path / "folds.tsv"
    pd.concat([folds, leaked]).to_csv(bad, sep="\t", index=False)
    result = run("train", *fold_args(trained, folds=bad), "--experiment", trained / "exp.yaml",
                 "--out", tmp_path / "m.pt")  # fmt: skip
    refused(
        result, leaked["repertoire_id"].iloc[0], "more than once in fold 0", str(len(folds) + 2)
    )


# ----------------------------------------------------------------------------- item 8


def test_a_damaged_checkpoint_says_how_to_start_again(trained, tmp_path):
    model = tmp_path / "fold0.pt"
    work = tmp_path / "fold0.work"
    work.mkdir()
    checkpoint = trained / "fold0.work" / "checkpoint.pt"
    (work / "checkpoint.pt").write_bytes(checkpoint.read_bytes()[:1000])
    args = [*fold_args(trained), "--experiment", trained / "exp.yaml", "--out", model]
    refused(run("train", *args), f"delete {work / 'checkpoint.pt'}")
    (work / "checkpoint.pt").write_bytes(b"")
    refused(run("train", *args), "delete", "to start this training again")
    assert not model.exists()


@pytest.mark.parametrize("kind", ["truncated", "empty", "checkpoint", "text"])
def test_a_bad_model_file_is_a_message(trained, tmp_path, kind):
    path = tmp_path / "model.pt"
    good = (trained / "fold0.pt").read_bytes()
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "checkpoint":
        shutil.copy(trained / "fold0.work" / "checkpoint.pt", path)
    else:
        path.write_text("not a model\n")
    expected = "training checkpoint, not a model" if kind == "checkpoint" else "not a deeprc model"
    result = run("predict", *fold_args(trained), "--model", path, "--out", tmp_path / "p")
    refused(result, str(path), expected)
    refused(run("select-model", path, "--out", tmp_path / "m.pt"), expected)


def test_a_missing_or_malformed_folds_file_is_a_message(trained, tmp_path):
    model = trained / "fold0.pt"
    missing = tmp_path / "nothing.tsv"
    out = ["--model", model, "--out", tmp_path / "p"]
    refused(run("predict", *fold_args(trained, folds=missing), *out), str(missing), "deeprc split")
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("fold\trepertoire\n0\trep00\n")
    refused(run("predict", *fold_args(trained, folds=wrong), *out), "lacks the column(s)", "role")


def test_a_directory_that_is_not_a_store_is_a_message(trained, tmp_path):
    for store in (tmp_path, tmp_path / "absent"):
        result = run("split", "--store", store, "--out", tmp_path / "folds.tsv")
        refused(result, str(store), "not a deeprc store", "deeprc ingest")


def test_a_full_disk_while_writing_a_file_is_a_message(trained, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", disk]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={disk / 'filler'}", "bs=4k"],
                       capture_output=True)  # fmt: skip
        result = run("split", "--store", trained / "store", "--out", disk / "folds.tsv")
        refused(result, "no space left", str(disk))
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]
    finally:
        subprocess.run(["umount", disk])


def test_output_piped_into_head_ends_quietly(trained):
    """top-sequences prints ~2,400 rows (> a pipe's 64 KiB); head reads one line and leaves."""
    reader = subprocess.Popen(
        [*DEEPRC, "top-sequences", str(trained / "pred0"), "-n", "100000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert reader.stdout.readline()
    reader.stdout.close()
    stderr = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 0
    assert stderr == ""


def test_an_unknown_encoder_names_the_file_and_the_encoders(trained, tmp_path, capsys):
    experiment = tmp_path / "exp.yaml"
    experiment.write_text("model:\n  encoder: transformer\n")
    code = main(["train", "--store", str(trained / "store"), "--folds", str(trained / "folds.tsv"),
                 "--fold", "0", "--experiment", str(experiment),
                 "--out", str(tmp_path / "m.pt")])  # fmt: skip
    assert code == 2 and not (tmp_path / "m.pt").exists()
    error = capsys.readouterr().err
    assert f"{experiment}: model: encoder 'transformer' is not one of {sorted(ENCODERS)}" in error
