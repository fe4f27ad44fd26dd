"""The simulator: valid AIRR files, exact signals and ground truth, same seed -> same bytes."""

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import airr
import numpy as np
import pandas as pd
import pytest
from olga.utils import nt2aa

from deeprc.cli import main
from deeprc.config import load
from deeprc.errors import InputError
from deeprc.ingest import ingest
from deeprc.simulate import MotifSignal, PublicSignal, SimulationConfig, simulate

ROOT = Path(__file__).parents[1]
SMALL = dict(n_repertoires=8, n_sequences=400, pool_size=4000, seed=5)


def read_cohort(out: Path) -> pd.DataFrame:
    frames = []
    for path in sorted(out.glob("*.tsv.gz")):
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        frames.append(frame.assign(repertoire_id=path.name.split(".")[0]))
    return pd.concat(frames, ignore_index=True)


def tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    read = lambda name: pd.read_csv(out / name, sep="\t", dtype=str, keep_default_na=False)  # noqa: E731
    return read("metadata.tsv"), read("truth.tsv"), read("truth_repertoires.tsv")


@pytest.fixture(scope="module")
def motif_cohort(tmp_path_factory) -> tuple[SimulationConfig, Path]:
    cfg = SimulationConfig(
        **SMALL,
        motifs=(MotifSignal(name="m", motif="SL.RF", witness_rate=0.02),),
    )
    out = tmp_path_factory.mktemp("sim") / "cohort"
    simulate(cfg, out, threads=1)
    return cfg, out


def test_files_are_valid_airr_and_junctions_translate(motif_cohort, tmp_path):
    _, out = motif_cohort
    for path in sorted(out.glob("*.tsv.gz")):
        plain = tmp_path / path.name.removesuffix(".gz")
        plain.write_bytes(gzip.decompress(path.read_bytes()))
        assert airr.validate_rearrangement(str(plain))
    rows = read_cohort(out)
    assert len(rows) == 8 * 400
    assert (rows["junction"].map(nt2aa) == rows["junction_aa"]).all()
    assert rows["sequence_id"].is_unique
    assert rows["v_call"].str.startswith("TRBV").all() and (rows["locus"] == "TRB").all()


def test_motif_is_in_exactly_the_truth_rows_at_the_witness_rate(motif_cohort):
    cfg, out = motif_cohort
    meta, truth, reps = tables(out)
    rows = read_cohort(out).set_index("sequence_id")
    per_repertoire = truth.groupby("repertoire_id").size()
    positives = set(reps.loc[reps["true_status"] == "positive", "repertoire_id"])
    assert len(positives) == 4
    assert per_repertoire.to_dict() == dict.fromkeys(sorted(positives), 8)  # 2% of 400
    carried = rows.loc[truth["sequence_id"], "junction_aa"]
    # the motif, a wildcard keeping some residue, anchors untouched
    assert carried.str.contains(r"^..+SL[A-Z]RF.{2,}$").all()
    assert (truth["signal"] == "m").all()
    assert (meta["status"] == reps["observed_status"]).all()


def test_same_seed_same_bytes_serial_or_parallel_and_another_seed_differs(
    motif_cohort, tmp_path, h
):
    cfg, out = motif_cohort
    simulate(cfg, tmp_path / "again", threads=2)
    h.same_files(out, tmp_path / "again")
    other = SimulationConfig(**{**SMALL, "seed": 6}, motifs=cfg.motifs)
    simulate(other, tmp_path / "other", threads=1)
    assert (tmp_path / "other" / "rep0.tsv.gz").read_bytes() != (out / "rep0.tsv.gz").read_bytes()


def test_clonotypes_recur_between_individuals_and_clone_sizes_are_heavy_tailed(motif_cohort):
    _, out = motif_cohort
    rows = read_cohort(out)
    per_clonotype = rows.groupby(["junction_aa", "v_call"])["repertoire_id"].nunique()
    assert (per_clonotype >= 2).sum() > 50  # shared between individuals
    counts = rows["duplicate_count"].astype(int)
    assert counts.median() == 1 and counts.max() >= 50 and counts.min() >= 1


def test_ingest_keeps_every_simulated_row(motif_cohort, tmp_path):
    _, out = motif_cohort
    report = ingest(out / "metadata.tsv", tmp_path / "store", label_column="status", threads=1)
    assert report["rows_kept"].tolist() == [400] * 8


