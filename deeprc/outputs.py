"""What each stage writes and the next one reads: file names, columns and their read/write
functions, so that a writer and its readers cannot drift apart.

A prediction directory (``deeprc predict``, ``deeprc baseline``) holds ``predictions.tsv``
and, for the model, ``attention.parquet`` and ``provenance.json``; ``deeprc evaluate`` writes
one metrics file; ``deeprc interpret`` writes an interpretation directory. Readers raise
:class:`InputError` naming the file and the command that writes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from deeprc.errors import InputError
from deeprc.ingest.options import LABEL

__all__ = [
    "AttentionWriter",
    "Interpretation",
    "attention_by_repertoire",
    "file_digest",
    "read_attention",
    "read_head_predictions",
    "read_interpretation",
    "read_labels",
    "read_metrics",
    "read_predictions",
    "read_provenance",
    "read_target",
    "read_target_predictions",
    "read_truth",
    "write_head_predictions",
    "write_interpretation",
    "write_metrics",
    "write_predictions",
    "write_provenance",
    "write_target_predictions",
    "write_tsv",
]

PREDICTIONS = "predictions.tsv"
PREDICTION_COLUMNS = ("repertoire_id", "y", "logit", "score")
# beside the predictions of a target other than the label: which (deeprc.targets.Target)
TARGET = "target.json"
# where a model of several targets writes the predictions of each beyond the first
TARGETS = "targets"
ATTENTION = "attention.parquet"
# then attention_h<k> per head when the model has several
ATTENTION_COLUMNS = (
    "repertoire_id", "sequence_id", "row", "junction_aa", "v_call", "j_call",
    "duplicate_count", "attention", "attention_score",
)  # fmt: skip
PROVENANCE = "provenance.json"
TOP_SEQUENCES = "top_sequences.parquet"
MOTIFS = "motifs.tsv"
INTERPRETATION = "interpretation.json"
ASSOCIATED_CLONOTYPES = "associated_clonotypes.tsv"
ASSOCIATED_PATTERNS = "associated_patterns.tsv"  # the gapped-k-mer burden test's
# a simulated cohort (deeprc simulate) beside its AIRR files and metadata
TRUTH = "truth.tsv"
TRUTH_REPERTOIRES = "truth_repertoires.tsv"
SIMULATION = "simulation.json"


def _existing(path: Path, written_by: str) -> Path:
    if not path.is_file():
        raise InputError(f"{path} does not exist; run {written_by} first")
    return path


def file_digest(path: Path) -> str:
    """A file's short sha256 (16 hex digits): which predictions or metrics a result came from,
    recorded by one command and compared by another."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def write_tsv(path: Path, table: pd.DataFrame) -> None:
    table.to_csv(path, sep="\t", index=False)


# ----------------------------------------------------------------------------- predictions


def write_predictions(directory: Path, table: pd.DataFrame) -> None:
    """One row per scored repertoire: id, label (1/0; empty for a repertoire without one), log-odds
    and probability of the positive class."""
    table = table[list(PREDICTION_COLUMNS)]
    y = table["y"].astype("Int64")
    write_tsv(Path(directory) / PREDICTIONS, table.assign(y=y.where(y >= 0)))


def read_predictions(directory: Path) -> pd.DataFrame:
    path = _existing(Path(directory) / PREDICTIONS, "deeprc predict (or deeprc baseline)")
    table = pd.read_csv(path, sep="\t", dtype={"repertoire_id": str, "y": "Int64"})
    missing = [c for c in PREDICTION_COLUMNS if c not in table]
    if missing:
        raise InputError(f"{path} lacks the column(s) {missing}; write it with deeprc predict")
    bad_score = ~np.isfinite(pd.to_numeric(table["score"], errors="coerce").to_numpy(float))
    bad_label = table["y"].notna() & ~table["y"].isin([0, 1])
    if bad_score.any() or bad_label.any():
        row = int(np.flatnonzero(bad_score | bad_label.to_numpy())[0])
        raise InputError(
            f"{path}: line {row + 2} holds score {table['score'].iloc[row]} and label "
            f"{table['y'].iloc[row]}; a score is a finite number and a label 0, 1 or empty. "
            "Predict again (a model that diverged gives no finite score)"
        )
    return table


