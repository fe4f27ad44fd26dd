"""Whole-repertoire prediction: each repertoire streamed through the classifier in chunks
(:meth:`deeprc.classifier.RepertoireClassifier.score`, memory: one chunk), written as
per-repertoire scores and per-sequence attention."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deeprc import outputs, shards
from deeprc.atomic import atomic_directory
from deeprc.classifier import RepertoireClassifier, attention_table
from deeprc.data import CHUNK
from deeprc.errors import InputError
from deeprc.progress import Progress
from deeprc.split import read_folds
from deeprc.store import Store

__all__ = ["predict", "predict_with", "repertoires_to_score"]


def repertoires_to_score(
    store: Store, saved: dict, test: np.ndarray | None, model_path: Path, fold: int | None
) -> tuple[np.ndarray, int]:
    """The store indices to score (a fold's ``test`` set, or the whole store) and how many of
    them the model was trained or validated on.

    A fold's test set must come from the store the model was trained on and hold none of the
    repertoires it saw, or its scores would overstate the model's accuracy.
    """
    same_store = saved["store_fingerprint"] == store.manifest["fingerprint"]
    seen = set(saved["train_ids"]) | set(saved["validation_ids"])
    ids = store.repertoires["repertoire_id"].to_numpy()
    if test is not None:
        if not same_store:
            raise InputError(
                f"--fold scores a test set of the model's own cross-validation, but {model_path} "
                f"was trained on another store (fingerprint {saved['store_fingerprint']}, "
                f"--store has {store.manifest['fingerprint']}); to score another cohort, "
                "leave out --folds and --fold"
            )
        leaked = sorted(set(ids[test]) & seen)
        if leaked:
            raise InputError(
                f"{model_path} was trained or validated on {len(leaked)} of fold {fold}'s "
                f"test repertoires ({leaked[:5]}); scoring them as a test set would overstate "
                "its accuracy. Give the model trained on this fold of these folds."
            )
    repertoires = test if test is not None else np.arange(len(store.repertoires))
    return repertoires, len(set(ids[repertoires]) & seen) if same_store else 0


def predict_with(
    model_path: Path,
    store: Store,
    out: Path,
    *,
    folds: Path | None = None,
    fold: int | None = None,
    chunk: int = CHUNK,
    workers: int = 1,
    device: str | torch.device = "cpu",
    overwrite: bool = False,
    group: tuple[int, int] | None = None,
    merge: Sequence[Path] = (),
) -> tuple[pd.DataFrame, int, dict]:
    """Score a fold's test set (``folds`` and ``fold``) or the whole store with a saved model,
    with its provenance; returns the predictions, how many scored repertoires the model was
    trained or validated on (their scores are not test results) and the provenance.

    The store may be another cohort's: genes map by name (unknown ones are counted in the
    provenance) and the residue alphabet must be the model's. On a cluster the repertoires
    are scored in ``n`` jobs side by side: ``group=(k, n)`` scores every ``n``-th from the
    ``k``-th, and ``merge`` (the ``n`` group directories, same arguments otherwise) joins them
    into what one call writes."""
    if (folds is None) != (fold is None):
        raise InputError("--folds and --fold go together")
    classifier = RepertoireClassifier.load(model_path)
    saved = classifier.record
    trained_on = saved.get("data") or {}
    if trained_on.get("alphabet", store.manifest["alphabet"]) != store.manifest["alphabet"]:
        raise InputError(
            f"{model_path} reads the residues {trained_on['alphabet']!r}, but --store "
            f"{store.path} encodes {store.manifest['alphabet']!r}; ingest the cohort again with "
            "the deeprc that trained the model"
        )
    test = read_folds(folds, store, fold)["test"] if folds is not None else None
    repertoires, in_training = repertoires_to_score(store, saved, test, model_path, fold)
    provenance = {"model": str(model_path), "fold": fold}
    provenance |= {
        "experiment": asdict(classifier.experiment), "steps": saved.get("steps"),
        "deeprc_version": saved.get("deeprc_version"), "calibration": classifier.calibration,
    }  # fmt: skip
    provenance["model_store_fingerprint"] = saved["store_fingerprint"]
    provenance["model_store"] = trained_on.get("store")
    provenance["store_fingerprint"] = store.manifest["fingerprint"]
    provenance["store"] = str(store.path)
    # the scored store's own class names, for showing its labels (y) as words
    provenance["labels"] = {k: store.manifest.get(k) for k in ("positive_label", "classes")}
    # genes the model never saw are read as no call: counted, so that a user sees how many
    provenance["unknown_genes"] = classifier.features.unknown_genes(store, repertoires)
    provenance["model_card"] = classifier.card(model_path)  # what a scoring report shows
    provenance["scored_training_repertoires"] = in_training
    inputs = [store.path, model_path] + ([folds] if folds is not None else []) + list(merge)
    if merge:
        targets = {h.target.name: h.target.to_dict() for h in classifier.heads.heads}
        predictions = _merge_groups([Path(m) for m in merge], store, repertoires, out,
                                    provenance, targets, overwrite=overwrite,
                                    inputs=inputs)  # fmt: skip
        return predictions, in_training, provenance
    if group is not None:
        k, n = shards.check(group, "--group")
        repertoires = shards.select(repertoires, (k, n), "--group")
        provenance = provenance | {"group": [k, n]}
    classifier.network.to(device)
    classifier.features.vectors(store, torch.device(device))  # pretrained: embedded there
    predictions = predict(
        classifier, store, repertoires, out, chunk=chunk, workers=workers,
        provenance=provenance, overwrite=overwrite, inputs=inputs,
    )  # fmt: skip
    return predictions, in_training, provenance


def predict(
    classifier: RepertoireClassifier,
    store: Store,
    repertoires: np.ndarray,
    out: Path,
    *,
    chunk: int = CHUNK,
    workers: int = 1,
    provenance: dict | None = None,
    overwrite: bool = False,
    inputs: Iterable[Path] = (),
) -> pd.DataFrame:
    """Write the predictions and per-sequence attention of ``repertoires`` to ``out``
    (:mod:`deeprc.outputs`); returns the predictions. ``workers`` threads score repertoires
    side by side.

    The attention table has one row per sequence (:func:`deeprc.classifier.attention_table`).
    ``provenance`` (model, training config, ...) is written beside them;
    ``deeprc evaluate`` copies it into the metrics.
    """
    rows = []
    with atomic_directory(Path(out), overwrite=overwrite, inputs=inputs, command="predict") as tmp:
        attention_file = outputs.AttentionWriter(tmp)
        sizes = np.diff(store.offsets)[np.asarray(repertoires, dtype=np.int64)]
        with Progress("predict", int(sizes.sum()), "sequences") as progress:
            scored = _scored(classifier, store, repertoires, chunk, workers)
            for size, (scores, table) in zip(sizes, scored, strict=True):
                rows.append(scores)
                attention_file.write(table)
                progress.update(int(size))
        attention_file.close()
        heads = classifier.heads
        tables = heads.tables(np.stack(rows), store, repertoires)
        targets = {h.target.name: h.target.to_dict() for h in heads.heads}
        outputs.write_head_predictions(tmp, tables, targets, provenance or {})
    return next(iter(tables.values()))


def _merge_groups(
    groups: list[Path],
    store: Store,
    repertoires: np.ndarray,
    out: Path,
    provenance: dict,
    targets: dict[str, dict],
    *,
    overwrite: bool,
    inputs: list[Path],
) -> pd.DataFrame:
    """One prediction directory from the ``n`` group directories of this very model, store
    and fold, in the order one call writes (repertoire ``i`` is in group ``i mod n``)."""
    found = []
    for directory in groups:
        saved = outputs.read_provenance(directory) or {}
        if "group" not in saved:
            raise InputError(f"{directory} is not a group of deeprc predict --group")
        as_written = json.loads(json.dumps(provenance))
        if {k: v for k, v in saved.items() if k != "group"} != as_written:
            raise InputError(
                f"{directory} was scored with another model, store or fold than these; score "
                "the groups again with the same arguments"
            )
        found.append((tuple(saved["group"]), directory))
    ordered = shards.joined(found, "--group")  # the group directories in the order of K
    n = len(ordered)
    read = [outputs.read_head_predictions(d) for d in ordered]
    ids = store.repertoires["repertoire_id"].to_numpy()[repertoires]
    joined = {}
    for name in read[0]:
        tables = [r[name] for r in read]
        joined[name] = pd.concat(
            [tables[i % n].iloc[[i // n]] for i in range(len(repertoires))], ignore_index=True
        )
        if joined[name]["repertoire_id"].astype(str).tolist() != ids.astype(str).tolist():
            groups = ", ".join(map(str, ordered))
            raise InputError(f"the groups {groups} do not hold these repertoires")
    with atomic_directory(Path(out), overwrite=overwrite, inputs=inputs, command="predict") as tmp:
        writer = outputs.AttentionWriter(tmp)
        parts = [outputs.attention_by_repertoire(d) for d in ordered]
        for i, expected in enumerate(ids.tolist()):
            repertoire_id, table = next(parts[i % n])
            assert repertoire_id == str(expected), "a group's attention is out of order"
            writer.write(table)
        writer.close()
        outputs.write_head_predictions(tmp, joined, targets, provenance)
    return next(iter(joined.values()))


def _scored(
    classifier: RepertoireClassifier,
    store: Store,
    repertoires: np.ndarray,
    chunk: int,
    workers: int,
) -> Iterator[tuple[np.ndarray, dict]]:
    """Each repertoire's outputs (RepertoireClassifier.outputs) and attention rows, in order.
    ``workers`` threads score repertoires side by side (PyTorch, NumPy and Arrow release the
    GIL), at most two per worker ahead of the writer, so memory holds a few repertoires
    whatever the cohort."""

    def one(r: int) -> tuple[np.ndarray, dict]:
        outputs, attention, scores = classifier.outputs(store, r, chunk=chunk)
        return outputs, attention_table(store, r, attention, scores)

    pool = ThreadPoolExecutor(max(workers, 1))
    try:
        pending = deque()
        for r in repertoires:
            pending.append(pool.submit(one, int(r)))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
