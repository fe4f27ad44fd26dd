"""Shared fixtures: external AIRR data (airr's own test files, pyimmunarch's immdata) and small
helpers that write AIRR rearrangement TSV files, build studies and check failed runs."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import yaml

from deeprc.cli import main
from deeprc.errors import InputError
from deeprc.ingest import DROP_REASONS, ingest
from deeprc.simulate import MotifSignal, SimulationConfig, simulate
from deeprc.store import decode

# The columns our small hand-written files carry, in this order (a row may leave any out).
SMALL_COLUMNS = (
    "sequence_id",
    "productive",
    "locus",
    "v_call",
    "j_call",
    "junction_aa",
    "duplicate_count",
)
# The AIRR Rearrangement schema's required fields, in the schema's order.
AIRR_REQUIRED = (
    "sequence_id",
    "sequence",
    "rev_comp",
    "productive",
    "v_call",
    "d_call",
    "j_call",
    "sequence_alignment",
    "germline_alignment",
    "junction",
    "junction_aa",
    "v_cigar",
    "d_cigar",
    "j_cigar",
)
AMINO_ACIDS_RE = r"^[ACDEFGHIKLMNPQRSTVWY]{4,40}$"


# ----------------------------------------------------------------------------- writers


def rec(
    junction_aa: str | None = "CASSLGQETQYF",
    *,
    sequence_id: str | None = None,
    productive: str | None = "T",
    locus: str | None = "TRB",
    v_call: str | None = "TRBV5-1*01",
    j_call: str | None = "TRBJ2-5*01",
    duplicate_count: str | int | None = 1,
    **extra: str,
) -> dict[str, str]:
    """One rearrangement row for write_airr; a value of None leaves the column out of the row."""
    row = {
        "sequence_id": sequence_id,
        "productive": productive,
        "locus": locus,
        "v_call": v_call,
        "j_call": j_call,
        "junction_aa": junction_aa,
        "duplicate_count": duplicate_count,
        **extra,
    }
    return {k: str(v) for k, v in row.items() if v is not None}


def airr_text(rows: Iterable[Mapping[str, str]], columns: Iterable[str] | None = None) -> str:
    """Header + rows, tab-separated, newline-terminated; missing values are written empty."""
    rows = list(rows)
    if columns is None:
        seen = dict.fromkeys(c for row in rows for c in row)
        columns = [c for c in SMALL_COLUMNS if c in seen] + [
            c for c in seen if c not in SMALL_COLUMNS
        ]
    columns = list(columns)
    lines = ["\t".join(columns)]
    for i, row in enumerate(rows):
        values = dict(row)
        if "sequence_id" in columns and "sequence_id" not in values:
            values["sequence_id"] = f"seq{i + 1}"
        lines.append("\t".join(values.get(c, "") for c in columns))
    return "\n".join(lines) + "\n"


def write_airr(
    path: Path,
    rows: Iterable[Mapping[str, str]] | str | bytes,
    columns: Iterable[str] | None = None,
) -> Path:
    """Write an AIRR TSV, gzipped when the name ends in .gz.

    rows may also be the file's (uncompressed) content as text or bytes.
    """
    path = Path(path)
    if isinstance(rows, bytes):
        data = rows
    elif isinstance(rows, str):
        data = rows.encode()
    else:
        data = airr_text(rows, columns).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def write_metadata(
    path: Path,
    rows: Iterable[Iterable[str]],
    header: Iterable[str] = ("repertoire_id", "file", "label"),
    sep: str = "\t",
) -> Path:
    lines = [sep.join(header)] + [sep.join(map(str, row)) for row in rows]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def default_files(n: int = 2) -> dict[str, list[dict[str, str]]]:
    """n small valid repertoires (distinct content), for tests that vary something else."""
    out = {}
    for r in range(n):
        out[f"rep{r}.tsv"] = [
            rec("CASSLGQETQYF", duplicate_count=3 + r),
            rec("CASSPDRGYEQYF", v_call="TRBV7-9*01", j_call="TRBJ2-7*01"),
            rec(f"CASS{'ACDEFGH'[r % 7]}YNEQFF", duplicate_count=2),
        ]
    return out


def make_study(
    root: Path,
    files: Mapping[str, Iterable[Mapping[str, str]] | str | bytes] | None = None,
    labels: Mapping[str, str] | Iterable[str] | None = None,
) -> Path:
    """A data directory holding the files and a metadata.tsv listing them; returns its path.

    Repertoire ids are the file names up to the first dot; labels default to 0, 1, 0, 1, ...
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    files = default_files() if files is None else files
    names = list(files)
    if labels is None:
        labels = [str(i % 2) for i in range(len(names))]
    if isinstance(labels, Mapping):
        labels = [labels[name] for name in names]
    for name, rows in files.items():
        write_airr(root / name, rows)
    return write_metadata(
        root / "metadata.tsv",
        [(name.split(".")[0], name, label) for name, label in zip(names, labels, strict=True)],
    )


