"""Outputs never destroy what deeprc did not make (items 13, 14, 15 and part of 19).

A command whose output is one file refuses an existing file unless --overwrite, and then
replaces only a file of its own kind (deeprc.atomic.FILE_KINDS), never an input or a file inside
an input; a directory output's stamp lists every file below it and the command that wrote it;
a file output onto a directory is a message that leaves nothing behind; a model file with the
format mark but nothing else, or with a config its weights do not fit, is a message.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import leftovers, snapshot

import deeprc.classifier as classifier_module
import deeprc.train as training
from deeprc.atomic import STAMP, atomic_directory
from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.ingest import ingest
from deeprc.simulate import MotifSignal, SimulationConfig, simulate

EXPERIMENT = "train: {n_sequences: 60, max_steps: 4, eval_every: 2, checkpoint_every: 2}\n"


def deeprc(capsys, *args: str | Path) -> tuple[int, str, str]:
    """Exit status, standard output and error of one in-process command."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse: an option this deeprc does not know
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ok(capsys, *args: str | Path) -> str:
    code, out, err = deeprc(capsys, *args)
    assert code == 0, err
    return out + err


def refused(capsys, *args: str | Path, says: tuple[str, ...] = ()) -> str:
    """Exit 2 with a one-line message holding every fragment of ``says``."""
    code, _, err = deeprc(capsys, *args)
    assert code == 2, err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    for fragment in says:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A tiny cohort with everything the file-writing commands read and write: store, folds,
    a model of fold 0 (with its checkpoint), its predictions, metrics and a report."""
    root = tmp_path_factory.mktemp("trust")
    cfg = SimulationConfig(
        n_repertoires=12, n_sequences=60, pool_size=600, seed=3,
        motifs=(MotifSignal(name="m", motif="SLRF", witness_rate=0.1),),
    )  # fmt: skip
    simulate(cfg, root / "sim", threads=1)
    ingest(root / "sim" / "metadata.tsv", root / "store", label_column="status", threads=1)
    (root / "exp.yaml").write_text(EXPERIMENT)
    fold = ["--store", root / "store", "--folds", root / "folds.tsv", "--fold", "0"]
    commands = [
        ["split", "--store", root / "store", "--out", root / "folds.tsv", "--k", "3"],
        ["train", *fold, "--experiment", root / "exp.yaml", "--threads", "1", "--no-progress",
         "--out", root / "m0.pt"],
        ["predict", *fold, "--model", root / "m0.pt", "--out", root / "pred0", "--threads", "1",
         "--no-progress"],
        ["evaluate", root / "pred0", "--out", root / "metrics.json"],
        ["report", "--store", root / "store", "--metrics", root / "metrics.json",
         "--out", root / "report.html"],
    ]  # fmt: skip
    for args in commands:
        assert main([str(a) for a in args]) == 0, args
    return root


@pytest.fixture
def w(world: Path, tmp_path: Path) -> Path:
    """A copy of the world for a test to try to damage."""
    return Path(shutil.copytree(world, tmp_path / "w"))


def train_args(w: Path) -> list[str | Path]:
    return ["train", "--store", w / "store", "--folds", w / "folds.tsv", "--fold", "0",
            "--experiment", w / "exp.yaml", "--threads", "1", "--no-progress"]  # fmt: skip


# ----------------------------------------------------------------------------- item 13


def test_split_refuses_an_existing_file_and_replaces_only_its_own_folds(w, tmp_path, capsys):
    store = w / "store"
    before = snapshot(store)
    mine = tmp_path / "my_meta.tsv"
    mine.write_text("sample\tage\nA\t40\n")
    split = ["split", "--store", store, "--k", "3", "--out"]
    refused(capsys, *split, mine, says=(str(mine), "exists", "--overwrite"))
    refused(capsys, *split, mine, "--overwrite", says=(str(mine), "not a folds table"))
    assert mine.read_text() == "sample\tage\nA\t40\n"
    # the store's own files, and a new file inside the store, would damage it
    refused(capsys, *split, store / "manifest.json", "--overwrite", says=("input", str(store)))
    refused(capsys, *split, store / "folds.tsv", says=("lies inside the input",))
    assert snapshot(store) == before
    folds = tmp_path / "folds.tsv"
    ok(capsys, *split, folds)
    refused(capsys, *split, folds, says=("exists", "--overwrite"))
    ok(capsys, *split, folds, "--overwrite")
    assert leftovers(tmp_path, "folds.tsv") == [] and leftovers(tmp_path, "my_meta.tsv") == []


def test_evaluate_never_turns_its_input_or_a_users_json_into_metrics(w, tmp_path, capsys):
    pred = w / "pred0"
    before = snapshot(pred)
    for extra in ([], ["--overwrite"]):
        refused(capsys, "evaluate", pred, "--out", pred / "predictions.tsv", *extra,
                says=("input",))  # fmt: skip
    assert snapshot(pred) == before
    settings = tmp_path / "settings.json"
    settings.write_text('{"theme": "dark"}\n')
    refused(capsys, "evaluate", pred, "--out", settings, "--overwrite", says=("not a metrics",))
    assert settings.read_text() == '{"theme": "dark"}\n'
    metrics = tmp_path / "metrics.json"
    ok(capsys, "evaluate", pred, "--out", metrics)
    refused(capsys, "evaluate", pred, "--out", metrics, says=("exists",))
    ok(capsys, "evaluate", pred, "--out", metrics, "--overwrite")


def test_train_refuses_an_existing_out_before_training_and_overwrite_starts_afresh(
    w, tmp_path, capsys, monkeypatch
):
    args = train_args(w)
    folds = (w / "folds.tsv").read_bytes()
    for extra in ([], ["--overwrite"]):
        refused(capsys, *args, "--out", w / "folds.tsv", *extra, says=("input",))
    refused(capsys, *args, "--out", w / "store" / "m.pt", says=("lies inside the input",))
    assert (w / "folds.tsv").read_bytes() == folds
    assert not (w / "folds.work").exists() and not (w / "store" / "m.work").exists()
    mine = w / "notes.pt"
    mine.write_text("my notes\n")
    model, checkpoint = w / "m0.pt", w / "m0.work" / "checkpoint.pt"
    kept = model.read_bytes(), checkpoint.read_bytes()

    def no_training(*_, **__):
        raise AssertionError("trained before refusing the output")

    with monkeypatch.context() as patched:
        patched.setattr(classifier_module, "fit", no_training)
        refused(capsys, *args, "--out", mine, says=("exists", "--overwrite"))
        refused(capsys, *args, "--out", mine, "--overwrite", says=("not a model file",))
        refused(capsys, *args, "--out", model, says=("exists", "--overwrite"))
    assert mine.read_text() == "my notes\n" and not (w / "notes.work").exists()
    assert (model.read_bytes(), checkpoint.read_bytes()) == kept
    # another seed: the finished run's checkpoint belongs to another run, so it must go
    ok(capsys, *args, "--out", model, "--overwrite", "--seed", "1")
    assert torch.load(model, weights_only=True)["experiment"]["train"]["seed"] == 1

    def no_resuming(path):
        raise AssertionError(f"resumed from {path}")

    # the same run again trains from step 0, not from the finished run's checkpoint
    monkeypatch.setattr(training, "_load_checkpoint", no_resuming)
    ok(capsys, *args, "--out", model, "--overwrite", "--seed", "1")
    assert leftovers(w, "m0.pt") == []


def test_select_model_replaces_only_a_model_file_and_never_its_input(w, tmp_path, capsys):
    model, report = w / "m0.pt", w / "report.html"
    kept = model.read_bytes(), report.read_bytes()
    refused(capsys, "select-model", model, "--out", report, says=("exists", "--overwrite"))
    refused(capsys, "select-model", model, "--out", report, "--overwrite",
            says=("not a model file",))  # fmt: skip
    refused(capsys, "select-model", model, "--out", model, "--overwrite", says=("input",))
    assert (model.read_bytes(), report.read_bytes()) == kept
    best = tmp_path / "best.pt"
    ok(capsys, "select-model", model, "--out", best)
    refused(capsys, "select-model", model, "--out", best, says=("exists",))
    ok(capsys, "select-model", model, "--out", best, "--overwrite")


def test_report_replaces_only_a_report_and_never_an_input(w, tmp_path, capsys):
    report = ["report", "--store", w / "store", "--metrics", w / "metrics.json", "--out"]
    model = (w / "m0.pt").read_bytes()
    refused(capsys, *report, w / "m0.pt", says=("exists", "--overwrite"))
    refused(capsys, *report, w / "m0.pt", "--overwrite", says=("not an HTML report",))
    assert (w / "m0.pt").read_bytes() == model
    refused(capsys, *report, w / "metrics.json", "--overwrite", says=("input",))
    refused(capsys, *report, w / "store" / "report.html", says=("lies inside the input",))
    assert not (w / "store" / "report.html").exists()
    out = tmp_path / "r.html"
    ok(capsys, *report, out)
    assert '<meta name="generator" content="deeprc report">' in out.read_text()
    refused(capsys, *report, out, says=("exists",))
    ok(capsys, *report, out, "--overwrite")


def test_rank_sequences_checks_both_outputs_before_writing_either(w, tmp_path, capsys):
    pred = w / "pred0"
    mine = tmp_path / "my_meta.tsv"
    mine.write_text("sample\tage\n")
    refused(capsys, "rank-sequences", pred, "--out", mine, says=("exists",))
    refused(capsys, "rank-sequences", pred, "--out", mine, "--overwrite",
            says=("not a clonotype ranking",))  # fmt: skip
    assert mine.read_text() == "sample\tage\n"
    before = snapshot(pred)
    refused(capsys, "rank-sequences", pred, "--out", pred / "predictions.tsv", "--overwrite",
            says=("input",))  # fmt: skip
    assert snapshot(pred) == before
    out, recovery = tmp_path / "ranked.tsv", tmp_path / "ranked.recovery.json"
    recovery.write_text('{"mine": 1}\n')
    ranked = ["rank-sequences", pred, "--truth", w / "sim", "--out", out]
    refused(capsys, *ranked, "--overwrite", says=(str(recovery), "not a signal recovery"))
    assert not out.exists() and recovery.read_text() == '{"mine": 1}\n'
    recovery.unlink()
    ok(capsys, *ranked)
    refused(capsys, *ranked, says=("exists",))
    ok(capsys, *ranked, "--overwrite")
    ok(capsys, "rank-sequences", pred, "--out", out, "--overwrite")  # without the signal column


# ----------------------------------------------------------------------------- item 14


def test_overwrite_refuses_a_users_file_anywhere_below_a_directory_output(tmp_path, h, capsys):
    metadata = h.make_study(tmp_path / "data")
    _, store = h.run_ingest(metadata, tmp_path / "store")
    again = ["ingest", "--metadata", metadata, "--label-column", "label", "--threads", "1",
             "--out", store, "--overwrite"]  # fmt: skip
    (store / "sequences" / "my_notes.txt").write_text("mine\n")
    refused(capsys, *again, says=("sequences/my_notes.txt", "did not write"))
    assert (store / "sequences" / "my_notes.txt").read_text() == "mine\n"
    (store / "sequences" / "my_notes.txt").unlink()
    (store / "encoded" / "scratch" / "deep").mkdir(parents=True)
    refused(capsys, *again, says=("encoded/scratch",))
    assert (store / "encoded" / "scratch" / "deep").is_dir()
    shutil.rmtree(store / "encoded" / "scratch")
    ok(capsys, *again)
    # the stamp lists every file and folder the command wrote, at any depth
    stamp = json.loads((store / STAMP).read_text())
    assert "sequences/part-000000.parquet" in stamp["files"] and "encoded" in stamp["dirs"]
    assert stamp["made_by"] == "deeprc ingest"
    assert leftovers(tmp_path, "store") == []


def test_overwrite_replaces_only_an_output_of_the_same_command(w, capsys):
    other = Path(shutil.copytree(w / "store", w / "other_store"))  # an ingest store
    before = snapshot(other)
    refused(capsys, "predict", "--store", w / "store", "--model", w / "m0.pt", "--out", other,
            "--overwrite", says=("made by deeprc ingest", "deeprc predict"))  # fmt: skip
    assert snapshot(other) == before
    # the predictions it was refused: replaced by predict, not by baseline
    ok(capsys, "predict", "--store", w / "store", "--model", w / "m0.pt", "--out", w / "pred0",
       "--folds", w / "folds.tsv", "--fold", "0", "--overwrite", "--threads", "1")  # fmt: skip
    refused(capsys, "baseline", "kmer3_logistic", "--store", w / "store", "--folds",
            w / "folds.tsv", "--fold", "0", "--out", w / "pred0", "--overwrite",
            says=("made by deeprc predict", "deeprc baseline"))  # fmt: skip


def test_a_stamp_of_an_older_deeprc_is_trusted_only_without_folders(tmp_path):
    def old_output(name: str, entries: dict[str, str]) -> Path:
        out = tmp_path / name
        for path, text in entries.items():
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            (out / path).write_text(text)
        top = sorted({path.split("/")[0] for path in entries})
        stamp = {"made_by": "deeprc", "deeprc_version": "0.1.0", "entries": top}
        (out / STAMP).write_text(json.dumps(stamp))
        return out

    nested = old_output("nested", {"sub/part.txt": "ours", "sub/my_notes.txt": "mine"})
    with (
        pytest.raises(InputError, match="older deeprc"),
        atomic_directory(nested, overwrite=True) as tmp,
    ):
        (tmp / "new.txt").write_text("new")
    assert (nested / "sub" / "my_notes.txt").read_text() == "mine"
    flat = old_output("flat", {"a.txt": "ours"})
    with atomic_directory(flat, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in flat.iterdir()) == [STAMP, "new.txt"]


# ----------------------------------------------------------------------------- item 15


@pytest.mark.parametrize(
    "command", ["split", "evaluate", "select-model", "report", "rank-sequences", "train"]
)
def test_a_file_output_onto_a_directory_is_refused_leaving_nothing(w, tmp_path, capsys, command):
    args = {
        "split": ["split", "--store", w / "store"],
        "evaluate": ["evaluate", w / "pred0"],
        "select-model": ["select-model", w / "m0.pt"],
        "report": ["report", "--store", w / "store", "--metrics", w / "metrics.json"],
        "rank-sequences": ["rank-sequences", w / "pred0"],
        "train": train_args(w),
    }[command]
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")
    around = sorted(p.name for p in tmp_path.iterdir())
    for extra in ([], ["--overwrite"]):
        refused(capsys, *args, "--out", target, *extra, says=(str(target), "is a directory"))
        assert sorted(p.name for p in tmp_path.iterdir()) == around
        assert [p.name for p in target.iterdir()] == ["keep.txt"]


# ----------------------------------------------------------------------------- item 19


def test_a_model_file_with_only_its_format_mark_is_a_message(world, tmp_path, capsys):
    bare = tmp_path / "bare.pt"
    torch.save({"format": "deeprc-model"}, bare)
    for args in (
        ["predict", "--store", world / "store", "--model", bare, "--out", tmp_path / "p"],
        ["show-model", bare],
        ["select-model", bare, "--out", tmp_path / "m.pt"],
    ):
        refused(capsys, *args, says=(str(bare), "model_state", "experiment"))
    assert not (tmp_path / "p").exists() and not (tmp_path / "m.pt").exists()


def test_a_config_its_weights_do_not_fit_is_refused_before_building_the_network(world, tmp_path):
    saved = torch.load(world / "m0.pt", weights_only=True)
    saved["experiment"]["model"]["encoder"]["n_kernels"] = 50_000_000  # a 41 GB convolution
    huge = tmp_path / "huge.pt"
    torch.save(saved, huge)
    # 6 GiB of address space: building that network fails instead of filling the machine
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30)); "
        "from deeprc.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "predict", "--store", str(world / "store"),
         "--model", str(huge), "--out", str(tmp_path / "p"), "--threads", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for fragment in (str(huge), "do not fit", "50000000"):
        assert fragment in result.stderr, result.stderr
    assert not (tmp_path / "p").exists()