def test_deletion_substitution_and_v_gene_restriction(tmp_path):
    deleted = MotifSignal(
        name="del", motif="WCWH", witness_rate=0.05, deletion_rate=1.0, position=3
    )
    noisy = MotifSignal(name="noise", motif="HHHHHH", witness_rate=0.05, substitution_rate=0.5)
    restricted = MotifSignal(
        name="v20", motif="MMM", witness_rate=0.01, v_genes=("TRBV20-1",), position=3
    )
    cfg = SimulationConfig(**SMALL, motifs=(deleted, noisy, restricted))
    simulate(cfg, tmp_path / "out", threads=1)
    _, truth, _ = tables(tmp_path / "out")
    rows = read_cohort(tmp_path / "out").set_index("sequence_id")
    junction = rows.loc[truth["sequence_id"], "junction_aa"].to_numpy()
    by_signal = dict(tuple(pd.Series(junction).groupby(truth["signal"].to_numpy())))
    remnants = {"CWH", "WWH", "WCH", "WCW"}  # WCWH with one position left out
    assert by_signal["del"].str[3:6].isin(remnants).all()
    h_runs = by_signal["noise"].str.count("H")
    assert h_runs.mean() < 5.5 and (h_runs >= 1).all()  # about half the positions replaced
    assert (by_signal["v20"].str[3:6] == "MMM").all()
    genes = rows.loc[truth.loc[truth["signal"] == "v20", "sequence_id"], "v_call"]
    assert genes.str.startswith("TRBV20-1*").all()
    assert (rows.loc[truth["sequence_id"], "junction"].map(nt2aa) == junction).all()


def test_public_clonotypes_label_noise_imbalance_and_signal_in_negatives(tmp_path):
    cfg = SimulationConfig(
        n_repertoires=20,
        n_sequences=300,
        pool_size=3000,
        positive_fraction=0.25,
        label_noise=0.1,
        seed=2,
        motifs=(MotifSignal(name="m", motif="SLRF", witness_rate=0.01, negative_fraction=0.2),),
        public_clonotypes=(PublicSignal(name="pub", n_clonotypes=10, presence=0.5),),
    )
    summary = simulate(cfg, tmp_path / "out", threads=1)
    meta, truth, reps = tables(tmp_path / "out")
    assert (reps["true_status"] == "positive").sum() == 5
    assert (reps["label_flipped"] == "True").sum() == 2
    assert (
        (reps["true_status"] != reps["observed_status"]) == (reps["label_flipped"] == "True")
    ).all()
    negatives_with_motif = reps[(reps["true_status"] == "negative") & (reps["motifs"] == "m")]
    assert len(negatives_with_motif) == 3  # 20% of 15
    rows = read_cohort(tmp_path / "out").set_index("sequence_id")
    public = {(c["junction_aa"], c["v_call"]) for c in summary["public_clonotypes"]["pub"]}
    placed = rows.loc[truth.loc[truth["signal"] == "pub", "sequence_id"]]
    assert set(zip(placed["junction_aa"], placed["v_call"], strict=True)) <= public
    per_rep = Counter(truth.loc[truth["signal"] == "pub", "repertoire_id"])
    positives = reps.loc[reps["true_status"] == "positive", "repertoire_id"]
    assert set(per_rep) <= set(positives)  # negative_presence is 0
    assert 10 <= sum(per_rep.values()) <= 40  # 5 positives x 10 clonotypes x 0.5
    assert summary["n_implanted"]["pub"] == sum(per_rep.values())


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("n_repertoires: 10\nwitness_rate: 0.1\n")
    with pytest.raises(InputError, match=r"bad\.yaml: unknown key 'witness_rate'"):
        load(SimulationConfig, bad)
    bad.write_text("motifs:\n  - {name: a, motif: SLRF, witnes_rate: 0.1}\n")
    with pytest.raises(InputError, match=r"motifs\[0\]: unknown key 'witnes_rate'.*witness_rate"):
        load(SimulationConfig, bad)
    bad.write_text("motifs:\n  - {name: a, motif: SLBF, witness_rate: 0.1}\n")
    with pytest.raises(InputError, match="20 amino-acid letters"):
        load(SimulationConfig, bad)
    bad.write_text("n_sequences: many\n")
    with pytest.raises(InputError, match="n_sequences: expected int"):
        load(SimulationConfig, bad)


def test_too_few_carriers_is_a_clear_error(tmp_path):
    signal = MotifSignal(name="rare", motif="SLRF", witness_rate=0.5, v_genes=("TRBV30",))
    with pytest.raises(InputError, match="motif 'rare'.*lower witness_rate"):
        simulate(SimulationConfig(**SMALL, motifs=(signal,)), tmp_path / "out", threads=1)
    assert not list(tmp_path.iterdir()), "a failed run left files behind"


@pytest.mark.parametrize("preset", sorted((ROOT / "configs" / "simulate").glob("*.yaml")))
def test_presets_load(preset):
    cfg = load(SimulationConfig, preset)
    assert cfg.signals or cfg.positive_depth != 1  # something to find


