"""Evaluation a reviewer can trust: the pooled AUC's uncertainty and p-value, paired differences
between methods, the negative control, repeated splits and the sequencing-depth confound."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest, mannwhitneyu, rankdata
from sklearn.metrics import roc_auc_score

from deeprc.baselines import run_baseline
from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.evaluate import evaluate_folds, paired_difference, pooled
from deeprc.store import Store

AMINO = "ACDEFGHIKLMNPQRSTVWY"


def write_fold(directory, ids, y, score):
    """A prediction directory as deeprc predict writes it."""
    directory.mkdir(parents=True)
    score = np.asarray(score, float)
    frame = pd.DataFrame({"repertoire_id": ids, "y": y, "logit": np.log(score / (1 - score))})
    frame["score"] = score
    frame.to_csv(directory / "predictions.tsv", sep="\t", index=False)
    return directory


def cohort(n, separation, seed):
    """n repertoires (ids r0.., half positive) with scores shifted up by ``separation`` in
    the positives."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    score = np.clip(rng.normal(0.5 + separation * (y - 0.5), 0.15), 0.01, 0.99)
    return [f"r{i}" for i in range(n)], y, score


def evaluated(root, ids, y, score, k=3, **kwargs):
    """Write the cohort as k folds of predictions and evaluate them; returns metrics.json's
    content."""
    folds = [
        write_fold(root / f"fold{f}", [ids[i] for i in range(f, len(ids), k)], y[f::k], score[f::k])
        for f in range(k)
    ]
    return evaluate_folds(folds, root / "metrics.json", **kwargs)


