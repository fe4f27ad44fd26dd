"""Covariates the network reads beside the pooled repertoire (an experiment's ``covariates:``):
per repertoire values that ingest kept (``--covariate COLUMN:KIND``), such as age or sex, set
beside the attention's output so that the output network can weigh what the repertoire adds
beyond them.

A numeric covariate enters standardised by the training repertoires' mean and sd, with a
column that marks it missing (the value is then 0, the mean); a categorical one as one column
per training class (missing or a class never trained on: all 0). A model file keeps the means,
sds and classes, so a new cohort is read as the training one was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from deeprc.errors import InputError
from deeprc.store import Store

__all__ = ["NO_COVARIATES", "Covariate", "Covariates"]


@dataclass(frozen=True)
class Covariate:
    """One column: its name, kind, and the training repertoires' mean and sd (numeric) or
    classes (categorical)."""

    column: str
    kind: str
    mean: float = 0.0
    sd: float = 1.0
    classes: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return 2 if self.kind == "numeric" else len(self.classes)

    @property
    def names(self) -> list[str]:
        """Its columns' names: ``age`` and ``age missing``, or ``sex=F`` per class."""
        if self.kind == "numeric":
            return [self.column, f"{self.column} missing"]
        return [f"{self.column}={c}" for c in self.classes]

    def encode(self, values) -> np.ndarray:
        """``(n, size)`` columns of the raw ``values`` (a pandas Series)."""
        if self.kind == "numeric":
            numbers = values.to_numpy(dtype=np.float64)
            missing = np.isnan(numbers)
            standard = np.where(missing, 0.0, (numbers - self.mean) / self.sd)
            return np.column_stack([standard, missing.astype(np.float64)])
        return np.column_stack([(values == c).to_numpy(dtype=np.float64) for c in self.classes])


@dataclass(frozen=True)
class Covariates:
    """The covariates one network reads, in order (none: ``Covariates(())``)."""

    columns: tuple[Covariate, ...] = ()

    @classmethod
    def fitted(cls, names: Sequence[str], store: Store, train: np.ndarray) -> Covariates:
        """``names`` of ``store``'s covariates, scaled by the ``train`` repertoires."""
        table = store.repertoires.iloc[np.asarray(train, dtype=np.int64)]
        columns = []
        for name in names:
            entry = _kept(store, name)
            if entry["kind"] == "numeric":
                values = table[f"covariate:{name}"].to_numpy(dtype=np.float64)
                values = values[~np.isnan(values)]
                mean = float(values.mean()) if len(values) else 0.0
                sd = float(values.std()) if len(values) else 0.0
                columns.append(Covariate(name, "numeric", mean, sd or 1.0))
            else:
                present = set(table[f"covariate:{name}"].dropna())
                classes = tuple(c for c in entry["classes"] if c in present)
                columns.append(Covariate(name, "categorical", classes=classes))
        return cls(tuple(columns))

    @property
    def size(self) -> int:
        return sum(c.size for c in self.columns)

    @property
    def names(self) -> list[str]:
        return [name for c in self.columns for name in c.names]

    def of(self, store: Store, repertoires: np.ndarray | None = None) -> np.ndarray:
        """``(n, size)`` float32 values of ``repertoires`` (default: all) of ``store``, which
        must keep these covariates with the same kinds."""
        chosen = np.arange(len(store.repertoires)) if repertoires is None else repertoires
        table = store.repertoires.iloc[np.asarray(chosen, dtype=np.int64)]
        parts = [np.zeros((len(table), 0))]
        for covariate in self.columns:
            entry = _kept(store, covariate.column)
            if entry["kind"] != covariate.kind:
                raise InputError(
                    f"the model reads covariate {covariate.column!r} as {covariate.kind}, but "
                    f"store {store.path} keeps it as {entry['kind']}; ingest it again with "
                    f"--covariate {covariate.column}:{covariate.kind}"
                )
            parts.append(covariate.encode(table[f"covariate:{covariate.column}"]))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def to_file(self) -> list[dict]:
        return [asdict(c) | {"classes": list(c.classes)} for c in self.columns]

    @classmethod
    def from_file(cls, saved: list[dict] | None) -> Covariates:
        """The covariates a model file records (none in one of deeprc < 0.8)."""
        return cls(tuple(Covariate(**(c | {"classes": tuple(c["classes"])})) for c in saved or []))


def _kept(store: Store, name: str) -> dict:
    """The manifest's entry of covariate ``name``; an error saying how to keep it if absent."""
    kept = {c["column"]: c for c in store.annotations("covariate")}
    if name not in kept:
        have = ", ".join(kept) or "none"
        raise InputError(
            f"the model reads covariate {name!r}, which store {store.path} does not keep "
            f"(it keeps: {have}); ingest with --covariate {name}:KIND"
        )
    return kept[name]


NO_COVARIATES = Covariates()
