"""Why the model looked where it looked.

For the most attended sequences of each fold's test repertoires: integrated gradients of the
attention score ``β k(x)·ξ`` with respect to the encoder's input (for the CNN, the one-hot
residues; summed over each position's channels: per-position contributions),
the k-mers and gapped k-mers that carry those contributions (motifs), their position weight
matrices and logos, and, for simulated data, checks against the ground truth.

Baseline input of the integrated gradients: the encoder's input all zero (for the CNN, an
"empty" sequence that keeps its length, so the position ramps and bias stay). The
contributions of a sequence then sum to its score minus the empty sequence's score.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from deeprc import outputs
from deeprc.atomic import atomic_directory
from deeprc.classifier import RepertoireClassifier
from deeprc.data import repertoire_chunks
from deeprc.errors import InputError
from deeprc.model import DeepRC, reads_residues
from deeprc.progress import tracked
from deeprc.store import AMINO_ACIDS, Store

__all__ = [
    "enriched_motifs",
    "integrated_gradients",
    "mine_motifs",
    "position_weights",
    "interpret",
]

MOTIF_LENGTHS = (3, 4, 5)
GAP = "."  # the simulator's wildcard too
BACKGROUND = 50  # junctions sampled per repertoire, to rank motifs by enrichment


def integrated_gradients(
    network: DeepRC,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    state: torch.Tensor,
    *,
    steps: int = 64,
    inputs: dict[str, torch.Tensor] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-position contributions ``(n, width)`` to each sequence's attention score (of its
    highest-scoring head), with the scores of the sequences and of their empty baselines.
    A network that reads genes or evidence keeps each sequence's ``inputs`` along the path
    (they are part of the baseline: only the residues are attributed)."""
    network.eval()
    start = network.encoder.differentiable_input(tokens)
    lengths = lengths.long()
    inputs = inputs or {}
    with torch.no_grad():
        head = network.sequence_scores(start, lengths, state, inputs).argmax(dim=1)
    n = len(tokens)
    alphas = (torch.arange(steps, dtype=start.dtype) + 0.5) / steps  # midpoint rule
    shape = (steps, *[1] * start.dim())
    path = (alphas.view(shape) * start[None]).reshape(steps * n, *start.shape[1:])
    path.requires_grad_(True)
    along = {k: v.repeat(steps, *[1] * (v.dim() - 1)) for k, v in inputs.items()}
    scores = network.sequence_scores(path, lengths.repeat(steps), state, along)
    chosen = scores.gather(1, head.repeat(steps)[:, None]).sum()
    (gradient,) = torch.autograd.grad(chosen, path)
    mean_gradient = gradient.view(steps, n, *start.shape[1:]).mean(dim=0)
    contributions = (start * mean_gradient).sum(dim=1)
    with torch.no_grad():
        ends = [
            network.sequence_scores(x, lengths, state, inputs).gather(1, head[:, None])[:, 0]
            for x in (start, torch.zeros_like(start))
        ]
    return contributions.numpy(), ends[0].numpy(), ends[1].numpy()


def _windows(sequence: str, contributions: np.ndarray):
    """Every k-mer and gapped k-mer (one interior ``.``) of a sequence with its contribution."""
    for k in MOTIF_LENGTHS:
        for start in range(len(sequence) - k + 1):
            word, parts = sequence[start : start + k], contributions[start : start + k]
            total = float(parts.sum())
            yield word, total, start
            if k >= 4:
                for gap in range(1, k - 1):
                    yield word[:gap] + GAP + word[gap + 1 :], total - float(parts[gap]), start


def motif_matches(a: str, b: str) -> bool:
    """Same length and the same residue wherever neither has a gap."""
    return len(a) == len(b) and all(x == y or GAP in (x, y) for x, y in zip(a, b, strict=True))


def _overlaps(a: str, b: str) -> bool:
    """Whether two motifs, at some offset, agree on three or more residues and clash on none
    (so SLR, LRF.F and S.RF all overlap SLRF)."""
    for shift in range(-len(b) + 1, len(a)):
        pairs = [(a[i], b[i - shift]) for i in range(max(0, shift), min(len(a), len(b) + shift))]
        known = [(x, y) for x, y in pairs if GAP not in (x, y)]
        if len(known) >= 3 and all(x == y for x, y in known):
            return True
    return False


