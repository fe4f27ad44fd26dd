"""Interpretation: integrated gradients, motif mining, PWMs, ground-truth checks."""

import json
import shutil
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from deeprc.classifier import RepertoireClassifier
from deeprc.cli import main
from deeprc.data import repertoire_chunks
from deeprc.experiment import Experiment
from deeprc.interpret import (
    _top_rows,
    enriched_motifs,
    integrated_gradients,
    mine_motifs,
    motif_matches,
    position_weights,
)
from deeprc.model import build_model
from deeprc.outputs import attention_by_repertoire, read_interpretation, read_predictions
from deeprc.store import Store
from deeprc.top import top_sequences


def test_contributions_sum_to_score_minus_empty_baseline():
    """Completeness of integrated gradients, per sequence, for every head's best score."""
    torch.manual_seed(0)
    model = build_model(replace(Experiment().model, num_heads=2), seed=3)
    with torch.no_grad():
        model.pooling.key.weight.mul_(20)  # scores that differ by O(1) between sequences
    lengths = torch.tensor([5, 12, 9, 1])
    tokens = torch.randint(1, 21, (4, 14), dtype=torch.uint8)
    tokens[torch.arange(14)[None, :] >= lengths[:, None]] = 0
    contributions, scores, empty = integrated_gradients(
        model, tokens, lengths, model.pooling.state.detach(), steps=400
    )
    assert contributions.shape == (4, 14)
    assert np.all(contributions[torch.arange(14)[None, :] >= lengths[:, None]] == 0)
    np.testing.assert_allclose(contributions.sum(axis=1), scores - empty, atol=1e-2, rtol=1e-2)
    assert np.abs(scores - empty).max() > 1.0  # so the check compares something


def test_mined_motifs_rank_the_contributing_word_first_and_drop_its_parts():
    rng = np.random.default_rng(1)
    letters = np.array(list("ACDEGHIKMNPQTVWY"))  # no S, L, R, F: only the motif has them
    sequences, contributions = [], []
    for i in range(30):
        left, right = "".join(rng.choice(letters, 4)), "".join(rng.choice(letters, 5))
        motif = "SLRF" if i % 10 else "SYRF"  # a few carry a variant: S.RF covers both
        sequences.append(left + motif + right)
        parts = rng.normal(0, 0.05, len(sequences[-1]))
        parts[4:8] += 1.0
        contributions.append(parts)
    motifs = mine_motifs(sequences, contributions)
    assert motifs["motif"].iloc[0] == "SLRF"
    assert motifs["n_sequences"].iloc[0] == 27
    # nothing sharing three residues with SLRF (SLR, LRF, S.RF, xSLR, LRF.y ...) is listed again
    assert not any(("SLR" in m or "LRF" in m or "S.RF" in m) for m in motifs["motif"][1:])
    assert len(motifs) > 1  # other, unrelated words remain
    assert motifs["contribution"].is_monotonic_decreasing
    assert motif_matches("S.RF", "SLRF") and motif_matches("SLRF", "S.RF")
    assert not motif_matches("SLRF", "SLRY") and not motif_matches("SLR", "SLRF")


def test_position_weights_of_identical_occurrences_carry_full_information():
    sequences = ["CASSLRFEQ", "CAWSLRFQY", "CSLRFAA"]
    pwm = position_weights("SLRF", sequences, flank=1)
    assert pwm["position"].tolist() == [-1, 0, 1, 2, 3, 4]
    amino = pwm.drop(columns=["position", "information"])
    np.testing.assert_allclose(amino.sum(axis=1), 1.0)
    motif_rows = pwm[pwm["position"].between(0, 3)]
    np.testing.assert_allclose(motif_rows["information"], np.log2(20))
    assert motif_rows.iloc[0]["S"] == 1.0 and motif_rows.iloc[3]["F"] == 1.0
    assert pwm.iloc[0]["information"] < np.log2(20)  # the flank varies (S, W, C)


