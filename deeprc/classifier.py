"""A trained repertoire classifier: one object for what scoring a repertoire takes.

:class:`RepertoireClassifier` joins the experiment (recipe), the fitted features (gene
vocabulary and evidence providers, deeprc.features), the network (deeprc.model) and its
calibration, with the record of what it was trained on (the model card). It trains
(:meth:`~RepertoireClassifier.fit`), scores and explains repertoires, and saves to and loads
from a model file (deeprc.model_file); the CLI, the workflow and a notebook all go through it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from deeprc import __version__
from deeprc.atomic import atomic_file, check_file_output, locked
from deeprc.calibration import Platt, small_calibration_note
from deeprc.config import build
from deeprc.covariates import NO_COVARIATES, Covariates
from deeprc.data import CHUNK, repertoire_chunks
from deeprc.errors import InputError
from deeprc.experiment import Experiment, same_recipe
from deeprc.features import FeatureSet
from deeprc.heads import Heads
from deeprc.model import (
    ENCODERS,
    DeepRC,
    NetworkInputs,
    build_model,
    count_on_start,
    pretrained_input,
)
from deeprc.model_file import (
    MODEL_FORMAT,
    discard_checkpoint,
    kept_validation,
    read_model_file,
    save_torch,
    validation_score,
)  # fmt: skip
from deeprc.split import final_split
from deeprc.store import Store, part_path
from deeprc.train import fit, permuted_labels

__all__ = ["RepertoireClassifier", "attention_table", "cross_validation_card", "network_inputs"]

UNCALIBRATED = {"slope": 1.0, "intercept": 0.0, "fitted": False}
# what a model file holds besides a classifier's record of its training
_NOT_RECORD = (
    "format", "model_state", "experiment", "calibration", "genes", "evidence", "heads",
    "covariates",
)  # fmt: skip

# the columns of a store's part that attention tables repeat, with their types there
_FROM_PART = {
    "sequence_id": pa.string(),
    "junction_aa": pa.string(),
    "v_call": pa.string(),
    "j_call": pa.string(),
    "duplicate_count": pa.int64(),
}


def _unfitted_features(experiment: Experiment, store: Store) -> FeatureSet:
    """The experiment's evidence providers, unfitted, and ``store``'s genes where it reads them."""
    return FeatureSet.from_options(
        experiment.evidence, store, genes=bool(experiment.model.gene_embedding),
        pretrained=_pretrained(experiment),
    )  # fmt: skip


def _pretrained(experiment: Experiment) -> str | None:
    """The pretrained vectors the experiment's encoder reads (deeprc.features.pretrained)."""
    return pretrained_input(ENCODERS[experiment.model.encoder["name"]])


def network_inputs(
    features: FeatureSet,
    *,
    weighed: bool = False,
    heads: Heads | None = None,
    covariates: Covariates = NO_COVARIATES,
) -> NetworkInputs:
    """What the network reads beside the residues, from the features that give it, and what it
    predicts (``heads``, default the label) from which ``covariates``; with ``weighed``, one
    attention head per provider and, predicting the label alone, the network starts as their
    weighed soft burdens (with the covariates, FeatureSet.weighed), whatever their kind
    (Experiment.weighs says when)."""
    label_only = heads is None or heads.label_only
    return NetworkInputs(
        genes=features.genes.sizes if features.genes is not None else None,
        evidence_prior=features.prior,
        starts_as_count=(features.starts_as_count or weighed) and label_only,
        evidence_heads=tuple(p.size for p in features.evidence) if weighed else (),
        head_sizes=tuple(h.size for h in heads.heads) if heads is not None else (1,),
        covariates=covariates.size,
    )


