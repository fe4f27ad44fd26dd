"""Model files: saved with what it takes to trust them later, loaded so that they cannot run code.

A model file holds tensors and plain values only (loaded with ``torch.load(weights_only=True)``)
and a format mark, so that a training checkpoint, a truncated file or another program's pickle
given as a model is a clear error instead of a traceback or, worse, code run on load. A file
with the mark but without what a model file holds, or whose config does not describe its
weights (which would build a network of any size before the weights are read), is an error too.
The format mark is also what lets ``--overwrite`` replace a model file (deeprc.atomic).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import torch

from deeprc import __version__
from deeprc.atomic import CHECKPOINT_FORMAT, FILE_KINDS, MODEL_FORMAT, atomic_file
from deeprc.config import build
from deeprc.errors import InputError
from deeprc.evidence import load_evidence
from deeprc.model.deeprc import DeepRC, ModelConfig, build_model

__all__ = [
    "CHECKPOINT_FORMAT", "MODEL_FORMAT", "discard_checkpoint", "load_model", "model_card",
    "save_model", "select_model",
]  # fmt: skip


def save_torch(
    obj: dict, path: Path, *, overwrite: bool = False, inputs: Iterable[Path] = ()
) -> None:
    """Any of our torch files (models, checkpoints), written atomically. An existing model file
    is replaced only with ``overwrite`` and only when it is a model file (deeprc.atomic); a
    checkpoint replaces its predecessor, as training goes on, when that is a checkpoint."""
    checkpoint = obj.get("format") == CHECKPOINT_FORMAT
    kind = "checkpoint" if checkpoint else "model"
    with atomic_file(path, kind=kind, overwrite=overwrite or checkpoint, inputs=inputs) as tmp:
        torch.save(obj, tmp)


def discard_checkpoint(path: Path) -> None:
    """Remove a training checkpoint (a run that replaces a finished model starts afresh); a
    file there that is not a deeprc checkpoint is an error, and stays."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink() or not path.is_file() or not FILE_KINDS["checkpoint"].ours(path):
        raise InputError(
            f"{path} is not a deeprc training checkpoint; --overwrite starts training afresh "
            "and would delete it. Move it away, or choose another --out."
        )
    path.unlink()


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
    best_step: int | None = None,
    gene_names: dict[str, list[str]] | None = None,
    evidence: list[dict] = (),
    data: dict | None = None,
    cross_validation: dict | None = None,
    overwrite: bool = False,
    inputs: Iterable[Path] = (),
) -> None:
    """A trained model with its config, version, data, history and calibration: a model card
    (``deeprc show-model``).

    The ids of the repertoires it was trained and validated on let ``deeprc predict`` refuse to
    score them as a test set. ``data`` says what it was trained on; ``cross_validation``, for a
    final model, the cross-validated metrics of its recipe. ``overwrite``, ``inputs``: see
    :func:`deeprc.atomic.atomic_file`.
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
            "best_step": best_step,  # the step whose weights these are
            "calibration": calibration,
            "genes": gene_names,  # the V and J vocabularies of a model that reads genes
            "evidence": list(evidence),  # fitted providers of deeprc.evidence, if any
            "data": data,
            "cross_validation": cross_validation,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        Path(path),
        overwrite=overwrite,
        inputs=inputs,
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
    lacking = [key for key, ok in _CONTENTS.items() if not ok(saved.get(key))]
    if lacking:
        raise InputError(
            f"{path} has the '{MODEL_FORMAT}' format mark but lacks what a model file holds: "
            f"{', '.join(lacking)} missing or malformed; the file is damaged or was not written "
            "by deeprc train: train it again"
        )
    return saved


def _is(kind: type) -> Callable[[object], bool]:
    return lambda value: isinstance(value, kind) and not isinstance(value, bool)


def _history(value: object) -> bool:
    keys = ("step", "val_auc", "val_loss")
    return isinstance(value, list) and all(
        isinstance(h, dict) and all(isinstance(h.get(k), int | float) for k in keys) for h in value
    )


# What the readers of a model file (load_model, model_card, predict, select_model) take from it
_CONTENTS: dict[str, Callable[[object], bool]] = {
    "model_state": lambda v: (
        isinstance(v, dict) and all(isinstance(t, torch.Tensor) for t in v.values())
    ),
    "experiment": lambda v: (
        isinstance(v, dict)
        and isinstance(v.get("model"), dict)
        and isinstance(v.get("train"), dict)
    ),
    "store_fingerprint": _is(str),
    "train_ids": _is(list),
    "validation_ids": _is(list),
    "steps": _is(int),
    "history": _history,
}


def _check_sizes(path: Path, cfg: ModelConfig, saved: dict) -> None:
    """The network the config describes, built without memory (PyTorch's meta device), must
    have the saved weights' names and shapes: a config edited to ask for a huge network is an
    error before anything is allocated."""
    try:
        with torch.device("meta"):
            wanted = build_model(cfg, gene_names=saved.get("genes")).state_dict()
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: its config cannot be built ({exc}); train it again") from None
    weights = saved["model_state"]
    problems = [f"{k} missing" for k in wanted if k not in weights]
    problems += [f"{k} unexpected" for k in weights if k not in wanted]
    problems += [
        f"{k} is {list(weights[k].shape)}, the config makes {list(v.shape)}"
        for k, v in wanted.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if problems:
        raise InputError(
            f"{path}: the saved weights do not fit the model's config ({'; '.join(problems[:3])}"
            f"{' ...' if len(problems) > 3 else ''}); the file is damaged or was edited: "
            "train it again"
        )


def load_model(path: Path) -> tuple[DeepRC, dict]:
    """A trained model (best validation state, in eval mode) and its saved metadata."""
    saved = _load_saved(path)
    cfg = build(ModelConfig, saved["experiment"]["model"], f"{path}: model")
    _check_sizes(path, cfg, saved)
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


def kept_validation(saved: dict) -> dict:
    """The history entry of the step whose weights a model file holds. Training keeps a tie
    in AUC only for a clearly lower loss, so the best-looking entry need not be the kept one;
    files without ``best_step`` (older deeprc) fall back to that entry."""
    history = saved["history"]
    kept = [h for h in history if h.get("step") == saved.get("best_step")]
    if kept:
        return kept[-1]
    return max(history, key=lambda h: (h["val_auc"], -h["val_loss"]), default={})


def model_card(path: Path, saved: dict | None = None) -> dict:
    """What a model file says about itself (``deeprc show-model``): what it was trained on, the
    recipe, training and calibration, and for a final model its recipe's cross-validation.
    ``saved``: the file's contents when already loaded (:func:`load_model`)."""
    saved = saved if saved is not None else _load_saved(path)
    best = kept_validation(saved)
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


def select_model(
    paths: list[Path], out: Path, *, overwrite: bool = False
) -> tuple[Path, list[dict]]:
    """Of several runs (seeds) of one fold, copy the model with the best validation AUC to
    ``out`` (an existing ``out`` only with ``overwrite``: deeprc.atomic).

    Ties go to the lower validation loss. Returns the chosen path and each run's best
    validation metrics, in the order given.
    """
    scores = []
    for path in paths:
        saved = _load_saved(path)
        if not saved["history"]:
            raise InputError(f"{path} records no validation, so it cannot be compared")
        best = kept_validation(saved)
        scores.append({"model": str(path), **{k: best[k] for k in ("step", "val_auc", "val_loss")}})
    chosen = max(range(len(paths)), key=lambda i: (scores[i]["val_auc"], -scores[i]["val_loss"]))
    with atomic_file(Path(out), kind="model", overwrite=overwrite, inputs=paths) as tmp:
        shutil.copyfile(paths[chosen], tmp)
    return Path(paths[chosen]), scores