def mine_motifs(sequences: list[str], contributions: list[np.ndarray], *, n: int = 10):
    """Motifs ranked by the contribution they carry, summed over the sequences (each sequence
    counts a motif once, at its best occurrence). A motif that overlaps a better-ranked one
    is left out: the list names distinct motifs."""
    totals: dict[str, float] = defaultdict(float)
    carriers: dict[str, int] = defaultdict(int)
    for sequence, parts in zip(sequences, contributions, strict=True):
        best: dict[str, float] = {}
        for word, total, _ in _windows(sequence, parts):
            best[word] = max(total, best.get(word, -math.inf))
        for word, total in best.items():
            totals[word] += total
            carriers[word] += 1
    chosen = _distinct(totals, n)
    return pd.DataFrame(
        {
            "rank": range(1, len(chosen) + 1),
            "motif": chosen,
            "contribution": [totals[w] for w in chosen],
            "n_sequences": [carriers[w] for w in chosen],
        }
    )


def enriched_motifs(sequences: list[str], background: list[str], *, n: int = 10):
    """Motifs ranked by how many more of the top ``sequences`` carry them than a random
    ``background`` of the same repertoires' sequences predicts: for a network whose
    attention reads the evidence alone, where the residues carry no contribution."""
    top, behind = _carriers(sequences), _carriers(background)
    rate = {w: (behind.get(w, 0) + 0.5) / (len(background) + 1) for w in top}
    excess = {w: top[w] - len(sequences) * rate[w] for w in top}
    chosen = _distinct(excess, n)
    return pd.DataFrame(
        {
            "rank": range(1, len(chosen) + 1),
            "motif": chosen,
            "excess_carriers": [excess[w] for w in chosen],
            "n_sequences": [top[w] for w in chosen],
            "background_rate": [rate[w] for w in chosen],
        }
    )


def _carriers(sequences: list[str]) -> dict[str, int]:
    """How many of ``sequences`` carry each k-mer and gapped k-mer."""
    counts: dict[str, int] = defaultdict(int)
    for sequence in sequences:
        zero = np.zeros(len(sequence))
        for word in {w for w, _, _ in _windows(sequence, zero)}:
            counts[word] += 1
    return counts


def _distinct(score: dict[str, float], n: int) -> list[str]:
    """The ``n`` best-scoring motifs, each left out where it overlaps a better one (on a tie,
    the one naming more residues is better: SLRF before its parts SLR and S.RF)."""
    chosen: list[str] = []
    for word in sorted(score, key=lambda w: (-score[w], -len(w.replace(GAP, "")), w)):
        if len(chosen) == n:
            break
        if not any(_overlaps(word, c) for c in chosen):
            chosen.append(word)
    return chosen


def position_weights(motif: str, sequences: list[str], *, flank: int = 2) -> pd.DataFrame:
    """Residue frequencies at each position of the motif's occurrences (with ``flank`` residues
    either side), rows = positions, columns = amino acids, plus the information content."""
    counts = np.zeros((len(motif) + 2 * flank, len(AMINO_ACIDS)))
    index = {a: i for i, a in enumerate(AMINO_ACIDS)}
    for sequence in sequences:
        for start in range(len(sequence) - len(motif) + 1):
            if motif_matches(sequence[start : start + len(motif)], motif):
                for offset in range(-flank, len(motif) + flank):
                    if 0 <= start + offset < len(sequence):
                        counts[offset + flank, index[sequence[start + offset]]] += 1
    frequencies = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(frequencies > 0, frequencies * np.log2(frequencies), 0), 1)
    table = pd.DataFrame(frequencies, columns=list(AMINO_ACIDS))
    table.insert(0, "position", range(-flank, len(motif) + flank))
    table["information"] = np.where(counts.sum(axis=1) > 0, math.log2(20) - entropy, 0.0)
    return table


def _signal_ids(truth: pd.DataFrame) -> dict[str, np.ndarray]:
    """The implanted sequence ids of each repertoire."""
    return {rid: ids.to_numpy() for rid, ids in truth.groupby("repertoire_id")["sequence_id"]}


def _carries(sequence_ids: np.ndarray, repertoire_id: str, signal: dict) -> np.ndarray:
    """Which of one repertoire's sequences are implanted ones."""
    return np.isin(sequence_ids.astype(str), signal.get(str(repertoire_id), []))


def _is_signal(table: pd.DataFrame, signal: dict[str, np.ndarray]) -> np.ndarray:
    """Whether each row (repertoire_id, sequence_id) is an implanted sequence."""
    out = np.zeros(len(table), dtype=bool)
    for rid, rows in table.groupby("repertoire_id").indices.items():
        out[rows] = _carries(table["sequence_id"].to_numpy()[rows], rid, signal)
    return out


