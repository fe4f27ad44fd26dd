"""The targets one network predicts: one head (a slice of the output layer) per target, a logit,
one logit per class or a value, over the shared attention pooling (deeprc.model). An experiment's
``targets:`` names them with their weights in the loss; the training repertoires fix what each
head needs besides (a number's mean and sd, class weights), and a model file keeps it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from sklearn.metrics import roc_auc_score

from deeprc.calibration import Platt
from deeprc.errors import InputError
from deeprc.store import Store
from deeprc.targets import LABEL, Target, categorical_metrics, prediction_table

__all__ = ["Head", "Heads", "concordance"]


def concordance(y: np.ndarray, prediction: np.ndarray) -> float:
    """The share of pairs of repertoires that ``prediction`` orders as ``y`` does, (1 + Kendall's
    tau-b) / 2: a number's ROC AUC (0.5 is chance, 1 every pair in order); NaN when either is
    constant."""
    if len(y) < 2 or np.ptp(y) == 0 or np.ptp(prediction) == 0:
        return math.nan
    return (1 + float(kendalltau(y, prediction).statistic)) / 2


@dataclass(frozen=True)
class Head:
    """One target the network predicts: its ``target``, its ``weight`` in the training loss, and
    what the training repertoires fix: a numeric target's ``mean`` and ``sd`` (the network
    predicts the standardised value) or, for a binary or categorical one, ``class_weights``
    that make every class count equally in the loss; and what the validation repertoires fix,
    ``calibration`` (:meth:`calibrated`): a scale and one shift per output."""

    target: Target
    weight: float = 1.0
    mean: float = 0.0
    sd: float = 1.0
    class_weights: tuple[float, ...] = ()
    calibration: tuple[float, ...] = ()

    @property
    def size(self) -> int:
        """Its outputs: a logit, one logit per class, or a value."""
        return len(self.target.classes) if self.target.kind == "categorical" else 1

    def to_dict(self) -> dict:
        return {"target": self.target.to_dict(), "weight": self.weight, "mean": self.mean,
                "sd": self.sd, "class_weights": list(self.class_weights),
                "calibration": list(self.calibration)}  # fmt: skip

    @classmethod
    def from_dict(cls, saved: dict) -> Head:
        target = saved["target"] | {"classes": tuple(saved["target"]["classes"])}
        return cls(Target(**target), saved["weight"], saved["mean"], saved["sd"],
                   tuple(saved["class_weights"]), tuple(saved["calibration"]))  # fmt: skip

    def calibrated(self, outputs: np.ndarray, y: np.ndarray) -> Head:
        """This head with the map of its whole-repertoire ``outputs`` ``(n, size)`` that fits
        the held-out ``y``: a network trained on sampled sequences scores whole repertoires
        on another scale, so its ranks hold but not its probabilities or values. A binary
        head's is Platt scaling; a numeric head's the least-squares line of the standardised
        value on the output; a categorical head's one scale of its logits and a shift per
        class, by maximum likelihood. The scale stays positive, so the ranking is the
        network's. Too few known values (or a class missing) leave it uncalibrated."""
        known = Target.known(y)
        outputs, y = np.asarray(outputs, dtype=np.float64)[known], y[known]
        if self.target.kind == "numeric":
            if len(y) < 3 or np.ptp(outputs[:, 0]) == 0:
                return replace(self, calibration=())
            x, standard = outputs[:, 0], (y - self.mean) / self.sd
            slope = max(float(np.cov(x, standard, bias=True)[0, 1] / x.var()), 0.0)
            intercept = float(standard.mean() - slope * x.mean())
            return replace(self, calibration=(slope, intercept))
        n_classes = max(self.size, 2)
        if len(np.unique(y)) < n_classes:
            return replace(self, calibration=())
        if self.target.kind == "binary":
            platt = Platt().fit(outputs[:, 0], y)
            return replace(self, calibration=(platt.slope, platt.intercept))
        return replace(self, calibration=_scaled_softmax(outputs, y.astype(np.int64)))

    def apply(self, outputs: np.ndarray) -> np.ndarray:
        """``outputs`` ``(n, size)`` mapped by the :meth:`calibrated` map (if any)."""
        if not self.calibration:
            return outputs
        scale, shifts = self.calibration[0], np.array(self.calibration[1:])
        return scale * outputs + shifts

    def loss(self, outputs: torch.Tensor, y: np.ndarray) -> torch.Tensor | None:
        """Its loss on a batch: ``outputs`` ``(n, size)``, ``y`` its :meth:`Target.values`
        (missing ones left out; None when none is known): class-weighted cross-entropy, or the
        squared error of the standardised value."""
        known = Target.known(y)
        if not known.any():
            return None
        outputs = outputs[torch.from_numpy(known).to(outputs.device)].float()
        y = torch.from_numpy(y[known]).to(outputs.device)
        if self.target.kind == "numeric":
            return torch.mean((outputs[:, 0] - (y.float() - self.mean) / self.sd) ** 2)
        weights = torch.tensor(self.class_weights, dtype=torch.float32, device=outputs.device)
        if self.target.kind == "binary":
            return F.binary_cross_entropy_with_logits(
                outputs[:, 0], y.float(), weight=weights[y.long()]
            )
        return F.cross_entropy(outputs, y.long(), weight=weights)

    def score(self, outputs: np.ndarray, y: np.ndarray) -> float:
        """How well ``outputs`` ``(n, size)`` rank the known ``y``, on ROC AUC's scale: the
        AUC, the macro one-vs-rest AUC, or a number's :func:`concordance`."""
        known = Target.known(y)
        outputs, y = outputs[known], y[known]
        if self.target.kind == "numeric":
            return concordance(y, outputs[:, 0])
        if self.target.kind == "binary":
            return float(roc_auc_score(y, outputs[:, 0])) if len(set(y.tolist())) == 2 else math.nan
        return categorical_metrics(y, _softmax(outputs))["roc_auc_macro"]

    def table(self, outputs: np.ndarray, y: np.ndarray) -> pd.DataFrame:
        """Its predictions as deeprc.outputs writes them (``repertoire_id`` not included),
        calibrated (:meth:`apply`)."""
        outputs = self.apply(outputs)
        if self.target.kind == "numeric":
            return prediction_table(self.target, y, outputs[:, 0] * self.sd + self.mean)
        if self.target.kind == "binary":
            return prediction_table(self.target, y, outputs[:, 0])
        return prediction_table(self.target, y, _softmax(outputs))


