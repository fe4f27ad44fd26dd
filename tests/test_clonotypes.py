"""Clonotype hashes and carrier counts on disk: what Emerson's test and the evidence count."""

import numpy as np
import pandas as pd
import pytest

from deeprc.baselines import EmersonBurden
from deeprc.features import clonotypes
from deeprc.features.clonotypes import carrier_counts, clonotype_hashes
from deeprc.ingest import ingest
from deeprc.simulate import PublicSignal, SimulationConfig, simulate
from deeprc.store import Store, gene_name


def test_a_clonotype_hashes_alike_in_any_store_and_unlike_its_neighbours(h, tmp_path):
    rows = [
        h.rec("CASSLGQETQYF", v_call="TRBV7-9*01", j_call="TRBJ2-5*01"),
        h.rec("CASSLGQETQYF", v_call="TRBV7-9*03", j_call="TRBJ2-5*01"),  # another allele
        h.rec("CASSLGQETQYF", v_call="TRBV7-8*01", j_call="TRBJ2-5*01"),  # another V gene
        h.rec("CASSLGQETQYF", v_call="TRBV7-9*01", j_call="TRBJ2-7*01"),  # another J gene
        h.rec("CASSLGQETQY", v_call="TRBV7-9*01", j_call="TRBJ2-5*01"),  # one residue less
        h.rec("CASSLGQETQYW", v_call="TRBV7-9*01", j_call="TRBJ2-5*01"),
    ]
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    h.write_airr(tmp_path / "a" / "r.tsv", rows)
    # another store: a longer junction widens its token arrays, other genes fill its vocabulary
    h.write_airr(
        tmp_path / "b" / "r.tsv",
        [h.rec("CASSPDRGYEQYFAAAAAAAAAAAA", v_call="TRBV2*01", j_call="TRBJ1-1*01"), rows[0]],
    )
    hashes = {}
    for name in ("a", "b"):
        h.write_metadata(tmp_path / name / "m.tsv", [("r", "r.tsv", "1")])
        store = Store(h.run_ingest(tmp_path / name / "m.tsv", label_column=None)[1])
        hashes[name] = clonotype_hashes(store, 0)
    a = hashes["a"].tolist()
    assert a[0] == a[1] == hashes["b"][1]
    assert len(set(a[1:])) == 5
    assert hashes["a"].dtype == np.uint64


@pytest.fixture(scope="module")
def public_cohort(tmp_path_factory) -> Store:
    root = tmp_path_factory.mktemp("public")
    cfg = SimulationConfig(
        n_repertoires=30, n_sequences=200, pool_size=2000, seed=5,
        public_clonotypes=(PublicSignal(name="pub", n_clonotypes=5, presence=0.6),),
    )  # fmt: skip
    simulate(cfg, root / "sim", threads=1)
    ingest(root / "sim" / "metadata.tsv", root / "store", label_column="status", threads=1)
    return Store(root / "store")


def _counted_in_memory(store: Store, repertoires: np.ndarray) -> pd.DataFrame:
    """Carriers per (junction, V gene, J gene), counted with pandas from the strings."""
    frames = []
    for r in repertoires:
        rows = store.sequences(int(r))
        key = (
            rows["junction_aa"].astype(str)
            + " "
            + rows["v_call"].astype(str).map(gene_name)
            + " "
            + rows["j_call"].astype(str).map(gene_name)
        )
        frames.append(pd.DataFrame({"key": key.unique(), "y": store.labels[r]}))
    table = pd.concat(frames)
    return table.groupby("key")["y"].agg(positive="sum", total="size")


@pytest.mark.parametrize("bucket_hashes", [10**9, 50])  # one bucket; 2^k buckets
def test_carriers_counted_on_disk_equal_a_count_of_the_strings(
    public_cohort, monkeypatch, bucket_hashes
):
    monkeypatch.setattr(clonotypes, "_BUCKET_HASHES", bucket_hashes)
    store = public_cohort
    train = np.arange(0, 30, 2)  # half of the cohort
    hashes, positive, negative = carrier_counts(store, train, lambda p, n: p + n >= 2)
    expected = _counted_in_memory(store, train)
    expected = expected[expected["total"] >= 2]
    assert len(hashes) == len(expected) > 20
    assert (np.diff(hashes.astype(np.float64)) >= 0).all()  # sorted
    got = sorted(zip(positive.tolist(), (positive + negative).tolist(), strict=True))
    want = sorted(zip(expected["positive"].tolist(), expected["total"].tolist(), strict=True))
    assert got == want


def test_emersons_associated_table_names_each_clonotype_as_the_files_do(public_cohort):
    store = public_cohort
    train = np.arange(30)
    model = EmersonBurden(p_threshold=0.01).fit(store, train)
    table = model.associated_
    assert len(table) >= 3
    counted = _counted_in_memory(store, train)
    for row in table.itertuples():
        key = f"{row.junction_aa} {gene_name(row.v_call)} {gene_name(row.j_call)}"
        assert counted.loc[key, "positive"] == row.n_positive
        assert counted.loc[key, "total"] == row.n_positive + row.n_negative
        assert row.v_call.startswith("TRBV") and "*" in row.v_call  # as the file wrote it
    burdens = model.decision(store, train)
    assert burdens.max() >= 3 and (burdens >= 0).all()