def write_target_predictions(directory: Path, table: pd.DataFrame, target: dict) -> None:
    """Predictions of a target other than the label (deeprc.targets), with ``target.json``
    saying which. A binary one is written as the label's are (y 1/0, logit, score); a
    categorical one as ``y`` (the class; empty where unknown) and ``p:<class>`` for each class;
    a numeric one as ``y`` (empty where unknown) and ``prediction``."""
    directory = Path(directory)
    (directory / TARGET).write_text(json.dumps(target, indent=2) + "\n")
    if target["kind"] == "binary":
        write_predictions(directory, table)
    else:
        write_tsv(directory / PREDICTIONS, table[_target_columns(target)])


def write_head_predictions(
    directory: Path, tables: dict[str, pd.DataFrame], targets: dict[str, dict], provenance: dict
) -> None:
    """The predictions of a model's targets (deeprc.heads; ``targets``: each one's
    Target.to_dict(), in the model's order): the first one's in ``directory``, each further
    one's in ``targets/<name>/`` (which deeprc evaluate reads as it reads a fold), all with
    ``provenance``."""
    directory = Path(directory)
    for i, (name, table) in enumerate(tables.items()):
        where = directory if i == 0 else directory / TARGETS / _target_directory(name)
        where.mkdir(parents=True, exist_ok=True)
        if name == LABEL:
            write_predictions(where, table)
        else:
            write_target_predictions(where, table, targets[name])
        write_provenance(where, provenance)


def read_head_predictions(directory: Path) -> dict[str, pd.DataFrame]:
    """What :func:`write_head_predictions` wrote, by target name, in its order."""
    directory = Path(directory)
    found = {}
    places = [directory]
    if (directory / TARGETS).is_dir():
        places += sorted(p for p in (directory / TARGETS).iterdir() if p.is_dir())
    for where in places:
        target = read_target(where)
        if target is None:
            found[LABEL] = read_predictions(where)
        elif target["kind"] == "binary":
            found[target["name"]] = read_predictions(where)
        else:
            found[target["name"]] = read_target_predictions(where, target)
    return found


def _target_directory(name: str) -> str:
    """A target's directory name under ``targets/``: the name, where it is one."""
    if not name or "/" in name or name.startswith(".") or "\\" in name:
        raise InputError(
            f"target {name!r} cannot name a directory; ingest the column under another name"
        )
    return name


def _target_columns(target: dict) -> list[str]:
    scored = (
        [f"p:{c}" for c in target["classes"]] if target["kind"] == "categorical" else ["prediction"]
    )
    return ["repertoire_id", "y", *scored]


def read_target(directory: Path) -> dict | None:
    """The target a prediction directory holds (``target.json``); None for the label."""
    path = Path(directory) / TARGET
    return json.loads(path.read_text()) if path.is_file() else None


def read_target_predictions(directory: Path, target: dict) -> pd.DataFrame:
    """The predictions of a categorical or numeric ``target`` (:func:`read_target`),
    checked: the columns it has, finite scores, and known classes."""
    path = _existing(Path(directory) / PREDICTIONS, "deeprc baseline --target")
    y_type = str if target["kind"] == "categorical" else float
    table = pd.read_csv(path, sep="\t", dtype={"repertoire_id": str, "y": y_type})
    columns = _target_columns(target)
    missing = [c for c in columns if c not in table]
    if missing:
        raise InputError(f"{path} lacks the column(s) {missing} of target {target['name']!r}")
    scores = table[columns[2:]].to_numpy(dtype=float)
    bad = ~np.isfinite(scores).all(axis=1)
    if target["kind"] == "categorical":
        bad |= table["y"].notna().to_numpy() & ~table["y"].isin(target["classes"]).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: line {row + 2} holds no finite prediction, or a class that target "
            f"{target['name']!r} does not have ({target.get('classes')}); predict again"
        )
    return table