class RepertoireClassifier:
    """Experiment, features, heads (what it predicts, deeprc.heads), covariates, network and
    calibration (of the first head, where it is binary) of one trained (or new) classifier;
    ``record`` holds what a model file says of its training (ids, history, data, ...)."""

    def __init__(
        self,
        experiment: Experiment,
        features: FeatureSet,
        network: DeepRC,
        calibration: dict | None = None,
        record: dict | None = None,
        *,
        heads: Heads | None = None,
        covariates: Covariates = NO_COVARIATES,
    ) -> None:
        self.experiment, self.features, self.network = experiment, features, network
        self.heads = heads if heads is not None else Heads.label()
        self.covariates = covariates
        self.calibration = dict(calibration or UNCALIBRATED)
        self.record = dict(record or {})

    @classmethod
    def new(
        cls,
        experiment: Experiment,
        store: Store,
        features: FeatureSet | None = None,
        train: np.ndarray | None = None,
        covariates: Covariates | None = None,
    ) -> RepertoireClassifier:
        """Untrained: the network initialised from the experiment's seed, reading
        ``features`` (default: the experiment's, unfitted; the gene vocabulary is
        ``store``'s); its heads and ``covariates`` (default: the experiment's) scaled by the
        ``train`` repertoires (default: all of ``store``)."""
        features = features if features is not None else _unfitted_features(experiment, store)
        train = np.arange(len(store.repertoires)) if train is None else train
        heads = Heads.fitted(experiment.targets, store, train)
        if covariates is None:
            covariates = Covariates.fitted(experiment.covariates, store, train)
        inputs = network_inputs(
            features, weighed=experiment.weighs, heads=heads, covariates=covariates
        )
        network = build_model(experiment.model, inputs, experiment.train.seed)
        return cls(experiment, features, network, heads=heads, covariates=covariates)

    # ------------------------------------------------------------------------- training

    @classmethod
    def fit(
        cls,
        store: Store,
        out: Path,
        *,
        experiment: Experiment | None = None,
        roles: dict[str, np.ndarray] | None = None,
        device: torch.device | None = None,
        cross_validation: dict | None = None,
        permute_labels: int | None = None,
        overwrite: bool = False,
        inputs: tuple[Path, ...] = (),
    ) -> RepertoireClassifier:
        """Train on ``roles["train"]``, select by ``roles["validation"]`` (default: a
        stratified hold-out of the whole store, :func:`deeprc.split.final_split`), calibrate
        on them and save the best model to ``out`` (checkpoints in ``<out>.work``, which a
        restarted run resumes from). The model file and its work directory are locked: one
        run at a time. ``cross_validation`` (:func:`cross_validation_card`) goes into a final
        model's file. ``permute_labels`` (a seed) makes a negative control: the labels are
        shuffled within the training and within the validation repertoires, so nothing true
        is left to learn. An existing ``out`` is refused before training unless ``overwrite``
        (and it is a model file, not one of ``inputs``); training then starts afresh, not from
        its checkpoint."""
        experiment = experiment if experiment is not None else Experiment()
        roles = roles if roles is not None else final_split(store)
        out = Path(out)
        inputs = (store.path, *inputs)
        check_file_output(out, kind="model", overwrite=overwrite, inputs=inputs)
        if permute_labels is not None:
            store = store.with_labels(permuted_labels(store.labels, roles, permute_labels))
        features = _unfitted_features(experiment, store)
        features.vectors(store, device)  # an encoder's pretrained vectors: embedded on device
        if experiment.weighs:  # before cross-fitting, which a tiny fold would spend first
            features.check_weighable(np.asarray(store.labels)[roles["train"]])
        covariates = Covariates.fitted(experiment.covariates, store, roles["train"])
        beside = covariates.of(store) if covariates.size else None
        training_inputs = features.training_inputs(store, roles["train"], experiment.train.seed)
        weighing = None
        if experiment.weighs:
            features, training_inputs, weights, intercept, weighing = features.weighed(
                store, roles["train"], training_inputs, experiment.train.seed,
                None if beside is None else beside[roles["train"]], covariates.names,
            )  # fmt: skip
        # validation repertoires read the (kept) providers, fitted on all training ones
        classifier = cls.new(experiment, store, features, roles["train"], covariates)
        if weighing is not None and classifier.network.starts_as_count:
            n = len(features.evidence)
            count_on_start(classifier.network.output[-1], weights[:n].tolist(), intercept,
                           covariates=weights[n:].tolist())  # fmt: skip
        with locked(out):
            if overwrite and out.exists():  # the finished run's checkpoint would only resume it
                discard_checkpoint(out.with_suffix(".work") / "checkpoint.pt")
            state = fit(
                classifier.network, store, roles["train"], roles["validation"], experiment.train,
                out_dir=out.with_suffix(".work"), experiment=asdict(experiment),
                features=classifier.features, inputs=training_inputs, device=device,
                heads=classifier.heads, covariates=beside,
            )  # fmt: skip
            classifier.network.load_state_dict(state.best_state)
            classifier.calibrate(store, roles["validation"])
            # test and new repertoires read evidence from every repertoire the model was
            # fitted with, as the baselines fit on training and validation repertoires alike;
            # fitting it on validation repertoires before selection gives their labels away
            # to the model (docs/model.md)
            held_in = np.concatenate([roles["train"], roles["validation"]])
            classifier.features = classifier.features.refitted(store, held_in)
            ids = store.repertoires["repertoire_id"].to_numpy().astype(str)
            classifier.record = {
                "store_fingerprint": store.manifest["fingerprint"],
                "train_ids": ids[roles["train"]].tolist(),
                "validation_ids": ids[roles["validation"]].tolist(),
                "steps": state.step,
                "history": state.history,
                "best_step": state.best.get("step"),
                "evidence_weights": weighing,
                "pretrained": _pretrained_card(classifier.features, store),
                "data": _data_card(store, roles) | {"permuted_labels_seed": permute_labels},
                "cross_validation": cross_validation,
            }
            classifier.save(out, overwrite=overwrite, inputs=inputs)
        return classifier

    def calibrate(self, store: Store, repertoires: np.ndarray) -> dict:
        """Fit the map to calibrated log-odds of the first head, where it is binary, on
        held-out repertoires (Platt scaling of their whole-repertoire logits); with one class
        there, or another kind of head, the outputs stay as they are. Every other head is
        calibrated on them too (deeprc.heads.Head.calibrated)."""
        self.calibration = dict(UNCALIBRATED)
        outputs = np.stack([self.outputs(store, int(r))[0] for r in repertoires])
        self.heads = self.heads.calibrated(outputs, store, repertoires)
        first = self.heads.heads[0]
        if first.target.kind != "binary":
            return self.calibration
        logits = outputs[:, 0]
        y = first.target.values(store)[repertoires]
        logits, y = logits[y >= 0], y[y >= 0]
        if len(np.unique(y)) < 2:
            self.calibration = {"slope": 1.0, "intercept": 0.0, "n_repertoires": len(y),
                                "fitted": False}  # fmt: skip
            return self.calibration
        platt = Platt().fit(logits, y)
        self.calibration = {"slope": platt.slope, "intercept": platt.intercept,
                            "n_repertoires": len(y), "fitted": True}  # fmt: skip
        if note := small_calibration_note(y):
            self.calibration["note"] = note
        return self.calibration

    # ------------------------------------------------------------------------- scoring

    def outputs(
        self, store: Store, repertoire: int, *, chunk: int = CHUNK
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The outputs ``(heads.size,)`` of one whole repertoire of ``store`` (streamed in
        chunks of ``chunk`` sequences; a binary first head's as calibrated log-odds), its
        attention ``(heads, n_sequences)`` and the attention scores before the softmax (see
        :meth:`deeprc.model.DeepRC.score_bag`)."""
        inputs = self.features.inputs_of(store, repertoire)
        beside = None
        if self.covariates.size:
            beside = torch.from_numpy(self.covariates.of(store, np.array([repertoire]))[0])
        outputs, attention, scores = self.network.score_bag(
            partial(repertoire_chunks, store, repertoire, chunk, inputs), beside
        )
        outputs = outputs.double().numpy()
        outputs[0] = self.calibration["slope"] * outputs[0] + self.calibration["intercept"]
        return outputs, attention.cpu().numpy(), scores.cpu().numpy()

    def score(
        self, store: Store, repertoire: int, *, chunk: int = CHUNK
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """As :meth:`outputs`, with the first output alone: for a model of the label, the
        calibrated log-odds."""
        outputs, attention, scores = self.outputs(store, repertoire, chunk=chunk)
        return float(outputs[0]), attention, scores

    def predict(
        self, store: Store, repertoires: np.ndarray | None = None, target: str | None = None
    ) -> pd.DataFrame:
        """Predictions of ``target`` (default: the first the model predicts; the label for a
        model of the label alone), per repertoire (default: all of ``store``) in
        deeprc.outputs' format: ``repertoire_id``, ``y`` (its value, as the store holds it)
        and, for a binary target, ``logit`` (the first head's calibrated log-odds) and
        ``score`` (probability); for a categorical one ``p:<class>``; for a numeric one
        ``prediction``."""
        chosen = np.arange(len(store.repertoires)) if repertoires is None else repertoires
        outputs = np.stack([self.outputs(store, int(r))[0] for r in chosen])
        tables = self.heads.tables(outputs, store, chosen)
        if target is not None and target not in tables:
            raise InputError(f"the model predicts {', '.join(tables)}; not {target!r}")
        return tables[target if target is not None else self.heads.heads[0].target.name]

    def attention(self, store: Store, repertoire: int) -> pd.DataFrame:
        """One repertoire's sequences with their attention (see :func:`attention_table`),
        the most attended first."""
        _, attention, scores = self.score(store, repertoire)
        table = pa.table(attention_table(store, repertoire, attention, scores)).to_pandas()
        order = np.lexsort((np.arange(len(table)), -table["attention_score"].to_numpy()))
        return table.iloc[order].reset_index(drop=True)

    # ------------------------------------------------------------------------- files

    def save(self, path: Path, *, overwrite: bool = False, inputs: tuple[Path, ...] = ()) -> None:
        """The model file: weights, recipe, features, calibration and the record of its
        training, with the version and time (``overwrite``, ``inputs``: deeprc.atomic)."""
        saved_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.record |= {"deeprc_version": __version__, "saved_at": saved_at}
        save_torch(
            {
                **self.record,
                "format": MODEL_FORMAT,
                "model_state": self.network.state_dict(),
                "experiment": asdict(self.experiment),
                "calibration": self.calibration,
                "heads": self.heads.to_file(),
                "covariates": self.covariates.to_file(),
                **self.features.to_file(),  # genes (vocabulary) and evidence (providers)
            },
            Path(path), overwrite=overwrite, inputs=inputs,
        )  # fmt: skip

    @classmethod
    def load(cls, path: Path) -> RepertoireClassifier:
        """A trained classifier (its network in eval mode) from a model file."""
        path = Path(path)
        saved = read_model_file(path)
        experiment = _experiment(path, saved)
        features = FeatureSet.from_file(saved, str(path), _pretrained(experiment))
        try:
            heads = Heads.from_file(saved.get("heads"))
            covariates = Covariates.from_file(saved.get("covariates"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{path}: its targets or covariates are malformed ({type(exc).__name__}: {exc});"
                " the file is damaged or was not written by this deeprc: train it again"
            ) from None
        inputs = network_inputs(
            features, weighed=experiment.weighs, heads=heads, covariates=covariates
        )
        network = _network(path, experiment, inputs, saved["model_state"])
        record = {k: v for k, v in saved.items() if k not in _NOT_RECORD}
        return cls(experiment, features, network, saved.get("calibration"), record,
                   heads=heads, covariates=covariates)  # fmt: skip

    def card(self, path: Path | None = None) -> dict:
        """What the model file says about itself (``deeprc show-model``): what it was
        trained on, the recipe, training and calibration, and for a final model its recipe's
        cross-validation."""
        record = self.record
        best = kept_validation(record)
        saved_genes = self.features.genes.names if self.features.genes is not None else {}
        return {
            "model": str(path) if path is not None else None,
            "deeprc_version": record.get("deeprc_version"),
            "saved_at": record.get("saved_at"),
            "store_fingerprint": record["store_fingerprint"],
            "data": record.get("data"),
            "n_train": len(record["train_ids"]),
            "n_validation": len(record["validation_ids"]),
            "experiment": json.loads(json.dumps(asdict(self.experiment))),
            "genes": {k: len(v) - 1 for k, v in saved_genes.items()},
            "evidence": [p.name for p in self.features.evidence],
            "evidence_weights": record.get("evidence_weights"),
            "pretrained": record.get("pretrained"),
            "steps": record["steps"],
            "targets": [h.target.to_dict() | {"weight": h.weight} for h in self.heads.heads],
            "covariates": [c.column for c in self.covariates.columns],
            # the network's, not model: num_heads (one per kept provider where weighed, and
            # one per target with attention_per_target)
            "attention_heads": self.network.pooling.num_heads,
            "best_validation": {k: v for k, v in best.items() if _validation_key(k)},
            "calibration": self.calibration,
            "cross_validation": record.get("cross_validation"),
        }

    @staticmethod
    def select(paths: list[Path], out: Path, *, overwrite: bool = False) -> tuple[Path, list]:
        """Of several runs (seeds) of one fold, copy the model with the best validation AUC
        to ``out`` (an existing ``out`` only with ``overwrite``: deeprc.atomic).

        Ties go to the lower validation loss. Returns the chosen path and each run's best
        validation metrics, in the order given.
        """
        scores = []
        for path in paths:
            saved = read_model_file(path)
            _experiment(Path(path), saved)  # one of an older deeprc is refused here already
            if not saved["history"]:
                raise InputError(f"{path} records no validation, so it cannot be compared")
            best = kept_validation(saved)
            kept = {k: v for k, v in best.items() if _validation_key(k)}
            scores.append({"model": str(path), **kept, "val_score": validation_score(best)})
        chosen = max(
            range(len(paths)), key=lambda i: (scores[i]["val_score"], -scores[i]["val_loss"])
        )
        with atomic_file(Path(out), kind="model", overwrite=overwrite, inputs=paths) as tmp:
            shutil.copyfile(paths[chosen], tmp)
        return Path(paths[chosen]), scores


def _validation_key(key: str) -> bool:
    """A history entry's step and validation metrics (deeprc.heads.Heads.validation)."""
    return key in ("step", "val_auc", "val_score", "val_loss") or key.startswith("val:")


def _experiment(path: Path, saved: dict) -> Experiment:
    """The recipe a model file records; one of an older deeprc says to train it again."""
    try:
        return build(Experiment, saved["experiment"], f"{path}: experiment")
    except InputError as exc:
        if moved := Experiment.moved_keys(saved["experiment"]):
            raise InputError(
                f"{path} was trained by deeprc {saved.get('deeprc_version') or '< 0.3'}, whose "
                f"model files this deeprc cannot read ({moved}); train it again"
            ) from None
        raise exc from None


def _network(path: Path, experiment: Experiment, inputs: NetworkInputs, weights: dict) -> DeepRC:
    """The network a model file's config describes, reading ``inputs``, with its weights.
    Built first without memory (PyTorch's meta device) and compared: a config edited to ask
    for a huge network is an error before anything is allocated."""
    try:
        with torch.device("meta"):
            wanted = build_model(experiment.model, inputs).state_dict()
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: its config cannot be built ({exc}); train it again") from None
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
    network = build_model(experiment.model, inputs)
    try:
        network.load_state_dict(weights)
    except RuntimeError as exc:
        raise InputError(f"{path}: the weights do not fit the model's config ({exc})") from None
    return network.eval()


def attention_table(store: Store, r: int, attention: np.ndarray, scores: np.ndarray) -> dict:
    """One repertoire's sequences as Arrow columns: ids, ``row`` (index into the store's
    encoded arrays), the sequence's calls and count, ``attention`` (the largest over heads),
    ``attention_score`` (the largest score before the softmax) and, with several heads,
    ``attention_h<k>``. The sequences' own columns come from the store's part as Arrow
    arrays, never through Python objects."""
    part = pq.read_table(part_path(store.path, r), columns=list(_FROM_PART))

    def column(name: str) -> pa.Array:
        values = part[name].combine_chunks().cast(_FROM_PART[name])
        return pc.fill_null(values, "") if name in ("v_call", "j_call") else values

    repertoire_id = pa.scalar(store.repertoires["repertoire_id"].iloc[r], pa.string())
    table = {
        "repertoire_id": pa.repeat(repertoire_id, len(part)),
        "sequence_id": column("sequence_id"),
        "row": pa.array(np.arange(store.offsets[r], store.offsets[r + 1])),
        **{name: column(name) for name in ("junction_aa", "v_call", "j_call", "duplicate_count")},
        "attention": pa.array(attention.max(axis=0)),
        "attention_score": pa.array(scores.max(axis=0)),
    }
    if attention.shape[0] > 1:
        table |= {f"attention_h{h}": pa.array(a) for h, a in enumerate(attention)}
    return table


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
    if any(not same_recipe(f.get("experiment") or {}, asdict(experiment)) for f in folds):
        raise InputError(
            f"--cv-metrics {metrics}: its folds were trained with another experiment than "
            "--experiment; cross-validate this recipe, or leave --cv-metrics out"
        )
    return {"metrics": str(metrics), "n_folds": len(folds), "summary": summary}


def _pretrained_card(features: FeatureSet, store: Store) -> dict | None:
    """What the training store's pretrained vectors record (counts, refused V genes), for the
    model card; None for an encoder that reads none."""
    if features.pretrained is None:
        return None
    summary = features.vectors(store).summary
    keys = ("variant", "n_clonotypes_embedded", "rows_with_refused_v", "refused_v_genes")
    return {k: summary[k] for k in keys}


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
