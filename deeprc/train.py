"""Training: sub-sampled repertoires, Adam, the heads' class-balanced losses (deeprc.heads),
validation scores, checkpoints.

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

from deeprc import __version__
from deeprc.data import Batch, repertoire_batch, repertoire_chunks, sample_sequences
from deeprc.errors import InputError
from deeprc.experiment import TrainConfig
from deeprc.features import FeatureSet, RowInputs
from deeprc.heads import Heads
from deeprc.ingest.options import LABEL
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

    def logits(
        self, network: DeepRC, store: Store, covariates: np.ndarray | None = None
    ) -> torch.Tensor:
        """The network's outputs ``(n, outputs)`` on the sample (one logit: ``(n,)``, as
        DeepRC.forward), with the repertoires' ``covariates`` (rows of the whole store's;
        None: it reads none)."""
        return torch.stack(
            [
                network.score_bag(
                    partial(repertoire_chunks, store, int(r), inputs=inputs, rows=rows),
                    None if covariates is None else torch.from_numpy(covariates[int(r)]),
                )[0]
                for r, rows, inputs in zip(self.repertoires, self.rows, self.inputs, strict=True)
            ]
        ).squeeze(-1)


@torch.no_grad()
def evaluate(
    network: DeepRC,
    store: Store,
    validation: ValidationSample,
    heads: Heads,
    covariates: np.ndarray | None = None,
    values: list[np.ndarray] | None = None,
) -> dict[str, float]:
    """The heads' scores and class-balanced loss on the validation sample
    (:meth:`deeprc.heads.Heads.validation`); ``values``: the heads' of every repertoire of
    the store, when read already."""
    chosen = validation.repertoires
    outputs = validation.logits(network, store, covariates).reshape(len(chosen), -1)
    values = values if values is not None else heads.values(store)
    return heads.validation(outputs, [v[chosen] for v in values])


def _improves(metrics: dict[str, float], best: dict[str, float] | None) -> bool:
    """A higher validation score (for the label alone its AUC), or the same score with a loss
    lower by at least 0.001.

    The tolerance matters once the AUC saturates at 1: the loss then keeps creeping down by
    tiny amounts, and counting that as progress would never stop training early.
    """
    if best is None:
        return True
    if metrics["val_score"] > best["val_score"] + 1e-9:
        return True
    same = abs(metrics["val_score"] - best["val_score"]) <= 1e-9
    return same and metrics["val_loss"] < best["val_loss"] - 1e-3


def top_sequences(
    network: DeepRC, batch: Batch, fraction: float, covariates: torch.Tensor | None = None
) -> Batch:
    """Keep the most-attended ``fraction`` of each repertoire's sequences (no gradient).

    The kept sequences still stand for the whole sample (``bag_size`` of the forward pass).
    """
    with torch.no_grad():
        _, association = network(
            batch.tokens, batch.lengths, inputs=batch.inputs, covariates=covariates
        )
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
    heads: Heads | None = None,
    covariates: np.ndarray | None = None,
) -> TrainingState:
    """Train ``network`` reading ``features`` (fitted on ``train``; none by default), resuming
    from ``out_dir/checkpoint.pt`` when it holds this very run. ``inputs``: the training rows'
    inputs when computed already (:meth:`FeatureSet.training_inputs`, or chosen from them).
    ``heads``: what it predicts (default: the label); ``covariates``: ``(repertoires, m)``
    numbers of every repertoire of the store, for a network that reads them.

    Returns the final state: ``best_state`` (the weights with the best validation score, ties
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

    if heads is None:
        heads = Heads.fitted([{"name": LABEL, "weight": 1.0}], store, train)
    values = heads.values(store)
    # training repertoires read evidence fitted without them (cross-fitted, deeprc.features)
    inputs = inputs if inputs is not None else features.training_inputs(store, train, cfg.seed)
    checked = ValidationSample.draw(features, store, np.asarray(validation), cfg)
    started = time.perf_counter()

    def validate(loss: float | None) -> None:
        """Score the validation repertoires; keep the best state; stop when it goes stale."""
        before = time.perf_counter()
        metrics = evaluate(network, store, checked, heads, covariates, values)
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
        score = {("val_auc" if heads.label_only else "val_score"): f"{metrics['val_score']:.3f}"}
        progress.note(loss=f"{shown:.3f}", **score)
        lines = "".join(json.dumps(h) + "\n" for h in state.history)
        (out_dir / "train_log.jsonl").write_text(lines)

    progress = Progress(
        "train", cfg.max_steps, "steps", initial=state.step,
        early_stop=f"stops early when validation {'AUC' if heads.label_only else 'score'} stops "
        "improving",
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
        beside = None if covariates is None else torch.from_numpy(covariates[batch]).to(device)
        if cfg.top_fraction < 1:
            network.eval()
            sampled = top_sequences(network, sampled, cfg.top_fraction, beside)
        network.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            outputs, _ = network(sampled.tokens, sampled.lengths, bag_size, sampled.inputs, beside)
        loss = heads.loss(outputs.reshape(len(batch), -1), [v[batch] for v in values])
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
