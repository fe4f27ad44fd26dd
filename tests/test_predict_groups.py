"""Prediction in groups of repertoires (a cluster's jobs side by side), merged into what one
deeprc predict writes."""

import pandas as pd
import pyarrow.parquet as pq

from deeprc.cli import main


def _predict(root, out, *extra) -> int:
    return main(["predict", "--store", str(root / "store"), "--folds", str(root / "folds.tsv"),
                 "--fold", "0", "--model", str(root / "fold0.pt"), "--out", str(out),
                 "--threads", "1", "--no-progress", *extra])  # fmt: skip


def test_groups_merged_are_the_prediction_of_one_call(trained, tmp_path):
    groups = [str(tmp_path / f"g{k}") for k in range(3)]
    for k, group in enumerate(groups):
        assert _predict(trained, group, "--group", f"{k}/3") == 0
    assert [len(pd.read_csv(f"{g}/predictions.tsv", sep="\t")) for g in groups] == [3, 3, 2]
    assert _predict(trained, tmp_path / "merged", "--merge", *groups[::-1]) == 0
    whole, merged = trained / "pred0", tmp_path / "merged"
    pd.testing.assert_frame_equal(
        pd.read_csv(merged / "predictions.tsv", sep="\t"),
        pd.read_csv(whole / "predictions.tsv", sep="\t"),
    )
    assert pq.read_table(merged / "attention.parquet").equals(
        pq.read_table(whole / "attention.parquet")
    )
    assert (merged / "provenance.json").read_text() == (whole / "provenance.json").read_text()


def test_a_merge_refuses_missing_repeated_or_foreign_groups(trained, tmp_path, capsys):
    groups = [str(tmp_path / f"g{k}") for k in range(2)]
    for k, group in enumerate(groups):
        assert _predict(trained, group, "--group", f"{k}/2") == 0
    assert _predict(trained, tmp_path / "m", "--merge", groups[0]) == 2
    assert "groups 0..N-1" in capsys.readouterr().err
    assert _predict(trained, tmp_path / "m", "--merge", groups[0], groups[0]) == 2
    assert "once each" in capsys.readouterr().err
    assert _predict(trained, tmp_path / "m", "--merge", groups[0], str(trained / "pred0")) == 2
    assert "is not a group" in capsys.readouterr().err
    args = ["predict", "--store", str(trained / "store"), "--model", str(trained / "fold0.pt"),
            "--out", str(tmp_path / "m"), "--merge", *groups]  # fmt: skip
    assert main(args) == 2  # the whole store, where the groups scored fold 0's test set
    assert "another model, store or fold" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
