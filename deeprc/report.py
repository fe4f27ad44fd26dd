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
from deeprc.atomic import atomic_file  # noqa: E402
from deeprc.errors import InputError  # noqa: E402
from deeprc.evaluate import METRICS, MIN_PER_CLASS  # noqa: E402
from deeprc.outputs import (  # noqa: E402
    Interpretation,
    read_interpretation,
    read_metrics,
    read_predictions,
    read_provenance,
)
from deeprc.store import AMINO_ACIDS, Store  # noqa: E402
from deeprc.top import top_sequences  # noqa: E402

__all__ = ["logo_figure", "report", "scoring_report"]

MODEL = "DeepRC (this run)"
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
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def _ingest_section(store: Store) -> str:
    manifest = store.manifest
    classes = store.repertoires.groupby("y").size()
    counts = {"repertoires": [manifest["n_repertoires"]]}
    if manifest["positive_label"] is not None:
        counts[f"positive ({manifest['positive_label']})"] = [int(classes.get(1, 0))]
        counts["negative"] = [int(classes.get(0, 0))]
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
    for k, fold in enumerate(metrics["folds"]):
        mark = " *" if fold.get("too_few") else ""
        rows.append(
            {"fold": k, "test repertoires": fold["n_repertoires"], "positive": fold["n_positive"]}
            | {m: f"{fold[m]:.3f}{mark}" for m in METRICS}
        )
    return pd.DataFrame(rows)


def _results_section(results: dict[str, dict]) -> str:
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
    caption = f"{MODEL} per fold"
    if any(f.get("too_few") for f in results[MODEL]["folds"]):
        caption += f" (* not averaged: fewer than {MIN_PER_CLASS} test repertoires of a class)"
    figure, (roc_axis, pr_axis, reliability_axis) = plt.subplots(1, 3, figsize=(14, 4.3))
    for name, metrics in results.items():
        frames = _test_scores(metrics)
        pooled = pd.concat(frames)
        if pooled["y"].nunique() < 2:
            continue
        fpr, tpr, _ = roc_curve(pooled["y"], pooled["score"])
        precision, recall, _ = precision_recall_curve(pooled["y"], pooled["score"])
        width = 2.2 if name == MODEL else 1.2
        (line,) = roc_axis.plot(fpr, tpr, lw=width, label=name)
        pr_axis.plot(recall, precision, lw=width, color=line.get_color(), label=name)
        predicted, observed = _reliability(pooled)
        reliability_axis.plot(predicted, observed, lw=width, color=line.get_color(), marker="o",
                              markersize=3)  # fmt: skip
        if name == MODEL:
            for frame in frames:
                if frame["y"].nunique() == 2:
                    f, t, _ = roc_curve(frame["y"], frame["score"])
                    roc_axis.plot(f, t, lw=0.6, alpha=0.4, color=line.get_color())
    roc_axis.plot([0, 1], [0, 1], ls=":", color="grey")
    roc_axis.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr_axis.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    reliability_axis.plot([0, 1], [0, 1], ls=":", color="grey")
    reliability_axis.set(xlabel="predicted probability", ylabel="fraction positive",
                         title="Reliability", xlim=(0, 1), ylim=(0, 1))  # fmt: skip
    roc_axis.legend(loc="lower right", fontsize=8)
    return (
        "<h2>Cross-validated results</h2>"
        '<p class="note">Mean ± sd over the test folds; every method saw the same folds. '
        "Curves pool the test predictions of all folds (thin lines: DeepRC per fold). "
        "brier: mean squared error of the predicted probability (lower is better). "
        "Reliability: the test repertoires in 5 bins of predicted probability, the fraction "
        "of positives in each against its mean prediction; a calibrated method lies on the "
        "diagonal.</p>"
        + _table(pd.DataFrame(rows), text_columns=("method",))
        + "".join(f'<p class="warn">{html.escape(note)}</p>' for note in notes)
        + f'<p class="note">{html.escape(caption)}:</p>'
        + _table(_per_fold(results[MODEL]))
        + _png(figure)
    )


def _reliability(pooled: pd.DataFrame, bins: int = 5) -> tuple[list, list]:
    """Mean predicted probability and fraction positive of each non-empty bin."""
    which = np.minimum((pooled["score"].to_numpy() * bins).astype(int), bins - 1)
    groups = pooled.groupby(which)
    return groups["score"].mean().tolist(), groups["y"].mean().tolist()


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