def quiet(_: str) -> None:
    """A log function for ingest that drops messages."""


def run_ingest(metadata: Path, out: Path | None = None, **kwargs) -> tuple[pd.DataFrame, Path]:
    """Ingest with one worker and the label column 'label' unless told otherwise."""
    metadata = Path(metadata)
    out = metadata.parent / "store" if out is None else Path(out)
    kwargs.setdefault("label_column", "label")
    kwargs.setdefault("threads", 1)
    kwargs.setdefault("log", quiet)
    return ingest(metadata, out, **kwargs), out


class StoreView(NamedTuple):
    manifest: dict
    repertoires: pd.DataFrame
    report: pd.DataFrame
    sequences: list[pd.DataFrame]
    tokens: np.ndarray
    lengths: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray


def check_store(out: Path) -> StoreView:
    """Read a store with pandas/numpy and check that its parts agree with each other.

    Every row balances (read = kept + dropped by reason); every encoded row decodes to its
    Parquet junction, with zero padding after it; counts, offsets and totals agree.
    """
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text())
    reps = pd.read_csv(
        out / "repertoires.tsv", sep="\t", dtype={"repertoire_id": str, "label": str}
    )
    report = pd.read_csv(out / "ingest_report.tsv", sep="\t", dtype={"repertoire_id": str})
    assert list(report["repertoire_id"]) == list(reps["repertoire_id"])
    balance = report["rows_read"] - report["rows_kept"] - report[list(DROP_REASONS)].sum(axis=1)
    assert (balance == 0).all(), report
    arrays = {
        name: np.load(out / "encoded" / f"{name}.npy")
        for name in ("tokens", "lengths", "counts", "offsets")
    }
    tokens, lengths, counts, offsets = (
        arrays[k] for k in ("tokens", "lengths", "counts", "offsets")
    )
    n = int(reps["n_sequences"].sum())
    assert offsets.tolist() == [0, *np.cumsum(reps["n_sequences"]).tolist()]
    assert reps["offset"].tolist() == offsets[:-1].tolist()
    assert tokens.shape == (n, manifest["max_length"])
    assert lengths.shape == counts.shape == (n,)
    assert n == 0 or int(lengths.max()) == manifest["max_length"]
    residue = np.arange(tokens.shape[1])[None, :] < lengths[:, None].astype(int)
    assert (tokens[residue] >= 1).all() and (tokens[residue] <= 20).all()
    assert (tokens[~residue] == 0).all(), "padding after a junction must be 0"
    parts = sorted((out / "sequences").glob("part-*.parquet"))
    assert [p.name for p in parts] == [f"part-{i:06d}.parquet" for i in range(len(reps))]
    sequences = []
    for r, part in enumerate(parts):
        seq = pd.read_parquet(part)
        lo, hi = int(offsets[r]), int(offsets[r + 1])
        assert len(seq) == hi - lo == report["rows_kept"][r] == reps["n_sequences"][r]
        assert (seq["repertoire_index"] == r).all()
        decoded = [decode(tokens[i], int(lengths[i])) for i in range(lo, hi)]
        assert decoded == seq["junction_aa"].tolist()
        assert counts[lo:hi].tolist() == seq["duplicate_count"].tolist()
        assert int(seq["duplicate_count"].sum()) == reps["total_count"][r]
        sequences.append(seq)
    assert manifest["n_repertoires"] == len(reps)
    assert manifest["n_sequences"] == n
    assert manifest["rows_read"] == int(report["rows_read"].sum())
    assert manifest["dropped"] == {r: int(report[r].sum()) for r in DROP_REASONS}
    assert set(reps["y"]) <= {0, 1}
    assert (reps["y"] == (reps["label"] == manifest["positive_label"])).all()
    return StoreView(manifest, reps, report, sequences, tokens, lengths, counts, offsets)