class AttentionWriter:
    """Appends one repertoire's sequences at a time to ``attention.parquet``."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / ATTENTION
        self._writer: pq.ParquetWriter | None = None

    def write(self, columns: dict) -> None:
        batch = pa.table(columns)
        if list(batch.column_names[: len(ATTENTION_COLUMNS)]) != list(ATTENTION_COLUMNS):
            raise ValueError(f"attention columns must start with {ATTENTION_COLUMNS}")
        if self._writer is None:
            # dictionaries only where values repeat (ids and sequences are mostly unique):
            # half the writing time, and zstd level 1 takes half the disk of snappy as fast
            self._writer = pq.ParquetWriter(
                self.path, batch.schema, use_dictionary=["repertoire_id", "v_call", "j_call"],
                compression="zstd", compression_level=1,
            )  # fmt: skip
        self._writer.write_table(batch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _attention_file(directory: Path, columns: list[str]) -> Path:
    """A prediction directory's attention.parquet, checked to hold ``columns``."""
    path = _existing(Path(directory) / ATTENTION, "deeprc predict")
    names = pq.read_schema(path).names
    missing = [c for c in columns if c not in names]
    if missing:
        raise InputError(f"{path} lacks the column(s) {missing}; run deeprc predict again")
    return path


def read_attention(
    directory: Path, columns: list[str] | None = None, repertoire: str | None = None
) -> pd.DataFrame:
    """The per-sequence attention of a prediction directory (of one repertoire if given)."""
    path = _attention_file(directory, columns or ATTENTION_COLUMNS)
    filters = [("repertoire_id", "=", repertoire)] if repertoire is not None else None
    return pq.read_table(path, columns=columns, filters=filters).to_pandas()


def attention_by_repertoire(
    directory: Path, columns: list[str] | None = None
) -> Iterator[tuple[str, pa.Table]]:
    """A prediction directory's attention rows one repertoire at a time (they are contiguous,
    in the order written): memory holds one repertoire, whatever the cohort."""
    path = _attention_file(directory, columns or ATTENTION_COLUMNS)
    if columns is not None:
        columns = list(dict.fromkeys(["repertoire_id", *columns]))
    parquet = pq.ParquetFile(path)
    pending = None
    for g in range(parquet.num_row_groups):
        rows = parquet.read_row_group(g, columns=columns)
        ids = rows["repertoire_id"].to_numpy(zero_copy_only=False)
        cuts = [0, *(np.flatnonzero(ids[1:] != ids[:-1]) + 1).tolist(), len(ids)]
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            piece = rows.slice(lo, hi - lo)
            if pending is not None and pending[0] == ids[lo]:
                pending = (ids[lo], pa.concat_tables([pending[1], piece]))
                continue
            if pending is not None:
                yield pending
            pending = (ids[lo], piece)
    if pending is not None:
        yield pending


def write_provenance(directory: Path, provenance: dict) -> None:
    (Path(directory) / PROVENANCE).write_text(json.dumps(provenance, indent=2) + "\n")


def read_provenance(directory: Path) -> dict | None:
    """What predicted (model, experiment, stores), or None for a baseline's directory."""
    path = Path(directory) / PROVENANCE
    return json.loads(path.read_text()) if path.is_file() else None