def _interpretation_section(found: Interpretation, n_rows: int) -> str:
    summary, top = found.summary, found.top
    shown = top[top["rank"] <= n_rows].copy()
    shown["sequence (contribution)"] = [
        _coloured(s, c) for s, c in zip(shown["junction_aa"], shown["contributions"], strict=True)
    ]
    columns = ["fold", "rank", "repertoire_id", "sequence (contribution)", "v_call", "j_call"]
    columns += ["duplicate_count", "attention", "attention_score"]
    if "signal" in shown:
        columns.append("signal")
    parts = [
        "<h2>What the model looked at</h2>",
        f'<p class="note">The {n_rows} most attended test sequences of each fold, ranked by '
        "attention score (β k·ξ, before the softmax). Residue shading: integrated-gradient "
        f"contribution to that score against a baseline of {html.escape(summary['baseline'])}"
        "; red raises it, blue lowers it (hover for the value).</p>",
        _table(
            shown[columns],
            text_columns=("repertoire_id", "sequence (contribution)", "v_call", "j_call"),
            raw=("sequence (contribution)",),
        ),
    ]
    parts += [
        "<h2>Motifs</h2>",
        '<p class="note">k-mers (3-5) and gapped k-mers (. = any residue) ranked by the '
        "contribution they carry in the top sequences; parts of a better-ranked motif are "
        "left out.</p>",
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


def _scores_section(predictions: pd.DataFrame, metrics: dict | None) -> str:
    """A scored cohort: every repertoire's probability, its distribution by label and, where
    labels are present, the metrics against them."""
    figure, axis = plt.subplots(figsize=(6, 3.2))
    bins = np.linspace(0, 1, 21)
    groups = {"no label": predictions[predictions["y"].isna()]}
    groups |= {
        name: predictions[predictions["y"] == y] for name, y in (("positive", 1), ("negative", 0))
    }
    for name, group in groups.items():
        if len(group):
            axis.hist(group["score"], bins=bins, alpha=0.6, label=f"{name} ({len(group)})")
    axis.set(xlabel="probability of the positive class", ylabel="repertoires", xlim=(0, 1))
    axis.legend(fontsize=8)
    parts = ["<h2>Scores</h2>"]
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
    table = table.assign(y=table["y"].astype("string").fillna("")).rename(columns={"y": "label"})
    parts += [
        _png(figure),
        '<p class="note">Every repertoire, most likely positive first (score: calibrated '
        "probability; logit: its log-odds).</p>",
        _table(table, text_columns=("repertoire_id", "label")),
    ]
    return "".join(parts)


def _top_section(prediction_dir: Path, n_rows: int) -> str:
    top = top_sequences([prediction_dir], n=n_rows)
    return (
        "<h2>What the model looked at</h2>"
        f'<p class="note">The {n_rows} sequences of the cohort with the highest attention '
        "enrichment (attention x repertoire size: how many times the uniform weight).</p>"
        + _table(top, text_columns=("repertoire_id", "junction_aa", "v_call", "j_call"))
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
    for key, unseen in (provenance.get("unknown_genes") or {}).items():
        if unseen:
            rows.append((f"{key.upper()} genes the model never saw (read as no call)",
                         ", ".join(f"{g}: {n}" for g, n in unseen.items())))  # fmt: skip
    cv = card["cross_validation"]
    if cv is not None:
        shown = "; ".join(f"{m} {_shown(cv['summary'][m])}" for m in METRICS)
        rows.append((f"cross-validation of the recipe ({cv['n_folds']} folds)", shown))
    return "<h2>Model and provenance</h2>" + _table(
        pd.DataFrame(rows, columns=["what", "value"]), text_columns=("what", "value")
    )


def scoring_report(
    *,
    store: Store,
    predictions: Path,
    out: Path,
    metrics: Path | None = None,
    title: str = "deeprc scores",
    top_rows: int = 20,
) -> None:
    """The report of a cohort scored by a trained model (``deeprc predict`` on another store):
    its data, every repertoire's probability, metrics where labels are present (``metrics``,
    deeprc evaluate of the predictions), the top-attended sequences and the model's card."""
    provenance = read_provenance(predictions) or {}
    card = provenance.get("model_card")
    if card is None:
        raise InputError(
            f"{predictions} holds no model card in its provenance; write it with deeprc predict"
        )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _ingest_section(store),
        _scores_section(read_predictions(predictions), read_metrics(metrics) if metrics else None),
        _top_section(predictions, top_rows),
        _model_section(card, provenance),
    ]
    _write_document(title, body, out)


def _write_document(title: str, body: list[str], out: Path) -> None:
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
    with atomic_file(Path(out)) as tmp:
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
) -> None:
    """Write the report to ``out`` (one HTML file, written to a temporary name, then renamed)."""
    model_metrics = read_metrics(metrics)
    results = {MODEL: model_metrics}
    for name, path in (baselines or {}).items():
        results[name] = read_metrics(path)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        _ingest_section(store),
        _results_section(results),
    ]
    if interpretation is not None:
        body.append(_interpretation_section(read_interpretation(interpretation), top_rows))
    body.append(_provenance_section(store, model_metrics))
    _write_document(title, body, out)
