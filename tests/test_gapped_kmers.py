"""Gapped k-mers (four residues over six positions) and the burden test built on them."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from deeprc.baselines import BASELINES, GappedKmerBurden
from deeprc.features import gapped
from deeprc.ingest import ingest
from deeprc.simulate import MotifSignal, SimulationConfig, simulate
from deeprc.store import Store


def python_patterns(sequence: str) -> set[str]:
    """Every window of six residues under every mask, written out by hand."""
    found = set()
    for start in range(len(sequence) - 5):
        window = sequence[start : start + 6]
        for a, b in combinations(range(1, 5), 2):
            found.add("".join(c if i in (0, a, b, 5) else "." for i, c in enumerate(window)))
    return found


def test_pattern_codes_and_presence_equal_a_python_enumeration(h, tmp_path):
    sequences = ["CASSLRFE", "CASSF", "CAWSVGGQPQHF", "CASSLRFE"]
    h.write_airr(tmp_path / "a.tsv", [h.rec(s) for s in sequences[:2]])
    h.write_airr(tmp_path / "b.tsv", [h.rec(s) for s in sequences[2:]])
    h.write_metadata(tmp_path / "m.tsv", [("a", "a.tsv", "1"), ("b", "b.tsv", "0")])
    store = Store(h.run_ingest(tmp_path / "m.tsv")[1])
    bits = gapped.presence(store, np.arange(2))
    counts = list(gapped.repertoire_pattern_counts(store, np.arange(2)))
    assert bits.shape == (2, gapped.N_PATTERNS // 8) and gapped.N_PATTERNS == 6 * 20**4
    index = {rid: i for i, rid in enumerate(store.repertoires["repertoire_id"])}
    for rid, own in (("a", sequences[:2]), ("b", sequences[2:])):
        codes = np.flatnonzero(np.unpackbits(bits[index[rid]]))
        expected = set().union(*(python_patterns(s) for s in own))
        assert {gapped.pattern_name(c) for c in codes} == expected
        assert len(codes) == len(expected)  # no two patterns share a code
        windows = sum(6 * max(len(s) - 5, 0) for s in own)
        assert counts[index[rid]].sum() == windows
        np.testing.assert_array_equal(np.flatnonzero(counts[index[rid]]), codes)


def test_the_burden_test_finds_a_gapped_motif_that_no_4mer_holds(tmp_path):
    """S.L.RF (four residues over six) in 5% of the positives' sequences: the implanted
    pattern is among the ten most associated ones (the others share three of its residues and
    a background one at a wildcard; S.L.RF itself occurs in two negatives by chance) and the
    held-out repertoires separate."""
    cfg = SimulationConfig(
        n_repertoires=60, n_sequences=300, pool_size=6000, seed=2,
        motifs=(MotifSignal(name="m", motif="S.L.RF", witness_rate=0.05),),
    )  # fmt: skip
    simulate(cfg, tmp_path / "sim", threads=1)
    ingest(tmp_path / "sim" / "metadata.tsv", tmp_path / "store", label_column="status", threads=1)
    store = Store(tmp_path / "store")
    order = np.random.default_rng(0).permutation(len(store.repertoires))
    train, test = order[:40], order[40:]
    model = GappedKmerBurden().fit(store, train)
    assert model.threshold_ in model.p_thresholds and model.inner_auc_ > 0.9
    table = model.associated_
    assert "S.L.RF" in table["pattern"].head(10).tolist(), table.head(10)
    assert table["p_value"].is_monotonic_increasing and (table["p_value"] < model.threshold_).all()
    assert roc_auc_score(store.labels[test], model.decision(store, test)) >= 0.95
    probability = model.probability(store, test)
    assert ((probability > 0) & (probability < 1)).all()
    assert "gapped_kmer_burden" in BASELINES
    assert isinstance(model.tables()["associated_patterns.tsv"], pd.DataFrame)
