"""Cross-validated metrics from the per-fold predictions: per fold, then mean ± sd over folds;
and the pooled test ROC AUC with a bootstrap interval, a permutation p-value against chance and
paired differences to other methods scored on the same repertoires."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

from deeprc import __version__, outputs
from deeprc.atomic import atomic_file
from deeprc.errors import InputError
from deeprc.targets import categorical_metrics, numeric_metrics

__all__ = [
    "evaluate_folds",
    "evaluate_target_folds",
    "p_value_text",
    "paired_difference",
    "pooled",
    "pooled_lines",
    "summary_lines",
]

# brier: mean squared error of the probability (0 is perfect; always 0.25 scores 0.25), which
# only a calibrated score gets low
METRICS = ("roc_auc", "pr_auc", "balanced_accuracy", "brier")
# A metric over fewer test repertoires of a class takes a handful of values (1 + 1: 0 or 1
# only), so it says nothing about the method; such folds are shown but not averaged.
MIN_PER_CLASS = 5
N_BOOTSTRAP = 2000
N_PERMUTATIONS = 10_000
# resampled or permuted repertoires held at once (8 bytes each): bounds memory on large cohorts
_CELLS = 2_000_000


def _fold_metrics(predictions: pd.DataFrame, threshold: float) -> dict[str, float | int | bool]:
    y, score = predictions["y"].to_numpy(), predictions["score"].to_numpy()
    n_positive = int(y.sum())
    both = 0 < n_positive < len(y)  # AUCs need both classes in the fold
    return {
        "n_repertoires": len(y),
        "n_positive": n_positive,
        "n_negative": len(y) - n_positive,
        "roc_auc": float(roc_auc_score(y, score)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, score)) if both else math.nan,
        "balanced_accuracy": float(balanced_accuracy_score(y, score >= threshold)),
        "brier": float(np.mean((score - y) ** 2)),
        "too_few": min(n_positive, len(y) - n_positive) < MIN_PER_CLASS,
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _note(folds: list[dict]) -> str | None:
    """Why folds are left out of the summary, or None when none is."""
    flagged = [i for i, f in enumerate(folds) if f["too_few"]]
    if not flagged:
        return None
    positives = max(folds[i]["n_positive"] for i in flagged)
    negatives = max(folds[i]["n_negative"] for i in flagged)
    if max(positives, negatives) < MIN_PER_CLASS:
        held = f"at most {_count(positives, 'positive')} and {_count(negatives, 'negative')}"
    else:
        smaller = max(min(folds[i]["n_positive"], folds[i]["n_negative"]) for i in flagged)
        held = f"at most {_count(smaller, 'repertoire')} of one class"
    need = f"a metric needs at least {MIN_PER_CLASS} of each"
    if len(flagged) == len(folds):
        return f"fold test sets hold {held}; {need}"
    which = ", ".join(map(str, flagged))
    if len(flagged) == 1:
        return f"fold {which} left out, as its test set holds {held}; {need}"
    return f"folds {which} left out, as their test sets hold {held}; {need}"


def evaluate_folds(
    prediction_dirs: list[Path],
    out: Path,
    *,
    threshold: float = 0.5,
    compare: dict[str, Path] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict:
    """Write ``out`` (metrics.json) from the predictions of each fold's directory; returns it.
    Repertoires without a label are counted (``n_unlabelled``) and left out of the metrics.

    A fold whose test set holds fewer than ``MIN_PER_CLASS`` repertoires of a class keeps its
    metrics, flagged ``too_few``; they are not averaged, and the summaries say why (``note``).
    ``pooled`` holds the ROC AUC of all folds' test repertoires together with its uncertainty;
    ``comparisons`` the paired difference to each of ``compare`` (name -> its metrics.json).
    ``seed`` seeds the bootstrap and the permutations.

    Predictions of a target other than the label (``target.json``, deeprc.targets) record it
    in ``target``; a categorical or numeric one is scored with its own metrics
    (:func:`evaluate_target_folds`).
    """
    target = _target_of(prediction_dirs)
    if target is not None and target["kind"] != "binary":
        if compare:
            raise InputError(
                f"--compare: paired differences are of binary ROC AUCs; target "
                f"{target['name']!r} is {target['kind']}: compare its metrics side by side"
            )
        return evaluate_target_folds(prediction_dirs, out, target, overwrite=overwrite)
    folds = []
    for directory in prediction_dirs:
        scored = outputs.read_predictions(directory)
        path = Path(directory) / outputs.PREDICTIONS
        predictions = scored[scored["y"].notna()].astype({"y": int})
        if predictions.empty:
            raise InputError(
                f"{path}: none of its {len(scored)} repertoires has a label, so there is "
                "nothing to evaluate against; its scores are the result"
            )
        digest = outputs.file_digest(path)
        fold = {"predictions": str(path), "sha256": digest, **_fold_metrics(predictions, threshold)}
        fold["n_unlabelled"] = len(scored) - len(predictions)  # scored, not evaluated
        # the test scores themselves, so that curves drawn from this file need nothing else
        fold["test"] = {
            "repertoire_id": predictions["repertoire_id"].tolist(),
            "y": predictions["y"].astype(int).tolist(),
            "score": predictions["score"].astype(float).tolist(),
        }
        if (provenance := outputs.read_provenance(directory)) is not None:
            fold["provenance"] = provenance
        folds.append(fold)
    note = _note(folds)
    summary = _over_folds(folds, METRICS)
    if note:
        for stat in summary.values():
            stat["note"] = note
    # a repertoire tested twice (a copied fold directory) would count twice in the pooled AUC
    _once(_test_table({"folds": folds}), "the prediction directories")
    result = {
        "deeprc_version": __version__,
        **({"target": target} if target is not None else {}),
        "threshold": threshold,
        "summary": summary,
        "folds": folds,
        "pooled": pooled(folds, seed=seed),
    }
    result["comparisons"] = {}
    for name, path in (compare or {}).items():
        other = outputs.read_metrics(path)
        difference = paired_difference(
            result, other, names=("these predictions", f"{name} ({path})"), seed=seed
        )
        digest = outputs.file_digest(path)
        result["comparisons"][name] = {"metrics": str(path), "sha256": digest, **difference}
    inputs = [*prediction_dirs, *(compare or {}).values()]
    with atomic_file(out, kind="metrics", overwrite=overwrite, inputs=inputs) as tmp:
        outputs.write_metrics(tmp, result)
    return result


def _over_folds(folds: list[dict], metrics: tuple[str, ...]) -> dict[str, dict]:
    """Each metric's mean and sd over the folds not flagged ``too_few`` (NaN left out)."""
    summary = {}
    for metric in metrics:
        values = np.array([f[metric] for f in folds if not f["too_few"]], float)
        values = values[~np.isnan(values)]
        summary[metric] = {
            "mean": float(values.mean()) if len(values) else math.nan,
            "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            "n_folds": len(values),
        }
    return summary


