"""Training: sub-sampled repertoires, Adam, class-balanced loss, validation AUC, checkpoints.

Every random choice (initialisation, repertoire order, sequence sampling, dropout) comes from
generators seeded by the config, and a checkpoint holds their states next to the model and
optimiser. A run killed and started again with the same command resumes from its last checkpoint
and ends with the same model as a run that was never interrupted.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from deeprc import __version__
from deeprc.atomic import check_file_output, locked
from deeprc.calibration import Platt, small_calibration_note
from deeprc.data import (
    gene_map,
    model_inputs,
    repertoire_batch,
    repertoire_chunks,
    sample_sequences,
    score_repertoire,
)
from deeprc.errors import InputError
from deeprc.evidence import fit_evidence, saved_evidence, training_features
from deeprc.model import DeepRC, ModelConfig, build_model
from deeprc.model.files import CHECKPOINT_FORMAT, discard_checkpoint, save_model, save_torch
from deeprc.progress import Progress
from deeprc.store import Store

__all__ = [
    "Experiment",
    "TrainConfig",
    "calibrate",
    "cross_validation_card",
    "fit",
    "permuted_labels",
    "train_fold",
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation; ``top_fraction`` < 1 back-propagates only through the most-attended
    sequences of each sampled repertoire (chosen without gradient), as the original DeepRC does."""

    n_sequences: int = 10_000
    batch_size: int = 16
    sampling: Literal["uniform", "count"] = "uniform"
    top_fraction: float = 0.1
    learning_rate: float = 1e-2
    weight_decay: float = 0.0
    max_steps: int = 2000
    eval_every: int = 100
    # each evaluation scores this many sequences of each validation repertoire (a fixed, seeded
    # sample; all of a smaller one): its cost stays flat in the repertoire size
    validation_sequences: int = 50_000
    patience: int = 2
    min_steps: int = 0
    checkpoint_every: int = 100
    seed: int = 0


@dataclass(frozen=True)
class Experiment:
    """One ``configs/experiments/*.yaml`` file."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def _load_checkpoint(path: Path) -> dict:
    """A checkpoint to resume from; a damaged one is an error that says how to start again."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("no checkpoint format mark")
    except Exception as exc:  # noqa: BLE001 (any failure to parse means: unusable)
        raise InputError(
            f"checkpoint {path} is damaged or truncated ({type(exc).__name__}); delete {path} "
            "to start this training again from step 0"
        ) from None
    return saved


def _class_weights(labels: np.ndarray) -> torch.Tensor:
    """Per-class loss weights that make both classes count equally."""
    counts = np.bincount(labels, minlength=2)
    return torch.tensor(len(labels) / (2 * np.maximum(counts, 1)), dtype=torch.float32)


@dataclass
class ValidationSample:
    """The validation repertoires as training evaluates them: up to ``validation_sequences``
    rows of each, drawn once from their own seed, with the rows' evidence computed once; the
    selected model is calibrated on the whole repertoires."""

    repertoires: np.ndarray
    rows: list[np.ndarray]
    evidence: list[np.ndarray | None]

    @classmethod
    def draw(cls, model: DeepRC, store: Store, repertoires: np.ndarray, cfg: TrainConfig):
        rng = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(2)[1])
        rows, evidence = [], []
        for r in repertoires.tolist():
            chosen = sample_sequences(store, r, cfg.validation_sequences, rng)
            found = model_inputs(model, store, r)[1]
            rows.append(chosen)
            evidence.append(None if found is None else found[chosen - int(store.offsets[r])])
        return cls(repertoires, rows, evidence)

    def logits(self, model: DeepRC, store: Store) -> torch.Tensor:
        table = gene_map(model, store)
        return torch.tensor(
            [
                model.score_bag(
                    partial(repertoire_chunks, store, int(r), table=table, evidence=e, rows=rows)
                )[0]
                for r, rows, e in zip(self.repertoires, self.rows, self.evidence, strict=True)
            ]
        )


@torch.no_grad()
def evaluate(
    model: DeepRC, store: Store, validation: ValidationSample, weights: torch.Tensor
) -> dict[str, float]:
    """AUC and class-balanced loss on the validation sample."""
    logits = validation.logits(model, store)
    y = torch.from_numpy(store.labels[validation.repertoires]).float()
    loss = F.binary_cross_entropy_with_logits(logits, y, weight=weights[y.long()]).item()
    auc = roc_auc_score(y.numpy(), logits.numpy()) if len(set(y.tolist())) == 2 else math.nan
    return {"val_auc": float(auc), "val_loss": loss}


