"""Ingest in shards (a cluster's jobs side by side), merged into the store one ingest writes."""

import numpy as np
import pandas as pd
import pytest
from conftest import default_files, make_study

from deeprc.cli import main
from deeprc.store import Store


def _ingest(metadata, out, *extra) -> int:
    return main(["ingest", "--metadata", str(metadata), "--out", str(out),
                 "--label-column", "label", "--threads", "1", "--no-progress", *extra])  # fmt: skip


def _shards(metadata, root, n):
    for k in range(n):
        assert _ingest(metadata, root / f"shard{k}", "--shard", f"{k}/{n}") == 0
    return [str(root / f"shard{k}") for k in range(n)]


def test_shards_merged_make_the_store_one_ingest_makes(tmp_path):
    files = default_files(7)
    files["rep1.tsv"] = files["rep1.tsv"] * 3  # repertoires of different sizes
    metadata = make_study(tmp_path / "data", files)
    assert _ingest(metadata, tmp_path / "whole") == 0
    shards = _shards(metadata, tmp_path, 3)
    assert _ingest(metadata, tmp_path / "merged", "--merge", *shards[::-1]) == 0
    whole, merged = Store(tmp_path / "whole"), Store(tmp_path / "merged")
    assert merged.manifest["fingerprint"] == whole.manifest["fingerprint"]
    assert merged.manifest["genes"] == whole.manifest["genes"]
    for name in ("tokens", "lengths", "counts", "offsets", "genes"):
        np.testing.assert_array_equal(getattr(merged, name), getattr(whole, name))
    pd.testing.assert_frame_equal(merged.repertoires, whole.repertoires)
    for r in range(len(whole.repertoires)):
        pd.testing.assert_frame_equal(merged.sequences(r), whole.sequences(r))
    # the shards are left whole: the merge can run again
    assert _ingest(metadata, tmp_path / "again", "--merge", *shards) == 0


def test_a_merge_refuses_missing_repeated_or_foreign_shards(tmp_path, capsys):
    metadata = make_study(tmp_path / "data", default_files(4))
    shards = _shards(metadata, tmp_path, 2)
    assert _ingest(metadata, tmp_path / "s", "--merge", shards[0]) == 2
    assert "shards 0..N-1" in capsys.readouterr().err
    assert _ingest(metadata, tmp_path / "s", "--merge", shards[0], shards[0]) == 2
    assert "got 0/2, 0/2" in capsys.readouterr().err
    other = make_study(tmp_path / "other", default_files(3))
    assert _ingest(other, tmp_path / "s", "--merge", *shards) == 2
    assert "other metadata or with other filters" in capsys.readouterr().err
    assert _ingest(metadata, tmp_path / "s", "--merge", shards[0], str(tmp_path / "data")) == 2
    assert "is not a shard" in capsys.readouterr().err
    assert _ingest(metadata, tmp_path / "s", "--merge", *shards, "--min-length", "3") == 2
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("shard", ["2/2", "1", "a/b"])
def test_a_shard_is_k_of_n(tmp_path, capsys, shard):
    metadata = make_study(tmp_path / "data", default_files(2))
    with pytest.raises(SystemExit) as stopped:
        _ingest(metadata, tmp_path / "s", "--shard", shard)
    assert stopped.value.code == 2
    assert "write K/N" in capsys.readouterr().err