def _target_of(prediction_dirs: list[Path]) -> dict | None:
    """The one target all the directories predict (target.json; None: the label)."""
    targets = [outputs.read_target(d) for d in prediction_dirs]
    if any(t != targets[0] for t in targets):
        names = sorted({(t or {}).get("name", "label") for t in targets})
        raise InputError(
            f"the prediction directories predict different targets ({', '.join(names)}); "
            "evaluate each target's predictions apart"
        )
    return targets[0] if targets else None


# the metrics of a categorical and of a numeric target (deeprc.targets) summarised over folds
TARGET_METRICS = {
    "categorical": ("roc_auc_macro", "balanced_accuracy", "brier"),
    "numeric": ("r2", "spearman", "mae"),
}


def evaluate_target_folds(
    prediction_dirs: list[Path], out: Path, target: dict, *, overwrite: bool = False
) -> dict:
    """As :func:`evaluate_folds`, for a categorical target (macro one-vs-rest ROC AUC and each
    class's, balanced accuracy, Brier score, confusion matrix) or a numeric one (R²,
    Spearman, mean absolute error): per fold, then mean ± sd over folds. A categorical fold
    with fewer than ``MIN_PER_CLASS`` test repertoires of a class, or a numeric one with
    fewer than ``MIN_PER_CLASS`` known values, is flagged ``too_few`` and not averaged."""
    classes = target.get("classes") or []
    folds = []
    for directory in prediction_dirs:
        table = outputs.read_target_predictions(directory, target)
        path = Path(directory) / outputs.PREDICTIONS
        known = table[table["y"].notna()]
        if known.empty:
            raise InputError(f"{path}: no repertoire has a known {target['name']!r}")
        fold: dict = {
            "predictions": str(path),
            "sha256": outputs.file_digest(path),
            "n_repertoires": len(known),
            "n_unknown": len(table) - len(known),
        }
        if target["kind"] == "categorical":
            y = known["y"].map({c: i for i, c in enumerate(classes)}).to_numpy()
            scores = known[[f"p:{c}" for c in classes]].to_numpy(float)
            fold["class_counts"] = np.bincount(y, minlength=len(classes)).tolist()
            fold |= categorical_metrics(y, scores)
            fold["too_few"] = min(fold["class_counts"]) < MIN_PER_CLASS
            fold["test"] = {"repertoire_id": known["repertoire_id"].tolist(),
                            "y": known["y"].tolist(), "scores": scores.tolist()}  # fmt: skip
        else:
            y, predicted = known["y"].to_numpy(float), known["prediction"].to_numpy(float)
            fold |= numeric_metrics(y, predicted)
            fold["too_few"] = len(known) < MIN_PER_CLASS
            fold["test"] = {"repertoire_id": known["repertoire_id"].tolist(),
                            "y": y.tolist(), "prediction": predicted.tolist()}  # fmt: skip
        folds.append(fold)
    summary = _over_folds(folds, TARGET_METRICS[target["kind"]])
    result = {"deeprc_version": __version__, "target": target, "summary": summary,
              "folds": folds}  # fmt: skip
    with atomic_file(out, kind="metrics", overwrite=overwrite, inputs=prediction_dirs) as tmp:
        outputs.write_metrics(tmp, result)
    return result


