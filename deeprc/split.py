"""Stratified cross-validation folds with a seeded inner validation split.

One long table, one row per (fold, repertoire): ``fold``, ``repertoire_id``, ``role`` in
{train, validation, test} and ``store_fingerprint`` (the store it was made from). Every later
stage reads its repertoires from it, so all models and baselines of a fold see exactly the same
repertoires, and none reads it against another store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deeprc.atomic import atomic_file
from deeprc.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from deeprc.store import Store

__all__ = [
    "VALIDATION_FRACTION",
    "final_split",
    "fixed_split",
    "make_folds",
    "read_folds",
    "split_store",
    "strata_of",
    "write_folds",
]

# The share of the repertoires a model does not test on (of all, for the final model) that is
# held out for validation: the default here and of deeprc split and deeprc train --all. NumPy,
# pandas and scikit-learn are imported where they are used, so that the command line reads
# this without loading them.
VALIDATION_FRACTION = 0.2
ROLES = ("train", "validation", "test")
FOLD_COLUMNS = ("fold", "repertoire_id", "role", "store_fingerprint")


def _hold_out(
    rest: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``rest`` split into training and a stratified validation part of about ``fraction``
    (at least 2, leaving at least 2 to train on)."""
    from sklearn.model_selection import train_test_split

    n_validation = min(max(2, round(fraction * len(rest))), len(rest) - 2)
    return train_test_split(rest, test_size=n_validation, stratify=labels[rest], random_state=seed)


def final_split(
    store: Store, *, validation_fraction: float = VALIDATION_FRACTION, seed: int = 0
) -> dict[str, np.ndarray]:
    """The roles of the final model: every repertoire trains, except a stratified validation
    part that selects the step and calibrates (as in each fold); no test set."""
    import numpy as np

    store.require_labels("training the final model")
    labels = np.asarray(store.labels)
    if np.bincount(labels, minlength=2).min() < 2:
        raise InputError(
            f"store {store.path}: the final model needs at least 2 repertoires of each class "
            "(one for validation)"
        )
    train, validation = _hold_out(np.arange(len(labels)), labels, validation_fraction, seed)
    return {
        "train": np.sort(train),
        "validation": np.sort(validation),
        "test": np.array([], dtype=np.int64),
    }