def read_labels(directory: Path) -> dict[str, str]:
    """Each scored repertoire's label as a word: its store's class name where the
    predictions recorded them, else positive/negative; "" where it has no label (or the
    model predicts no label: read_head_predictions)."""
    tables = read_head_predictions(directory)
    if LABEL not in tables:
        return dict.fromkeys(next(iter(tables.values()))["repertoire_id"], "")
    predictions = tables[LABEL]
    recorded = (read_provenance(directory) or {}).get("labels") or {}
    names = {1: "positive", 0: "negative"}
    positive, classes = recorded.get("positive_label"), recorded.get("classes") or []
    if positive is not None and len(classes) == 2 and positive in classes:
        names = {1: str(positive), 0: str(next(c for c in classes if c != positive))}
    y = predictions["y"]
    words = [names[int(v)] if pd.notna(v) else "" for v in y]
    return dict(zip(predictions["repertoire_id"], words, strict=True))


# ----------------------------------------------------------------------------- metrics


def write_metrics(path: Path, result: dict) -> None:
    Path(path).write_text(json.dumps(result, indent=2) + "\n")


def read_metrics(path: Path) -> dict:
    """A metrics file of ``deeprc evaluate``: summary, folds, and each fold's test scores."""
    path = _existing(Path(path), "deeprc evaluate")
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not a metrics file of deeprc evaluate: {exc}") from None
    if not isinstance(result, dict) or any(k not in result for k in ("summary", "folds")):
        raise InputError(f"{path} is not a metrics file of deeprc evaluate")
    if any("test" not in fold for fold in result["folds"]):
        raise InputError(f"{path} was written by an older deeprc evaluate; run it again")
    return result


# ----------------------------------------------------------------------------- interpretation


@dataclass
class Interpretation:
    """``top``: the top sequences per fold with ``contributions`` (one float per residue);
    ``motifs``: the mined motifs; ``pwms``: the position weights of ``summary["motifs"]``."""

    top: pd.DataFrame
    motifs: pd.DataFrame
    pwms: list[pd.DataFrame]
    summary: dict


def _pwm_name(rank: int) -> str:
    return f"pwm_{rank}.tsv"


def write_interpretation(directory: Path, interpretation: Interpretation) -> None:
    directory = Path(directory)
    contributions = pa.array(
        [list(map(float, c)) for c in interpretation.top["contributions"]], pa.list_(pa.float32())
    )
    top = pa.Table.from_pandas(
        interpretation.top.drop(columns=["contributions"]), preserve_index=False
    ).append_column("contributions", contributions)
    pq.write_table(top, directory / TOP_SEQUENCES)
    write_tsv(directory / MOTIFS, interpretation.motifs)
    for rank, pwm in enumerate(interpretation.pwms, start=1):
        pwm.to_csv(directory / _pwm_name(rank), sep="\t", index=False, float_format="%.4f")
    (directory / INTERPRETATION).write_text(json.dumps(interpretation.summary, indent=2) + "\n")


def read_interpretation(directory: Path) -> Interpretation:
    directory = Path(directory)
    paths = [directory / name for name in (INTERPRETATION, TOP_SEQUENCES, MOTIFS)]
    for path in paths:
        _existing(path, "deeprc interpret")
    summary = json.loads(paths[0].read_text())
    top = pq.read_table(paths[1]).to_pandas()
    top["contributions"] = [c.astype(float) for c in top["contributions"]]
    motifs = pd.read_csv(paths[2], sep="\t")
    pwms = [
        pd.read_csv(_existing(directory / _pwm_name(rank), "deeprc interpret"), sep="\t")
        for rank in range(1, len(summary["motifs"]) + 1)
    ]
    return Interpretation(top=top, motifs=motifs, pwms=pwms, summary=summary)


# ----------------------------------------------------------------------------- ground truth


def read_truth(directory: Path) -> tuple[pd.DataFrame, list[str]]:
    """A simulated cohort's implanted sequences (repertoire_id, sequence_id, signal) and the
    motifs it implanted."""
    directory = Path(directory)
    written_by = "deeprc simulate (--truth is a simulated cohort's directory)"
    truth = pd.read_csv(_existing(directory / TRUTH, written_by), sep="\t", dtype=str)
    simulation = json.loads(_existing(directory / SIMULATION, written_by).read_text())
    return truth, [m["motif"] for m in simulation["config"]["motifs"]]