def _improves(metrics: dict[str, float], best: dict[str, float] | None) -> bool:
    """Higher validation AUC, or the same AUC with a loss lower by at least 0.001.

    The tolerance matters once the AUC saturates at 1: the loss then keeps creeping down by
    tiny amounts, and counting that as progress would never stop training early.
    """
    if best is None:
        return True
    if metrics["val_auc"] > best["val_auc"] + 1e-9:
        return True
    same_auc = abs(metrics["val_auc"] - best["val_auc"]) <= 1e-9
    return same_auc and metrics["val_loss"] < best["val_loss"] - 1e-3


def _top_sequences(
    model: DeepRC,
    tokens: torch.Tensor,
    lengths: torch.Tensor,
    fraction: float,
    genes: torch.Tensor | None = None,
    evidence: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Keep the most-attended ``fraction`` of each repertoire's sequences (no gradient).

    The kept sequences still stand for the whole sample (``bag_size`` of the forward pass).
    """
    with torch.no_grad():
        _, association = model(tokens, lengths, genes=genes, evidence=evidence)
    keep = max(1, math.ceil(fraction * tokens.shape[1]))
    top = association.amax(dim=1).topk(keep, dim=1).indices.sort(dim=1).values

    def rows(x: torch.Tensor | None) -> torch.Tensor | None:
        if x is None:
            return None
        return x.gather(1, top.view(*top.shape, *[1] * (x.dim() - 2)).expand(-1, -1, *x.shape[2:]))

    return rows(tokens), rows(lengths), rows(genes), rows(evidence)


def fit(
    model: DeepRC,
    store: Store,
    train: np.ndarray,
    validation: np.ndarray,
    cfg: TrainConfig,
    *,
    out_dir: Path,
    experiment: dict,
    device: torch.device | None = None,
) -> dict:
    """Train, resuming from ``out_dir/checkpoint.pt`` when it holds this very run.

    Returns the final state: ``best_state`` (the model with the best validation AUC, ties
    broken by a clearly lower validation loss), ``history`` (one dict per evaluation), ``step``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = device or torch.device("cpu")
    checkpoint_path = out_dir / "checkpoint.pt"
    identity = {
        "experiment": experiment,
        "store": store.manifest["fingerprint"],
        "train": train.tolist(),
        "validation": validation.tolist(),
        # shuffled labels (a negative control) keep the store's fingerprint: a run on them
        # must not resume one on the true labels, nor the other way round
        "labels": store.labels[np.concatenate([train, validation])].tolist(),
    }
    model.to(device)
    optimiser = torch.optim.Adam(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    rng = np.random.default_rng(cfg.seed)
    state = {"step": 0, "best": None, "best_state": None, "stale": 0, "history": []}
    state |= {"order": np.array([], dtype=np.int64), "position": 0, "done": False}
    if checkpoint_path.exists():
        saved = _load_checkpoint(checkpoint_path)
        if saved["identity"] != identity:
            raise InputError(
                f"{checkpoint_path} belongs to another run (experiment, store or split differ); "
                "remove it or choose another output"
            )
        model.load_state_dict(saved["model_state"])
        optimiser.load_state_dict(saved["optimiser_state"])
        rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        state = saved["state"] | {"order": np.array(saved["state"]["order"], dtype=np.int64)}
        print(f"resuming from {checkpoint_path} at step {state['step']}", flush=True)

    def checkpoint() -> None:
        save_torch(
            {
                "format": CHECKPOINT_FORMAT,
                "identity": identity,
                "model_state": model.state_dict(),
                "optimiser_state": optimiser.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "state": state | {"order": state["order"].tolist()},
                "deeprc_version": __version__,
            },
            checkpoint_path,
        )

    labels = store.labels
    table = gene_map(model, store)
    # training repertoires read evidence fitted without them (cross-fitted, deeprc.evidence)
    evidence = (
        training_features(model.evidence, store, train, cfg.seed) if model.evidence_size else None
    )
    weights = _class_weights(labels[train]).to(device)
    checked = ValidationSample.draw(model, store, np.asarray(validation), cfg)
    started = time.perf_counter()

    def validate(loss: float | None) -> None:
        """Score the validation repertoires; keep the best state; stop when it goes stale."""
        before = time.perf_counter()
        metrics = evaluate(model, store, checked, weights.cpu())
        record = {"step": state["step"], "loss": loss, **metrics}
        record["seconds"] = round(time.perf_counter() - started, 2)
        record["validation_seconds"] = round(time.perf_counter() - before, 2)
        state["history"].append(record)
        if _improves(metrics, state["best"]):
            state["best"], state["stale"] = metrics | {"step": state["step"]}, 0
            state["best_state"] = copy.deepcopy(model.state_dict())
        else:
            state["stale"] += 1
            # a rare motif is found after a plateau of chance-level validation AUC
            state["done"] = state["stale"] >= cfg.patience and state["step"] >= cfg.min_steps
        shown = math.nan if loss is None else loss
        progress.note(loss=f"{shown:.3f}", val_auc=f"{metrics['val_auc']:.3f}")
        lines = "".join(json.dumps(h) + "\n" for h in state["history"])
        (out_dir / "train_log.jsonl").write_text(lines)

    progress = Progress(
        "train", cfg.max_steps, "steps", initial=state["step"],
        early_stop="stops early when validation AUC stops improving",
    )  # fmt: skip
    if model.starts_as_count and not state["history"]:
        validate(None)  # the start, a soft burden test (count_on_start), is a candidate
    while not state["done"] and state["step"] < cfg.max_steps:
        if state["position"] + cfg.batch_size > len(state["order"]):
            state["order"], state["position"] = rng.permutation(train), 0
        batch = state["order"][state["position"] : state["position"] + cfg.batch_size]
        state["position"] += cfg.batch_size
        rows = [sample_sequences(store, int(r), cfg.n_sequences, rng, cfg.sampling) for r in batch]
        tokens, lengths, genes, found = (
            t.to(device) if t is not None else None
            for t in repertoire_batch(store, rows, table, evidence)
        )
        bag_size = (lengths > 0).sum(dim=1)
        if cfg.top_fraction < 1:
            model.eval()
            tokens, lengths, genes, found = _top_sequences(
                model, tokens, lengths, cfg.top_fraction, genes, found
            )
        model.train()
        y = torch.from_numpy(labels[batch]).float().to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits, _ = model(tokens, lengths, bag_size, genes, found)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y, weight=weights[y.long()])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        state["step"] += 1
        progress.note(loss=f"{loss.item():.3f}")
        progress.update()
        if state["step"] % cfg.eval_every == 0 or state["step"] == cfg.max_steps:
            validate(loss.item())
        if state["step"] % cfg.checkpoint_every == 0:
            checkpoint()
    progress.close()
    checkpoint()
    return state


def calibrate(model: DeepRC, store: Store, repertoires: np.ndarray) -> dict:
    """Fit the model's map to calibrated log-odds on held-out repertoires (Platt scaling of
    their whole-repertoire logits); with one class there, the logits stay as they are."""
    model.calibrate(1.0, 0.0)
    logits = np.array([score_repertoire(model, store, int(r))[0] for r in repertoires])
    y = store.labels[repertoires]
    if len(np.unique(y)) < 2:
        return {"slope": 1.0, "intercept": 0.0, "n_repertoires": len(y), "fitted": False}
    platt = Platt().fit(logits, y)
    model.calibrate(platt.slope, platt.intercept)
    calibration = {"slope": platt.slope, "intercept": platt.intercept, "n_repertoires": len(y),
                   "fitted": True}  # fmt: skip
    if note := small_calibration_note(y):
        calibration["note"] = note
    return calibration


def _same_recipe(a: dict, b: dict) -> bool:
    """Two experiments alike but for the training seed (the workflow trains several)."""

    def recipe(e: dict) -> dict:
        e = json.loads(json.dumps(e))  # as read back from JSON: tuples are lists
        return {**e, "train": {k: v for k, v in e.get("train", {}).items() if k != "seed"}}

    return recipe(a) == recipe(b)


def cross_validation_card(metrics: Path, store: Store, experiment: Experiment) -> dict:
    """The cross-validated metrics (``deeprc evaluate``'s metrics.json) of the recipe a final
    model is trained with, for its model file; refused when they come from another store or
    another recipe, as they would then say nothing about this model."""
    metrics = Path(metrics)
    try:
        result = json.loads(metrics.read_text())
        folds = [f.get("provenance") or {} for f in result["folds"]]
        summary = result["summary"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"--cv-metrics {metrics} is not a metrics.json of deeprc evaluate ({exc})"
        ) from None
    fingerprint = store.manifest["fingerprint"]
    if any(f.get("model_store_fingerprint") != fingerprint for f in folds):
        raise InputError(
            f"--cv-metrics {metrics}: its folds' models were not trained on --store {store.path}"
        )
    if any(not _same_recipe(f.get("experiment") or {}, asdict(experiment)) for f in folds):
        raise InputError(
            f"--cv-metrics {metrics}: its folds were trained with another experiment than "
            "--experiment; cross-validate this recipe, or leave --cv-metrics out"
        )
    return {"metrics": str(metrics), "n_folds": len(folds), "summary": summary}


def permuted_labels(labels: np.ndarray, roles: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """``labels`` shuffled within the training and within the validation repertoires (each
    keeps its class balance); test and other repertoires keep theirs."""
    rng = np.random.default_rng(seed)
    shuffled = np.array(labels, copy=True)
    for role in ("train", "validation"):
        members = np.asarray(roles[role])
        shuffled[members] = rng.permutation(shuffled[members])
    return shuffled


def _data_card(store: Store, roles: dict[str, np.ndarray]) -> dict:
    """What a model was trained on, as its model file shows it (deeprc show-model)."""
    labels = store.labels
    manifest = store.manifest
    return {
        "store": str(store.path),
        "n_repertoires_in_store": len(labels),
        "label_column": manifest.get("label_column"),
        "positive_label": manifest.get("positive_label"),
        "classes": manifest.get("classes"),
        "alphabet": manifest["alphabet"],
        **{
            f"n_{role}_{name}": int((labels[members] == y).sum())
            for role, members in roles.items()
            if role != "test"
            for name, y in (("positive", 1), ("negative", 0))
        },
    }


def train_fold(
    experiment: Experiment,
    store: Store,
    roles: dict[str, np.ndarray],
    out: Path,
    *,
    device: torch.device | None = None,
    cross_validation: dict | None = None,
    permute_labels: int | None = None,
    overwrite: bool = False,
    inputs: tuple[Path, ...] = (),
) -> dict:
    """Train on a fold's ``train`` repertoires, select by its ``validation`` ones, calibrate on
    them and save the best model to ``out`` (checkpoints in ``<out>.work``, which a restarted
    run resumes from). The model file and its work directory are locked: one run at a time.
    ``cross_validation`` (:func:`cross_validation_card`) goes into a final model's file.
    ``permute_labels`` (a seed) makes a negative control: the labels are shuffled within the
    training and within the validation repertoires, so nothing true is left to learn.
    An existing ``out`` is refused before training unless ``overwrite`` (and it is a model
    file, not one of ``inputs``); training then starts afresh, not from its checkpoint.
    Returns the state."""
    out = Path(out)
    inputs = (store.path, *inputs)
    check_file_output(out, kind="model", overwrite=overwrite, inputs=inputs)
    if permute_labels is not None:
        store = store.with_labels(permuted_labels(store.labels, roles, permute_labels))
    model = build_model(experiment.model, experiment.train.seed, store.gene_names)
    model.evidence = fit_evidence(experiment.model, store, roles["train"])
    with locked(out):
        if overwrite and out.exists():  # the finished run's checkpoint would only resume it
            discard_checkpoint(out.with_suffix(".work") / "checkpoint.pt")
        state = fit(
            model, store, roles["train"], roles["validation"], experiment.train,
            out_dir=out.with_suffix(".work"), experiment=asdict(experiment), device=device,
        )  # fmt: skip
        model.load_state_dict(state["best_state"])
        calibration = calibrate(model, store, roles["validation"])
        # test and new repertoires read evidence from every repertoire the model was fitted
        # with, as the baselines fit on training and validation repertoires alike; fitting it
        # on validation repertoires before selection gives their labels away to the model
        # (docs/model.md)
        held_in = np.concatenate([roles["train"], roles["validation"]])
        model.evidence = [p.refit(store, held_in) for p in model.evidence]
        ids = store.repertoires["repertoire_id"].to_numpy().astype(str)
        save_model(
            out, model.state_dict(), experiment=asdict(experiment), calibration=calibration,
            gene_names=model.genes.names if model.genes is not None else None,
            evidence=saved_evidence(model.evidence),
            store_fingerprint=store.manifest["fingerprint"], train_ids=ids[roles["train"]].tolist(),
            validation_ids=ids[roles["validation"]].tolist(), steps=state["step"],
            history=state["history"], best_step=state["best"].get("step"),
            data=_data_card(store, roles) | {"permuted_labels_seed": permute_labels},
            cross_validation=cross_validation, overwrite=overwrite, inputs=inputs,
        )  # fmt: skip
    return state