def make_folds(
    ids: list[str],
    labels: np.ndarray,
    *,
    k: int = 5,
    validation_fraction: float = VALIDATION_FRACTION,
    seed: int = 0,
    strata: np.ndarray | None = None,
) -> pd.DataFrame:
    """Each repertoire is in the test set of exactly one fold; validation comes from the rest.
    Both are stratified by the label, or by ``strata`` (one value per repertoire: the label
    and a target's class, :func:`strata_of`)."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    smallest = np.bincount(labels, minlength=2).min()
    if k < 2 or smallest < k:
        raise InputError(
            f"{k}-fold cross-validation needs k >= 2 and at least k repertoires of each class "
            f"(the smaller class has {smallest}); lower --k"
        )
    ids = np.asarray(ids)
    strata = labels if strata is None else np.asarray(strata)
    rows = []
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (rest, test) in enumerate(folds.split(ids, strata)):
        if np.bincount(labels[rest], minlength=2).min() < 2:
            raise InputError(
                f"fold {fold}: the training part needs at least 2 repertoires of each class to "
                "hold one out for validation; lower --k or add repertoires"
            )
        train, validation = _hold_out(rest, strata, validation_fraction, seed + fold)
        for role, members in (("train", train), ("validation", validation), ("test", test)):
            rows += [(fold, ids[i], role) for i in sorted(members)]
    return pd.DataFrame(rows, columns=["fold", "repertoire_id", "role"])


def fixed_split(
    ids: list[str],
    labels: np.ndarray,
    test_ids: list[str],
    *,
    validation_fraction: float = VALIDATION_FRACTION,
    seed: int = 0,
) -> pd.DataFrame:
    """One fold (0): train on one cohort, test on another (as with Emerson's two CMV cohorts).

    ``test_ids`` name the test cohort; validation is a stratified part of the others.
    """
    import numpy as np
    import pandas as pd

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
    train, validation = _hold_out(rest, labels, validation_fraction, seed)
    rows = [
        (0, ids[i], role)
        for role, members in (("train", train), ("validation", validation))
        for i in sorted(members)
    ]
    rows += [(0, ids[i], "test") for i in np.flatnonzero(test)]
    return pd.DataFrame(rows, columns=["fold", "repertoire_id", "role"])


def strata_of(store: Store, target: str, k: int) -> np.ndarray:
    """One stratum per repertoire: its label and its class of the binary or categorical
    ``target`` (missing: a class of its own), each stratum of at least ``k`` repertoires, so
    that every fold tests on each."""
    import numpy as np

    from deeprc.targets import Target

    chosen = Target.of(store, target)
    if chosen.kind == "numeric":
        raise InputError(
            f"--stratify {target}: a numeric target has no classes to stratify by; give a "
            "binary or categorical one"
        )
    names = [*chosen.classes] if chosen.kind == "categorical" else ["0", "1"]
    values = [names[v] if v >= 0 else "missing" for v in chosen.values(store).tolist()]
    pairs = zip(store.labels.tolist(), values, strict=True)
    strata = np.array([f"label {y}, {target} {v}" for y, v in pairs])
    kinds, counts = np.unique(strata, return_counts=True)
    if counts.min() < k:
        raise InputError(
            f"--stratify {target}: only {counts.min()} repertoires have {kinds[counts.argmin()]}, "
            f"fewer than --k {k}; lower --k or stratify by the label alone"
        )
    return strata


def split_store(
    store: Store,
    out: Path,
    *,
    k: int = 5,
    validation_fraction: float = VALIDATION_FRACTION,
    seed: int = 0,
    test_ids: Path | None = None,
    overwrite: bool = False,
    stratify: str | None = None,
) -> pd.DataFrame:
    """Write the folds of a store to ``out``: ``k`` stratified folds (by the label, or by the
    label and target ``stratify``'s class), or one fold testing on the repertoires listed in
    the file ``test_ids`` (one id a line)."""
    store.require_labels("cross-validation")
    if stratify is not None and test_ids is not None:
        raise InputError("--stratify makes k folds; a fixed test cohort (--test-ids) is one")
    ids = store.repertoires["repertoire_id"].tolist()
    if test_ids is not None:
        if not Path(test_ids).is_file():
            raise InputError(f"{test_ids} does not exist")
        listed = [line.strip() for line in Path(test_ids).read_text().splitlines()]
        folds = fixed_split(
            ids, store.labels, [i for i in listed if i], validation_fraction=validation_fraction,
            seed=seed,
        )  # fmt: skip
    else:
        strata = None if stratify is None else strata_of(store, stratify, k)
        folds = make_folds(
            ids, store.labels, k=k, validation_fraction=validation_fraction, seed=seed,
            strata=strata,
        )  # fmt: skip
    write_folds(folds, store, out, overwrite=overwrite, inputs=[*filter(None, [test_ids])])
    return folds


def write_folds(
    folds: pd.DataFrame, store: Store, path: Path, *, overwrite: bool = False, inputs=()
) -> None:
    """The folds table, each row stamped with the fingerprint of the store it was made from.
    An existing ``path`` only with ``overwrite``, never onto the store or ``inputs``."""
    inputs = [store.path, *inputs]
    with atomic_file(path, kind="folds", overwrite=overwrite, inputs=inputs) as tmp:
        folds.assign(store_fingerprint=store.manifest["fingerprint"]).to_csv(
            tmp, sep="\t", index=False
        )


def read_folds(path: Path, store: Store, fold: int) -> dict[str, np.ndarray]:
    """Repertoire indices of the store per role for one fold.

    Checks that the table was made from this very store and that no repertoire has two roles
    in one fold (which would put training repertoires into a test set).
    """
    import numpy as np
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"folds file {path} does not exist; make it with deeprc split")
    try:
        folds = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"folds file {path} cannot be read as TSV ({exc})") from None
    missing = [c for c in FOLD_COLUMNS if c not in folds.columns]
    if missing:
        raise InputError(
            f"folds file {path} lacks the column(s) {missing} (it has {list(folds.columns)}); "
            "make it with deeprc split"
        )
    folds["line"] = np.arange(len(folds)) + 2
    fingerprint = store.manifest["fingerprint"]
    other = folds[folds["store_fingerprint"] != fingerprint]
    if not other.empty:
        raise InputError(
            f"folds file {path} was made from the store with fingerprint "
            f"{other['store_fingerprint'].iloc[0]!r} (line {other['line'].iloc[0]}), not from "
            f"--store {store.path} ({fingerprint!r}); make folds for this store with deeprc split"
        )
    bad_role = folds[~folds["role"].isin(ROLES)]
    if not bad_role.empty:
        raise InputError(
            f"folds file {path}, line {bad_role['line'].iloc[0]}: role "
            f"{bad_role['role'].iloc[0]!r} is not one of {list(ROLES)}"
        )
    if not folds["fold"].str.fullmatch(r"\d+").all():
        line = folds.loc[~folds["fold"].str.fullmatch(r"\d+"), "line"].iloc[0]
        raise InputError(f"folds file {path}, line {line}: fold must be a whole number >= 0")
    folds["fold"] = folds["fold"].astype(int)
    if fold not in set(folds["fold"]):
        raise InputError(f"{path}: no fold {fold}; folds are {sorted(set(folds['fold']))}")
    chosen = folds[folds["fold"] == fold]
    twice = chosen[chosen.duplicated("repertoire_id", keep=False)]
    if not twice.empty:
        first = twice["repertoire_id"].iloc[0]
        lines = twice.loc[twice["repertoire_id"] == first, ["line", "role"]].values.tolist()
        raise InputError(
            f"folds file {path}: repertoire {first!r} appears more than once in fold {fold} "
            f"(line, role): {lines}; each repertoire has one role per fold"
        )
    index = dict(zip(store.repertoires["repertoire_id"], store.repertoires.index, strict=True))
    unknown = sorted(set(chosen["repertoire_id"]) - set(index))
    if unknown:
        raise InputError(f"{path}: repertoires not in the store {store.path}: {unknown[:5]}")
    return {
        role: np.array(
            [index[r] for r in chosen.loc[chosen["role"] == role, "repertoire_id"]], dtype=np.int64
        )
        for role in ROLES
    }
