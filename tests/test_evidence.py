"""Evidence beside each sequence: counted on the training repertoires only, each leaving
itself out."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from deeprc.baselines import KmerLogistic
from deeprc.classifier import RepertoireClassifier, network_inputs
from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.features import FeatureSet
from deeprc.features.burden_evidence import BurdenEvidence
from deeprc.features.clonotype_evidence import PRIOR_GAIN as CLONOTYPE_PRIOR_GAIN
from deeprc.features.clonotype_evidence import ClonotypeEvidence
from deeprc.features.clonotypes import clonotype_hashes
from deeprc.features.evidence import Evidence, from_file, to_file
from deeprc.features.gapped import pattern_name, pattern_windows
from deeprc.features.gapped_burden_evidence import GappedBurdenEvidence
from deeprc.features.gapped_evidence import GappedEvidence
from deeprc.features.kmer_evidence import PRIOR_GAIN as KMER_PRIOR_GAIN
from deeprc.features.kmer_evidence import KmerEvidence
from deeprc.features.kmer_regression import KmerRegressionEvidence
from deeprc.features.kmers import kmer_counts
from deeprc.ingest import ingest
from deeprc.model import ModelConfig, build_model
from deeprc.outputs import read_predictions
from deeprc.simulate import PublicSignal, SimulationConfig, simulate
from deeprc.split import read_folds
from deeprc.store import Store


def ten_and_one(h, tmp_path, rows_of) -> tuple[Store, dict[str, int], np.ndarray]:
    """A store of five training positives p0-p4, five negatives n0-n4 (one of each per
    evidence group) and a held-out positive t1; ``rows_of(name)``: a repertoire's rows."""
    names = [f"p{i}" for i in range(5)] + [f"n{i}" for i in range(5)] + ["t1"]
    for name in names:
        h.write_airr(tmp_path / f"{name}.tsv", rows_of(name))
    label = {name: "0" if name.startswith("n") else "1" for name in names}
    h.write_metadata(tmp_path / "m.tsv", [(r, f"{r}.tsv", label[r]) for r in names])
    store = Store(h.run_ingest(tmp_path / "m.tsv")[1])
    index = {rid: i for i, rid in enumerate(store.repertoires["repertoire_id"])}
    return store, index, np.array([index[r] for r in names[:-1]])


def evidence_features(providers: list, store: Store, repertoire: int) -> np.ndarray:
    return FeatureSet(providers).evidence_of(store, repertoire)


def training_features(providers: list, store: Store, train: np.ndarray, seed: int) -> np.ndarray:
    return FeatureSet(providers).cross_fitted(store, train, seed)


def rows_of(store: Store, features: np.ndarray, r: int) -> np.ndarray:
    return features[store.offsets[r] : store.offsets[r + 1]]


def test_clonotype_evidence_is_a_carrier_rate_and_never_counts_the_repertoire_itself(h, tmp_path):
    everyone = h.rec("CASSPQALLCF")
    pair = h.rec("CASSAAAF")  # p0 and p1 only; with another V gene it is another clonotype
    other = h.rec("CASSGGGF", v_call="TRBV6-2*01")
    store, index, train = ten_and_one(
        h, tmp_path, lambda r: [everyone, pair if r in ("p0", "p1", "t1") else other]
    )
    evidence = ClonotypeEvidence().fit(store, train)
    # everyone: 5 of 5 positives, 5 of 5 negatives; pair: 2 positives; CASSGGGF: 3 + 5
    carriers = sorted(zip(evidence.positive_.tolist(), evidence.negative_.tolist(), strict=True))
    assert carriers == [(2, 0), (3, 5), (5, 5)]
    held_out = evidence_features([evidence], store, index["t1"])
    np.testing.assert_allclose(held_out, np.log1p([[100, 100], [40, 0]]), rtol=1e-6)

    features = training_features([evidence], store, train, seed=0)
    for name in ("p0", "p3", "n0", "n4"):  # each reads the 8 repertoires of the other groups
        np.testing.assert_allclose(rows_of(store, features, index[name])[0], np.log1p([100, 100]))
    # p0's group holds no other positive: the pair's other carrier p1 alone is too few
    np.testing.assert_allclose(rows_of(store, features, index["p0"])[1], [0, 0])
    assert not rows_of(store, features, index["t1"]).any()  # held out: not a training row
    again = training_features([evidence], store, train, seed=0)
    np.testing.assert_array_equal(features, again)


