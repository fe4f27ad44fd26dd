"""An experiment: the network's architecture, the evidence it reads and how it is trained (one
``configs/experiments/*.yaml`` file, or the packaged default)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from deeprc.errors import InputError
from deeprc.features import evidence_options
from deeprc.ingest.options import LABEL
from deeprc.model import ModelConfig

__all__ = ["ALL_EVIDENCE", "LEARNED_STEPS", "Experiment", "TrainConfig", "same_recipe"]


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
    # null: 0 where the evidence is weighed (that start is the model: on cohorts drawn at
    # random, training from it lost more often than it won; docs/model.md), else LEARNED_STEPS
    max_steps: int | None = None
    eval_every: int = 100
    # each evaluation scores this many sequences of each validation repertoire (a fixed, seeded
    # sample; all of a smaller one): its cost stays flat in the repertoire size
    validation_sequences: int = 50_000
    patience: int = 2
    min_steps: int = 0
    checkpoint_every: int = 100
    seed: int = 0


# the keys of the model: block before encoders and evidence had their own entries (deeprc 0.2)
_ENCODER_KEYS = {
    "n_kernels": "n_kernels",
    "kernel_size": "kernel_size",
    "embedding": "implementation",
}
_EVIDENCE_KEYS = ("clonotype_evidence", "burden_evidence", "kmer_evidence")

LEARNED_STEPS = 2000  # train.max_steps of a network that does not weigh its evidence

# Every kind of evidence a signal may take (docs/model.md, "Evidence weighed inside the fold"):
# rate ratios of 3-mers, 4-mers and gapped k-mers; the k-mer regressions' weights (what the
# kmer*_logistic baselines know); clonotypes and gapped k-mers that Fisher's test calls
# associated (what the burden baselines count).
ALL_EVIDENCE = (
    {"name": "kmer", "k": 3},
    {"name": "kmer", "k": 4},
    {"name": "gapped"},
    {"name": "kmer_regression", "k": 3},
    {"name": "kmer_regression", "k": 4},
    {"name": "burden", "p_threshold": 1e-3},
    {"name": "gapped_burden", "p_threshold": 1e-3},
    {"name": "gapped_burden", "p_threshold": 1e-4},
    {"name": "gapped_burden", "p_threshold": 1e-5},
)


@dataclass(frozen=True)
class Experiment:
    """The network (``model:``), the evidence beside each sequence (``evidence:``, a list of
    ``{name: <a name in deeprc.features.EVIDENCE>, <its options>}``, completed with their
    defaults), whether the fold's training repertoires weigh them (``weigh_evidence:``) and
    the training (``train:``). ``targets:`` lists what the network predicts, one output head
    each (``{name: <the label, or a target ingest kept>, weight: <its share of the loss>}``;
    deeprc.heads), and ``covariates:`` the covariates it reads beside the pooled repertoire
    (deeprc.covariates)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    evidence: tuple[dict[str, Any], ...] = ALL_EVIDENCE
    # one attention head per provider, their soft burdens weighed by a logistic regression
    # on the training repertoires' cross-fitted evidence (FeatureSet.weighed); the network
    # starts there, and that start is a candidate for the kept model
    weigh_evidence: bool = True
    train: TrainConfig = field(default_factory=TrainConfig)
    targets: tuple[dict[str, Any], ...] = ({"name": LABEL, "weight": 1.0},)
    covariates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        entries = tuple(evidence_options(e, f"evidence[{i}]") for i, e in enumerate(self.evidence))
        object.__setattr__(self, "evidence", entries)
        object.__setattr__(self, "targets", _target_entries(self.targets))
        if len(set(self.covariates)) != len(self.covariates) or not all(self.covariates):
            raise InputError(f"covariates: name each covariate once ({list(self.covariates)})")
        if self.train.max_steps is None:
            starts = self.weighs and self.label_only and not self.model.attention_per_target
            steps = 0 if starts else LEARNED_STEPS
            object.__setattr__(self, "train", dataclasses.replace(self.train, max_steps=steps))
        if self.weigh_evidence and self.model.num_heads != 1:
            raise InputError(
                "weigh_evidence gives each evidence provider its own attention head: leave "
                f"model: num_heads at 1 (it is {self.model.num_heads})"
            )

    @property
    def weighs(self) -> bool:
        """Whether the training repertoires weigh the evidence providers: asked for, and there
        is evidence to weigh."""
        return self.weigh_evidence and bool(self.evidence)

    @property
    def label_only(self) -> bool:
        """The store's label alone: the network whose untrained weighed start (with the
        covariates, where it reads them) is a model (count_on_start)."""
        return [t["name"] for t in self.targets] == [LABEL]

    @staticmethod
    def moved_keys(data: dict) -> str | None:
        """What to write instead, for an experiment in an older form (deeprc 0.2's encoder options
        and evidence as flat keys of ``model:``, 0.3's ``select_evidence``); None for a current
        one."""
        if "select_evidence" in data:
            return (
                "select_evidence is written weigh_evidence since deeprc 0.4: the training "
                "repertoires weigh the evidence providers (one attention head each) instead of "
                "choosing among them (docs/model.md)"
            )
        model = data.get("model")
        if not isinstance(model, dict):
            return None
        old = [k for k in (*_ENCODER_KEYS, *_EVIDENCE_KEYS) if k in model]
        if not old:
            return None
        encoder = model.get("encoder", "cnn")
        encoder = {"name": encoder} if isinstance(encoder, str) else dict(encoder)
        encoder |= {new: model[k] for k, new in _ENCODER_KEYS.items() if k in model}
        evidence = []
        if model.get("clonotype_evidence"):
            evidence.append({"name": "clonotype"})
        if model.get("burden_evidence"):
            evidence.append({"name": "burden", "p_threshold": model["burden_evidence"]})
        if model.get("kmer_evidence", 4):
            evidence.append({"name": "kmer", "k": model.get("kmer_evidence", 4)})
        return (
            f"model: {', '.join(old)} are written differently since deeprc 0.3: the encoder "
            f"is one entry with its options, the evidence a list beside model:. Write "
            f"'model: {{encoder: {_flow(encoder)}}}' and 'evidence: {_flow(evidence)}' "
            "(top level; [] for none)"
        )


def _target_entries(targets: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """``targets:`` completed (weight 1) and checked: at least one, each named once, positive
    weights."""
    entries = []
    for i, entry in enumerate(targets):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InputError(
                f"targets[{i}]: write {{name: <label or a target ingest kept>, weight: 1}}, "
                f"not {entry!r}"
            )
        unknown = sorted(set(entry) - {"name", "weight"})
        weight = entry.get("weight", 1.0)
        if unknown or isinstance(weight, bool) or not isinstance(weight, int | float):
            raise InputError(f"targets[{i}]: keys are name and weight (a number), not {entry!r}")
        if not weight > 0:
            raise InputError(f"targets[{i}]: weight {weight} must be above 0")
        entries.append({"name": entry["name"], "weight": float(weight)})
    names = [e["name"] for e in entries]
    if not names or len(set(names)) != len(names):
        raise InputError(f"targets: name one or more targets, each once (got {names})")
    return tuple(entries)


def _flow(value: Any) -> str:
    """YAML on one line."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()


def same_recipe(a: dict, b: dict) -> bool:
    """Two experiments (as saved) alike but for the training seed (the workflow trains
    several)."""

    def recipe(e: dict) -> dict:
        e = json.loads(json.dumps(e))  # as read back from JSON: tuples are lists
        return {**e, "train": {k: v for k, v in e.get("train", {}).items() if k != "seed"}}

    return recipe(a) == recipe(b)
