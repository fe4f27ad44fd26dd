"""Progress of long stages: plain lines in a log, none with --no-progress or for a short stage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import default_files, make_study

from deeprc.cli import main
from deeprc.progress import Progress, tracked

LINE = re.compile(
    r"^(?P<what>[^:]+): (?P<done>[\d,]+)/(?P<total>[\d,]+) (?P<unit>\w+) \((?P<share>\d+)%\), "
    r"(?P<rate>[\d,.]+) \w+/s, (?P<when>.+)$"
)


def test_a_log_gets_counts_rates_and_time_left(monkeypatch, capsys):
    monkeypatch.setenv("DEEPRC_PROGRESS_SECONDS", "0")
    with Progress("stage", 4, "things") as progress:
        progress.note(loss="0.5")
        for _ in range(4):
            progress.update()
    lines = capsys.readouterr().err.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [m["done"] for m in parsed] == ["1", "2", "3", "4", "4"]
    assert [m["share"] for m in parsed] == ["25", "50", "75", "100", "100"]
    assert parsed[0]["when"].endswith("left, loss 0.5")
    assert parsed[-1]["when"].startswith("done in ")


def test_a_short_stage_prints_nothing(monkeypatch, capsys):
    monkeypatch.setenv("DEEPRC_PROGRESS_SECONDS", "3600")
    assert list(tracked([1, 2, 3], "stage", "things")) == [1, 2, 3]
    assert capsys.readouterr().err == ""


def _ingest(tmp_path: Path, *flags: str) -> str:
    metadata = make_study(tmp_path / "data", default_files(3))
    out = tmp_path / f"store{len(flags)}"
    env = os.environ | {"DEEPRC_PROGRESS_SECONDS": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "deeprc.cli", "ingest", "--metadata", str(metadata),
         "--out", str(out), "--label-column", "label", "--threads", "2", *flags],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return done.stderr


def test_ingest_reports_its_files_in_a_log_and_no_progress_silences_it(tmp_path):
    lines = [m for line in _ingest(tmp_path).splitlines() if (m := LINE.match(line))]
    assert [(m["what"], m["done"], m["total"], m["unit"]) for m in lines] == [
        ("ingest", "1", "3", "files"),
        ("ingest", "2", "3", "files"),
        ("ingest", "3", "3", "files"),
        ("ingest", "3", "3", "files"),
    ]
    assert not any(LINE.match(line) for line in _ingest(tmp_path, "--no-progress").splitlines())


def test_no_progress_ends_with_its_command(tmp_path, monkeypatch, capsys):
    """--no-progress of one in-process command leaves the next caller's progress on."""
    metadata = make_study(tmp_path / "data", default_files(2))
    assert main(["ingest", "--metadata", str(metadata), "--out", str(tmp_path / "s"),
                 "--label-column", "label", "--threads", "1", "--no-progress"]) == 0  # fmt: skip
    monkeypatch.setenv("DEEPRC_PROGRESS_SECONDS", "0")
    capsys.readouterr()
    list(tracked([1], "stage", "things"))
    assert LINE.match(capsys.readouterr().err.splitlines()[0])