# ----------------------------------------------------------------------------- failed runs


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file under a directory: relative path -> (sha256, mtime_ns)."""
    return {
        str(p.relative_to(directory)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def same_files(a: Path, b: Path) -> None:
    """Assert that two directories hold the same file names, each with the same bytes."""
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def leftovers(parent: Path, name: str) -> list[str]:
    """Temporary or backup siblings an ingest into parent/name may have left behind."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


@pytest.fixture(scope="session")
def existing_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid store built once; tests copy it to check that failed runs leave it alone."""
    root = tmp_path_factory.mktemp("existing")
    metadata = make_study(root / "data")
    _, out = run_ingest(metadata, root / "store")
    return out


@pytest.fixture
def assert_fails(tmp_path: Path, existing_store: Path) -> Callable[..., str]:
    """Check that an ingest fails with an InputError whose message holds every fragment.

    Runs twice: into a fresh --out (which must not exist afterwards), and with --overwrite
    onto a copy of a valid store (whose files must be untouched). Neither run may leave a
    temporary directory behind. Returns the message.
    """

    def check(metadata: Path, *fragments: str, **kwargs) -> str:
        runs = tmp_path / "runs"
        runs.mkdir(exist_ok=True)
        fresh = runs / "fresh"
        with pytest.raises(InputError) as first:
            run_ingest(metadata, fresh, **kwargs)
        message = str(first.value)
        for fragment in fragments:
            assert fragment in message, f"{fragment!r} not in the message: {message}"
        assert not fresh.exists(), "a failed ingest left a store behind"
        assert leftovers(runs, "fresh") == []

        kept = runs / "kept"
        shutil.copytree(existing_store, kept)
        before = snapshot(kept)
        with pytest.raises(InputError) as second:
            run_ingest(metadata, kept, overwrite=True, **kwargs)
        assert str(second.value) == message
        assert snapshot(kept) == before, "a failed --overwrite run changed the existing store"
        assert leftovers(runs, "kept") == []
        shutil.rmtree(kept)
        return message

    return check


# ----------------------------------------------------------------------------- external data


def _download_airr_sdist(cache: Path, version: str) -> Path:
    """The extracted airr source distribution, downloaded once into the cache."""
    target = cache / f"airr-{version}"
    if (target / "tests" / "data" / "good_rearrangement.tsv").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    download = cache / f"download-{version}"
    shutil.rmtree(download, ignore_errors=True)
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps",
        f"airr=={version}", "-d", str(download),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not download the airr {version} sdist ({' '.join(cmd)}): {exc}")
    archives = sorted(download.glob("*.tar.gz"))
    if done.returncode != 0 or not archives:
        pytest.fail(
            f"could not download the airr {version} source distribution with "
            f"`{' '.join(cmd)}` (exit {done.returncode}); these tests need PyPI access "
            f"or a cached copy in {cache}.\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    staging = cache / f"extract-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archives[0]) as tar:
        tar.extractall(staging, filter="data")
    (extracted,) = staging.iterdir()
    shutil.rmtree(target, ignore_errors=True)
    extracted.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(download, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def airr_sdist_data() -> Path:
    """tests/data of the installed airr version's sdist (good/bad/extra_rearrangement.tsv)."""
    import airr

    root = _download_airr_sdist(Path.home() / ".cache" / "deeprc-tests", airr.__version__)
    data = root / "tests" / "data"
    for name in ("good_rearrangement.tsv", "bad_rearrangement.tsv", "extra_rearrangement.tsv"):
        if not (data / name).is_file():
            pytest.fail(f"the airr {airr.__version__} sdist has no tests/data/{name} ({root})")
    return data


