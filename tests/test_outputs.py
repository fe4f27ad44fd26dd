"""Outputs never destroy what deeprc did not make, one run at a time writes a target, and killed
or failed runs leave nothing behind: real processes, real signals, a real full file system."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, leftovers, snapshot

from deeprc.atomic import STAMP, atomic_directory
from deeprc.errors import InputError

DEEPRC = [sys.executable, "-m", "deeprc.cli"]


def deeprc(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*DEEPRC, *map(str, args)], capture_output=True, text=True, timeout=300, **kwargs
    )


def refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2 with a message and no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    """4 AIRR files x 150,000 rows: an ingest with 2 workers takes a few seconds."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from make_airr import write_dataset

    return write_dataset(tmp_path_factory.mktemp("big") / "data", 4, 150_000, seed=3)


def start_ingest(metadata: Path, out: Path) -> subprocess.Popen:
    """An ingest in its own session (its process group holds the workers too)."""
    return subprocess.Popen(
        [*DEEPRC, "ingest", "--metadata", str(metadata), "--label-column", "status",
         "--out", str(out), "--threads", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def wait_for_workers(run: subprocess.Popen, out: Path) -> Path:
    """The run's temporary directory, once its workers are writing into it."""
    tmp = out.parent / f".{out.name}.tmp-{run.pid}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run.poll() is None:
        if any(p.stat().st_size for p in tmp.glob("sequences/*.tokens")):
            return tmp
        time.sleep(0.02)
    raise AssertionError(f"ingest never got under way: {run.poll()} {run.communicate()}")


def group_gone(pgid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


# ----------------------------------------------------------------------------- item 1


def test_overwrite_refuses_an_out_that_is_or_holds_an_input(tmp_path, h):
    metadata = h.make_study(tmp_path / "data")
    before = snapshot(tmp_path / "data")
    args = ("ingest", "--metadata", metadata, "--label-column", "label", "--overwrite")
    refused(deeprc(*args, "--out", tmp_path / "data"), "is or contains the input")
    # the metadata's own folder, with the files elsewhere
    files = tmp_path / "files"
    shutil.copytree(tmp_path / "data", files)
    (files / "metadata.tsv").unlink()
    result = deeprc(*args, "--data-dir", files, "--out", tmp_path / "data")
    refused(result, "metadata.tsv", "would destroy it")
    assert snapshot(tmp_path / "data") == before
    assert leftovers(tmp_path, "data") == []


def test_overwrite_replaces_only_a_directory_deeprc_made(tmp_path):
    config = ROOT / "configs" / "simulate" / "default.yaml"
    small = tmp_path / "small.yaml"
    small.write_text(config.read_text() + "n_repertoires: 4\nn_sequences: 50\npool_size: 500\n")
    out = tmp_path / "cohort"
    out.mkdir()
    (out / "notes.txt").write_text("a user's file\n")
    refused(deeprc("simulate", "--config", small, "--out", out), "exists", "--overwrite")
    refused(
        deeprc("simulate", "--config", small, "--out", out, "--overwrite"),
        "not made by deeprc",
    )
    assert (out / "notes.txt").read_text() == "a user's file\n"
    fresh = tmp_path / "ours"
    assert deeprc("simulate", "--config", small, "--out", fresh).returncode == 0
    assert json.loads((fresh / STAMP).read_text())["made_by"] == "deeprc simulate"
    assert deeprc("simulate", "--config", small, "--out", fresh, "--overwrite").returncode == 0
    # a user's file put into our output makes it no longer only ours
    (fresh / "my_analysis.tsv").write_text("keep me\n")
    refused(
        deeprc("simulate", "--config", small, "--out", fresh, "--overwrite"),
        "my_analysis.tsv",
    )
    assert (fresh / "my_analysis.tsv").exists()
    # the config inside the output is an input
    shutil.copy(small, fresh / "sim.yaml")
    (fresh / "my_analysis.tsv").unlink()
    refused(
        deeprc("simulate", "--config", fresh / "sim.yaml", "--out", fresh, "--overwrite"),
        "is or contains the input",
    )


@pytest.mark.parametrize("what", ["file", "symlink", "no stamp"])
def test_atomic_directory_never_replaces_a_foreign_target(tmp_path, what):
    out = tmp_path / "out"
    if what == "file":
        out.write_text("x")
    elif what == "symlink":
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    else:
        out.mkdir()
    with (
        pytest.raises(InputError, match="not made by deeprc"),
        atomic_directory(out, overwrite=True) as tmp,
    ):
        (tmp / "x").write_text("new")
    assert out.exists() or out.is_symlink()
    assert leftovers(tmp_path, "out") == []


# ----------------------------------------------------------------------------- item 2


def test_a_second_run_on_the_same_out_fails_at_once_naming_the_first(big, tmp_path):
    out = tmp_path / "store"
    first = start_ingest(big, out)
    wait_for_workers(first, out)
    os.killpg(first.pid, signal.SIGSTOP)  # holds the lock until let go, however loaded the CPUs
    try:
        started = time.monotonic()
        second = deeprc("ingest", "--metadata", big, "--label-column", "status", "--out", out)
        assert time.monotonic() - started < 20
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    refused(second, f"pid {first.pid}", "another deeprc run")
    assert first.wait(timeout=120) == 0, first.communicate()
    assert (out / "manifest.json").is_file()
    assert leftovers(tmp_path, "store") == []  # lock file and temporary directory gone
    again = deeprc("ingest", "--metadata", big, "--label-column", "status", "--out", out)
    refused(again, "exists")


# ----------------------------------------------------------------------------- item 4


def test_sigterm_cleans_up_and_stops_the_workers(big, tmp_path):
    out = tmp_path / "store"
    run = start_ingest(big, out)
    tmp = wait_for_workers(run, out)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 143
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    assert group_gone(run.pid), "worker processes outlived the run"
    assert not tmp.exists() and not out.exists()
    assert leftovers(tmp_path, "store") == []


def test_kill9_leaves_no_workers_and_the_next_run_removes_its_leftovers(big, tmp_path):
    out = tmp_path / "store"
    run = start_ingest(big, out)
    tmp = wait_for_workers(run, out)
    run.kill()
    run.wait(timeout=30)
    assert group_gone(run.pid), "worker processes outlived their parent"
    assert tmp.exists()  # nothing can clean up after SIGKILL ...
    result = deeprc("ingest", "--metadata", big, "--label-column", "status", "--out", out)
    assert result.returncode == 0, result.stderr
    assert not tmp.exists()  # ... but the next run does
    assert leftovers(tmp_path, "store") == []


# ----------------------------------------------------------------------------- item 5


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of a few MiB, mounted by the test (needs root, as CI has)."""
    mount = tmp_path / "disk"
    mount.mkdir()

    def make(size: str) -> Path:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount])
        if result.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        return mount

    yield make
    subprocess.run(["umount", mount], capture_output=True)


@pytest.mark.parametrize("size", ["2m", "40m"])
def test_a_full_disk_is_a_message_naming_the_directory(big, small_disk, size):
    """2 MiB fills while the workers write; 40 MiB holds their parts but not the final arrays
    (caught before writing them: a full disk under a memory map used to end in SIGBUS)."""
    disk = small_disk(size)
    out = disk / "store"
    result = deeprc("ingest", "--metadata", big, "--label-column", "status", "--out", out)
    refused(result, str(disk), "MiB")
    assert "no space" in result.stderr or "needs" in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in disk.iterdir()) == []