def test_cross_fitting_blurs_what_a_clonotypes_evidence_says_of_its_carriers_label(tmp_path):
    """On a cohort without signal, whose clonotypes recur between people: leaving only the
    repertoire itself out gives its label away, since among the carriers of one clonotype a
    positive reads (P - 1, N) carriers and a negative (P, N - 1), always less. Cross-fitting
    blurs this (the other groups' carriers vary), but does not remove it: any count that
    leaves the carrier out leaves one of its class out (measured 0.82 here)."""
    cfg = SimulationConfig(n_repertoires=40, n_sequences=300, pool_size=3000, seed=4)
    simulate(cfg, tmp_path / "sim", threads=1)
    ingest(tmp_path / "sim" / "metadata.tsv", tmp_path / "store", label_column="status", threads=1)
    store = Store(tmp_path / "store")
    train, labels = np.arange(40), np.asarray(store.labels)
    evidence = ClonotypeEvidence().fit(store, train)
    hashes = evidence.hashes_
    carriers = np.array([evidence.positive_, evidence.negative_], dtype=float).T
    sizes = np.array([evidence.n_positive_, evidence.n_negative_], dtype=float)
    crossed = training_features([evidence], store, train, seed=0)
    rows = {"cross-fitted": [], "left out": []}
    for r in train:
        keys = clonotype_hashes(store, r)
        where = np.searchsorted(hashes, keys).clip(max=len(hashes) - 1)
        found = np.where(hashes[where] == keys, where, -1)
        own = np.eye(2)[1 - labels[r]]  # column 0 counts positives
        rates = np.where(found[:, None] >= 0, (carriers[found] - own) / (sizes - own), 0.0)
        for name, numbers in (
            ("cross-fitted", crossed[store.offsets[r] : store.offsets[r + 1]]),
            ("left out", np.log1p(100 * rates)),
        ):
            rows[name].append(
                pd.DataFrame({"key": keys, "y": labels[r], "score": numbers @ [1.0, -1.0]})
            )

    def positives_read_less(table: pd.DataFrame) -> float:
        """Over clonotypes carried by both classes: how often a positive carrier reads a
        lower score than a negative one (ties count half)."""
        shares = []
        for _, carried in table[table["key"].isin(hashes)].groupby("key"):
            pos, neg = (carried.loc[carried["y"] == y, "score"].to_numpy() for y in (1, 0))
            if len(pos) and len(neg):
                less = (pos[:, None] < neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
                shares.append(less.mean())
        return float(np.mean(shares))

    assert positives_read_less(pd.concat(rows["left out"])) == 1.0
    assert 0.5 < positives_read_less(pd.concat(rows["cross-fitted"])) < 0.9


def test_public_clonotypes_are_learned_with_evidence_and_not_without(h, tmp_path):
    cfg = SimulationConfig(
        n_repertoires=60, n_sequences=300, pool_size=20_000, seed=3,
        public_clonotypes=(PublicSignal(name="pub", n_clonotypes=20, presence=0.3),),
    )  # fmt: skip
    simulate(cfg, tmp_path / "sim", threads=1)
    ingest(tmp_path / "sim" / "metadata.tsv", tmp_path / "store", label_column="status", threads=1)
    store, folds = str(tmp_path / "store"), str(tmp_path / "folds.tsv")
    assert main(["split", "--store", store, "--out", folds, "--k", "3"]) == 0
    train = "train: {n_sequences: 300, max_steps: 150, eval_every: 25, top_fraction: 1.0}\n"
    aucs = {
        evidence: h.fold0_test_auc(
            store,
            folds,
            "evidence: [{name: clonotype}]\n" + train
            if evidence == "true"
            else "evidence: []\n" + train,
            tmp_path / evidence,
        )
        for evidence in ("false", "true")
    }
    assert aucs["true"] >= 0.95, aucs
    assert aucs["false"] < 0.8, aucs


@pytest.mark.parametrize("heads", [1, 3])
def test_evidence_starts_the_attention_at_its_scaled_log_ratio(heads):
    """Before training, each head's score of a sequence moves by the gain times the change in
    its evidence: log(1 + positive carriers) - log(1 + negative carriers) for clonotypes, the
    k-mer log-ratio; the junction's columns keep their random start."""
    features = FeatureSet([ClonotypeEvidence(), KmerEvidence(4)])
    model = build_model(ModelConfig(num_heads=heads), network_inputs(features), seed=0)
    instances = torch.zeros(5, model.pooling.key.in_features)
    instances[:, -3:] = torch.tensor(
        [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 1.0, 0.5], [0.0, 0.0, -1.0]]
    )
    scores = model.pooling.sequence_scores(instances, model.pooling.state)
    moved = scores - scores[:, :1]
    expected = torch.tensor([0.0, CLONOTYPE_PRIOR_GAIN, -2 * CLONOTYPE_PRIOR_GAIN])
    expected = torch.cat(
        [
            expected,
            torch.tensor([2 * CLONOTYPE_PRIOR_GAIN + 0.5 * KMER_PRIOR_GAIN, -KMER_PRIOR_GAIN]),
        ]
    )
    torch.testing.assert_close(moved, expected.expand(heads, -1), atol=1e-5, rtol=0)
    junction = torch.zeros_like(instances[:1])
    junction[0, 0] = 1.0
    moved_by_junction = model.pooling.sequence_scores(junction, model.pooling.state) - scores[:, :1]
    assert (moved_by_junction.abs() > 1e-4).all()