def _immunarch_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    from importlib.resources import files

    data = files("pyimmunarch") / "_data"
    with (
        (data / "immdata.parquet").open("rb") as rows,
        (data / "immdata_meta.parquet").open("rb") as meta,
    ):
        return pd.read_parquet(rows), pd.read_parquet(meta)


@pytest.fixture(scope="session")
def immdata() -> pd.DataFrame:
    """pyimmunarch's immdata rows (76,820 TRB clonotypes of 12 samples), as shipped."""
    return _immunarch_frames()[0]


class ImmunarchAIRR(NamedTuple):
    directory: Path
    metadata: Path


def productive_flag(cdr3_aa: pd.Series, cdr3_nt: pd.Series) -> pd.Series:
    """T/F: F when the CDR3 has a stop codon ('*'), a frame-shift mark ('~') or is out of frame.

    immdata marks out-of-frame CDR3s with '~' (every one of them has a nucleotide length that
    is not a multiple of 3); '*' also occurs inside in-frame CDR3s.
    """
    bad = (
        cdr3_aa.str.contains("*", regex=False)
        | cdr3_aa.str.contains("~", regex=False)
        | (cdr3_nt.str.len() % 3 != 0)
    )
    return bad.map({True: "F", False: "T"})


@pytest.fixture(scope="session")
def immunarch_airr(tmp_path_factory: pytest.TempPathFactory) -> ImmunarchAIRR:
    """immdata as AIRR rearrangement files: one <Sample>.tsv.gz per sample + metadata.tsv.

    metadata.tsv has repertoire_id, file, status (C = control, MS = multiple sclerosis), sex,
    age. Rows keep immdata's order within a sample; sequence_id is <Sample>_<row number>.
    """
    rows, meta = _immunarch_frames()
    odd = set("".join(rows["CDR3.aa"])) - set("ACDEFGHIKLMNPQRSTVWY")
    assert odd == {"*", "~"}, f"immdata's CDR3.aa now holds other characters: {odd}"
    directory = tmp_path_factory.mktemp("immunarch_airr")
    table = pd.DataFrame(
        {
            "sample": rows["Sample"],
            "sequence_id": rows["Sample"]
            + "_"
            + rows.groupby("Sample").cumcount().add(1).astype(str),
            "sequence": "",
            "rev_comp": "",
            "productive": productive_flag(rows["CDR3.aa"], rows["CDR3.nt"]),
            "locus": "TRB",
            "v_call": rows["V.name"],
            "d_call": rows["D.name"].replace(".", ""),
            "j_call": rows["J.name"],
            "sequence_alignment": "",
            "germline_alignment": "",
            "junction": rows["CDR3.nt"],
            "junction_aa": rows["CDR3.aa"],
            "v_cigar": "",
            "d_cigar": "",
            "j_cigar": "",
            "duplicate_count": rows["Clones"],
        }
    )
    columns = [c for c in table.columns if c != "sample"]
    files = []
    for sample in meta["Sample"]:
        name = f"{sample}.tsv.gz"
        part = table.loc[table["sample"] == sample, columns]
        assert len(part), sample
        part.to_csv(directory / name, sep="\t", index=False, compression="gzip")
        files.append(name)
    listing = pd.DataFrame(
        {
            "repertoire_id": meta["Sample"],
            "file": files,
            "status": meta["Status"],
            "sex": meta["Sex"],
            "age": meta["Age"],
        }
    )
    metadata = directory / "metadata.tsv"
    listing.to_csv(metadata, sep="\t", index=False)
    return ImmunarchAIRR(directory, metadata)


