"""Model files: saved with what it takes to trust them later, loaded so that they cannot run code.

A model file holds tensors and plain values only (loaded with ``torch.load(weights_only=True)``)
and a format mark, so that a training checkpoint, a truncated file or another program's pickle
given as a model is a clear error instead of a traceback or, worse, code run on load.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import torch

from deeprc import __version__
from deeprc.atomic import atomic_file
from deeprc.config import build
from deeprc.errors import InputError
from deeprc.evidence import load_evidence
from deeprc.model.deeprc import DeepRC, ModelConfig, build_model

__all__ = [
    "CHECKPOINT_FORMAT", "MODEL_FORMAT", "load_model", "model_card", "save_model", "select_model",
]  # fmt: skip

MODEL_FORMAT = "deeprc-model"
CHECKPOINT_FORMAT = "deeprc-checkpoint"


def save_torch(obj: dict, path: Path) -> None:
    """Any of our torch files (models, checkpoints), written atomically."""
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def save_model(
    path: Path,
    model_state: dict,
    *,
    experiment: dict,
    store_fingerprint: str,
    train_ids: list[str],
    validation_ids: list[str],
    steps: int,
    history: list[dict],
    calibration: dict,
    gene_names: dict[str, list[str]] | None = None,
    evidence: list[dict] = (),
    data: dict | None = None,
    cross_validation: dict | None = None,
) -> None:
    """A trained model with its config, version, data, history and calibration: a model card
    (``deeprc show-model``).

    The ids of the repertoires it was trained and validated on let ``deeprc predict`` refuse to
    score them as a test set. ``data`` says what it was trained on; ``cross_validation``, for a
    final model, the cross-validated metrics of its recipe.
    """
    save_torch(
        {
            "format": MODEL_FORMAT,
            "model_state": model_state,
            "experiment": experiment,
            "deeprc_version": __version__,
            "store_fingerprint": store_fingerprint,
            "train_ids": list(train_ids),
            "validation_ids": list(validation_ids),
            "steps": steps,
            "history": history,
            "calibration": calibration,
            "genes": gene_names,  # the V and J vocabularies of a model that reads genes
            "evidence": list(evidence),  # fitted providers of deeprc.evidence, if any
            "data": data,
            "cross_validation": cross_validation,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        Path(path),
    )


def _load_saved(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist; train one with deeprc train")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (any failure to parse means: not our model file)
        raise InputError(
            f"{path} is not a deeprc model file or is truncated ({type(exc).__name__}); give "
            "a model written by deeprc train"
        ) from None
    kind = saved.get("format") if isinstance(saved, dict) else None
    if kind == CHECKPOINT_FORMAT:
        raise InputError(
            f"{path} is a training checkpoint, not a model; give the model file that deeprc "
            "train writes at --out (the checkpoint lives in <model>.work/)"
        )
    if kind != MODEL_FORMAT:
        raise InputError(
            f"{path} is not a deeprc model file (no '{MODEL_FORMAT}' format mark; models of "
            "deeprc before 0.2 lack it: train it again)"
        )
    return saved


def load_model(path: Path) -> tuple[DeepRC, dict]:
    """A trained model (best validation state, in eval mode) and its saved metadata."""
    saved = _load_saved(path)
    cfg = build(ModelConfig, saved["experiment"]["model"], f"{path}: model")
    model = build_model(cfg, gene_names=saved.get("genes"))
    try:
        model.evidence = load_evidence(saved.get("evidence") or [])
    except TypeError:
        raise InputError(
            f"{path}: its evidence was saved by an older deeprc (before cross-fitted evidence, "
            "or with clonotype keys before hashes); "
            "train it again"
        ) from None
    try:
        model.load_state_dict(saved["model_state"])
    except RuntimeError as exc:
        raise InputError(f"{path}: the weights do not fit the model's config ({exc})") from None
    model.eval()
    return model, saved


def model_card(path: Path, saved: dict | None = None) -> dict:
    """What a model file says about itself (``deeprc show-model``): what it was trained on, the
    recipe, training and calibration, and for a final model its recipe's cross-validation.
    ``saved``: the file's contents when already loaded (:func:`load_model`)."""
    saved = saved if saved is not None else _load_saved(path)
    best = max(saved["history"], key=lambda h: (h["val_auc"], -h["val_loss"]), default={})
    return {
        "model": str(path),
        "deeprc_version": saved.get("deeprc_version"),
        "saved_at": saved.get("saved_at"),
        "store_fingerprint": saved["store_fingerprint"],
        "data": saved.get("data"),
        "n_train": len(saved["train_ids"]),
        "n_validation": len(saved["validation_ids"]),
        "experiment": saved["experiment"],
        "genes": {k: len(v) - 1 for k, v in (saved.get("genes") or {}).items()},
        "evidence": [e["kind"] for e in saved.get("evidence") or []],
        "steps": saved["steps"],
        "best_validation": {k: best[k] for k in ("step", "val_auc", "val_loss") if k in best},
        "calibration": saved.get("calibration"),
        "cross_validation": saved.get("cross_validation"),
    }


def select_model(paths: list[Path], out: Path) -> tuple[Path, list[dict]]:
    """Of several runs (seeds) of one fold, copy the model with the best validation AUC to
    ``out``.

    Ties go to the lower validation loss. Returns the chosen path and each run's best
    validation metrics, in the order given.
    """
    scores = []
    for path in paths:
        saved = _load_saved(path)
        best = max(saved["history"], key=lambda h: (h["val_auc"], -h["val_loss"]))
        scores.append({"model": str(path), **{k: best[k] for k in ("step", "val_auc", "val_loss")}})
    chosen = max(range(len(paths)), key=lambda i: (scores[i]["val_auc"], -scores[i]["val_loss"]))
    with atomic_file(Path(out), inputs=paths) as tmp:
        shutil.copyfile(paths[chosen], tmp)
    return Path(paths[chosen]), scores