def test_kmer_evidence_rates_a_sequence_by_its_most_enriched_kmer_fitted_without_it(h, tmp_path):
    def rows(r: str) -> list:
        if r in ("p0", "p1"):
            return [h.rec("CASSLRFE"), h.rec(f"CWWW{'WY'[int(r[1])]}C")]  # SLRF; a private k-mer
        return [h.rec("CSLRFA")] if r == "t1" else [h.rec("CASSGGGE")]

    store, index, train = ten_and_one(h, tmp_path, rows)
    evidence = KmerEvidence(4).fit(store, train)
    # SLRF: in 2 of 5 positives, no negative: log((2/5 + 1) / (0 + 1))
    held_out = evidence_features([evidence], store, index["t1"])
    np.testing.assert_allclose(held_out, [[np.log(1.4)]], rtol=1e-6)
    features = training_features([evidence], store, train, seed=0)
    # p0 reads the other 4 positives and 4 negatives: both its rows read log(1 / 4 + 1), SLRF
    # and CWWW through p1, which carries both; its own WWWW counts nothing
    np.testing.assert_allclose(rows_of(store, features, index["p0"]), np.log(1.25), rtol=1e-6)
    # a negative's CASSGGGE: CASS in all 10, ASSG.. in the 4 other negatives; other groups' p0
    # and p1 both carry CASS: log((4/4 + 1) / (4/4 + 1)) = 0 at most
    assert rows_of(store, features, index["n2"])[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_gapped_evidence_rates_a_sequence_by_its_most_enriched_gapped_kmer(h, tmp_path):
    """S.L.RF in CASWLARFE (p0, p1) and in CSYLQRFA (t1), which share no contiguous 4-mer:
    the gapped k-mer evidence rates t1's row as the k-mer evidence rated a shared 4-mer."""

    def rows(r: str) -> list:
        if r in ("p0", "p1"):
            return [h.rec("CASWLARFE")]
        return [h.rec("CSYLQRFA")] if r == "t1" else [h.rec("CASSGGGE")]

    store, index, train = ten_and_one(h, tmp_path, rows)
    evidence = GappedEvidence().fit(store, train)
    # S.L.RF: in 2 of 5 positives, no negative: log((2/5 + 1) / (0 + 1))
    np.testing.assert_allclose(
        evidence_features([evidence], store, index["t1"]), [[np.log(1.4)]], rtol=1e-6
    )
    assert not KmerEvidence(4).fit(store, train).transform(store, index["t1"]).any()
    features = training_features([evidence], store, train, seed=0)
    # p0 reads the other groups: p1 carries its every pattern, 1 of 4 positives
    np.testing.assert_allclose(rows_of(store, features, index["p0"]), np.log(1.25), rtol=1e-6)


def test_gapped_burden_evidence_counts_each_associated_pattern_once_per_repertoire(h, tmp_path):
    """CASWLARFE in every training positive, CASSGGGE in every negative, and t1 sharing only
    S.L.RF with the positives, in two rows: one-sided Fisher on 5 + 5 repertoires gives the
    positives' patterns p = 1 / C(10, 5) = 0.004; cross-fitted on 4 + 4, 1 / C(8, 4) = 0.014.
    A pattern is credited to its first carrier only, and a row credited with c patterns reads
    v with exp(prior v) = 1 + c (exp(prior) - 1)."""

    def rows(r: str) -> list:
        if r[0] == "p":
            return [h.rec("CASWLARFE"), h.rec("CASSGGGE")]
        if r == "t1":
            return [h.rec("CSYLQRFA"), h.rec("CSYLQRFA"), h.rec("CASSGGGE")]
        return [h.rec("CASSGGGE")]

    store, index, train = ten_and_one(h, tmp_path, rows)
    evidence = GappedBurdenEvidence(p_threshold=0.01).fit(store, train)
    t1 = evidence_features([evidence], store, index["t1"])
    np.testing.assert_array_equal(sorted(t1[:, 0]), [0, 0, 1])  # S.L.RF once, in one row
    assert len(evidence.associated_) > 1 and "S.L.RF" in map(pattern_name, evidence.associated_)
    assert not GappedBurdenEvidence(p_threshold=0.001).fit(store, train).associated_.size
    assert not training_features([evidence], store, train, seed=0).any()
    loose = GappedBurdenEvidence(p_threshold=0.02)
    crossed = training_features([loose], store, train, seed=0)
    fitted = loose.fit(store, train)
    first = int(store.offsets[index["p0"]])  # CASWLARFE's row; its associated patterns
    _, codes = next(pattern_windows(store.tokens[first : first + 1], store.lengths[first:][:1]))
    carried = set(codes.ravel().tolist()) & set(fitted.associated_.tolist())
    gain = loose.prior[0]
    for name in ("p0", "p4"):
        value = rows_of(store, crossed, index[name])[:, 0]
        assert value[1] == 0
        np.testing.assert_allclose(
            np.expm1(gain * value[0]) / np.expm1(gain), len(carried), rtol=1e-5
        )
    assert not rows_of(store, crossed, index["n0"]).any()
    # patterns found once per repertoire for all groups = a refit per group
    group = np.arange(len(train)) % 5
    once = loose.cross_fitted(store, train, group, 5)
    refits = Evidence.cross_fitted(loose, store, train, group, 5)
    for a, b in zip(once, refits, strict=True):
        np.testing.assert_array_equal(a.associated_, b.associated_)
    saved = from_file(GappedBurdenEvidence, to_file(fitted))
    np.testing.assert_array_equal(saved.transform(store, index["t1"]), t1)


def test_kmer_evidence_counted_once_per_repertoire_equals_a_refit_per_group(trained):
    """Cross-fitting counts each repertoire's k-mers once for all groups; each group's rates
    are those of a refit on the other groups, and a row reads the largest log-ratio of its
    k-mers, as a plain loop over its windows finds."""
    store = Store(trained / "store")
    train = np.arange(len(store.repertoires))
    group = np.arange(len(train)) % 5
    by_group = KmerEvidence(3).fit(store, train).cross_fitted(store, train, group, 5)
    assert len(by_group) == 5
    for g, fitted in enumerate(by_group):
        refit = KmerEvidence(3).fit(store, train[group != g])
        assert np.array_equal(fitted.positive_, refit.positive_)
        assert np.array_equal(fitted.negative_, refit.negative_)
        assert (fitted.n_positive_, fitted.n_negative_) == (refit.n_positive_, refit.n_negative_)
    ratio = by_group[0]._log_ratio()
    start, stop = int(store.offsets[1]), int(store.offsets[2])
    expected = []
    for tokens, length in zip(store.tokens[start:stop], store.lengths[start:stop], strict=True):
        codes = [
            (int(tokens[i]) - 1) * 400 + (int(tokens[i + 1]) - 1) * 20 + int(tokens[i + 2]) - 1
            for i in range(int(length) - 2)
        ]
        expected.append(max((ratio[c] for c in codes), default=0.0))
    np.testing.assert_array_equal(by_group[0].transform(store, 1)[:, 0], expected)
    assert len(set(expected)) > 10  # the rows differ: the maximum is not a constant


def test_kmer_regression_evidence_sums_to_the_regression_baselines_score(trained):
    """A repertoire's k-mer regression evidence, summed over its rows and divided by its k-mer
    windows, is the kmer3_logistic baseline's decision less its intercept, up to one factor
    (the largest weight); cross-fitted groups keep the penalty chosen on all repertoires and
    refit their weights; the fitted weights travel in a model file."""
    store = Store(trained / "store")
    train = np.arange(len(store.repertoires))
    evidence = KmerRegressionEvidence(3).fit(store, train)
    baseline = KmerLogistic(k=3).fit(store, train)
    windows = np.asarray(kmer_counts(store, train, 3).sum(axis=1)).ravel()
    summed = np.array([evidence.transform(store, r).sum() for r in train.tolist()])
    linear = baseline.decision(store, train) - baseline.model_.intercept_[0]
    assert np.ptp(linear) > 0.1 and (evidence.weights_ != 0).sum() > 1
    np.testing.assert_allclose(summed / windows, linear / np.abs(linear).max() * np.abs(
        summed / windows).max(), rtol=1e-3, atol=1e-6)  # fmt: skip
    assert np.abs(evidence.weights_).max() == 1.0
    group = np.arange(len(train)) % 5
    by_group = evidence.cross_fitted(store, train, group, 5)
    assert {g.C_ for g in by_group} == {evidence.C_}
    assert not np.array_equal(by_group[0].weights_, evidence.weights_)
    saved = from_file(KmerRegressionEvidence, to_file(evidence))
    np.testing.assert_array_equal(saved.transform(store, 1), evidence.transform(store, 1))


@pytest.mark.parametrize(
    "provider",
    [KmerEvidence(3), GappedBurdenEvidence(1e-2), KmerRegressionEvidence(3), BurdenEvidence(1e-2)],
    ids=lambda p: p.name,
)
def test_cross_fitting_fits_the_provider_itself_as_fit_does(trained, provider):
    """The validation repertoires read the provider that cross-fitting leaves fitted on all
    training repertoires: the same numbers as a fit of its own (the classifier fits nothing
    twice). The k-mer regression's refit on more repertoires keeps the penalty chosen on the
    training ones and refits its weights."""
    store = Store(trained / "store")
    train = np.arange(len(store.repertoires))[:-4]
    provider.cross_fitted(store, train, np.arange(len(train)) % 5, 5)
    alone = provider.clone().fit(store, train)
    for key, value in alone.fitted().items():
        np.testing.assert_array_equal(provider.fitted()[key], value, err_msg=key)
    np.testing.assert_array_equal(provider.transform(store, 1), alone.transform(store, 1))
    refit = provider.refitted(store, np.arange(len(store.repertoires)))
    if isinstance(provider, KmerRegressionEvidence):
        assert refit.C_ == provider.C_ and not np.array_equal(refit.weights_, provider.weights_)


def test_a_model_with_kmer_evidence_trains_saves_and_predicts(h, trained, tmp_path):
    """The fitted k-mer rates travel in the model file (loaded with weights_only) and give
    prediction the same numbers training had."""
    experiment = (
        "evidence: [{name: kmer, k: 4}]\n"
        "train: {n_sequences: 300, max_steps: 100, eval_every: 25}\n"
    )
    model_path, predicted = h.train_fold0(
        trained / "store", trained / "folds.tsv", experiment, tmp_path
    )
    predictions = read_predictions(predicted)
    assert roc_auc_score(predictions["y"], predictions["score"]) >= 0.9
    model = RepertoireClassifier.load(model_path)
    store = Store(trained / "store")
    roles = read_folds(trained / "folds.tsv", store, 0)
    (loaded,) = model.features.evidence
    # test repertoires read rates from training and validation repertoires, as baselines fit
    held_in = np.concatenate([roles["train"], roles["validation"]])
    fitted = KmerEvidence(4).fit(store, held_in)
    assert np.array_equal(loaded.positive_, fitted.positive_)
    assert loaded.n_positive_ == fitted.n_positive_
    assert loaded.n_positive_ + loaded.n_negative_ == len(held_in) > len(roles["train"])


def test_a_model_with_gapped_evidence_trains_saves_and_predicts(h, trained, tmp_path):
    """The gapped k-mer rates (960,000 per class) travel in the model file as k-mer rates do."""
    experiment = (
        "evidence: [{name: gapped}, {name: kmer, k: 4}]\n"
        "train: {n_sequences: 100, max_steps: 2, eval_every: 1}\n"
    )
    model_path, _ = h.train_fold0(trained / "store", trained / "folds.tsv", experiment, tmp_path)
    gapped, _ = RepertoireClassifier.load(model_path).features.evidence
    store = Store(trained / "store")
    roles = read_folds(trained / "folds.tsv", store, 0)
    fitted = GappedEvidence().fit(store, np.concatenate([roles["train"], roles["validation"]]))
    assert np.array_equal(gapped.positive_, fitted.positive_) and gapped.positive_.sum() > 0
    np.testing.assert_array_equal(gapped.transform(store, 0), fitted.transform(store, 0))


def test_burden_evidence_marks_the_clonotypes_emersons_test_calls_associated(h, tmp_path):
    public = h.rec("CASSPQALLCF")  # in all 5 training positives and no negative
    store, index, train = ten_and_one(
        h, tmp_path, lambda r: [public if r[0] in "pt" else h.rec("CASSGGGF"), h.rec("CASSAF")]
    )
    # one-sided Fisher on 5 + 5 repertoires: p = 1 / C(10, 5) = 0.004 for 5 positives, 0 negatives
    evidence = BurdenEvidence(p_threshold=0.01).fit(store, train)
    associated = evidence.hashes_
    assert associated.tolist() == [clonotype_hashes(store, index["t1"])[0]]
    np.testing.assert_array_equal(evidence_features([evidence], store, index["t1"]), [[1], [0]])
    assert len(BurdenEvidence(p_threshold=0.001).fit(store, train).hashes_) == 0
    # cross-fitted, each group reads 4 + 4 repertoires: p = 1 / C(8, 4) = 0.014, not associated
    assert not training_features([evidence], store, train, seed=0).any()
    loose = BurdenEvidence(p_threshold=0.02).fit(store, train)
    crossed = training_features([loose], store, train, seed=0)
    for name, row in (("p0", [1, 0]), ("p4", [1, 0]), ("n0", [0, 0])):
        np.testing.assert_array_equal(rows_of(store, crossed, index[name])[:, 0], row)


def test_a_burden_model_starts_as_a_soft_burden_test():
    """Untrained, the output reads only the heads' log-mean-exp, and the attention starts at
    8 x the burden column and reads nothing else: the logit is log(mean(exp(8 x column))),
    which grows with the share of associated sequences, whatever the junctions."""
    burden = network_inputs(FeatureSet([BurdenEvidence(p_threshold=1e-3)]))
    model = build_model(ModelConfig(num_heads=2), burden, seed=0)
    assert model.starts_as_count and not build_model(ModelConfig(), seed=0).starts_as_count
    torch.manual_seed(1)
    n = 2000
    tokens = torch.randint(1, 21, (1, n, 15))
    lengths = torch.full((1, n), 15)
    logits = []
    for associated in (0, 5, 20, 80):
        evidence = torch.zeros(1, n, 1)
        evidence[0, :associated] = 1.0
        logits.append(model(tokens, lengths, inputs={"evidence": evidence})[0].item())
        soft_burden = torch.logsumexp(8.0 * evidence[0, :, 0], 0) - np.log(n)
        assert logits[-1] == pytest.approx(soft_burden.item(), abs=1e-5)
    assert logits == sorted(logits) and logits[-1] - logits[0] > 1.0, logits


@pytest.mark.parametrize(
    "provider",
    [BurdenEvidence(1e-3), GappedBurdenEvidence(1e-3), KmerRegressionEvidence(3)],
    ids=lambda p: p.name,
)
def test_evidence_that_tests_or_regresses_needs_two_repertoires_of_each_class(
    h, tmp_path, provider
):
    store, index, _ = ten_and_one(h, tmp_path, lambda r: [h.rec("CASSLRFE"), h.rec("CASSGGGE")])
    one_positive = np.array([index["p0"], index["n0"], index["n1"]])
    with pytest.raises(InputError, match=f"{provider.name} evidence needs at least 2 training "
                       "repertoires of each class.*smaller class has 1"):  # fmt: skip
        provider.fit(store, one_positive)
