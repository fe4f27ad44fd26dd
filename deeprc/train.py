"""Training: sub-sampled repertoires, Adam, class-balanced loss, validation AUC, checkpoints.

Every random choice (initialisation, repertoire order, sequence sampling, dropout) comes from
generators seeded by the config, and a checkpoint holds their states next to the network and
optimiser. A run killed and started again with the same command resumes from its last
checkpoint and ends with the same network as a run that was never interrupted. The trained
classifier around the network (features, calibration, model file) is deeprc.classifier's.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from deeprc import __version__
from deeprc.data import Batch, repertoire_batch, repertoire_chunks, sample_sequences
from deeprc.errors import InputError
from deeprc.experiment import TrainConfig
from deeprc.features import FeatureSet, RowInputs
from deeprc.model import DeepRC
from deeprc.model_file import CHECKPOINT_FORMAT, save_torch
from deeprc.progress import Progress
from deeprc.store import Store

__all__ = ["TrainingState", "ValidationSample", "fit", "permuted_labels"]


@dataclass
class TrainingState:
    """Where training is: what a checkpoint keeps besides the weights and generators."""

    step: int = 0
    best: dict | None = None  # the best validation metrics so far, with their step
    best_state: dict | None = None  # the network's weights then
    stale: int = 0  # evaluations since the best
    history: list[dict] = field(default_factory=list)  # one entry per evaluation
    order: list[int] = field(default_factory=list)  # this epoch's repertoire order
    position: int = 0  # next place in it
    done: bool = False  # stopped early


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
    rows of each, drawn once from their own seed, with the rows' inputs computed once; the
    selected model is calibrated on the whole repertoires."""

    repertoires: np.ndarray
    rows: list[np.ndarray]
    inputs: list[RowInputs]

    @classmethod
    def draw(
        cls, features: FeatureSet, store: Store, repertoires: np.ndarray, cfg: TrainConfig
    ) -> ValidationSample:
        rng = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(2)[1])
        rows, inputs = [], []
        for r in repertoires.tolist():
            chosen = sample_sequences(store, r, cfg.validation_sequences, rng)
            rows.append(chosen)
            inputs.append(features.inputs_of(store, r).subset(chosen))
        return cls(repertoires, rows, inputs)

    def logits(self, network: DeepRC, store: Store) -> torch.Tensor:
        return torch.tensor(
            [
                network.score_bag(
                    partial(repertoire_chunks, store, int(r), inputs=inputs, rows=rows)
                )[0]
                for r, rows, inputs in zip(self.repertoires, self.rows, self.inputs, strict=True)
            ]
        )


@torch.no_grad()
def evaluate(
    network: DeepRC, store: Store, validation: ValidationSample, weights: torch.Tensor
) -> dict[str, float]:
    """AUC and class-balanced loss on the validation sample."""
    logits = validation.logits(network, store)
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


def top_sequences(network: DeepRC, batch: Batch, fraction: float) -> Batch:
    """Keep the most-attended ``fraction`` of each repertoire's sequences (no gradient).

    The kept sequences still stand for the whole sample (``bag_size`` of the forward pass).
    """
    with torch.no_grad():
        _, association = network(batch.tokens, batch.lengths, inputs=batch.inputs)
    keep = max(1, math.ceil(fraction * batch.tokens.shape[1]))
    return batch.take(association.amax(dim=1).topk(keep, dim=1).indices.sort(dim=1).values)


