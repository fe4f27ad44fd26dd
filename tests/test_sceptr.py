"""The pretrained encoder (encoder: sceptr): its vectors are SCEPTR's, computed once per store
and reused, refused V genes are counted and read a learned vector, and the plain install says
what to install. Tests that run SCEPTR need the extra (pip install -e '.[sceptr]'); CI runs
them in a second pass with it (.ci/run)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_study, rec, run_ingest

from deeprc.atomic import atomic_directory
from deeprc.classifier import RepertoireClassifier
from deeprc.errors import InputError
from deeprc.experiment import Experiment, TrainConfig
from deeprc.model import ModelConfig
from deeprc.store import Store

REFUSED = "TRBV21-1"  # a TRBV gene that is not functional: SCEPTR has no loops for it
READ = ("TRBV5-1", "TRBV7-9", "TRBV20-1", "TRBV28")
SCEPTR = Experiment(
    model=ModelConfig(encoder={"name": "sceptr", "size": 8}),
    evidence=(),
    weigh_evidence=False,
    train=TrainConfig(max_steps=2, eval_every=1, n_sequences=50, batch_size=4),
)


def _junction(rng: np.random.Generator) -> str:
    return "CASS" + "".join(rng.choice(list("ADEGKLNPQRSTVY"), rng.integers(3, 9))) + "YEQYF"


@pytest.fixture
def study(tmp_path):
    """8 repertoires of 40 rows; each has 5 rows of the refused V gene and a clonotype shared by
    all of them (embedded once)."""
    rng = np.random.default_rng(0)
    files = {}
    for r in range(8):
        rows = [rec("CASSLGQETQYF", v_call="TRBV5-1*01")]
        rows += [rec(_junction(rng), v_call=f"{READ[i % 4]}*01") for i in range(34)]
        rows += [rec(_junction(rng), v_call=f"{REFUSED}*01") for _ in range(5)]
        files[f"rep{r}.tsv"] = rows
    _, store = run_ingest(make_study(tmp_path / "data", files))
    return Store(store)


def _roles() -> dict[str, np.ndarray]:
    return {"train": np.array([0, 1, 2, 3, 4, 5]), "validation": np.array([6, 7])}


def test_vectors_are_sceptrs_computed_once_and_reused(study, tmp_path, capfd):
    pytest.importorskip("sceptr")
    first = RepertoireClassifier.fit(study, tmp_path / "a.pt", experiment=SCEPTR, roles=_roles())
    assert "SCEPTR vectors of" in capfd.readouterr().err
    cache = study.path / "pretrained_B_SCEPTR"
    summary = json.loads((cache / "summary.json").read_text())
    stamp = (cache / "summary.json").stat().st_mtime_ns
    # 8 x 35 rows of read genes; the shared clonotype once, the others (drawn at random) distinct
    parts = [study.sequences(r) for r in range(8)]
    read = [p[~p["v_call"].str.startswith(REFUSED)] for p in parts]
    distinct = {(j, v) for p in read for j, v in zip(p["junction_aa"], p["v_call"], strict=True)}
    assert summary["n_clonotypes_embedded"] == len(distinct) < 8 * 35

    # a second training, prediction and a loaded model read the cache: nothing is embedded
    second = RepertoireClassifier.fit(study, tmp_path / "b.pt", experiment=replace(
        SCEPTR, train=replace(SCEPTR.train, seed=1)), roles=_roles())  # fmt: skip
    RepertoireClassifier.load(tmp_path / "a.pt").predict(study)
    assert "SCEPTR vectors of" not in capfd.readouterr().err
    assert (cache / "summary.json").stat().st_mtime_ns == stamp
    assert first.predict(study)["logit"].notna().all()
    assert second.card()["pretrained"] == first.card()["pretrained"]  # the same cache's counts

    # the cached vectors are SCEPTR's own (its DataFrame API), to float16's precision
    from sceptr._model_saves import load_variant

    rows = read[0]
    inputs = first.features.inputs_of(study, 0)(np.flatnonzero(
        ~parts[0]["v_call"].str.startswith(REFUSED)) + int(study.offsets[0]))  # fmt: skip
    reference = load_variant("B_SCEPTR").calc_vector_representations(
        pd.DataFrame({"TRBV": rows["v_call"].to_numpy(), "CDR3B": rows["junction_aa"].to_numpy()})
    )
    np.testing.assert_allclose(inputs["pretrained"].astype(np.float32), reference, atol=2e-3)


def test_a_refused_v_gene_is_counted_and_reads_the_learned_vector(study, tmp_path):
    pytest.importorskip("sceptr")
    model = RepertoireClassifier.fit(study, tmp_path / "a.pt", experiment=SCEPTR, roles=_roles())
    summary = json.loads((study.path / "pretrained_B_SCEPTR" / "summary.json").read_text())
    assert summary["rows_with_refused_v"] == 8 * 5
    assert summary["refused_v_genes"] == {REFUSED: 8 * 5}
    assert model.card()["pretrained"]["refused_v_genes"] == {REFUSED: 8 * 5}  # show-model's
    part = study.sequences(2)
    refused = np.flatnonzero(part["v_call"].str.startswith(REFUSED))
    rows = refused + int(study.offsets[2])
    vectors = model.features.inputs_of(study, 2)(rows)["pretrained"]
    assert not vectors.any()  # the cache's zero row
    encoder = model.network.encoder
    tokens = torch.from_numpy(study.tokens[rows])
    lengths = torch.from_numpy(np.asarray(study.lengths[rows], dtype=np.int64))
    encoder.zero_grad(set_to_none=True)
    encoded = encoder(tokens, lengths, torch.from_numpy(vectors))
    assert torch.equal(encoded, encoder.unknown.expand(len(rows), -1))
    # training moves it: the gradient reaches it, and not the projection, from these rows
    encoded.sum().backward()
    assert torch.equal(encoder.unknown.grad, torch.full_like(encoder.unknown, len(rows)))
    assert encoder.projection.weight.grad is None or not encoder.projection.weight.grad.any()


def test_the_plain_install_says_how_to_install_the_encoder(study, tmp_path):
    """Without the extra (here: its import blocked) training with encoder: sceptr is a
    one-line error, exit 2, and nothing is written."""
    experiment = tmp_path / "sceptr.yaml"
    experiment.write_text("model: {encoder: sceptr}\nevidence: []\nweigh_evidence: false\n")
    blocked = (
        "import sys; sys.modules['sceptr'] = None; sys.modules['sceptr._model_saves'] = None; "
        "from deeprc.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    out = tmp_path / "m.pt"
    done = subprocess.run(
        [sys.executable, "-c", blocked, "train", "--store", str(study.path), "--all",
         "--experiment", str(experiment), "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install -e '.[sceptr]'" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists() and not (study.path / "pretrained_B_SCEPTR").exists()


def test_ingest_overwrite_replaces_a_store_with_its_cache_but_keeps_foreign_files(tmp_path):
    """The cache is an output of ours inside the store: --overwrite may replace the store with
    it, but not with a file of the user's inside the cache."""
    metadata = make_study(tmp_path / "data")
    _, store = run_ingest(metadata)
    with atomic_directory(store / "pretrained_B_SCEPTR", command="pretrained vectors") as tmp:
        (tmp / "vectors.npy").write_bytes(b"x")
    run_ingest(metadata, overwrite=True)
    assert not (store / "pretrained_B_SCEPTR").exists()
    with atomic_directory(store / "pretrained_B_SCEPTR", command="pretrained vectors") as tmp:
        (tmp / "vectors.npy").write_bytes(b"x")
    (store / "pretrained_B_SCEPTR" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="notes.txt"):
        run_ingest(metadata, overwrite=True)
    assert (store / "pretrained_B_SCEPTR" / "notes.txt").read_text() == "mine"
