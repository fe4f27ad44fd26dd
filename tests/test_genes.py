"""V and J genes: kept in the store by name, learned by the model, mapped between stores."""

import numpy as np
from conftest import LEARNED_KMER

from deeprc.cli import main
from deeprc.features import GeneVocabulary
from deeprc.store import AMINO_ACIDS, Store, gene_name

COMMON_V = ["TRBV5-1*01", "TRBV6-2*01", "TRBV7-9*01", "TRBV12-3*01", "TRBV28*01"]
SIGNAL_V = "TRBV30*01"


def test_gene_names_drop_alleles_and_keep_the_first_call():
    assert gene_name("TRBV6-2*01,TRBV6-3*01") == "TRBV6-2"
    assert gene_name("TRBJ2-7*01") == "TRBJ2-7"
    assert gene_name(" TRBV5-1 ") == "TRBV5-1"
    assert gene_name("") == ""


def test_the_store_keeps_each_rows_v_and_j_gene_by_name(h, tmp_path):
    rows = {
        "a": [h.rec(v_call="TRBV6-2*01,TRBV6-3*01"), h.rec(v_call="TRBV5-1*02", j_call="")],
        "b": [h.rec(v_call="", j_call="TRBJ1-1*01"), h.rec()],
    }
    for name, records in rows.items():
        h.write_airr(tmp_path / f"{name}.tsv", records)
    h.write_metadata(tmp_path / "m.tsv", [("a", "a.tsv", "0"), ("b", "b.tsv", "1")])
    _, out = h.run_ingest(tmp_path / "m.tsv")
    store = Store(out)
    assert store.gene_names == {"v": ["", "TRBV5-1", "TRBV6-2"], "j": ["", "TRBJ1-1", "TRBJ2-5"]}
    named = [(store.gene_names["v"][v], store.gene_names["j"][j]) for v, j in store.genes]
    expected = [("TRBV6-2", "TRBJ2-5"), ("TRBV5-1", ""), ("", "TRBJ1-1"), ("TRBV5-1", "TRBJ2-5")]
    assert named == expected


def _cohort(h, root, n_repertoires=60, n_sequences=200, signal_rate=0.1, seed=0):
    """Junctions drawn from one pool for both classes (so they tell nothing, nor single out a
    repertoire); only positives carry the V gene TRBV30 (in ``signal_rate`` of their
    sequences)."""
    rng = np.random.default_rng(seed)
    pool = ["".join(rng.choice(list(AMINO_ACIDS), rng.integers(6, 10))) for _ in range(30)]
    root.mkdir()
    meta = []
    for r in range(n_repertoires):
        label = r % 2
        records = []
        for i in range(n_sequences):
            middle = pool[rng.integers(len(pool))]
            v = SIGNAL_V if label and i < signal_rate * n_sequences else rng.choice(COMMON_V)
            records.append(h.rec(f"CASS{middle}F", v_call=str(v), sequence_id=f"s{i}"))
        h.write_airr(root / f"r{r}.tsv", records)
        meta.append((f"r{r}", f"r{r}.tsv", str(label)))
    h.write_metadata(root / "metadata.tsv", meta)
    return root / "metadata.tsv"


def test_a_v_gene_signal_is_learned_with_gene_embedding_and_not_without(h, tmp_path):
    metadata = _cohort(h, tmp_path / "data")
    store = tmp_path / "store"
    assert main(["ingest", "--metadata", str(metadata), "--label-column", "label",
                 "--out", str(store), "--threads", "1"]) == 0  # fmt: skip
    folds = tmp_path / "folds.tsv"
    assert main(["split", "--store", str(store), "--out", str(folds), "--k", "3"]) == 0
    train = "train: {n_sequences: 200, max_steps: 150, eval_every: 25, top_fraction: 1.0}\n"
    train = LEARNED_KMER + train
    aucs = {
        genes: h.fold0_test_auc(
            store, folds, f"model: {{gene_embedding: {genes}}}\n{train}", tmp_path / f"g{genes}"
        )
        for genes in (0, 4)
    }
    assert aucs[4] == 1.0, aucs
    assert aucs[0] < 0.8, aucs  # the junctions carry no signal


def test_another_stores_genes_map_to_the_models_by_name(h, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    h.write_airr(first / "a.tsv", [h.rec(v_call="TRBV5-1*01"), h.rec(v_call="TRBV6-2*01")])
    h.write_airr(first / "b.tsv", [h.rec(v_call="TRBV7-9*01")])
    h.write_metadata(first / "m.tsv", [("a", "a.tsv", "0"), ("b", "b.tsv", "1")])
    second = tmp_path / "second"
    second.mkdir()
    h.write_airr(second / "c.tsv", [h.rec(v_call="TRBV7-9*01"), h.rec(v_call="TRBV99-1*01")])
    h.write_airr(second / "d.tsv", [h.rec(v_call="TRBV7-9*01")])
    h.write_metadata(second / "m.tsv", [("c", "c.tsv", "0"), ("d", "d.tsv", "1")])
    vocabulary = GeneVocabulary(Store(h.run_ingest(first / "m.tsv")[1]).gene_names)
    other = Store(h.run_ingest(second / "m.tsv")[1])
    table = vocabulary.table(other)
    v_names = vocabulary.names["v"]
    mapped = [v_names[table[0, i]] for i in range(len(other.gene_names["v"]))]
    assert other.gene_names["v"] == ["", "TRBV7-9", "TRBV99-1"]
    assert mapped == ["", "TRBV7-9", ""]  # TRBV99-1 is unknown to the model: no call