# ----------------------------------------------------------------------------- helper fixtures
# Test modules reach the helpers above through these fixtures (no import of conftest needed).


def train_fold0(store: Path, folds: Path, experiment: str, out: Path) -> tuple[Path, Path]:
    """Train on fold 0 with the experiment given as YAML text and predict its test set with
    ``deeprc`` commands (one thread, no progress); the model file and the predictions, in
    ``out``."""
    from deeprc.cli import main

    out.mkdir(exist_ok=True)
    (out / "experiment.yaml").write_text(experiment)
    model, predictions = out / "model.pt", out / "predictions"
    args = ["--store", str(store), "--folds", str(folds), "--fold", "0"]
    assert main(["train", *args, "--experiment", str(out / "experiment.yaml"), "--threads", "1",
                 "--out", str(model), "--no-progress"]) == 0  # fmt: skip
    assert main(["predict", *args, "--model", str(model), "--out", str(predictions)]) == 0
    return model, predictions


def fold0_test_auc(store: Path, folds: Path, experiment: str, out: Path) -> float:
    """:func:`train_fold0`'s test ROC AUC."""
    from sklearn.metrics import roc_auc_score

    from deeprc.outputs import read_predictions

    predictions = read_predictions(train_fold0(store, folds, experiment, out)[1])
    return float(roc_auc_score(predictions["y"], predictions["score"]))


def render_in_chromium(page: Path, screenshot: Path) -> int:
    """Render an HTML file in headless Chromium (Debian's package; the test is skipped without
    it) and return how many distinct colours the 1200 x 2400 screenshot holds: a rendered
    report (text, figures, shading) has many, a blank or broken page few."""
    from matplotlib.image import imread

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    done = subprocess.run(
        ["timeout", "-k", "5", "120", chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--hide-scrollbars", f"--screenshot={screenshot}", "--window-size=1200,2400",
         page.as_uri()],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0 and screenshot.exists(), done.stderr
    pixels = imread(screenshot)
    assert pixels.shape[0] == 2400 and pixels.shape[1] == 1200
    return len(np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0))


class Helpers(NamedTuple):
    rec: Callable[..., dict[str, str]]
    airr_text: Callable[..., str]
    write_airr: Callable[..., Path]
    write_metadata: Callable[..., Path]
    make_study: Callable[..., Path]
    default_files: Callable[..., dict]
    run_ingest: Callable[..., tuple[pd.DataFrame, Path]]
    check_store: Callable[[Path], StoreView]
    snapshot: Callable[[Path], dict]
    same_files: Callable[[Path, Path], None]
    leftovers: Callable[[Path, str], list[str]]
    productive_flag: Callable[[pd.Series, pd.Series], pd.Series]
    amino_acids_re: str
    airr_required: tuple[str, ...]
    train_fold0: Callable[[Path, Path, str, Path], tuple[Path, Path]]
    fold0_test_auc: Callable[[Path, Path, str, Path], float]
    render_in_chromium: Callable[[Path, Path], int]


@pytest.fixture(scope="session")
def h() -> Helpers:
    return Helpers(
        rec=rec,
        airr_text=airr_text,
        write_airr=write_airr,
        write_metadata=write_metadata,
        make_study=make_study,
        default_files=default_files,
        run_ingest=run_ingest,
        check_store=check_store,
        snapshot=snapshot,
        same_files=same_files,
        leftovers=leftovers,
        productive_flag=productive_flag,
        amino_acids_re=AMINO_ACIDS_RE,
        airr_required=AIRR_REQUIRED,
        train_fold0=train_fold0,
        fold0_test_auc=fold0_test_auc,
        render_in_chromium=render_in_chromium,
    )