def _top_rows(
    directory: Path, n: int, signal: dict | None
) -> tuple[pd.DataFrame, list[float], list[str]]:
    """The ``n`` rows of highest attention score of a prediction directory (ties: first
    written first), with the ground truth's ``signal`` the attention AUC of each repertoire
    holding signal and background sequences, and a seeded random sample of the repertoires'
    junctions (``BACKGROUND`` each); read one repertoire at a time."""
    best, aucs, background = None, [], []
    rng = np.random.default_rng(0)
    for repertoire_id, rows in outputs.attention_by_repertoire(directory):
        junctions = rows["junction_aa"].to_numpy(zero_copy_only=False)
        background += junctions[rng.permutation(len(junctions))[:BACKGROUND]].tolist()
        scores = rows["attention_score"].to_numpy()
        keep = np.lexsort((np.arange(len(scores)), -scores))[:n]  # by score, then position
        found = rows.take(keep).to_pandas()
        best = found if best is None else pd.concat([best, found], ignore_index=True)
        best = best.nlargest(n, "attention_score").reset_index(drop=True)
        if signal is not None:
            ids = rows["sequence_id"].to_numpy(zero_copy_only=False)
            carries = _carries(ids, repertoire_id, signal)
            if 0 < carries.sum() < len(carries):
                aucs.append(roc_auc_score(carries, rows["attention"].to_numpy()))
    if best is None:
        raise InputError(f"{directory} holds no scored sequences; run deeprc predict again")
    return best, aucs, background


def _ground_truth(
    per_fold: list[tuple[pd.DataFrame, list[float]]], implanted: list[str], motifs: pd.DataFrame
) -> dict:
    """Precision of the top-attended sequences, attention AUC inside positive repertoires (signal
    against background sequences) and the rank of each implanted motif among the mined ones;
    ``per_fold``: each fold's top rows (by attention score, with ``signal``) and AUCs."""
    folds = [
        {f"precision_at_{k}": float(top["signal"].to_numpy()[:k].mean()) for k in (10, 50, 100)}
        | {"attention_auc": float(np.mean(aucs)) if aucs else math.nan}
        for top, aucs in per_fold
    ]
    summary = {key: float(np.mean([f[key] for f in folds])) for key in folds[0]}
    recovered = motifs["motif"].tolist()
    rank_of = {
        m: next((i + 1 for i, r in enumerate(recovered) if motif_matches(r, m)), None)
        for m in implanted
    }
    return {"per_fold": folds, "mean": summary, "implanted_motif_rank": rank_of}


def _pull_columns(model: RepertoireClassifier) -> list[str]:
    """The columns of each top sequence's pull on a model of several targets (or with a
    target other than the label; DeepRC.pulls): ``pull:<target>``, or ``pull:<target>:<class>``
    per class; none for a model of the label alone or one with hidden output layers."""
    if model.heads.label_only or model.experiment.model.output_hidden:
        return []
    names = []
    for head in model.heads.heads:
        target = head.target
        if target.kind == "categorical":
            names += [f"pull:{target.name}:{c}" for c in target.classes]
        else:
            names.append(f"pull:{target.name}")
    return names