def fit(
    network: DeepRC,
    store: Store,
    train: np.ndarray,
    validation: np.ndarray,
    cfg: TrainConfig,
    *,
    out_dir: Path,
    experiment: dict,
    features: FeatureSet | None = None,
    inputs: RowInputs | None = None,
    device: torch.device | None = None,
) -> TrainingState:
    """Train ``network`` reading ``features`` (fitted on ``train``; none by default), resuming
    from ``out_dir/checkpoint.pt`` when it holds this very run. ``inputs``: the training rows'
    inputs when computed already (:meth:`FeatureSet.training_inputs`, or chosen from them).

    Returns the final state: ``best_state`` (the weights with the best validation AUC, ties
    broken by a clearly lower validation loss), ``history`` (one dict per evaluation), ``step``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = device or torch.device("cpu")
    features = features if features is not None else FeatureSet([])
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
    network.to(device)
    optimiser = torch.optim.Adam(
        network.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    rng = np.random.default_rng(cfg.seed)
    state = TrainingState()
    if checkpoint_path.exists():
        saved = _load_checkpoint(checkpoint_path)
        if saved["identity"] != identity:
            raise InputError(
                f"{checkpoint_path} belongs to another run (experiment, store or split differ); "
                "remove it or choose another output"
            )
        network.load_state_dict(saved["model_state"])
        optimiser.load_state_dict(saved["optimiser_state"])
        rng.bit_generator.state = saved["numpy_rng"]
        torch.set_rng_state(saved["torch_rng"])
        state = TrainingState(**saved["state"])
        print(f"resuming from {checkpoint_path} at step {state.step}", flush=True)

    def checkpoint() -> None:
        save_torch(
            {
                "format": CHECKPOINT_FORMAT,
                "identity": identity,
                "model_state": network.state_dict(),
                "optimiser_state": optimiser.state_dict(),
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "state": {f.name: getattr(state, f.name) for f in fields(state)},
                "deeprc_version": __version__,
            },
            checkpoint_path,
        )

    labels = store.labels
    # training repertoires read evidence fitted without them (cross-fitted, deeprc.features)
    inputs = inputs if inputs is not None else features.training_inputs(store, train, cfg.seed)
    weights = _class_weights(labels[train]).to(device)
    checked = ValidationSample.draw(features, store, np.asarray(validation), cfg)
    started = time.perf_counter()

    def validate(loss: float | None) -> None:
        """Score the validation repertoires; keep the best state; stop when it goes stale."""
        before = time.perf_counter()
        metrics = evaluate(network, store, checked, weights.cpu())
        record = {"step": state.step, "loss": loss, **metrics}
        record["seconds"] = round(time.perf_counter() - started, 2)
        record["validation_seconds"] = round(time.perf_counter() - before, 2)
        state.history.append(record)
        if _improves(metrics, state.best):
            state.best, state.stale = metrics | {"step": state.step}, 0
            state.best_state = copy.deepcopy(network.state_dict())
        else:
            state.stale += 1
            # a rare motif is found after a plateau of chance-level validation AUC
            state.done = state.stale >= cfg.patience and state.step >= cfg.min_steps
        shown = math.nan if loss is None else loss
        progress.note(loss=f"{shown:.3f}", val_auc=f"{metrics['val_auc']:.3f}")
        lines = "".join(json.dumps(h) + "\n" for h in state.history)
        (out_dir / "train_log.jsonl").write_text(lines)

    progress = Progress(
        "train", cfg.max_steps, "steps", initial=state.step,
        early_stop="stops early when validation AUC stops improving",
    )  # fmt: skip
    if network.starts_as_count and not state.history:
        validate(None)  # the start, a soft burden test (count_on_start), is a candidate
    while not state.done and state.step < cfg.max_steps:
        if state.position + cfg.batch_size > len(state.order):
            state.order, state.position = rng.permutation(train).tolist(), 0
        batch = state.order[state.position : state.position + cfg.batch_size]
        state.position += cfg.batch_size
        rows = [sample_sequences(store, int(r), cfg.n_sequences, rng, cfg.sampling) for r in batch]
        sampled = repertoire_batch(store, rows, inputs).to(device)
        bag_size = (sampled.lengths > 0).sum(dim=1)
        if cfg.top_fraction < 1:
            network.eval()
            sampled = top_sequences(network, sampled, cfg.top_fraction)
        network.train()
        y = torch.from_numpy(labels[batch]).float().to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits, _ = network(sampled.tokens, sampled.lengths, bag_size, sampled.inputs)
        loss = F.binary_cross_entropy_with_logits(logits.float(), y, weight=weights[y.long()])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        state.step += 1
        progress.note(loss=f"{loss.item():.3f}")
        progress.update()
        if state.step % cfg.eval_every == 0 or state.step == cfg.max_steps:
            validate(loss.item())
        if state.step % cfg.checkpoint_every == 0:
            checkpoint()
    progress.close()
    checkpoint()
    return state


def permuted_labels(labels: np.ndarray, roles: dict[str, np.ndarray], seed: int) -> np.ndarray:
    """``labels`` shuffled within the training and within the validation repertoires (each
    keeps its class balance); test and other repertoires keep theirs."""
    rng = np.random.default_rng(seed)
    shuffled = np.array(labels, copy=True)
    for role in ("train", "validation"):
        members = np.asarray(roles[role])
        shuffled[members] = rng.permutation(shuffled[members])
    return shuffled