def test_interpret_recovers_the_implanted_motif_and_scores_against_the_truth(trained, capsys):
    out = trained / "interpretation"
    assert main(["interpret", "--store", str(trained / "store"), "--top", "20",
                 "--models", str(trained / "fold0.pt"), "--predictions", str(trained / "pred0"),
                 "--out", str(out), "--truth", str(trained / "sim")]) == 0  # fmt: skip
    summary = json.loads((out / "interpretation.json").read_text())
    truth = summary["ground_truth"]
    assert truth["implanted_motif_rank"]["SLRF"] in (1, 2, 3)
    assert truth["mean"]["precision_at_10"] >= 0.8
    assert truth["mean"]["attention_auc"] > 0.9
    found = read_interpretation(out)
    top = found.top
    assert len(top) == 20 and top["rank"].tolist() == list(range(1, 21))
    assert top["attention_score"].is_monotonic_decreasing
    lengths = top["junction_aa"].str.len()
    assert [len(c) for c in top["contributions"]] == lengths.tolist()
    # contributions sum to the score minus the empty sequence's score (completeness)
    sums = np.array([c.sum() for c in top["contributions"]])
    np.testing.assert_allclose(sums, top["attention_score"] - top["empty_score"], atol=0.05)
    assert len(found.pwms) == len(summary["motifs"]) and len(found.motifs) > 0
    assert "implanted SLRF: rank" in capsys.readouterr().out


def test_enriched_motifs_rank_what_the_top_sequences_share_beyond_the_background():
    rng = np.random.default_rng(2)
    letters = np.array(list("ACDEGHIKMNPQTVWY"))  # no S, L, R, F: only the motif has them

    def filler(n: int) -> str:
        return "".join(rng.choice(letters, n))

    top = [f"CA{filler(3)}SLRF{filler(4)}" for _ in range(20)]  # every one starts CA, too
    background = [f"CA{filler(10)}" for _ in range(400)]
    motifs = enriched_motifs(top, background)
    assert motifs["motif"].iloc[0] == "SLRF" and motifs["n_sequences"].iloc[0] == 20
    assert motifs["excess_carriers"].is_monotonic_decreasing
    # "CA" words are as common behind: listed or not, none comes near the motif's excess
    assert motifs["excess_carriers"].iloc[0] > 19
    assert (motifs[motifs["motif"].str.startswith("CA")]["excess_carriers"] < 5).all()