def summary_text(stat: dict, plus_minus: str = "+-", *, n_folds: int | None = None) -> str:
    """One summary metric as shown to a person: mean +- sd (n folds), or n/a and why;
    ``n_folds`` = 1 (every fold evaluated) is one fixed test set, not a cross-validation."""
    if stat["n_folds"] == 0:
        return f"n/a: {stat.get('note', 'no fold has both classes')}"
    shown = f"{stat['mean']:.3f}"
    if stat["n_folds"] > 1:
        shown += f" {plus_minus} {stat['sd']:.3f}"
    folds = "one test set" if n_folds == 1 else _count(stat["n_folds"], "fold")
    return f"{shown} ({folds}; {stat['note']})" if "note" in stat else f"{shown} ({folds})"


def metric_text(value: float) -> str:
    """A metric as shown to a person: 3 decimals, or n/a (a fold with one class has no AUC)."""
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def fold_name(k: int, n_folds: int) -> str:
    """How fold ``k`` of ``n_folds`` is called: one fold is a fixed test set (--test-ids)."""
    return "test set" if n_folds == 1 else f"fold {k}"


def summary_lines(result: dict) -> list[str]:
    """What ``deeprc evaluate`` prints: the summary, then each fold, flagged metrics marked *."""
    n = len(result["folds"])
    kind = result.get("target", {}).get("kind", "binary")
    if kind != "binary":
        metrics = TARGET_METRICS[kind]
        lines = [f"target {result['target']['name']} ({kind})"]
        lines += [f"{m:<18} {summary_text(result['summary'][m], n_folds=n)}" for m in metrics]
        for k, fold in enumerate(result["folds"]):
            mark = "*" if fold["too_few"] else ""
            values = "  ".join(f"{m} {metric_text(fold[m])}{mark}" for m in metrics)
            lines.append(f"{fold_name(k, n):<18} {values}  [{fold['n_repertoires']} known]")
        if any(f["too_few"] for f in result["folds"]):
            lines.append(f"* left out of the summary: fewer than {MIN_PER_CLASS} test "
                         "repertoires of a class (or known values)")  # fmt: skip
        return lines
    lines = [f"{m:<18} {summary_text(result['summary'][m], n_folds=n)}" for m in METRICS]
    for k, fold in enumerate(result["folds"]):
        mark = "*" if fold["too_few"] else ""
        values = "  ".join(f"{m} {metric_text(fold[m])}{mark}" for m in METRICS)
        test = f"{_count(fold['n_repertoires'], 'test repertoire')} ({fold['n_positive']} positive)"
        lines.append(f"{fold_name(k, n):<18} {values}  [{test}]")
    if any(f["too_few"] for f in result["folds"]):
        lines.append(
            f"* left out of the summary: fewer than {MIN_PER_CLASS} test repertoires of a class"
        )
    return lines


# ----------------------------------------------------------------------------- uncertainty