def _scaled_softmax(logits: np.ndarray, y: np.ndarray) -> tuple[float, ...]:
    """``(scale, shift per class)`` of ``softmax(scale * logits + shift)`` fitted to the
    classes ``y`` by maximum likelihood, the shifts lightly held to 0 (a class of few
    validation repertoires would otherwise take any shift)."""
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    n, n_classes = logits.shape

    def loss(params: np.ndarray) -> float:
        mapped = np.exp(params[0]) * logits + params[1:]
        return -float(log_softmax(mapped, axis=1)[np.arange(n), y].sum()) + 1e-2 * float(
            np.sum(params[1:] ** 2)
        )

    fitted = minimize(loss, np.zeros(n_classes + 1), method="L-BFGS-B").x
    return (float(np.exp(fitted[0])), *map(float, fitted[1:]))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class Heads:
    """The targets one network predicts (an experiment's ``targets:``), as the slices of its
    output: trained jointly, each head's loss weighed by its ``weight``, missing values left
    out. Without ``targets:`` they are the store's label alone, and training, selection and
    outputs are exactly those of a one-logit network."""

    def __init__(self, heads: Sequence[Head]) -> None:
        self.heads = tuple(heads)
        ends = np.cumsum([0, *(h.size for h in self.heads)]).tolist()
        self.slices = [slice(a, b) for a, b in zip(ends[:-1], ends[1:], strict=True)]

    @classmethod
    def fitted(cls, specs: Sequence[dict], store: Store, train: np.ndarray) -> Heads:
        """``specs`` (``{name, weight}`` each) of ``store``'s targets, their scaling and class
        weights from the ``train`` repertoires."""
        heads = []
        for spec in specs:
            target = Target.of(store, spec["name"])
            values = target.values(store)[np.asarray(train, dtype=np.int64)]
            values = values[Target.known(values)]
            if len(values) == 0:
                raise InputError(
                    f"no training repertoire of store {store.path} has a known {target.name!r}; "
                    "a head needs some to learn from"
                )
            if target.kind == "numeric":
                sd = float(values.std()) or 1.0
                heads.append(Head(target, spec["weight"], float(values.mean()), sd))
                continue
            n_classes = 2 if target.kind == "binary" else len(target.classes)
            counts = np.bincount(values, minlength=n_classes)
            weights = len(values) / (n_classes * np.maximum(counts, 1))
            heads.append(Head(target, spec["weight"], class_weights=tuple(weights.tolist())))
        return cls(heads)

    @classmethod
    def label(cls) -> Heads:
        """The label's one logit, as a network predicts it that names no targets (the class
        weights only matter in training, where :meth:`fitted` sets them)."""
        return cls([Head(Target(LABEL, "binary"), class_weights=(1.0, 1.0))])

    @classmethod
    def from_file(cls, saved: list[dict] | None) -> Heads:
        """The heads a model file records (the label's in one of deeprc < 0.8)."""
        return cls.label() if saved is None else cls([Head.from_dict(h) for h in saved])

    def to_file(self) -> list[dict]:
        return [h.to_dict() for h in self.heads]

    @property
    def size(self) -> int:
        return self.slices[-1].stop

    @property
    def label_only(self) -> bool:
        """The store's label alone: a one-logit network, as deeprc before several targets."""
        return len(self.heads) == 1 and self.heads[0].target.name == LABEL

    def values(self, store: Store) -> list[np.ndarray]:
        """Each head's :meth:`Target.values` of every repertoire of ``store``."""
        return [h.target.values(store) for h in self.heads]

    def loss(self, outputs: torch.Tensor, values: Sequence[np.ndarray]) -> torch.Tensor:
        """The weighed sum of the heads' losses (:meth:`Head.loss`) on ``outputs``
        ``(n, size)``, ``values`` each head's of these ``n`` repertoires."""
        total = outputs.new_zeros((), dtype=torch.float32)
        for head, part, y in zip(self.heads, self.slices, values, strict=True):
            loss = head.loss(outputs[:, part], np.asarray(y))
            if loss is not None:
                total = total + head.weight * loss
        return total

    def validation(self, outputs: torch.Tensor, values: Sequence[np.ndarray]) -> dict[str, float]:
        """What model selection reads: ``val_loss`` (:meth:`loss`) and ``val_score``, the mean
        of the heads' scores on ROC AUC's scale (:meth:`Head.score`; for the label alone its
        AUC, also written ``val_auc``), with each head's as ``val:<name>``."""
        with torch.no_grad():
            loss = self.loss(outputs, values).item()
        scores = {
            f"val:{h.target.name}": h.score(outputs[:, part].numpy(), np.asarray(y))
            for h, part, y in zip(self.heads, self.slices, values, strict=True)
        }
        present = [s for s in scores.values() if not math.isnan(s)]
        score = float(np.mean(present)) if present else math.nan
        if self.label_only:
            return {"val_auc": score, "val_loss": loss, "val_score": score}
        return {"val_score": score, "val_loss": loss, **scores}

    def calibrated(self, outputs: np.ndarray, store: Store, repertoires: np.ndarray) -> Heads:
        """Each head, but a binary first one (the classifier's calibration, as for a model of
        the label alone), calibrated on ``repertoires`` (:meth:`Head.calibrated`); ``outputs``
        ``(n, size)`` their whole-repertoire outputs."""
        chosen = np.asarray(repertoires, dtype=np.int64)
        heads = [
            head if i == 0 and head.target.kind == "binary"
            else head.calibrated(outputs[:, part], head.target.values(store)[chosen])
            for i, (head, part) in enumerate(zip(self.heads, self.slices, strict=True))
        ]  # fmt: skip
        return Heads(heads)

    def tables(self, outputs: np.ndarray, store: Store, repertoires: np.ndarray) -> dict:
        """Each head's predictions of ``repertoires`` (``outputs`` ``(n, size)``, the first
        head's calibrated), by target name, with ``repertoire_id`` first."""
        chosen = np.asarray(repertoires, dtype=np.int64)
        ids = store.repertoires["repertoire_id"].to_numpy()[chosen]
        found = {}
        for head, part in zip(self.heads, self.slices, strict=True):
            table = head.table(outputs[:, part], head.target.values(store)[chosen])
            table.insert(0, "repertoire_id", ids)
            found[head.target.name] = table
        return found