def test_positive_depth_confounds_the_label_with_repertoire_size_and_nothing_else(tmp_path):
    cfg = SimulationConfig(**SMALL | {"n_sequences": 300}, positive_depth=2.0)
    simulate(cfg, tmp_path / "out", threads=1)
    meta, truth, _ = tables(tmp_path / "out")
    sizes = read_cohort(tmp_path / "out").groupby("repertoire_id").size()
    status = meta.set_index("repertoire_id")["status"]
    assert set(sizes[status[sizes.index] == "positive"]) == {600}
    assert set(sizes[status[sizes.index] == "negative"]) == {300}
    assert truth.empty
    with pytest.raises(InputError, match="pool_size must be at least"):
        SimulationConfig(n_sequences=300, pool_size=500, positive_depth=2.0)


def test_cli_writes_the_cohort_and_seed_overrides(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        "n_repertoires: 4\nn_sequences: 100\npool_size: 1000\nseed: 1\n"
        "motifs:\n  - {name: m, motif: SLRF, witness_rate: 0.05}\n"
    )
    assert main(["simulate", "--config", str(config), "--out", str(tmp_path / "a")]) == 0
    assert "implanted in" in capsys.readouterr().out
    args = ["simulate", "--config", str(config), "--threads", "1", "--seed", "9"]
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    summary = json.loads((tmp_path / "b" / "simulation.json").read_text())
    assert summary["config"]["seed"] == 9
    assert main([*args, "--out", str(tmp_path / "b")]) == 2  # exists, no --overwrite
    ids = np.array(sorted(p.name for p in (tmp_path / "a").glob("*.tsv.gz")))
    assert ids.tolist() == ["rep0.tsv.gz", "rep1.tsv.gz", "rep2.tsv.gz", "rep3.tsv.gz"]
    assert re.fullmatch(r"rep0_\d{7}", read_cohort(tmp_path / "a")["sequence_id"][0])


def test_a_real_background_is_resampled_and_every_dropped_row_is_counted(tmp_path, capsys):
    """Repertoires sample the file's distinct usable rearrangements (a relative path is read
    beside the config); each row left out is counted under its reason."""
    shipped = pd.read_csv(ROOT / "data/real_background/immunarch_trb.tsv.gz", sep="\t", dtype=str)
    key = ["junction", "junction_aa", "v_call", "j_call"]
    good = shipped[shipped["productive"] == "T"].drop_duplicates(key).head(300)
    bad = good.head(4).copy()
    bad.iloc[0, bad.columns.get_loc("productive")] = "F"
    bad.iloc[1, bad.columns.get_loc("v_call")] = "TRAV1-1"
    bad.iloc[2, bad.columns.get_loc("junction_aa")] = "CASSXF"
    bad.iloc[3, bad.columns.get_loc("junction")] = bad.iloc[3]["junction"][:-3]
    (tmp_path / "bg").mkdir()
    pd.concat([good, bad, good.head(2)]).to_csv(tmp_path / "bg/real.tsv", sep="\t", index=False)
    config = tmp_path / "c.yaml"
    text = "n_repertoires: 4\nn_sequences: {}\nseed: 1\nbackground: bg/real.tsv\n"
    text += "motifs:\n  - {{name: m, motif: SLRF, witness_rate: 0.05}}\n"
    config.write_text(text.format(200))
    args = ["simulate", "--config", str(config), "--threads", "1", "--out"]
    assert main([*args, str(tmp_path / "out")]) == 0

    background = json.loads((tmp_path / "out/simulation.json").read_text())["background"]
    assert background["kept"] == 300
    assert background["dropped"] == {
        "not productive": 1,
        "v_call not of locus TRB": 1,
        "junction_aa not of the 20 amino acids": 1,
        "junction not 3 x junction_aa long": 1,
        "duplicate rearrangement": 2,
    }
    cohort = read_cohort(tmp_path / "out")
    implanted = cohort["sequence_id"].isin(tables(tmp_path / "out")[1]["sequence_id"])
    assert implanted.sum() == 2 * 10 and cohort[implanted]["junction_aa"].str.contains("SLRF").all()
    drawn = set(map(tuple, cohort.loc[~implanted, key].to_numpy()))
    assert drawn <= set(map(tuple, good[key].to_numpy()))
    translated = cohort["junction"].map(nt2aa)
    assert (translated == cohort["junction_aa"]).all()

    config.write_text(text.format(400))
    capsys.readouterr()
    assert main([*args, str(tmp_path / "too_small")]) == 2
    assert re.search(r"real\.tsv holds 300 usable .* n_sequences = 400", capsys.readouterr().err)