def _rows_per_block(width: int) -> int:
    return max(1, _CELLS // max(width, 1))


def _resampled_aucs(
    y: np.ndarray, scores: list[np.ndarray], n_bootstrap: int, seed: int
) -> list[np.ndarray]:
    """Each score's ROC AUC over the same ``n_bootstrap`` resamples of the repertoires, drawn
    with replacement within each class (so every resample has the cohort's class sizes).

    A resample is a count per repertoire; its AUC is the count-weighted share of
    (positive, negative) pairs the positive wins (ties half), from cumulative counts of the
    negatives in score order: O(draws x repertoires), no sort per draw.
    """
    positive, negative = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n1, n0 = len(positive), len(negative)
    # per score: the negatives in score order, and where each positive falls among them
    places = []
    for score in scores:
        order = np.argsort(score[negative], kind="stable")
        ranked = score[negative][order]
        lower = np.searchsorted(ranked, score[positive], "left")
        upper = np.searchsorted(ranked, score[positive], "right")
        places.append((order, lower, upper))
    rng = np.random.default_rng(seed)
    found: list[list[np.ndarray]] = [[] for _ in scores]
    for start in range(0, n_bootstrap, _rows_per_block(len(y))):
        draws = min(_rows_per_block(len(y)), n_bootstrap - start)
        w1 = rng.multinomial(n1, np.full(n1, 1 / n1), draws)
        w0 = rng.multinomial(n0, np.full(n0, 1 / n0), draws)
        for aucs, (order, lower, upper) in zip(found, places, strict=True):
            below = np.zeros((draws, n0 + 1))  # drawn negatives up to each place
            np.cumsum(w0[:, order], axis=1, out=below[:, 1:])
            wins = 0.5 * (below[:, lower] + below[:, upper])  # negatives beaten, ties half
            aucs.append((w1 * wins).sum(axis=1) / (n1 * n0))
    return [np.concatenate(aucs) for aucs in found]


def _interval(values: np.ndarray) -> list[float]:
    """The bootstrap's 95% percentile interval."""
    return [float(v) for v in np.percentile(values, [2.5, 97.5])]


def _permutation_p(y: np.ndarray, score: np.ndarray, n_permutations: int, seed: int) -> float:
    """One-sided p-value of the ROC AUC against chance: the share of label permutations whose
    AUC reaches the observed one, ``(1 + hits) / (1 + n)`` (never 0).

    The AUC is a rank sum of the positives (average ranks count ties half), so a permutation
    is a random choice of as many repertoires as there are positives; rank sums of
    half-integers are exact, so a permutation equal to the observed labels counts as a hit.
    """
    ranks = rankdata(score)
    n1 = int(y.sum())
    observed = ranks[y == 1].sum()
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_permutations, _rows_per_block(len(y))):
        draws = min(_rows_per_block(len(y)), n_permutations - start)
        chosen = rng.random((draws, len(y))).argpartition(n1, axis=1)[:, :n1]
        hits += int((ranks[chosen].sum(axis=1) >= observed).sum())
    return (1 + hits) / (1 + n_permutations)


def _test_table(metrics: dict) -> pd.DataFrame:
    """All folds' test repertoires of a metrics file: repertoire_id, y, score (and fold)."""
    frames = [pd.DataFrame(f["test"]).assign(fold=k) for k, f in enumerate(metrics["folds"])]
    table = pd.concat(frames, ignore_index=True)
    return table.astype({"repertoire_id": str, "y": int, "score": float})


def _class_counts(y: np.ndarray) -> dict[str, int]:
    n_positive = int(y.sum())
    return {"n_repertoires": len(y), "n_positive": n_positive, "n_negative": len(y) - n_positive}


def pooled(
    folds: list[dict],
    *,
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
    n_permutations: int = N_PERMUTATIONS,
) -> dict:
    """The ROC AUC of all folds' test repertoires ranked together (each fold's calibrated
    scores taken as one scale), its 95% bootstrap interval (repertoires resampled within each
    class) and its permutation p-value against chance (AUC 0.5): how sure the result is,
    which a mean over five small folds does not say."""
    table = _test_table({"folds": folds})
    y, score = table["y"].to_numpy(), table["score"].to_numpy()
    n_positive = int(y.sum())
    block = _class_counts(y) | {
        "roc_auc": math.nan,
        "ci95": [math.nan, math.nan],
        "p_value": math.nan,
        "n_bootstrap": n_bootstrap,
        "n_permutations": n_permutations,
        "seed": seed,
    }
    if not 0 < n_positive < len(y):
        return block | {"note": "the test repertoires of all folds hold one class"}
    (aucs,) = _resampled_aucs(y, [score], n_bootstrap, seed)
    block["roc_auc"] = float(roc_auc_score(y, score))
    block["ci95"] = _interval(aucs)
    block["p_value"] = _permutation_p(y, score, n_permutations, seed)
    return block