def test_an_evidence_only_model_ranks_motifs_by_enrichment_and_the_report_says_so(
    trained, tmp_path
):
    """An untrained weighed model attends by its evidence alone: the residues carry no
    integrated-gradient contribution, so the motifs are those the top sequences share."""
    (tmp_path / "exp.yaml").write_text(
        "evidence: [{name: kmer, k: 4}]\nweigh_evidence: true\ntrain: {max_steps: 0}\n"
    )
    args = ["--store", str(trained / "store"), "--folds", str(trained / "folds.tsv")]
    assert (
        main(
            [
                "train",
                *args,
                "--fold",
                "0",
                "--experiment",
                str(tmp_path / "exp.yaml"),
                "--threads",
                "1",
                "--out",
                str(tmp_path / "m.pt"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "predict",
                *args,
                "--fold",
                "0",
                "--model",
                str(tmp_path / "m.pt"),
                "--out",
                str(tmp_path / "pred"),
            ]
        )
        == 0
    )
    out = tmp_path / "interpretation"
    assert main(["interpret", "--store", str(trained / "store"), "--top", "20",
                 "--models", str(tmp_path / "m.pt"), "--predictions", str(tmp_path / "pred"),
                 "--out", str(out), "--truth", str(trained / "sim")]) == 0  # fmt: skip
    found = read_interpretation(out)
    assert all(not np.any(c) for c in found.top["contributions"])
    assert found.summary["motifs_ranked_by"] == "enrichment"
    assert found.summary["ground_truth"]["implanted_motif_rank"]["SLRF"] in (1, 2, 3)
    report = tmp_path / "report.html"
    assert main(["report", "--store", str(trained / "store"), "--predictions",
                 str(tmp_path / "pred"), "--interpretation", str(out),
                 "--out", str(report)]) == 0  # fmt: skip
    assert "this model's attention reads its evidence alone" in report.read_text()


def test_interpret_needs_one_model_per_fold(trained):
    code = main(["interpret", "--store", str(trained / "store"),
                 "--models", str(trained / "fold0.pt"), str(trained / "fold0.pt"),
                 "--predictions", str(trained / "pred0"), "--out", str(trained / "x")])  # fmt: skip
    assert code == 2 and not (trained / "x").exists()


def test_interpret_scores_are_the_models_own_scores(trained):
    """Integrated gradients differentiate the model's own scores: for the same sequences, the
    scores they start from equal those that prediction streamed through the lookup path."""
    store = Store(trained / "store")
    classifier = RepertoireClassifier.load(trained / "fold0.pt")
    model = classifier.network
    attention = pq.read_table(trained / "pred0" / "attention.parquet").to_pandas()
    index = {rid: i for i, rid in enumerate(store.repertoires["repertoire_id"])}
    checked = 0
    for repertoire_id, group in attention.groupby("repertoire_id"):
        top = group.nlargest(10, "attention_score")
        rows, r = top["row"].to_numpy(), index[repertoire_id]
        inputs = classifier.features.inputs_of(store, r)
        state = model.final_state(partial(repertoire_chunks, store, r, inputs=inputs))
        _, scores, _ = integrated_gradients(
            model,
            torch.from_numpy(np.asarray(store.tokens[rows])),
            torch.from_numpy(np.asarray(store.lengths[rows], dtype=np.int64)),
            state,
            steps=2,
            inputs={k: torch.from_numpy(v) for k, v in inputs(rows).items()},
        )
        np.testing.assert_allclose(scores, top["attention_score"], rtol=1e-5, atol=1e-5)
        checked += len(rows)
    assert checked >= 50


def test_the_top_rows_read_one_repertoire_at_a_time_are_the_whole_tables_largest(trained, tmp_path):
    """Interpret reads a fold's attention one repertoire at a time (memory: one repertoire)
    and keeps what the whole table's largest scores are, ties first-written first, even when
    a repertoire's rows span several row groups."""
    table = pq.read_table(trained / "pred0" / "attention.parquet")
    whole = table.to_pandas()
    tied = whole["attention_score"].nlargest(3).min()
    whole.loc[whole.index[::5], "attention_score"] = tied  # ties across repertoires
    (tmp_path / "p").mkdir()
    pq.write_table(pa.Table.from_pandas(whole, preserve_index=False),
                   tmp_path / "p" / "attention.parquet", row_group_size=7)  # fmt: skip
    pieces = list(attention_by_repertoire(tmp_path / "p", ["attention"]))
    assert [rid for rid, _ in pieces] == list(dict.fromkeys(whole["repertoire_id"]))
    assert [len(t) for _, t in pieces] == whole.groupby("repertoire_id", sort=False).size().tolist()
    assert pieces[0][1].column_names == ["repertoire_id", "attention"]
    best, aucs, _ = _top_rows(tmp_path / "p", 40, None)
    expected = whole.nlargest(40, "attention_score").reset_index(drop=True)
    assert (expected["attention_score"] == tied).sum() > 5
    pd.testing.assert_frame_equal(best, expected)
    assert aucs == []


def test_cohort_top_sequences_read_one_repertoire_at_a_time_rank_as_the_whole_table(
    trained, tmp_path
):
    whole = pq.read_table(trained / "pred0" / "attention.parquet").to_pandas()
    (tmp_path / "p").mkdir()
    pq.write_table(pa.Table.from_pandas(whole, preserve_index=False),
                   tmp_path / "p" / "attention.parquet", row_group_size=7)  # fmt: skip
    shutil.copy(trained / "pred0" / "predictions.tsv", tmp_path / "p")
    n = 60  # the motif's sequences tie; ~30 a repertoire
    top = top_sequences([tmp_path / "p"], n=n)
    expected = whole.sort_values(
        ["attention_score", "repertoire_id"], ascending=[False, True], kind="stable"
    )
    assert top["rank"].tolist() == list(range(1, n + 1))
    assert top["junction_aa"].tolist() == expected["junction_aa"].head(n).tolist()
    np.testing.assert_allclose(
        top["attention_score"], expected["attention_score"].head(n), rtol=1e-6
    )
    assert top["repertoire_id"].nunique() > 1  # ranked across repertoires
    labels = read_predictions(trained / "pred0").set_index("repertoire_id")["y"]
    words = top["repertoire_id"].map(labels).map({1: "positive", 0: "negative"})
    assert top["label"].tolist() == words.tolist()  # no provenance here: the plain words
