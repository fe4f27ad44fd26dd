"""Simulated cohorts with more than one yes/no: several conditions, each with its own signal, and
numbers per repertoire (a numeric target, a covariate such as age) that scale a motif's witness
rate, optionally confounded with the label; they ingest as targets and covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deeprc.errors import InputError
from deeprc.ingest import ingest
from deeprc.ingest.annotations import Annotation
from deeprc.simulate import MotifSignal, RepertoireNumber, SimulationConfig, simulate
from deeprc.store import Store

SMALL = dict(n_repertoires=30, n_sequences=500, pool_size=5000, seed=3)


def read(out, name):
    return pd.read_csv(out / name, sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    cfg = SimulationConfig(
        **SMALL,
        conditions=("flu", "cmv"),
        numbers=(
            RepertoireNumber(name="severity", low=0, high=10),
            RepertoireNumber(name="age", low=20, high=80, positive_from=0.5),
        ),
        motifs=(
            MotifSignal(name="m_flu", motif="SLRF", witness_rate=0.02, condition="flu"),
            MotifSignal(name="m_cmv", motif="WQGY", witness_rate=0.02, condition="cmv"),
            MotifSignal(
                name="m_sev",
                motif="KKPD",
                witness_rate=0.02,
                scaled_by="severity",
                negative_fraction=1.0,
            ),  # fmt: skip
        ),
    )
    out = tmp_path_factory.mktemp("sim") / "cohort"
    simulate(cfg, out, threads=2)
    return cfg, out


def implants(out, signal):
    truth = read(out, "truth.tsv")
    return truth[truth["signal"] == signal]["repertoire_id"].value_counts()


def test_positives_are_split_among_the_conditions_and_each_motif_stays_in_its_own(cohort):
    _, out = cohort
    meta = read(out, "metadata.tsv")
    assert list(meta.columns) == ["repertoire_id", "file", "status", "condition", "severity", "age"]
    by_status = meta.groupby("status")["condition"].value_counts().to_dict()
    assert by_status == {("negative", "healthy"): 15, ("positive", "flu"): 8,
                         ("positive", "cmv"): 7}  # fmt: skip
    condition = meta.set_index("repertoire_id")["condition"]
    for signal, name in (("m_flu", "flu"), ("m_cmv", "cmv")):
        carriers = implants(out, signal)
        assert set(carriers.index) == set(condition[condition == name].index)
        assert (carriers == 10).all()  # 2% of 500


def test_a_scaled_motifs_rate_follows_the_number_from_0_at_low_to_twice_at_high(cohort):
    _, out = cohort
    meta = read(out, "metadata.tsv").set_index("repertoire_id")
    severity = meta["severity"].astype(float)
    assert severity.between(0, 10).all() and severity.std() > 2
    carried = implants(out, "m_sev").reindex(meta.index, fill_value=0)
    expected = np.maximum(1, np.round(0.02 * 2 * severity / 10 * 500))
    assert np.abs(carried - expected).max() <= 1  # the number is written to 6 digits
    assert np.corrcoef(carried, severity)[0, 1] > 0.95


def test_positive_from_confounds_a_number_with_the_label(cohort):
    _, out = cohort
    meta = read(out, "metadata.tsv")
    age = meta["age"].astype(float)
    positive = meta["status"] == "positive"
    assert (age[positive] >= 50).all() and age[~positive].between(20, 80).all()
    assert age[~positive].min() < 50  # the negatives span the whole range


def test_they_ingest_as_targets_and_covariates(cohort, tmp_path):
    _, out = cohort
    annotations = [Annotation.parse("target", "condition:categorical"),
                   Annotation.parse("target", "severity:numeric"),
                   Annotation.parse("covariate", "age:numeric")]  # fmt: skip
    ingest(out / "metadata.tsv", tmp_path / "store", label_column="status", threads=1,
           annotations=annotations, log=lambda _: None)  # fmt: skip
    store = Store(tmp_path / "store")
    condition, severity = store.annotations("target")
    assert condition["counts"] == {"cmv": 7, "flu": 8, "healthy": 15}
    assert 0 <= severity["min"] < severity["max"] <= 10
    assert store.annotations("covariate")[0]["min"] >= 20


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"conditions": ("flu",)}, "conditions must be 2 or more distinct names"),
        ({"conditions": ("flu", "healthy")}, "'healthy' names the negatives' condition"),
        ({"motifs": (MotifSignal(name="m", motif="SLRF", witness_rate=0.1, condition="flu"),)},
         "signal 'm': condition 'flu' is not one of conditions \\[\\]"),
        ({"numbers": (RepertoireNumber(name="status"),)}, "numbers: names must be unique"),
        ({"numbers": (RepertoireNumber(name="age", low=5, high=5),)}, "low must be below high"),
        ({"motifs": (MotifSignal(name="m", motif="SLRF", witness_rate=0.1, scaled_by="age"),)},
         "motif 'm': scaled_by 'age' is not one of numbers \\[\\]"),
    ],
)  # fmt: skip
def test_config_errors_name_the_key(changes, message):
    with pytest.raises(InputError, match=message):
        SimulationConfig(**SMALL, **changes)
