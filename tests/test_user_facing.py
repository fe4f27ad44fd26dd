"""What a user reads must be true: rankings, defaults, help."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from deeprc import outputs
from deeprc.cli import DEFAULT_EXPERIMENT, build_parser, main
from deeprc.config import load
from deeprc.experiment import Experiment


def _scored(directory, rows: list[tuple[str, str, float, float]], labels: dict[str, int]):
    """A prediction directory: attention rows (repertoire, junction, weight, score)."""
    directory.mkdir()
    table = pd.DataFrame(rows, columns=["repertoire_id", "junction_aa", "attention", "score"])
    writer = outputs.AttentionWriter(directory)
    for rid, part in table.groupby("repertoire_id", sort=False):
        n = len(part)
        writer.write({
            "repertoire_id": [rid] * n, "sequence_id": [f"s{i}" for i in range(n)],
            "row": np.arange(n), "junction_aa": part["junction_aa"].tolist(),
            "v_call": ["TRBV1"] * n, "j_call": ["TRBJ1-1"] * n, "duplicate_count": [1] * n,
            "attention": part["attention"].astype("float32").to_numpy(),
            "attention_score": part["score"].astype("float32").to_numpy(),
        })  # fmt: skip
    writer.close()
    predictions = pd.DataFrame(
        {"repertoire_id": list(labels), "y": list(labels.values()), "logit": 0.0, "score": 0.5}
    )
    outputs.write_predictions(directory, predictions)
    outputs.write_provenance(
        directory, {"labels": {"positive_label": "CMV+", "classes": ["CMV+", "CMV-"]}}
    )


def test_cohort_top_sequences_rank_by_the_score_not_the_softmax_weight(tmp_path, capsys):
    # a negative repertoire whose one middling sequence has no rival gets weight 0.99; the
    # positive's motif sequences score higher but share the weight among themselves
    rows = [("neg", "CASSLRFFPEYEQYF", 0.99, 1.0), ("neg", "CASSGG", 0.01, -3.6)]
    rows += [("pos", f"CASSLRFA{i}", 0.1, 4.0 - i / 10) for i in range(10)]
    _scored(tmp_path / "p", rows, {"neg": 0, "pos": 1})
    assert main(["top-sequences", str(tmp_path / "p"), "-n", "5", "--tsv"]) == 0
    top = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out), sep="\t")
    assert top["repertoire_id"].tolist() == ["pos"] * 5
    assert top["label"].tolist() == ["CMV+"] * 5  # the class name, not 1
    assert top["attention_score"].is_monotonic_decreasing
    assert main(["top-sequences", str(tmp_path / "p"), "--repertoire", "neg", "--tsv"]) == 0
    one = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out), sep="\t")
    assert one["junction_aa"].tolist() == ["CASSLRFFPEYEQYF", "CASSGG"]
    assert one["label"].tolist() == ["CMV-", "CMV-"]


def test_train_needs_no_experiment_file_the_default_is_packaged(tmp_path):
    assert load(Experiment, DEFAULT_EXPERIMENT) == Experiment()
    args = build_parser().parse_args(["train", "--store", "s", "--all", "--out", "m.pt"])
    assert args.experiment == DEFAULT_EXPERIMENT
    # an installed deeprc carries it: the wheel holds the file
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(DEFAULT_EXPERIMENT.parents[2])],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("deeprc-*.whl")
    assert "deeprc/experiments/default.yaml" in zipfile.ZipFile(wheel).namelist()


def test_deeprc_alone_shows_the_commands_and_predict_help_explains_model(capsys):
    assert main([]) == 2
    shown = capsys.readouterr().err
    assert "ingest" in shown and "top-sequences" in shown and "usage" in shown
    help_text = build_parser()._subparsers._group_actions[0].choices["predict"].format_help()
    assert "--model MODEL model file of deeprc train" in " ".join(help_text.split())


def test_report_numbers_share_one_format():
    from deeprc.report import _format

    assert [_format(v) for v in (0.91234, 1.0, 0.0, 12000, 1.2e-5, 3, float("nan"))] == [
        "0.912", "1.000", "0.000", "12,000", "1.2e-05", "3", "n/a",
    ]  # fmt: skip


def test_curves_draw_only_what_the_scores_support():
    from deeprc.report import _precision_recall, _reliability

    constant = pd.DataFrame({"y": [1, 0, 0, 1, 0, 0], "score": 0.5})
    recall, precision = _precision_recall(constant)
    assert recall.tolist() == [1.0] and precision.tolist() == [2 / 6]  # one point, no (0, 1)
    assert _reliability(constant.assign(score=np.linspace(0, 1, 6))) == ([], [])  # 6 in 5 bins
    many = pd.DataFrame({"y": [0, 1] * 10, "score": [0.1] * 10 + [0.9] * 10})
    assert _reliability(many) == ([0.1, 0.9], [0.5, 0.5])


def test_one_fixed_test_set_is_not_called_a_fold(tmp_path, capsys):
    directory = tmp_path / "pred"
    directory.mkdir()
    outputs.write_predictions(
        directory,
        pd.DataFrame({"repertoire_id": [f"r{i}" for i in range(12)], "y": [0, 1] * 6,
                      "logit": 0.0, "score": np.linspace(0, 1, 12)}),
    )  # fmt: skip
    assert main(["evaluate", str(directory), "--out", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    assert "(one test set)" in printed and "\ntest set " in printed
    assert "1 fold" not in printed and "fold 0" not in printed and "all folds" not in printed


def test_the_data_table_names_each_class_once(tmp_path):
    from types import SimpleNamespace

    from deeprc.report import _ingest_section

    def section(positive: str, classes: list[str]) -> str:
        manifest = {"n_repertoires": 4, "positive_label": positive, "classes": classes,
                    "rows_read": 10, "n_sequences": 10, "dropped": {}}  # fmt: skip
        repertoires = pd.DataFrame({"y": [1, 1, 0, 0]})
        return _ingest_section(SimpleNamespace(manifest=manifest, repertoires=repertoires))

    plain = section("positive", ["negative", "positive"])
    assert '<th class="">positive</th>' in plain and "positive (positive" not in plain
    named = section("CMV+", ["CMV+", "CMV-"])
    assert "CMV+ (positive class)" in named and "CMV- (negative class)" in named


def test_a_repertoire_tested_twice_or_a_non_finite_score_is_refused(tmp_path, capsys):
    directory = tmp_path / "pred"
    directory.mkdir()
    table = pd.DataFrame({"repertoire_id": [f"r{i}" for i in range(4)], "y": [0, 1, 0, 1],
                          "logit": 0.0, "score": [0.1, 0.9, 0.2, 0.8]})  # fmt: skip
    outputs.write_predictions(directory, table)
    assert (
        main(["evaluate", str(directory), str(directory), "--out", str(tmp_path / "m.json")]) == 2
    )
    assert "is a test repertoire of folds [0, 1]" in capsys.readouterr().err
    outputs.write_predictions(directory, table.assign(score=[0.1, float("nan"), 0.2, 0.8]))
    assert main(["evaluate", str(directory), "--out", str(tmp_path / "m.json")]) == 2
    assert "line 3 holds score nan" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # argparse: usage and message, exit 2
        main(["evaluate", str(directory), "--out", str(tmp_path / "m.json"), "--seed", "-1"])
    assert stop.value.code == 2 and "a seed is a whole number from 0" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_the_depth_warning_needs_an_interval_above_chance_not_a_lucky_mean():
    from deeprc.report import DEPTH_BASELINE, _depth_alert

    def metrics(mean: float, low: float) -> dict:
        return {"summary": {"roc_auc": {"mean": mean, "sd": 0.1, "n_folds": 5}}, "folds": [],
                "pooled": {"roc_auc": mean, "ci95": [low, 0.9], "p_value": 0.01,
                           "n_permutations": 10_000, "n_repertoires": 60}}  # fmt: skip

    assert "depth alone separates" in _depth_alert({DEPTH_BASELINE: metrics(0.7, 0.55)})
    assert _depth_alert({DEPTH_BASELINE: metrics(0.7, 0.45)}) == ""  # chance not excluded
    assert _depth_alert({DEPTH_BASELINE: metrics(0.6, 0.55)}) == ""


def test_the_card_names_the_step_whose_weights_the_file_holds():
    from deeprc.model_file import kept_validation

    # equal AUC, a loss lower by less than training's 1e-3: training kept step 100
    history = [{"step": 100, "val_auc": 0.9, "val_loss": 0.3},
               {"step": 200, "val_auc": 0.9, "val_loss": 0.2995}]  # fmt: skip
    assert kept_validation({"history": history, "best_step": 100})["step"] == 100
    assert kept_validation({"history": history})["step"] == 200  # an older file: best-looking


def test_top_sequences_says_when_several_models_scales_are_ranked_together(tmp_path, capsys):
    for name, model in (("p0", "fold0.pt"), ("p1", "fold1.pt")):
        _scored(tmp_path / name, [(f"{name}r", "CASSLRF", 1.0, 2.0)], {f"{name}r": 1})
        outputs.write_provenance(tmp_path / name, {"model": model})
    assert main(["top-sequences", str(tmp_path / "p0"), str(tmp_path / "p1")]) == 0
    assert "come from 2 models" in capsys.readouterr().err
    assert main(["top-sequences", str(tmp_path / "p0")]) == 0
    assert "models" not in capsys.readouterr().err


def test_a_fold_without_an_auc_says_n_a_not_nan(tmp_path, capsys):
    for k, y in enumerate(([0, 1] * 6, [0] * 12)):
        directory = tmp_path / f"fold{k}"
        directory.mkdir()
        ids = [f"f{k}r{i}" for i in range(12)]
        outputs.write_predictions(
            directory,
            pd.DataFrame(
                {"repertoire_id": ids, "y": y, "logit": 0.0, "score": np.linspace(0, 1, 12)}
            ),  # fmt: skip
        )
    folds = [str(tmp_path / "fold0"), str(tmp_path / "fold1")]
    assert main(["evaluate", *folds, "--out", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    assert "roc_auc n/a*" in printed and "nan" not in printed


def test_a_baseline_named_twice_is_refused(tmp_path, capsys):
    argv = ["report", "--store", str(tmp_path), "--metrics", str(tmp_path / "m.json"),
            "--baseline", "a=x.json", "--baseline", "a=y.json",
            "--out", str(tmp_path / "r.html")]  # fmt: skip
    assert main(argv) == 2
    assert "--baseline a is given twice" in capsys.readouterr().err