def _once(table: pd.DataFrame, name: str) -> pd.DataFrame:
    twice = table[table.duplicated("repertoire_id", keep=False)]
    if not twice.empty:
        first = twice["repertoire_id"].iloc[0]
        where = twice.loc[twice["repertoire_id"] == first, "fold"].tolist()
        raise InputError(
            f"repertoire {first!r} is a test repertoire of folds {where} in {name}: a paired "
            "difference matches repertoires by id, so each must be tested once"
        )
    return table


def paired_difference(
    this: dict,
    other: dict,
    *,
    names: tuple[str, str] = ("this", "other"),
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
) -> dict:
    """``this`` - ``other`` pooled test ROC AUC (two metrics files' contents) on the
    repertoires both scored, matched by repertoire_id, with a paired bootstrap 95% interval:
    the same resampled repertoires score both methods, so what the two share (which
    repertoires are hard) cancels out of the interval. ``names`` name them in messages.

    Refused when they share no repertoire or a shared one has two labels (other folds, or
    another store)."""
    left, right = (_once(_test_table(m), n) for m, n in zip((this, other), names, strict=True))
    shared = left.merge(right, on="repertoire_id", suffixes=("", "_other"))
    if shared.empty:
        raise InputError(
            f"{names[0]} and {names[1]} share no test repertoire: a paired difference needs "
            "both methods scored on the same repertoires (the same folds of the same store)"
        )
    disagree = shared[shared["y"] != shared["y_other"]]
    if not disagree.empty:
        first = disagree.iloc[0]
        raise InputError(
            f"repertoire {first['repertoire_id']!r} has label {first['y']} in {names[0]} but "
            f"{first['y_other']} in {names[1]} ({len(disagree)} such repertoires): they come "
            "from different stores or labels; evaluate both on the same store"
        )
    y = shared["y"].to_numpy()
    n_positive = int(y.sum())
    block = _class_counts(y) | {
        "roc_auc": math.nan,
        "other_roc_auc": math.nan,
        "difference": math.nan,
        "ci95": [math.nan, math.nan],
        "n_bootstrap": n_bootstrap,
        "seed": seed,
    }
    if not 0 < n_positive < len(y):
        return block | {"note": "the shared test repertoires hold one class"}
    scores = [shared["score"].to_numpy(), shared["score_other"].to_numpy()]
    mine, theirs = _resampled_aucs(y, scores, n_bootstrap, seed)
    block["roc_auc"] = float(roc_auc_score(y, scores[0]))
    block["other_roc_auc"] = float(roc_auc_score(y, scores[1]))
    block["difference"] = block["roc_auc"] - block["other_roc_auc"]
    block["ci95"] = _interval(mine - theirs)
    return block


def p_value_text(block: dict) -> str:
    """A pooled block's p-value as shown to a person; the smallest one its permutations can
    give says so, as the true p-value may be far smaller."""
    shown = f"{block['p_value']:.2g}"
    if block["p_value"] == 1 / (1 + block["n_permutations"]):
        shown += f" (no label permutation of {block['n_permutations']:,} reached the AUC)"
    return shown


def pooled_lines(result: dict) -> list[str]:
    """What ``deeprc evaluate`` prints after the summary: the pooled AUC with its interval and
    p-value, then each comparison (none for a categorical or numeric target)."""
    if "pooled" not in result:
        return []
    block = result["pooled"]
    where = "the test set" if len(result["folds"]) == 1 else "all folds"
    counts = (
        f"{_count(block['n_repertoires'], 'test repertoire')} of {where}, "
        f"{block['n_positive']} positive"
    )
    if math.isnan(block["roc_auc"]):
        lines = [f"pooled roc_auc     n/a: {block['note']} ({counts})"]
    else:
        low, high = block["ci95"]
        lines = [
            f"pooled roc_auc     {block['roc_auc']:.3f} (95% CI {low:.3f} to {high:.3f}, "
            f"{block['n_bootstrap']} bootstrap draws; {counts})",
            f"p vs chance        {p_value_text(block)}",
        ]
    for name, c in result.get("comparisons", {}).items():
        shared = f"{_count(c['n_repertoires'], 'shared repertoire')}"
        if math.isnan(c["difference"]):
            lines.append(f"minus {name}: n/a: {c['note']} ({shared})")
            continue
        low, high = c["ci95"]
        lines.append(
            f"minus {name}: {c['difference']:+.3f} (95% CI {low:+.3f} to {high:+.3f}; "
            f"{c['roc_auc']:.3f} vs {c['other_roc_auc']:.3f} on {shared})"
        )
    return lines
