"""Model files: saved with what it takes to trust them later, loaded so that they cannot run code.

A model file holds tensors and plain values only (loaded with ``torch.load(weights_only=True)``)
and a format mark, so that a training checkpoint, a truncated file or another program's pickle
given as a model is a clear error instead of a traceback or, worse, code run on load. A file
with the mark but without what a model file holds, or whose config does not describe its
weights (which would build a network of any size before the weights are read), is an error too.
The format mark is also what lets ``--overwrite`` replace a model file (deeprc.atomic).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from deeprc.atomic import CHECKPOINT_FORMAT, FILE_KINDS, MODEL_FORMAT, atomic_file
from deeprc.errors import InputError

__all__ = [
    "CHECKPOINT_FORMAT", "MODEL_FORMAT", "discard_checkpoint", "kept_validation",
    "read_model_file", "save_torch", "validation_score",
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


def read_model_file(path: Path) -> dict:
    """A model file's contents, checked to be one (see the module)."""
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


def validation_score(entry: dict) -> float:
    """What selected a model at this history entry: the heads' validation score (deeprc.heads;
    files of deeprc < 0.8 record the label's AUC alone)."""
    return entry["val_score"] if "val_score" in entry else entry["val_auc"]


def _history(value: object) -> bool:
    def number(entry: dict, key: str) -> bool:
        return isinstance(entry.get(key), int | float)

    return isinstance(value, list) and all(
        isinstance(h, dict)
        and number(h, "step")
        and number(h, "val_loss")
        and (number(h, "val_score") or number(h, "val_auc"))
        for h in value
    )


# What the readers of a model file (deeprc.classifier) take from it
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


def kept_validation(saved: dict) -> dict:
    """The history entry of the step whose weights a model file holds. Training keeps a tie
    in AUC only for a clearly lower loss, so the best-looking entry need not be the kept one;
    files without ``best_step`` (older deeprc) fall back to that entry."""
    history = saved["history"]
    kept = [h for h in history if h.get("step") == saved.get("best_step")]
    if kept:
        return kept[-1]
    return max(history, key=lambda h: (validation_score(h), -h["val_loss"]), default={})
