"""The encoded store: exact encoding, identical bytes for identical input, parallel == serial."""

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from deeprc.errors import InputError
from deeprc.ingest import ingest
from deeprc.store import AMINO_ACIDS, FORMAT_VERSION, Store, decode, encode_into

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from make_airr import write_dataset  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("airr"), n_files=5, rows_per_file=3000, seed=3)


def test_encode_matches_a_per_sequence_reference():
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list(AMINO_ACIDS), rng.integers(1, 12))) for _ in range(300)]
    data = np.frombuffer("".join(seqs).encode(), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])])
    tokens = np.zeros((len(seqs), 12), dtype=np.uint8)
    encode_into(tokens, data, offsets)
    reference = np.zeros_like(tokens)
    for i, s in enumerate(seqs):
        reference[i, : len(s)] = [AMINO_ACIDS.index(c) + 1 for c in s]
    np.testing.assert_array_equal(tokens, reference)
    assert [decode(tokens[i], len(s)) for i, s in enumerate(seqs)] == seqs


def _files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}


def test_same_input_gives_the_same_bytes_serial_or_parallel(dataset, tmp_path):
    serial = tmp_path / "serial"
    parallel = tmp_path / "parallel"
    ingest(dataset, serial, label_column="status", threads=1, log=lambda _: None)
    ingest(dataset, parallel, label_column="status", threads=2, log=lambda _: None)
    a, b = _files(serial), _files(parallel)
    assert sorted(a) == sorted(b)
    assert all(a[name] == b[name] for name in a), [n for n in a if a[n] != b[n]]
    assert not list(tmp_path.glob(".*tmp*")), "temporary directories left behind"


def test_encoded_arrays_agree_with_the_parquet_rows(dataset, tmp_path):
    ingest(dataset, tmp_path / "store", label_column="status", threads=2, log=lambda _: None)
    store = Store(tmp_path / "store")
    table = pq.read_table(tmp_path / "store" / "sequences").to_pandas()
    assert len(table) == store.tokens.shape[0] == store.offsets[-1]
    assert store.tokens.shape[1] == table["junction_aa"].str.len().max()
    np.testing.assert_array_equal(store.lengths, table["junction_aa"].str.len())
    np.testing.assert_array_equal(store.counts, table["duplicate_count"])
    decoded = [decode(t, n) for t, n in zip(store.tokens, store.lengths, strict=True)]
    assert decoded == table["junction_aa"].tolist()
    per_repertoire = np.bincount(table["repertoire_index"], minlength=len(store.repertoires))
    np.testing.assert_array_equal(np.diff(store.offsets), per_repertoire)
    np.testing.assert_array_equal(store.repertoires["n_sequences"], per_repertoire)
    assert store.repertoires["y"].tolist() == [0, 1, 0, 1, 0]
    assert store.manifest["positive_label"] == "positive"
    # reads copy rows out and unmap the file: a pass over a big store keeps no pages mapped
    mapped = Path("/proc/self/maps").read_text()
    assert not any(f"encoded/{name}.npy" in mapped for name in ("tokens", "lengths", "counts"))


@pytest.mark.parametrize(("version", "said"), [(None, "an older deeprc"), (0, "an older deeprc"),
                                               (FORMAT_VERSION + 1, "upgrade deeprc")])  # fmt: skip
def test_a_store_of_another_format_version_is_refused(dataset, tmp_path, version, said):
    out = tmp_path / "store"
    ingest(dataset, out, label_column="status", threads=1, log=lambda _: None)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert Store(out).manifest["fingerprint"] == manifest["fingerprint"]
    if version is None:
        del manifest["format_version"]
    else:
        manifest["format_version"] = version
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=f"format {version}.*{said}"):
        Store(out)
