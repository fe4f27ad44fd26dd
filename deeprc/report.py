"""One self-contained HTML report of a dataset's run, or of a cohort scored by a trained model.

Ingest summary, cross-validated results beside the baselines, ROC and PR curves, the
top-attended sequences with per-residue contributions, motif logos, ground-truth checks and
provenance. Figures are embedded PNGs, so the file opens anywhere, without a server.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import platform
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.font_manager import FontProperties  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from matplotlib.textpath import TextPath  # noqa: E402
from matplotlib.transforms import Affine2D  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from deeprc import __version__  # noqa: E402
from deeprc.atomic import REPORT_GENERATOR, atomic_file  # noqa: E402
from deeprc.errors import InputError  # noqa: E402
from deeprc.evaluate import (  # noqa: E402
    METRICS,
    MIN_PER_CLASS,
    TARGET_METRICS,
    fold_name,
    metric_text,
    p_value_text,
    paired_difference,
    pooled,
)
from deeprc.ingest.options import LABEL  # noqa: E402
from deeprc.outputs import (  # noqa: E402
    Interpretation,
    file_digest,
    read_head_predictions,
    read_interpretation,
    read_labels,
    read_metrics,
    read_provenance,
)
from deeprc.store import AMINO_ACIDS, Store  # noqa: E402
from deeprc.top import top_sequences  # noqa: E402

__all__ = ["logo_figure", "report", "scoring_report"]

MODEL = "DeepRC (this run)"
# a reliability bin holding fewer repertoires is not drawn
MIN_PER_BIN = 5
# --repeat's name of the model; a baseline goes by its --baseline name
REPEAT_MODEL = "deeprc"
# the baseline that tells how well sequencing depth alone separates the classes
DEPTH_BASELINE = "repertoire_size"
DEPTH_WARNING_AUC = 0.65
# a negative control whose pooled AUC interval lies above this suggests a leak
LEAK_AUC = 0.6
# residue colours by chemistry: hydrophobic, polar, basic, acidic, special
_COLOURS = {
    **dict.fromkeys("AVLIMFWC", "#1b6ca8"),
    **dict.fromkeys("STNQYH", "#2e8b57"),
    **dict.fromkeys("KR", "#7b3fa0"),
    **dict.fromkeys("DE", "#c0392b"),
    **dict.fromkeys("GP", "#d68910"),
}
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
.seq { font-family: ui-monospace, monospace; letter-spacing: .05em; }
.note { color: #555; font-size: .9em; } img { max-width: 100%; }
.warn { color: #8a4b00; background: #fff4e0; padding: .3em .6em; font-size: .9em; }
.alert { color: #fff; background: #b03a2e; padding: .7em 1em; font-weight: bold; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .8em; }
"""


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{encoded}">'