def _pulls(
    model: RepertoireClassifier, store: Store, r: int, rows: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """The pulls ``(outputs, len(rows))`` of repertoire ``r``'s sequences ``rows`` on each
    output (DeepRC.pulls); a categorical target's as each class's logit share minus their
    mean (a softmax reads only the differences)."""
    inputs = model.features.inputs_of(store, r)
    chosen = SimpleNamespace(
        tokens=torch.from_numpy(np.asarray(store.tokens[rows])),
        lengths=torch.from_numpy(lengths),
        inputs={k: torch.from_numpy(v) for k, v in inputs(rows).items()},
    )
    pulls = model.network.pulls(partial(repertoire_chunks, store, r, inputs=inputs), chosen)
    pulls = pulls.cpu().double().numpy()
    for head, part in zip(model.heads.heads, model.heads.slices, strict=True):
        if head.target.kind == "categorical":
            pulls[part] -= pulls[part].mean(axis=0, keepdims=True)
    return pulls


def interpret(
    store: Store,
    models: list[RepertoireClassifier],
    prediction_dirs: list[Path],
    out: Path,
    *,
    top: int = 100,
    steps: int = 64,
    truth_dir: Path | None = None,
    overwrite: bool = False,
    inputs: Iterable[Path] = (),
) -> dict:
    """Write the top sequences with their contributions, the motifs, the position weights of
    the top 3 and a summary (with ground-truth checks when ``truth_dir`` holds truth.tsv) as
    an :class:`deeprc.outputs.Interpretation`; returns the summary."""
    with atomic_directory(out, overwrite=overwrite, inputs=inputs, command="interpret") as tmp:
        table, motifs, summary = _analyse(store, models, prediction_dirs, top, steps, truth_dir)
        sequences = table["junction_aa"].tolist()
        pwms = [position_weights(motif, sequences) for motif in summary["motifs"]]
        outputs.write_interpretation(tmp, outputs.Interpretation(table, motifs, pwms, summary))
    return summary


def _analyse(
    store: Store,
    models: list[RepertoireClassifier],
    prediction_dirs: list[Path],
    top: int,
    steps: int,
    truth_dir: Path | None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The top sequences with their contributions, the mined motifs and the summary."""
    if len(models) != len(prediction_dirs):
        raise InputError("give one model per prediction directory (the fold's own model)")
    truth = outputs.read_truth(truth_dir) if truth_dir is not None else None
    signal = _signal_ids(truth[0]) if truth is not None else None
    truth_per_fold, all_top, background = [], [], []
    folds = list(enumerate(zip(models, prediction_dirs, strict=True)))
    for fold, (model, directory) in tracked(folds, "interpret", "folds"):
        # one pass: the top rows (at least 100 for the ground truth's precision) and the AUCs
        best, aucs, sample = _top_rows(
            directory, max(top, 100) if signal is not None else top, signal
        )
        background += sample
        if signal is not None:
            truth_per_fold.append((best.assign(signal=_is_signal(best, signal)), aucs))
        chosen = best.head(top).copy()
        lengths = np.asarray(store.lengths[chosen["row"].to_numpy()], dtype=np.int64)
        contributions = [np.empty(0)] * len(chosen)
        empty = np.empty(len(chosen))
        pulls = _pull_columns(model)
        pulled = np.zeros((len(pulls), len(chosen)))
        index = {rid: i for i, rid in enumerate(store.repertoires["repertoire_id"])}
        for repertoire_id, group in chosen.groupby("repertoire_id").groups.items():
            r = index[repertoire_id]
            inputs = model.features.inputs_of(store, r)
            # the state patterns depend on the repertoire once there is more than one update
            state = model.network.final_state(partial(repertoire_chunks, store, r, inputs=inputs))
            where = np.asarray(group)
            rows = chosen["row"].to_numpy()[where]
            tokens = np.asarray(store.tokens[rows])
            if reads_residues(model.network.encoder):
                attributed, _, baseline = integrated_gradients(
                    model.network,
                    torch.from_numpy(tokens),
                    torch.from_numpy(lengths[where]),
                    state,
                    steps=steps,
                    inputs={k: torch.from_numpy(v) for k, v in inputs(rows).items()},
                )
            else:  # pretrained vectors alone (encoder: sceptr): no residue input to attribute
                attributed, baseline = np.zeros(tokens.shape), np.full(len(rows), np.nan)
            for i, j in enumerate(where):
                contributions[j] = attributed[i, : lengths[j]]
            empty[where] = baseline
            if pulls:
                pulled[:, where] = _pulls(model, store, r, rows, lengths[where])
        chosen.insert(0, "fold", fold)
        chosen.insert(1, "rank", range(1, len(chosen) + 1))
        chosen["contributions"] = contributions
        chosen["empty_score"] = empty
        for name, values in zip(pulls, pulled, strict=True):
            chosen[name] = values
        all_top.append((chosen, contributions))
    table = pd.concat([t for t, _ in all_top], ignore_index=True).drop(columns=["row"])
    sequences = table["junction_aa"].tolist()
    contributions = [c for _, parts in all_top for c in parts]
    # an untrained weighed network's attention reads the evidence alone, and SCEPTR's fixed
    # vectors have no residue input: nothing to attribute
    by_contribution = any(np.any(c) for c in contributions)
    if by_contribution:
        motifs = mine_motifs(sequences, contributions)
    else:
        motifs = enriched_motifs(sequences, background)
    summary = {
        "top_per_fold": top,
        "integrated_gradients_steps": steps,
        "baseline": "all residue channels zero (length, position ramps and bias kept)",
        "motifs_ranked_by": "contribution" if by_contribution else "enrichment",
        "motifs": motifs.head(3)["motif"].tolist(),
    }
    if pull_names := [c for c in table.columns if c.startswith("pull:")]:
        summary["pulled_most_by"] = {
            name: table.nlargest(5, name)["junction_aa"].tolist() for name in pull_names
        }
    if truth is not None:
        table["signal"] = _is_signal(table, signal)
        summary["ground_truth"] = _ground_truth(truth_per_fold, truth[1], motifs)
    return table, motifs, summary