def test_pooled_interval_holds_the_auc_and_narrows_with_more_repertoires(tmp_path):
    widths = []
    for n in (40, 400):
        ids, y, score = cohort(n, 0.2, seed=n)
        result = evaluated(tmp_path / str(n), ids, y, score)
        block = json.loads((tmp_path / str(n) / "metrics.json").read_text())["pooled"]
        assert block == result["pooled"]
        assert block["roc_auc"] == pytest.approx(roc_auc_score(y, score))
        assert (block["n_repertoires"], block["n_positive"]) == (n, n // 2)
        low, high = block["ci95"]
        assert low < block["roc_auc"] < high
        widths.append(high - low)
        # a plain bootstrap: resample each class with replacement, rank, take the percentiles
        rng = np.random.default_rng(99)
        positive, negative = score[y == 1], score[y == 0]
        drawn = np.hstack([rng.choice(positive, (2000, len(positive))),
                           rng.choice(negative, (2000, len(negative)))])  # fmt: skip
        ranks = rankdata(drawn, axis=1)[:, : len(positive)].sum(axis=1)
        aucs = (ranks - len(positive) * (len(positive) + 1) / 2) / (len(positive) * len(negative))
        assert np.percentile(aucs, [2.5, 97.5]) == pytest.approx([low, high], abs=0.03)
    assert widths[1] < widths[0] / 2  # ~1/sqrt(n): 10x the repertoires, a third of the width
    one_class = pooled([{"test": {"repertoire_id": ["a", "b"], "y": [1, 1], "score": [0.2, 0.6]}}])
    assert math.isnan(one_class["roc_auc"]) and "one class" in one_class["note"]


def test_the_same_seed_gives_the_same_numbers(tmp_path):
    ids, y, score = cohort(60, 0.2, seed=1)
    other = np.clip(score + np.random.default_rng(2).normal(0, 0.1, 60), 0.01, 0.99)
    evaluated(tmp_path / "other", ids, y, other)
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        runs.append(evaluated(tmp_path / name, ids, y, score, seed=seed,
                              compare={"other": tmp_path / "other" / "metrics.json"}))  # fmt: skip
    first, again, changed = runs
    assert first["pooled"] == again["pooled"]
    assert first["comparisons"] == again["comparisons"]
    assert first["pooled"]["ci95"] != changed["pooled"]["ci95"]
    assert first["comparisons"]["other"]["ci95"] != changed["comparisons"]["other"]["ci95"]
    assert first["pooled"]["roc_auc"] == changed["pooled"]["roc_auc"]  # the seed moves no AUC


def test_p_value_is_small_for_separated_scores_and_uniform_for_random_ones():
    ids, y, score = cohort(100, 0.4, seed=5)
    block = pooled([{"test": {"repertoire_id": ids, "y": y.tolist(), "score": score.tolist()}}])
    assert block["p_value"] < 0.01
    assert block["p_value"] == pytest.approx(1 / 10_001)  # no permutation reaches it
    # a moderate signal: the permutation p-value is the exact Mann-Whitney one
    ids, y, score = cohort(30, 0.06, seed=6)
    fold = {"test": {"repertoire_id": ids, "y": y.tolist(), "score": score.tolist()}}
    exact = mannwhitneyu(score[y == 1], score[y == 0], alternative="greater", method="exact")
    assert 0.01 < exact.pvalue < 0.5
    assert pooled([fold], n_bootstrap=10)["p_value"] == pytest.approx(exact.pvalue, abs=0.01)
    # no signal: p-values spread evenly over (0, 1]
    found = []
    for seed in range(200):
        ids, y, score = cohort(100, 0.0, seed=100 + seed)
        fold = {"test": {"repertoire_id": ids, "y": y.tolist(), "score": score.tolist()}}
        found.append(pooled([fold], seed=seed, n_bootstrap=10, n_permutations=999)["p_value"])
    found = np.array(found)
    assert kstest(found, "uniform").pvalue > 0.05
    assert 0.02 <= (found <= 0.05).mean() <= 0.09


def test_the_paired_difference_is_the_difference_of_pooled_aucs(tmp_path, capsys):
    ids, y, score = cohort(90, 0.3, seed=7)
    weaker = np.clip(score + np.random.default_rng(8).normal(0, 0.2, 90), 0.01, 0.99)
    evaluated(tmp_path / "weaker", ids, y, weaker)
    half = [i for i in range(90) if i % 3 != 2]  # a baseline that scored two thirds of them
    evaluated(tmp_path / "part", [ids[i] for i in half], y[half], weaker[half], k=2)
    folds = [tmp_path / "model" / f"fold{f}" for f in range(3)]
    for f, fold in enumerate(folds):
        write_fold(fold, [ids[i] for i in range(f, 90, 3)], y[f::3], score[f::3])
    out = tmp_path / "model" / "metrics.json"
    assert main(["evaluate", *map(str, folds), "--out", str(out),
                 "--compare", f"weaker={tmp_path / 'weaker' / 'metrics.json'}",
                 "--compare", f"part={tmp_path / 'part' / 'metrics.json'}"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    both = result["comparisons"]["weaker"]
    expected = roc_auc_score(y, score) - roc_auc_score(y, weaker)
    assert both["difference"] == pytest.approx(expected)
    assert both["roc_auc"] == pytest.approx(result["pooled"]["roc_auc"])
    assert both["n_repertoires"] == 90 and both["ci95"][0] < expected < both["ci95"][1]
    part = result["comparisons"]["part"]
    assert part["n_repertoires"] == len(half)
    assert part["difference"] == pytest.approx(
        roc_auc_score(y[half], score[half]) - roc_auc_score(y[half], weaker[half])
    )
    low, high = both["ci95"]
    assert f"minus weaker: {expected:+.3f} (95% CI {low:+.3f} to {high:+.3f}" in printed
    low, high = result["pooled"]["ci95"]
    assert f"pooled roc_auc     {result['pooled']['roc_auc']:.3f} (95% CI {low:.3f}" in printed
    assert "p vs chance        " in printed
    # repertoires of another cohort, or the same ids with other labels, are refused
    evaluated(tmp_path / "foreign", [f"x{i}" for i in range(90)], y, weaker)
    evaluated(tmp_path / "flipped", ids, 1 - y, weaker)
    for name, message in (("foreign", "share no test repertoire"), ("flipped", "has label")):
        refused = tmp_path / f"refused_{name}.json"
        code = main(["evaluate", *map(str, folds), "--out", str(refused),
                     "--compare", f"{name}={tmp_path / name / 'metrics.json'}"])  # fmt: skip
        assert code == 2 and message in capsys.readouterr().err and not refused.exists()
    this = json.loads(out.read_text())
    with pytest.raises(InputError, match="share no test repertoire"):
        paired_difference(this, json.loads((tmp_path / "foreign" / "metrics.json").read_text()))


# ----------------------------------------------------------------------------- the report


def _store(h, root, depth_ratio, n=30, seed=0):
    """n negatives of 20-30 random sequences and n positives with ``depth_ratio`` times as
    many, ingested."""
    rng = np.random.default_rng(seed)
    files, labels = {}, {}
    for r in range(2 * n):
        positive = r % 2
        size = int(rng.integers(20, 31) * (depth_ratio if positive else 1))
        junctions = ["CASS" + "".join(rng.choice(list(AMINO), 6)) + "F" for _ in range(size)]
        files[f"rep{r:02d}.tsv"] = [h.rec(j, duplicate_count=int(rng.integers(1, 4)))
                                    for j in junctions]  # fmt: skip
        labels[f"rep{r:02d}.tsv"] = str(positive)
    _, store = h.run_ingest(h.make_study(root / "study", files, labels), root / "store")
    return store


@pytest.fixture(scope="module")
def deep_positives(h, tmp_path_factory):
    """A store whose positives hold twice the sequences of its negatives, in 3 folds."""
    root = tmp_path_factory.mktemp("depth")
    store = _store(h, root, depth_ratio=2)
    assert main(["split", "--store", str(store), "--out", str(root / "folds.tsv"),
                 "--k", "3"]) == 0  # fmt: skip
    return root, store


def test_repertoire_size_finds_depth_and_the_report_warns(deep_positives, tmp_path):
    root, store = deep_positives
    for fold in range(3):
        assert main(["baseline", "repertoire_size", "--store", str(store), "--folds",
                     str(root / "folds.tsv"), "--fold", str(fold),
                     "--out", str(tmp_path / f"size{fold}")]) == 0  # fmt: skip
    folds = [str(tmp_path / f"size{fold}") for fold in range(3)]
    assert main(["evaluate", *folds, "--out", str(tmp_path / "size.json")]) == 0
    size = json.loads((tmp_path / "size.json").read_text())
    assert size["summary"]["roc_auc"]["n_folds"] == 3
    assert size["summary"]["roc_auc"]["mean"] >= 0.9
    # the model's predictions: random scores on the same test repertoires
    rng = np.random.default_rng(0)
    model = []
    for fold in range(3):
        test = pd.DataFrame(size["folds"][fold]["test"])
        score = rng.uniform(0.05, 0.95, len(test))
        model.append(write_fold(tmp_path / f"model{fold}", test["repertoire_id"], test["y"], score))
    assert main(["evaluate", *map(str, model), "--out", str(tmp_path / "model.json")]) == 0
    args = ["report", "--store", str(store), "--metrics", str(tmp_path / "model.json")]
    assert main([*args, "--baseline", f"repertoire_size={tmp_path / 'size.json'}",
                 "--out", str(tmp_path / "report.html")]) == 0  # fmt: skip
    page = (tmp_path / "report.html").read_text()
    assert '<p class="alert">Warning: sequencing depth alone separates the classes.' in page
    assert f"mean ROC AUC of {size['summary']['roc_auc']['mean']:.3f}" in page
    assert page.index('class="alert"') < page.index("<h2>Data</h2>")  # above everything
    # the model's random scores under another name: no depth warning
    assert main([*args, "--baseline", f"other={tmp_path / 'model.json'}",
                 "--out", str(tmp_path / "plain.html")]) == 0  # fmt: skip
    assert 'class="alert"' not in (tmp_path / "plain.html").read_text()


def test_a_baseline_on_a_fold_without_test_repertoires_is_refused(deep_positives, tmp_path, capsys):
    root, store = deep_positives
    folds = pd.read_csv(root / "folds.tsv", sep="\t", dtype=str, keep_default_na=False)
    folds.loc[(folds["fold"] == "1") & (folds["role"] == "test"), "role"] = "train"
    folds.to_csv(tmp_path / "folds.tsv", sep="\t", index=False)
    code = main(["baseline", "kmer3_logistic", "--store", str(store),
                 "--folds", str(tmp_path / "folds.tsv"), "--fold", "1",
                 "--out", str(tmp_path / "b")])  # fmt: skip
    assert code == 2 and not (tmp_path / "b").exists()
    assert "no test repertoires" in capsys.readouterr().err
    with pytest.raises(InputError, match="fold 1 has no test repertoires"):
        run_baseline("kmer3_logistic", Store(store), np.arange(10), np.array([], int),
                     tmp_path / "c", fold=1)  # fmt: skip


@pytest.fixture
def cross_validation(h, tmp_path):
    """Metrics files on 60 repertoires of a small store: the model (well separated), a
    baseline (weaker), a negative control (chance) and a leaking one, and the model and
    baseline again with split seeds 1 and 2."""
    _, store = h.run_ingest(h.make_study(tmp_path / "study"))
    files = {}
    for name, separation, seed in (
        ("model", 0.4, 0), ("baseline", 0.15, 1), ("control", 0.0, 2), ("leak", 0.5, 3),
        ("model1", 0.35, 4), ("baseline1", 0.1, 5), ("model2", 0.3, 6),
    ):  # fmt: skip
        ids, y, score = cohort(60, separation, seed)
        files[name] = evaluated(tmp_path / name, ids, y, score)
        files[name]["path"] = tmp_path / name / "metrics.json"
    return store, files


def test_negative_control_and_other_splits_are_shown_with_their_numbers(cross_validation, tmp_path):
    store, files = cross_validation
    path = {name: str(found["path"]) for name, found in files.items()}
    out = tmp_path / "report.html"
    assert main(["report", "--store", str(store), "--metrics", path["model"],
                 "--baseline", f"kmer3_logistic={path['baseline']}",
                 "--negative-control", path["control"], "--split-seed", "0",
                 "--repeat", "1", "deeprc", path["model1"],
                 "--repeat", "1", "kmer3_logistic", path["baseline1"],
                 "--repeat", "2", "deeprc", path["model2"], "--out", str(out)]) == 0  # fmt: skip
    page = out.read_text()
    # pooled AUCs with intervals, and the model minus the baseline computed from both files
    results = page.split("<h2>Cross-validated results</h2>")[1].split("<h2>")[0]
    model, baseline = files["model"], files["baseline"]
    for found in (model, baseline):
        shown = f"{found['pooled']['roc_auc']:.3f} ({found['pooled']['ci95'][0]:.3f} to"
        assert shown in results
    difference = paired_difference(model, baseline)
    assert difference["difference"] == pytest.approx(
        model["pooled"]["roc_auc"] - baseline["pooled"]["roc_auc"]
    )
    low, high = difference["ci95"]
    assert f"{difference['difference']:+.3f} ({low:+.3f} to {high:+.3f}; 60 shared" in results
    # the negative control beside the real result
    control_part = page.split("<h2>Negative control</h2>")[1].split("<h2>")[0]
    assert "A negative control is the same model retrained" in control_part
    assert "near 0.5" in control_part
    summary = files["control"]["summary"]["roc_auc"]
    assert f"{summary['mean']:.3f} ± {summary['sd']:.3f}" in control_part
    block = files["control"]["pooled"]
    assert f"{block['roc_auc']:.3f} ({block['ci95'][0]:.3f} to {block['ci95'][1]:.3f})" in (
        control_part
    )
    assert f"against chance (true labels permuted): {model['pooled']['p_value']:.2g}" in (
        control_part
    )
    assert "may leak" not in page
    # one row per method, one column per split seed, then mean ± sd over the seeds
    splits = page.split("<h2>Other splits</h2>")[1].split("<h2>")[0]
    for seed in (0, 1, 2):
        assert f"split seed {seed}</th>" in splits
    means = [files[n]["summary"]["roc_auc"]["mean"] for n in ("model", "model1", "model2")]
    row = "".join(f'<td class="">{m:.3f}</td>' for m in means)
    spread = f"{np.mean(means):.3f} ± {np.std(means, ddof=1):.3f}"
    assert f'<td class="text">DeepRC (this run)</td>{row}<td class="">{spread}</td>' in splits
    means = [files[n]["summary"]["roc_auc"]["mean"] for n in ("baseline", "baseline1")]
    row = "".join(f'<td class="">{m:.3f}</td>' for m in means) + '<td class=""></td>'
    assert f'<td class="text">kmer3_logistic</td>{row}' in splits


def test_a_leaking_negative_control_and_bad_repeats_are_flagged(cross_validation, tmp_path, capsys):
    store, files = cross_validation
    path = {name: str(found["path"]) for name, found in files.items()}
    args = ["report", "--store", str(store), "--metrics", path["model"]]
    out = tmp_path / "report.html"
    assert main([*args, "--negative-control", path["leak"], "--out", str(out)]) == 0
    page = out.read_text()
    assert files["leak"]["pooled"]["ci95"][0] > 0.6
    assert '<p class="alert">Warning: the evaluation may leak.' in page
    for repeat, message in (
        (["x", "deeprc", path["model1"]], "must be a whole number"),
        (["1", "minmax_svm", path["model1"]], "method 'minmax_svm' is not in this report"),
        (["0", "deeprc", path["model1"]], "already given by --metrics (--split-seed 0)"),
    ):
        code = main([*args, "--repeat", *repeat, "--out", str(tmp_path / "bad.html")])
        assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "bad.html").exists()