def _table(frame: pd.DataFrame, text_columns: tuple[str, ...] = (), raw: tuple[str, ...] = ()):
    """HTML table; cells of ``raw`` columns are inserted as they are (already HTML)."""
    head = "".join(
        f'<th class="{"text" if c in text_columns else ""}">{html.escape(str(c))}</th>'
        for c in frame.columns
    )
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for column, value in row.items():
            shown = value if column in raw else html.escape(_format(value))
            cells.append(f'<td class="{"text" if column in text_columns else ""}">{shown}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _format(value) -> str:
    """One style for every number: 3 decimals (scientific when tiny or huge), thousands
    separated."""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{value:,}"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "n/a"
        return f"{value:.3f}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.3g}"
    return str(value)


def _ingest_section(store: Store) -> str:
    manifest = store.manifest
    classes = store.repertoires.groupby("y").size()
    counts = {"repertoires": [manifest["n_repertoires"]]}
    if (positive := manifest["positive_label"]) is not None:
        negative = next((c for c in manifest.get("classes") or [] if c != positive), "negative")
        for name, role, y in ((positive, "positive", 1), (negative, "negative", 0)):
            header = name if name == role else f"{name} ({role} class)"
            counts[header] = [int(classes.get(y, 0))]
    if classes.get(-1, 0):
        counts["no label"] = [int(classes.get(-1, 0))]
    overview = pd.DataFrame(
        {
            **counts,
            "rows read": [f"{manifest['rows_read']:,}"],
            "sequences kept": [f"{manifest['n_sequences']:,}"],
        }
    )
    dropped = pd.DataFrame(
        [(reason, f"{n:,}") for reason, n in manifest["dropped"].items() if n],
        columns=["dropped because", "rows"],
    )
    parts = ["<h2>Data</h2>", _table(overview)]
    if len(dropped):
        parts.append(_table(dropped, text_columns=("dropped because",)))
    else:
        parts.append('<p class="note">No row was dropped.</p>')
    return "".join(parts)


def _test_scores(metrics: dict) -> list[pd.DataFrame]:
    return [pd.DataFrame(fold["test"]) for fold in metrics["folds"]]


def _shown(stat: dict) -> str:
    if stat["n_folds"] == 0:
        return "n/a"
    return f"{stat['mean']:.3f}" + (f" ± {stat['sd']:.3f}" if stat["n_folds"] > 1 else "")


def _per_fold(metrics: dict) -> pd.DataFrame:
    """The model's metrics per fold; those left out of the summary are marked."""
    rows = []
    n = len(metrics["folds"])
    for k, fold in enumerate(metrics["folds"]):
        mark = " *" if fold.get("too_few") else ""
        rows.append(
            {
                "fold": fold_name(k, n),
                "test repertoires": fold["n_repertoires"],
                "positive": fold["n_positive"],
            }  # fmt: skip
            | {m: f"{metric_text(fold[m])}{mark}" for m in METRICS}
        )
    return pd.DataFrame(rows)


def _interval(low: float, high: float, sign: str = "") -> str:
    return f"{low:{sign}.3f} to {high:{sign}.3f}"


def _pooled_of(metrics: dict) -> dict:
    """A metrics file's pooled block, computed here for a file of an evaluate that wrote none."""
    return metrics.get("pooled") or pooled(metrics["folds"])


def _pooled_shown(block: dict) -> str:
    """Pooled AUC (95% interval), or n/a."""
    if math.isnan(block["roc_auc"]):
        return "n/a"
    return f"{block['roc_auc']:.3f} ({_interval(*block['ci95'])})"


def _differences(model: dict, baselines: dict[str, Path], results: dict[str, dict]) -> dict:
    """The model minus each baseline (:func:`paired_difference`): as ``deeprc evaluate
    --compare`` recorded it for that very file, else computed from the two files' test
    scores with the seed of the model's pooled block."""
    found = {}
    for name, path in baselines.items():
        recorded = model.get("comparisons", {}).get(name)
        digest = file_digest(path)
        if recorded is None or recorded.get("sha256") != digest:
            recorded = paired_difference(
                model, results[name], names=("--metrics", f"--baseline {name} ({path})"),
                seed=_pooled_of(model)["seed"],
            )  # fmt: skip
        found[name] = recorded
    return found


def _pooled_table(results: dict[str, dict], differences: dict[str, dict]) -> str:
    """Each method's pooled AUC with its interval and p-value, and the model's paired
    difference to each baseline: whether a gap between two methods is more than chance."""
    rows = []
    for name, metrics in results.items():
        block = _pooled_of(metrics)
        p_value = "" if math.isnan(block["p_value"]) else p_value_text(block)
        row = {"method": name, "test repertoires": block["n_repertoires"],
               "pooled ROC AUC (95% interval)": _pooled_shown(block), "p vs chance": p_value,
               f"{MODEL} minus it (95% interval)": ""}  # fmt: skip
        difference = differences.get(name)
        if difference is not None and not math.isnan(difference["difference"]):
            row[f"{MODEL} minus it (95% interval)"] = (
                f"{difference['difference']:+.3f} ({_interval(*difference['ci95'], '+')}; "
                f"{difference['n_repertoires']} shared repertoires)"
            )
        rows.append(row)
    return (
        '<p class="note">Pooled: the test repertoires of all folds ranked together, with a 95% '
        "bootstrap interval (repertoires resampled within each class) and the one-sided "
        "p-value of the AUC against chance (0.5) from label permutations. The model minus a "
        "baseline is taken on the repertoires both scored, with a paired bootstrap interval "
        "(the same resampled repertoires for both): an interval that holds 0 means these "
        "data do not tell the two apart.</p>" + _table(pd.DataFrame(rows), text_columns=("method",))
    )


def _depth_alert(results: dict[str, dict]) -> str:
    """A warning above everything when sequencing depth alone separates the classes."""
    metrics = results.get(DEPTH_BASELINE)
    if metrics is None:
        return ""
    auc = metrics["summary"]["roc_auc"]["mean"]
    block = _pooled_of(metrics)
    # a mean over a few small folds reaches 0.65 by chance now and then: the interval must
    # exclude chance too
    if math.isnan(auc) or auc < DEPTH_WARNING_AUC or not block["ci95"][0] > 0.5:
        return ""
    return (
        f'<p class="alert">Warning: sequencing depth alone separates the classes. The '
        f"{DEPTH_BASELINE} baseline, which sees nothing but each repertoire's number of "
        f"sequences and total count, reaches a mean ROC AUC of {auc:.3f} (at least "
        f"{DEPTH_WARNING_AUC}; pooled {_pooled_shown(block)}, above chance). The model's "
        "result may reflect depth (how the samples were sequenced) rather than biology; "
        "compare it with this baseline below.</p>"
    )


def _leak_alert(control: dict | None) -> str:
    """A warning above everything when the negative control scores clearly above chance."""
    if control is None:
        return ""
    block = _pooled_of(control)
    if math.isnan(block["roc_auc"]) or block["ci95"][0] <= LEAK_AUC:
        return ""
    return (
        '<p class="alert">Warning: the evaluation may leak. The negative control (the model '
        "retrained with shuffled training labels) reaches a pooled ROC AUC of "
        f"{_pooled_shown(block)}, an interval above {LEAK_AUC}; without the labels it should "
        "score near 0.5. Check that no test repertoire (or a copy of one) was trained on, and "
        "that nothing but the labels differs between the classes.</p>"
    )


def _control_section(model: dict, control: dict) -> str:
    """The real result beside the negative control's, with the real labels' p-value."""
    rows = []
    for name, metrics in ((f"{MODEL}, true labels", model),
                          ("negative control: training labels shuffled", control)):  # fmt: skip
        block = _pooled_of(metrics)
        rows.append({
            "model": name,
            "ROC AUC, mean ± sd over folds": _shown(metrics["summary"]["roc_auc"]),
            "pooled ROC AUC (95% interval)": _pooled_shown(block),
        })  # fmt: skip
    block = _pooled_of(model)
    shown = "n/a" if math.isnan(block["p_value"]) else p_value_text(block)
    return (
        "<h2>Negative control</h2>"
        '<p class="note">A negative control is the same model retrained on each fold with its '
        "training labels shuffled and tested against the true labels: it cannot have learned "
        "the disease, so a sound evaluation gives it a ROC AUC near 0.5 (an interval holding "
        "0.5), well below the real model's.</p>"
        + _table(pd.DataFrame(rows), text_columns=("model",))
        + f'<p class="note">p-value of the real model\'s pooled ROC AUC against chance (true '
        f"labels permuted): {shown}.</p>"
    )


def _repeat_section(
    main: dict[str, dict], repeats: list[tuple[int, str, dict]], split_seed: int
) -> str:
    """Mean ROC AUC over folds per method and split seed, then mean ± sd over the seeds: how
    much the result depends on which repertoires happened to be tested together."""
    table: dict[str, dict[int, float]] = {
        name: {split_seed: metrics["summary"]["roc_auc"]["mean"]} for name, metrics in main.items()
    }
    for seed, name, metrics in repeats:
        table[name][seed] = metrics["summary"]["roc_auc"]["mean"]
    seeds = sorted({seed for by_seed in table.values() for seed in by_seed})
    rows = []
    for name, by_seed in table.items():
        row = {"method": name}
        for seed in seeds:
            value = by_seed.get(seed, math.nan)
            row[f"split seed {seed}"] = "" if seed not in by_seed else (
                "n/a" if math.isnan(value) else f"{value:.3f}"
            )  # fmt: skip
        values = np.array([v for v in by_seed.values() if not math.isnan(v)])
        row["mean ± sd over seeds"] = _shown({
            "n_folds": len(values), "mean": values.mean() if len(values) else math.nan,
            "sd": values.std(ddof=1) if len(values) > 1 else math.nan,
        })  # fmt: skip
        row["seeds"] = len(values)
        rows.append(row)
    return (
        "<h2>Other splits</h2>"
        '<p class="note">The same cross-validation repeated with other split seeds (which '
        "repertoires are tested together): mean ROC AUC over folds per seed, then mean ± sd "
        "over the seeds. A result that changes much between seeds rests on a few "
        "repertoires.</p>" + _table(pd.DataFrame(rows), text_columns=("method",))
    )


def _targets_section(results: list[tuple[str, dict]]) -> str:
    """Per target beyond the label, each method's metrics (``deeprc evaluate`` of its
    predictions, with the target they record), mean ± sd over folds; a categorical target's
    confusion matrix of the model, summed over folds."""
    by_target: dict[str, list[tuple[str, dict]]] = {}
    for method, metrics in results:
        target = metrics.get("target") or {"name": "label", "kind": "binary"}
        by_target.setdefault(target["name"], []).append((method, metrics))
    parts = [
        "<h2>Targets beyond the label</h2>",
        '<p class="note">Each target the store keeps, predicted by the model (one output head '
        "per target, calibrated on the validation repertoires) and by the baselines of any "
        "target, on the label's folds: mean ± sd over the folds. <code>covariates</code> reads "
        "the covariates alone: what a method adds beyond them is the difference to it.</p>",
    ]
    for name, methods in by_target.items():
        target = methods[0][1].get("target") or {"kind": "binary"}
        kind = target["kind"]
        metrics = TARGET_METRICS.get(kind, METRICS)
        rows = [
            {"method": method} | {m: _shown(found["summary"][m]) for m in metrics}
            for method, found in methods
        ]
        classes = ": " + ", ".join(target["classes"]) if target.get("classes") else ""
        parts.append(f"<h3>{html.escape(f'{name} ({kind}{classes})')}</h3>")
        parts.append(_table(pd.DataFrame(rows), text_columns=("method",)))
        model = next((found for method, found in methods if method == MODEL), None)
        if kind == "categorical" and model is not None:
            confusion = np.sum([fold["confusion"] for fold in model["folds"]], axis=0)
            frame = pd.DataFrame(confusion, columns=[f"predicted {c}" for c in target["classes"]])
            frame.insert(0, "true class", target["classes"])
            parts.append('<p class="note">The model\'s confusion matrix, all folds\' test '
                         "repertoires (rows: true class).</p>")  # fmt: skip
            parts.append(_table(frame, text_columns=("true class",)))
    return "".join(parts)


def _read_repeats(
    repeats: list[tuple[str, str, Path]], results: dict[str, dict], split_seed: int
) -> list[tuple[int, str, dict]]:
    """``--repeat`` items read and checked: a whole split seed, a method of this report, and
    one file per method and seed."""
    found, seen = [], {(split_seed, name) for name in results}
    methods = [REPEAT_MODEL, *(name for name in results if name != MODEL)]
    for seed_text, method, path in repeats:
        try:
            seed = int(seed_text)
        except ValueError:
            raise InputError(
                f"--repeat {seed_text} {method} {path}: the split seed must be a whole number"
            ) from None
        if method not in methods:
            raise InputError(
                f"--repeat {seed_text} {method} {path}: method {method!r} is not in this "
                f"report; choose one of {methods} (a baseline needs its --baseline too)"
            )
        name = MODEL if method == REPEAT_MODEL else method
        if (seed, name) in seen:
            given = "--metrics" if method == REPEAT_MODEL else f"--baseline {method}"
            where = f"{given} (--split-seed {seed})" if seed == split_seed else "another --repeat"
            raise InputError(
                f"--repeat {seed_text} {method} {path}: split seed {seed} of {method} is "
                f"already given by {where}"
            )
        seen.add((seed, name))
        found.append((seed, name, read_metrics(Path(path))))
    return found


def _results_section(results: dict[str, dict], differences: dict[str, dict]) -> str:
    rows, notes = [], {}
    for name, metrics in results.items():
        row = {"method": name}
        for metric in METRICS:
            stat = metrics["summary"][metric]
            row[metric] = _shown(stat)
            if "note" in stat:
                notes[f"Metrics{' n/a' if stat['n_folds'] == 0 else ''}: {stat['note']}."] = None
        row["folds"] = len(metrics["folds"])
        rows.append(row)
    one = len(results[MODEL]["folds"]) == 1  # a fixed test set (--test-ids)
    caption = f"{MODEL} on its test set" if one else f"{MODEL} per fold"
    if any(f.get("too_few") for f in results[MODEL]["folds"]):
        caption += f" (* not averaged: fewer than {MIN_PER_CLASS} test repertoires of a class)"
    figure, (roc_axis, pr_axis, reliability_axis) = plt.subplots(1, 3, figsize=(14, 4.3))
    drawn_reliability = False
    for name, metrics in results.items():
        frames = _test_scores(metrics)
        pooled = pd.concat(frames)
        if pooled["y"].nunique() < 2:
            continue
        fpr, tpr, _ = roc_curve(pooled["y"], pooled["score"])
        recall, precision = _precision_recall(pooled)
        width = 2.2 if name == MODEL else 1.2
        (line,) = roc_axis.plot(fpr, tpr, lw=width, label=name)
        pr_axis.step(recall, precision, where="post", lw=width, color=line.get_color(),
                     marker="o" if len(recall) == 1 else None)  # fmt: skip
        predicted, observed = _reliability(pooled)
        reliability_axis.plot(predicted, observed, lw=width, color=line.get_color(), marker="o",
                              markersize=3)  # fmt: skip
        drawn_reliability |= bool(predicted)
        if name == MODEL:
            for frame in frames:
                if frame["y"].nunique() == 2:
                    f, t, _ = roc_curve(frame["y"], frame["score"])
                    roc_axis.plot(f, t, lw=0.6, alpha=0.4, color=line.get_color())
    roc_axis.plot([0, 1], [0, 1], ls=":", color="grey")
    roc_axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_axis.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    reliability_axis.plot([0, 1], [0, 1], ls=":", color="grey")
    if not drawn_reliability:
        reliability_axis.text(0.5, 0.5, f"too few test repertoires\n(a bin needs {MIN_PER_BIN})",
                              ha="center", va="center", color="grey")  # fmt: skip
    reliability_axis.set(xlabel="predicted probability", ylabel="fraction positive",
                         title="Reliability", xlim=(0, 1), ylim=(0, 1))  # fmt: skip
    roc_axis.legend(loc="lower right", fontsize=8)
    return (
        "<h2>Cross-validated results</h2>"
        '<p class="note">Mean ± sd over the test folds; every method saw the same folds. '
        "Curves pool the test predictions of all folds (thin lines: DeepRC per fold). "
        "brier: mean squared error of the predicted probability (lower is better). "
        "Reliability: the test repertoires in 5 bins of predicted probability, the fraction "
        f"of positives in each against its mean prediction (bins of at least {MIN_PER_BIN} "
        "repertoires); a calibrated method lies on the diagonal.</p>"
        + _table(pd.DataFrame(rows), text_columns=("method",))
        + "".join(f'<p class="warn">{html.escape(note)}</p>' for note in notes)
        + _pooled_table(results, differences)
        + f'<p class="note">{html.escape(caption)}:</p>'
        + _table(_per_fold(results[MODEL]))
        + _png(figure)
    )


def _precision_recall(pooled: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at each threshold the scores offer. sklearn closes the curve at
    (recall 0, precision 1), a point no threshold reaches: drawn, it makes a constant score
    look like a skilled one, so it is left out."""
    precision, recall, _ = precision_recall_curve(pooled["y"], pooled["score"])
    return recall[:-1], precision[:-1]


def _reliability(pooled: pd.DataFrame, bins: int = 5) -> tuple[list, list]:
    """Mean predicted probability and fraction positive of each bin holding at least
    ``MIN_PER_BIN`` repertoires (a fraction of 2 repertoires says nothing)."""
    which = np.minimum((pooled["score"].to_numpy() * bins).astype(int), bins - 1)
    groups = pooled.assign(bin=which).groupby("bin")
    kept = groups.size() >= MIN_PER_BIN
    return groups["score"].mean()[kept].tolist(), groups["y"].mean()[kept].tolist()


def _coloured(sequence: str, values: np.ndarray) -> str:
    """Residues shaded by contribution: red raises the attention score, blue lowers it."""
    scale = max(np.abs(values).max(), 1e-9) if len(values) else 1.0
    spans = []
    for residue, value in zip(sequence, values, strict=False):
        colour = "192,57,43" if value > 0 else "27,108,168"
        alpha = min(abs(value) / scale, 1.0) * 0.85
        spans.append(
            f'<span style="background: rgba({colour},{alpha:.2f})" '
            f'title="{value:+.3f}">{html.escape(residue)}</span>'
        )
    return f'<span class="seq">{"".join(spans)}</span>'


def logo_figure(pwm: pd.DataFrame, title: str):
    """A sequence logo: letter heights = frequency x information content (bits)."""
    figure, axis = plt.subplots(figsize=(0.55 * len(pwm) + 1, 2.2))
    font = FontProperties(family="DejaVu Sans", weight="bold")
    for x, (_, row) in enumerate(pwm.iterrows()):
        heights = sorted(
            ((row[a] * row["information"], a) for a in AMINO_ACIDS if row[a] > 0),
        )
        bottom = 0.0
        for height, letter in heights:
            if height < 1e-3:
                continue
            path = TextPath((0, 0), letter, size=1, prop=font)
            box = path.get_extents()
            place = (
                Affine2D()
                .translate(-box.x0, -box.y0)
                .scale(0.9 / box.width, height / box.height)
                .translate(x + 0.05, bottom)
            )
            axis.add_patch(PathPatch(place.transform_path(path), color=_COLOURS[letter], lw=0))
            bottom += height
    axis.set(xlim=(0, len(pwm)), ylim=(0, np.log2(20)), ylabel="bits", title=title)
    axis.set_xticks(np.arange(len(pwm)) + 0.5, [str(p) for p in pwm["position"]])
    axis.spines[["top", "right"]].set_visible(False)
    return figure


def _interpretation_section(
    found: Interpretation, n_rows: int, labels: dict[str, str] | None = None
) -> str:
    """The top sequences with their residues' contributions, the motifs and their logos;
    ``labels`` (repertoire id -> class name): a scored cohort, whose sequences are ranked
    together instead of per fold."""
    summary, top = found.summary, found.top
    shown = top[top["rank"] <= n_rows].copy()
    cohort = labels is not None
    if cohort:
        shown.insert(shown.columns.get_loc("repertoire_id") + 1, "label",
                     shown["repertoire_id"].map(labels).fillna(""))  # fmt: skip
    shown["sequence (contribution)"] = [
        _coloured(s, c) for s, c in zip(shown["junction_aa"], shown["contributions"], strict=True)
    ]
    columns = ["rank", "repertoire_id", "label"] if cohort else ["fold", "rank", "repertoire_id"]
    columns += ["sequence (contribution)", "v_call", "j_call"]
    columns += ["duplicate_count", "attention", "attention_score"]
    if "signal" in shown:
        columns.append("signal")
    which = "sequences of the cohort" if cohort else "test sequences of each fold"
    parts = [
        "<h2>What the model looked at</h2>",
        f'<p class="note">The {n_rows} most attended {which}, ranked by '
        "attention score (β k·ξ, before the softmax: it means the same in every repertoire, "
        "unlike the attention weight, which sums to 1 within each). Residue shading: "
        "integrated-gradient "
        f"contribution to that score against a baseline of {html.escape(summary['baseline'])}"
        "; red raises it, blue lowers it (hover for the value).</p>",
        _table(
            shown[columns],
            text_columns=("repertoire_id", "label", "sequence (contribution)", "v_call", "j_call"),
            raw=("sequence (contribution)",),
        ),
    ]
    if summary.get("motifs_ranked_by") == "enrichment":
        ranked = (
            "how many more of the top sequences carry them than a random sample of the same "
            "repertoires' sequences predicts (excess_carriers): this model's attention reads "
            "its evidence alone, so the residues carry no contribution (all shading is 0)"
        )
    else:
        ranked = "the contribution they carry in the top sequences"
    parts += [
        "<h2>Motifs</h2>",
        '<p class="note">k-mers (3-5) and gapped k-mers (. = any residue) ranked by '
        f"{ranked}; parts of a better-ranked motif are left out.</p>",
        _table(found.motifs, text_columns=("motif",)),
    ]
    for rank, (motif, pwm) in enumerate(zip(summary["motifs"], found.pwms, strict=True), 1):
        parts.append(_png(logo_figure(pwm, f"motif {rank}: {motif} (±2 residues)")))
    if "ground_truth" in summary:
        truth = summary["ground_truth"]
        rows = [{"check": k, "value": v} for k, v in truth["mean"].items()]
        rows += [
            {"check": f"rank of implanted motif {m}", "value": r if r else "not found"}
            for m, r in truth["implanted_motif_rank"].items()
        ]
        parts += [
            "<h2>Against the ground truth</h2>",
            '<p class="note">Simulated data: precision of the top-k sequences by attention '
            "score among each fold's test sequences, AUC of attention for telling implanted "
            "sequences from the others inside the positive repertoires; mean over folds.</p>",
            _table(pd.DataFrame(rows), text_columns=("check",)),
        ]
    return "".join(parts)


def _provenance_section(store: Store, metrics: dict) -> str:
    folds = metrics["folds"]
    first = folds[0].get("provenance", {})
    rows = [
        ("deeprc", __version__),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("store fingerprint", store.manifest["fingerprint"]),
        ("written", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    seeds = [
        f.get("provenance", {}).get("experiment", {}).get("train", {}).get("seed") for f in folds
    ]
    rows.append(("training seeds by fold", ", ".join(map(str, seeds))))
    rows += [
        (f"fold {i} predictions", f"{f['predictions']} (sha256 {f['sha256']})")
        for i, f in enumerate(folds)
    ]
    table = pd.DataFrame(rows, columns=["what", "value"])
    experiment = json.dumps(first.get("experiment", {}), indent=2)
    return (
        "<h2>Provenance</h2>"
        + _table(table, text_columns=("what", "value"))
        + f"<p>Experiment (fold 0):</p><pre>{html.escape(experiment)}</pre>"
    )


def _scores_section(
    predictions: pd.DataFrame, metrics: dict | None, labels: dict[str, str], note: str | None
) -> str:
    """A scored cohort: every repertoire's probability, its distribution by label (class
    names) and, where labels are present, the metrics against them; ``note``: why the
    probabilities deserve caution (a small calibration set)."""
    figure, axis = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(0, 1, 21)
    named = predictions["repertoire_id"].map(labels)
    groups = {"no label": predictions[named == ""]}
    groups |= {name: predictions[named == name] for name in dict.fromkeys(named) if name}
    for name, group in groups.items():
        if len(group):
            axis.hist(group["score"], bins=bins, alpha=0.6, label=f"{name} ({len(group)})")
    axis.set(xlabel="probability of the positive class", ylabel="repertoires", xlim=(0, 1))
    axis.legend(fontsize=8)
    parts = ["<h2>Scores</h2>"]
    if note:
        parts.append(f'<p class="alert">Calibration: {html.escape(note)}.</p>')
    if metrics is not None:
        fold = metrics["folds"][0]
        rows = [{"metric": m, "value": _format(fold[m])} for m in METRICS]
        parts += [
            f'<p class="note">Against the labels of {fold["n_repertoires"]} repertoires '
            f"({fold['n_positive']} positive); {fold.get('n_unlabelled', 0)} without a label "
            "are scored only.</p>",
            _table(pd.DataFrame(rows), text_columns=("metric",)),
        ]
    table = predictions.sort_values("score", ascending=False)
    table = table.assign(y=table["repertoire_id"].map(labels)).rename(columns={"y": "label"})
    parts += [
        _png(figure),
        '<p class="note">Every repertoire, most likely positive first (score: calibrated '
        "probability; logit: its log-odds).</p>",
        _table(table, text_columns=("repertoire_id", "label")),
    ]
    return "".join(parts)


def _scored_targets_section(tables: dict[str, pd.DataFrame]) -> str:
    """A scored cohort's predictions of each target beyond the first (a model of several
    targets, deeprc.heads): per repertoire the probability of each class and the most probable
    one, or the predicted number, beside the value the cohort holds (empty: none)."""
    parts = [
        "<h2>Targets beyond the label</h2>",
        '<p class="note">The model predicts these too (one output head each, calibrated on its '
        "validation repertoires); y is the cohort's own value, where it has one.</p>",
    ]
    for name, table in tables.items():
        probabilities = [c for c in table.columns if c.startswith("p:")]
        if probabilities:
            table = table.assign(most_probable=table[probabilities].idxmax(axis=1).str.slice(2))
        parts.append(f"<h3>{html.escape(name)}</h3>")
        parts.append(_table(table, text_columns=("repertoire_id", "y", "most_probable")))
    return "".join(parts)


def _top_section(prediction_dir: Path, n_rows: int) -> str:
    top = top_sequences([prediction_dir], n=n_rows)
    return (
        "<h2>What the model looked at</h2>"
        f'<p class="note">The {n_rows} sequences of the cohort with the highest attention '
        "score (before the softmax: it means the same in every repertoire). For their "
        "residues' contributions and the motifs, run deeprc interpret on these predictions "
        "and pass --interpretation.</p>"
        + _table(top, text_columns=("repertoire_id", "label", "junction_aa", "v_call", "j_call"))
    )


def _model_section(card: dict, provenance: dict) -> str:
    rows = [
        ("model", card["model"]),
        ("trained on", f"{(card['data'] or {}).get('store')} ({card['n_train']} repertoires, "
                       f"fingerprint {card['store_fingerprint']})"),
        ("deeprc of the model", card["deeprc_version"]),
        ("model saved", card["saved_at"]),
        ("this report's deeprc", __version__),
        ("scored store", f"{provenance.get('store')} (fingerprint "
                         f"{provenance.get('store_fingerprint')})"),
        ("written", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]  # fmt: skip
    rows.append(("evidence the attention reads", ", ".join(card["evidence"]) or "none"))
    if weighing := card.get("evidence_weights"):
        aucs = ", ".join(f"{k} {v:.3f}" for k, v in weighing["soft_burden_auc"].items())
        weights = ", ".join(f"{k} {v:.2f}" for k, v in weighing["weights"].items())
        rows.append((
            "evidence weighed by the training repertoires",
            f"{weights} (standardised weights; their soft burdens' inner cross-validated AUC "
            f"{weighing['weighed_auc']:.3f}; each candidate alone, cross-fitted: {aucs})",
        ))  # fmt: skip
    for key, unseen in (provenance.get("unknown_genes") or {}).items():
        if unseen:
            rows.append((f"{key.upper()} genes the model never saw (read as no call)",
                         ", ".join(f"{g}: {n}" for g, n in unseen.items())))  # fmt: skip
    cv = card["cross_validation"]
    if cv is not None:
        shown = "; ".join(f"{m} {_shown(cv['summary'][m])}" for m in METRICS)
        what = "one test set" if cv["n_folds"] == 1 else f"{cv['n_folds']} folds"
        rows.append((f"cross-validation of the recipe ({what})", shown))
    return "<h2>Model and provenance</h2>" + _table(
        pd.DataFrame(rows, columns=["what", "value"]), text_columns=("what", "value")
    )


def scoring_report(
    *,
    store: Store,
    predictions: Path,
    out: Path,
    metrics: Path | None = None,
    interpretation: Path | None = None,
    title: str = "deeprc scores",
    top_rows: int = 20,
    overwrite: bool = False,
) -> None:
    """The report of a cohort scored by a trained model (``deeprc predict`` on another store):
    its data, every repertoire's probability, metrics where labels are present (``metrics``,
    deeprc evaluate of the predictions), the top-attended sequences (with contributions and
    motifs given ``interpretation``, deeprc interpret of the predictions) and the model's
    card."""
    provenance = read_provenance(predictions) or {}
    card = provenance.get("model_card")
    if card is None:
        raise InputError(
            f"{predictions} holds no model card in its provenance; write it with deeprc predict"
        )
    labels = read_labels(predictions)
    note = (card.get("calibration") or {}).get("note")
    found = read_interpretation(interpretation) if interpretation is not None else None
    tables = read_head_predictions(predictions)
    body = [f"<h1>{html.escape(title)}</h1>", _ingest_section(store)]
    if LABEL in tables:
        body.append(_scores_section(
            tables.pop(LABEL), read_metrics(metrics) if metrics else None, labels, note
        ))  # fmt: skip
    elif metrics is not None:
        raise InputError(
            f"--metrics: {predictions} holds no predictions of the label (its model predicts "
            f"{', '.join(tables)}); leave --metrics out"
        )
    if tables:
        body.append(_scored_targets_section(tables))
    body += [
        _top_section(predictions, top_rows)
        if found is None
        else _interpretation_section(found, top_rows, labels),
        _model_section(card, provenance),
    ]
    inputs = [store.path, predictions, *filter(None, [metrics, interpretation])]
    _write_document(title, body, out, overwrite=overwrite, inputs=inputs)


def _write_document(
    title: str, body: list[str], out: Path, *, overwrite: bool, inputs: list[Path]
) -> None:
    document = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{REPORT_GENERATOR}'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    with atomic_file(Path(out), kind="report", overwrite=overwrite, inputs=inputs) as tmp:
        tmp.write_text(document, encoding="utf-8")


def report(
    *,
    store: Store,
    metrics: Path,
    out: Path,
    baselines: dict[str, Path] | None = None,
    interpretation: Path | None = None,
    title: str = "deeprc report",
    top_rows: int = 10,
    negative_control: Path | None = None,
    repeats: list[tuple[str, str, Path]] | None = None,
    split_seed: int = 0,
    targets: list[tuple[str, Path]] | None = None,
    overwrite: bool = False,
) -> None:
    """Write the report to ``out`` (one HTML file, written to a temporary name, then renamed).

    ``targets``: (method, metrics) of the targets beyond the label, method ``deeprc`` (the
    model) or a baseline's name; each metrics file records its target.

    ``negative_control``: metrics of the model retrained with shuffled training labels.
    ``repeats``: (split seed, method, metrics) of the same cross-validation with other split
    seeds, method ``deeprc`` (the model) or a baseline's name; ``split_seed`` is that of
    ``metrics`` and ``baselines``.
    """
    model_metrics = read_metrics(metrics)
    results = {MODEL: model_metrics}
    for name, path in (baselines or {}).items():
        results[name] = read_metrics(path)
    repeated = _read_repeats(repeats or [], results, split_seed)
    control = read_metrics(negative_control) if negative_control is not None else None
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _depth_alert(results) + _leak_alert(control),
        _ingest_section(store),
        _results_section(results, _differences(model_metrics, baselines or {}, results)),
    ]
    if control is not None:
        body.append(_control_section(model_metrics, control))
    if repeated:
        body.append(_repeat_section(results, repeated, split_seed))
    if targets:
        shown = [(MODEL if m == "deeprc" else m, read_metrics(p)) for m, p in targets]
        body.append(_targets_section(shown))
    if interpretation is not None:
        body.append(_interpretation_section(read_interpretation(interpretation), top_rows))
    body.append(_provenance_section(store, model_metrics))
    inputs = [store.path, metrics, *(baselines or {}).values(), *[r[2] for r in repeats or []],
              *[p for _, p in targets or []],
              *filter(None, [interpretation, negative_control])]  # fmt: skip
    _write_document(title, body, out, overwrite=overwrite, inputs=inputs)
