"""Real antigen-specific clonotypes implanted into a real background: set members only, in the
carriers only, counted in truth.tsv, the same bytes from the same seed, and clear errors."""

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from olga.utils import nt2aa

from deeprc.cli import main
from deeprc.config import load
from deeprc.errors import InputError
from deeprc.simulate import EpitopeSignal, SimulationConfig, simulate

ROOT = Path(__file__).parents[1]
SETS = ROOT / "data/antigen_specific/mira_trb.tsv.gz"
BACKGROUND = str(ROOT / "data/real_background/immunarch_trb.tsv.gz")
SET = "mira_10_LSPRWYFYY"  # antigen_mira_3's; the kept-aside sets stay unused
KEY = ["junction_aa", "v_call", "j_call"]


def signal(**changes) -> EpitopeSignal:
    fields = dict(name="mira", file=str(SETS), epitope_set=SET, witness_rate=0.02)
    return EpitopeSignal(**fields | changes)


def cohort_config(**changes) -> SimulationConfig:
    fields = dict(n_repertoires=8, n_sequences=400, background=BACKGROUND, seed=4)
    return SimulationConfig(**fields | changes)


def read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name, sep="\t", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[SimulationConfig, Path]:
    """Half of the positives and a quarter of the negatives carry the set at 2% (8 of 400)."""
    epitope = signal(repertoire_fraction=0.5, negative_fraction=0.25)
    cfg = cohort_config(epitope_sequences=(epitope,))
    out = tmp_path_factory.mktemp("antigen") / "cohort"
    simulate(cfg, out, threads=1)
    return cfg, out


def test_implanted_rows_are_members_of_the_set_in_the_carriers_only(cohort):
    _, out = cohort
    rows = pd.concat(
        read(out, path.name).assign(repertoire_id=path.name.split(".")[0])
        for path in sorted(out.glob("rep*.tsv.gz"))
    ).set_index("sequence_id")
    truth, reps = read(out, "truth.tsv"), read(out, "truth_repertoires.tsv")
    carriers = reps.loc[reps["motifs"] == "mira"]
    assert (carriers["true_status"] == "positive").sum() == 2  # half of 4
    assert (carriers["true_status"] == "negative").sum() == 1  # a quarter of 4
    assert (truth["signal"] == "mira").all()
    per_repertoire = truth.groupby("repertoire_id").size().to_dict()
    assert per_repertoire == dict.fromkeys(carriers["repertoire_id"], 8)

    implanted = rows.loc[truth["sequence_id"]]
    members = pd.read_csv(SETS, sep="\t", dtype=str)
    members = set(map(tuple, members.loc[members["epitope_set"] == SET, KEY].to_numpy()))
    assert set(map(tuple, implanted[KEY].to_numpy())) <= members
    assert not implanted.duplicated(["repertoire_id", *KEY]).any()  # drawn without replacement
    assert (implanted["junction"].map(nt2aa) == implanted["junction_aa"]).all()
    assert (implanted["productive"] == "T").all()
    summary = json.loads((out / "simulation.json").read_text())
    assert summary["n_implanted"] == {"mira": 24}
    report = summary["epitope_sequences"]["mira"]
    assert report["epitope_set"] == SET and report["kept"] <= report["rows"] == 1933


def test_same_seed_same_bytes(cohort, tmp_path, h):
    cfg, out = cohort
    simulate(cfg, tmp_path / "again", threads=2)
    h.same_files(out, tmp_path / "again")


