"""Evidence: numbers per sequence that a fold's training repertoires give, read by the model
beside each sequence.

Some signals a sequence encoder cannot see from one sequence: how many people carry the same
clonotype (the public clonotypes that Emerson's burden test finds), or how much more often a
short motif occurs in positive than in negative repertoires (what the k-mer regression uses).
A provider turns training repertoires into such numbers, as rates per repertoire of each class
so that they do not grow with the number of repertoires counted.

Providers follow scikit-learn's habits: parameters in the constructor (what an experiment's
``evidence:`` entry sets), ``fit(store, repertoires) -> self``, fitted attributes ending in
``_`` (what a model file keeps), ``transform(store, repertoire)`` -> ``(n, size)`` float32.
A new kind is one module with a subclass and one entry in :mod:`deeprc.features.registry`
(or :func:`deeprc.features.register_evidence` from outside the package).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self

import numpy as np

from deeprc.errors import InputError
from deeprc.store import Store

__all__ = ["Evidence", "from_file", "to_file", "two_of_each_class"]


def two_of_each_class(y: np.ndarray, who: str) -> np.ndarray:
    """``y`` as int64, once each class holds the 2 training repertoires that ``who`` needs to
    test or fit anything."""
    y = np.asarray(y, dtype=np.int64)
    smallest = np.bincount(y, minlength=2).min()
    if smallest < 2:
        raise InputError(
            f"{who} needs at least 2 training repertoires of each class; the smaller class has "
            f"{smallest}"
        )
    return y


class Evidence:
    """Base of the evidence providers."""

    name: ClassVar[str]  # what an experiment's evidence entry names
    size: ClassVar[int]  # numbers per sequence
    # each number's weight in the attention's starting score: training begins by looking at
    # the sequences the evidence points to (deeprc.model.HopfieldPooling.attend_to)
    prior: ClassVar[tuple[float, ...]]
    # the attention's log-mean-exp counts the sequences it marks: the output starts as that
    # count (deeprc.model.count_on_start)
    starts_as_count: ClassVar[bool] = False

    def fit(self, store: Store, repertoires: np.ndarray) -> Self:
        raise NotImplementedError

    def transform(self, store: Store, repertoire: int) -> np.ndarray:
        """``(n, size)`` float32 for one repertoire's rows."""
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters (an experiment's evidence entry, less its name), each
        kept as an attribute of the same name."""
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    def clone(self) -> Self:
        """Unfitted, with the same parameters."""
        return type(self)(**self.get_params())

    def cross_fitted(self, store: Store, train: np.ndarray, group: np.ndarray, n_groups: int):
        """One provider per group ``0..n_groups-1``, each fitted on the training repertoires
        of the other groups; this provider itself is fitted on all of ``train`` on the way
        (the validation repertoires read it), so that a kind may count each repertoire once
        for all of them."""
        self.fit(store, train)
        return [self.clone().fit(store, train[group != g]) for g in range(n_groups)]

    def refitted(self, store: Store, repertoires: np.ndarray) -> Self:
        """A copy fitted anew on ``repertoires`` (the test repertoires read it)."""
        return self.clone().fit(store, repertoires)

    def fitted(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_")}


def to_file(provider: Evidence) -> dict[str, Any]:
    """A fitted provider as a model file holds it: its name, parameters and fitted attributes,
    as tensors and plain values only (NumPy arrays as tensors, their types under ``dtypes``)."""
    import torch  # here: the baselines stand on these features without PyTorch

    entry: dict[str, Any] = {"name": provider.name, **provider.get_params()}
    dtypes = []
    for key, value in provider.fitted().items():
        if isinstance(value, np.ndarray):
            dtypes.append(f"{key}:{value.dtype}")
            bits = np.ascontiguousarray(value)
            value = torch.from_numpy(bits.view(np.int64) if bits.dtype == np.uint64 else bits)
        entry[key] = value  # torch has no uint64: the same bits as int64
    return entry | {"dtypes": dtypes}


def from_file(kind: type[Evidence], entry: dict[str, Any]) -> Evidence:
    """The provider :func:`to_file` saved."""
    params = inspect.signature(kind).parameters
    provider = kind(**{k: v for k, v in entry.items() if k in params})
    dtypes = dict(d.split(":") for d in entry["dtypes"])
    for key, value in entry.items():
        if key.endswith("_"):
            if key in dtypes:
                value = value.numpy().view(np.dtype(dtypes[key]))
            setattr(provider, key, value)
    return provider
