"""Stratified cross-validation folds with a seeded inner validation split.

One long table, one row per (fold, repertoire): ``fold``, ``repertoire_id``, ``role`` in
{train, validation, test}. Every later stage reads its repertoires from it, so all models and
baselines of a fold see exactly the same repertoires.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from deeprc.errors import InputError
from deeprc.store import Store

__all__ = ["make_folds", "fixed_split", "read_folds"]

ROLES = ("train", "validation", "test")


def make_folds(
    ids: list[str],
    labels: np.ndarray,
    *,
    k: int = 5,
    validation_fraction: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """Each repertoire is in the test set of exactly one fold; validation comes from the rest."""
    labels = np.asarray(labels)
    smallest = np.bincount(labels, minlength=2).min()
    if k < 2 or smallest < k:
        raise InputError(
            f"{k}-fold cross-validation needs k >= 2 and at least k repertoires of each class "
            f"(the smaller class has {smallest}); lower --k"
        )
    ids = np.asarray(ids)
    rows = []
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (rest, test) in enumerate(folds.split(ids, labels)):
        if np.bincount(labels[rest], minlength=2).min() < 2:
            raise InputError(
                f"fold {fold}: the training part needs at least 2 repertoires of each class to "
                "hold one out for validation; lower --k or add repertoires"
            )
        n_validation = min(max(2, round(validation_fraction * len(rest))), len(rest) - 2)
        train, validation = train_test_split(
            rest, test_size=n_validation, stratify=labels[rest], random_state=seed + fold
        )
        for role, members in (("train", train), ("validation", validation), ("test", test)):
            rows += [(fold, ids[i], role) for i in sorted(members)]
    return pd.DataFrame(rows, columns=["fold", "repertoire_id", "role"])


def fixed_split(
    ids: list[str],
    labels: np.ndarray,
    test_ids: list[str],
    *,
    validation_fraction: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """One fold (0): train on one cohort, test on another (as with Emerson's two CMV cohorts).

    ``test_ids`` name the test cohort; validation is a stratified part of the others.
    """
    ids, labels = np.asarray(ids), np.asarray(labels)
    unknown = sorted(set(test_ids) - set(ids))
    if unknown:
        raise InputError(f"test repertoires not in the store: {unknown[:5]}")
    test = np.isin(ids, list(test_ids))
    rest = np.flatnonzero(~test)
    if np.bincount(labels[rest], minlength=2).min() < 2:
        raise InputError(
            "the training cohort needs at least 2 repertoires of each class (one for validation)"
        )
    n_validation = min(max(2, round(validation_fraction * len(rest))), len(rest) - 2)
    train, validation = train_test_split(
        rest, test_size=n_validation, stratify=labels[rest], random_state=seed
    )
    rows = [
        (0, ids[i], role)
        for role, members in (("train", train), ("validation", validation))
        for i in sorted(members)
    ]
    rows += [(0, ids[i], "test") for i in np.flatnonzero(test)]
    return pd.DataFrame(rows, columns=["fold", "repertoire_id", "role"])


def read_folds(path: Path, store: Store, fold: int) -> dict[str, np.ndarray]:
    """Repertoire indices of the store per role for one fold; checks the table fits the store."""
    folds = pd.read_csv(path, sep="\t", dtype={"repertoire_id": str})
    if fold not in set(folds["fold"]):
        raise InputError(f"{path}: no fold {fold}; folds are {sorted(set(folds['fold']))}")
    index = dict(zip(store.repertoires["repertoire_id"], store.repertoires.index, strict=True))
    chosen = folds[folds["fold"] == fold]
    unknown = sorted(set(chosen["repertoire_id"]) - set(index))
    if unknown:
        raise InputError(f"{path}: repertoires not in the store {store.path}: {unknown[:5]}")
    return {
        role: np.array([index[r] for r in chosen.loc[chosen["role"] == role, "repertoire_id"]])
        for role in ROLES
    }
