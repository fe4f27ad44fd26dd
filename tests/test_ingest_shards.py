"""Ingest in shards (a cluster's jobs side by side), merged into the store one ingest writes."""

import re

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


def test_k_of_n_is_read_selected_and_joined_by_one_module():
    """deeprc.shards, for ingest --shard and predict --group alike: K/N read and checked, every
    N-th item from the K-th, and the parts of a merge each once, of one N, in the order of K."""
    from deeprc import shards
    from deeprc.errors import InputError

    assert shards.parse("1/3", "--group") == (1, 3)
    for text in ("3/3", "1", "a/b", "-1/2", "1/0"):
        with pytest.raises(InputError, match=r"^--group .*write K/N .*\(groups count from 0\)"):
            shards.parse(text, "--group")
    assert shards.select(list(range(8)), (1, 3), "--shard") == [1, 4, 7]
    assert shards.select(range(2), (1, 3), "--shard") == range(1, 2, 3)  # an empty part
    with pytest.raises(InputError, match=r"^--shard 2/2: write K/N"):
        shards.select([0, 1], (2, 2), "--shard")
    assert shards.joined([((1, 2), "b"), ([0, 2], "a")], "--shard") == ["a", "b"]
    for given, shown in [
        ([(0, 2)], "0/2"),
        ([(0, 2), (0, 2)], "0/2, 0/2"),
        ([(0, 2), (1, 3)], "0/2, 1/3"),
        ([(1, 2), (2, 2)], "1/2, 2/2"),
        ([], "none"),
    ]:
        message = f"--merge needs groups 0..N-1 of one --group K/N run, once each; got {shown}"
        with pytest.raises(InputError, match=re.escape(message)):
            shards.joined([(part, None) for part in given], "--group")