def test_genes_take_the_backgrounds_form_and_unused_genes_are_left_out(tmp_path):
    """An OLGA pool writes alleles (TRBV20-1*01); a gene the background never uses (TRBV12-1, a
    pseudogene) would mark an implanted row by its name alone."""
    sets = tmp_path / "sets.tsv"
    pd.DataFrame(
        {
            "junction_aa": ["CASSLGQAYEQYF", "CASSPDRGNTEAFF", "CASSLAPGATNEKLFF"],
            "v_call": ["TRBV20-1", "TRBV7-9", "TRBV12-1"],
            "j_call": ["TRBJ2-7", "TRBJ1-1", "TRBJ1-4"],
            "epitope_set": "tiny",
        }
    ).to_csv(sets, sep="\t", index=False)
    epitope = signal(file=str(sets), epitope_set="tiny", witness_rate=0.01)
    cfg = SimulationConfig(
        n_repertoires=2, n_sequences=200, pool_size=2000, seed=1, epitope_sequences=(epitope,)
    )
    summary = simulate(cfg, tmp_path / "out", threads=1)
    assert summary["epitope_sequences"]["mira"]["dropped"]["V or J gene not in the background"] == 1
    truth = read(tmp_path / "out", "truth.tsv")
    rows = read(tmp_path / "out", f"{truth['repertoire_id'][0]}.tsv.gz").set_index("sequence_id")
    implanted = rows.loc[truth["sequence_id"]]
    assert len(implanted) == 2 and implanted["v_call"].str.fullmatch(r"TRBV[\d-]+\*01").all()
    assert implanted["j_call"].str.fullmatch(r"TRBJ[\d-]+\*01").all()


def test_a_relative_file_is_read_beside_the_config(tmp_path, capsys):
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets/mira.tsv.gz").write_bytes(SETS.read_bytes())
    config = tmp_path / "c.yaml"
    config.write_text(
        f"n_repertoires: 4\nn_sequences: 200\nbackground: {BACKGROUND}\nseed: 2\n"
        "epitope_sequences:\n"
        f"  - {{name: mira, file: sets/mira.tsv.gz, epitope_set: {SET}, witness_rate: 0.01}}\n"
    )
    assert main(["simulate", "--config", str(config), "--out", str(tmp_path / "out")]) == 0
    assert "signal mira" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out/simulation.json").read_text())
    assert summary["epitope_sequences"]["mira"]["file"] == str(tmp_path / "sets/mira.tsv.gz")
    assert summary["n_implanted"]["mira"] == 2 * 2


def test_errors_name_the_file_the_set_and_the_key(tmp_path):
    missing = tmp_path / "nowhere.tsv.gz"
    with pytest.raises(InputError, match=r"epitope signal 'mira': .*nowhere\.tsv\.gz"):
        simulate(cohort_config(epitope_sequences=(signal(file=str(missing)),)), tmp_path / "a")
    with pytest.raises(InputError, match=r"no epitope_set 'mira_1'; it has \['mira_10_LSPRW"):
        simulate(cohort_config(epitope_sequences=(signal(epitope_set="mira_1"),)), tmp_path / "b")
    too_few = signal(witness_rate=1.0)
    with pytest.raises(InputError, match=rf"'{SET}' of .*mira_trb.*holds 1,9\d\d usable .* 2,000"):
        simulate(cohort_config(n_sequences=2000, epitope_sequences=(too_few,)), tmp_path / "c")
    assert not list(tmp_path.iterdir()), "a failed run left files behind"
    bad = tmp_path / "bad.yaml"
    bad.write_text("epitope_sequences:\n  - {name: a, file: x, epitope_set: y, witnes_rate: 0.1}\n")
    with pytest.raises(InputError, match=r"epitope_sequences\[0\]: unknown key 'witnes_rate'"):
        load(SimulationConfig, bad)
    with pytest.raises(
        InputError, match=r"epitope signal 'mira': witness_rate must be in \(0, 1\]"
    ):
        cohort_config(epitope_sequences=(signal(witness_rate=0.0),))


@pytest.mark.parametrize("preset, rank", [("antigen_mira_2", 2), ("antigen_mira_3", 3)])
def test_presets_name_the_2nd_and_3rd_largest_sets(preset, rank):
    """The extract holds the 2nd to 5th largest sets; the 4th and 5th are kept for checking."""
    cfg = load(SimulationConfig, ROOT / f"configs/simulate/{preset}.yaml")
    (epitope,) = cfg.epitope_sequences
    assert (cfg.n_repertoires, cfg.n_sequences, epitope.witness_rate) == (200, 5000, 0.005)
    assert cfg.background == "../../data/real_background/immunarch_trb.tsv.gz"
    by_size = pd.read_csv(SETS, sep="\t", dtype=str)["epitope_set"].value_counts().index
    assert by_size[rank - 2] == epitope.epitope_set
    with gzip.open(SETS, "rt") as text:
        assert text.readline() == "junction_aa\tv_call\tj_call\tepitope_set\n"