# ----------------------------------------------------------------------------- workflow runs

ROOT = Path(__file__).parents[1]
# deeprc 0.4's default, configs/experiments/small_cohort.yaml: a network trained from a random
# start on 4-mer evidence. Tests of training on cohorts too small to weigh evidence on (the
# default needs 3 training repertoires of each class), and of what a trained network learns.
LEARNED_KMER = "evidence: [{name: kmer, k: 4}]\nweigh_evidence: false\n"
SNAKEFILE = ROOT / "workflow" / "Snakefile"


def snakemake(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the workflow with the snakemake command; ``timeout -k`` also ends its children."""
    return subprocess.run(
        ["timeout", "-k", "10", str(timeout), "snakemake", "--snakefile", str(SNAKEFILE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def blank_calls(path: Path) -> None:
    """Empty the j_call of every third row and the v_call of every fifth of an AIRR file, as in
    files without J (or V) assignments."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    table.loc[table.index % 3 == 0, "j_call"] = ""
    table.loc[table.index % 5 == 1, "v_call"] = ""
    table.to_csv(path, sep="\t", index=False, compression="gzip")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A working directory with its own config (replacing, not merged into, the default):
    dataset ``tiny`` (6 AIRR files, 3 folds; a third of the rows have no J call, a fifth no V
    call) and dataset ``sim`` (simulated, 3 folds)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from make_airr import write_dataset

    write_dataset(tmp_path / "data", n_files=6, rows_per_file=200, seed=11)
    for path in sorted((tmp_path / "data").glob("*.tsv.gz")):
        blank_calls(path)
    (tmp_path / "sim.yaml").write_text(
        "n_repertoires: 6\nn_sequences: 150\npool_size: 1500\nseed: 2\n"
        "motifs:\n  - {name: m, motif: SLRF, witness_rate: 0.02}\n"
    )
    (tmp_path / "experiment.yaml").write_text(
        LEARNED_KMER
        + "train: {n_sequences: 100, max_steps: 10, eval_every: 5, checkpoint_every: 5}\n"
    )
    config = {
        "experiment": "experiment.yaml",
        "baselines": ["kmer3_logistic"],
        "interpret": {"top": 20},
        "datasets": {
            "tiny": {"metadata": "data/metadata.tsv", "label_column": "status", "folds": 3},
            "sim": {"simulate": "sim.yaml", "folds": 3},
        },
    }
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A small simulated cohort (SLRF in 10% of positives' sequences), one fold trained."""
    root = tmp_path_factory.mktemp("interpret")
    cfg = SimulationConfig(
        n_repertoires=24, n_sequences=300, pool_size=3000, seed=5,
        motifs=(MotifSignal(name="m", motif="SLRF", witness_rate=0.1),),
    )  # fmt: skip
    simulate(cfg, root / "sim", threads=1)
    ingest(root / "sim" / "metadata.tsv", root / "store", label_column="status", threads=1)
    args = ["--store", str(root / "store"), "--folds", str(root / "folds.tsv"), "--fold", "0"]
    assert main(["split", "--store", str(root / "store"), "--out", str(root / "folds.tsv"),
                 "--k", "3"]) == 0  # fmt: skip
    (root / "exp.yaml").write_text("train: {n_sequences: 300, max_steps: 150, eval_every: 25}\n")
    assert main(["train", *args, "--experiment", str(root / "exp.yaml"), "--threads", "1",
                 "--out", str(root / "fold0.pt"), "--no-progress"]) == 0  # fmt: skip
    assert main(["predict", *args, "--model", str(root / "fold0.pt"),
                 "--out", str(root / "pred0")]) == 0  # fmt: skip
    return root
