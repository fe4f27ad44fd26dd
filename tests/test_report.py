"""The HTML report: built from a real (small) run, self-contained, rendered by Chromium."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread

from deeprc.cli import main


@pytest.fixture(scope="module")
def report(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    store = str(trained / "store")
    assert main(["evaluate", str(trained / "pred0"), "--out", str(out / "metrics.json")]) == 0
    assert main(["interpret", "--store", store, "--models", str(trained / "fold0.pt"),
                 "--predictions", str(trained / "pred0"), "--out", str(out / "interpretation"),
                 "--top", "20", "--truth", str(trained / "sim")]) == 0  # fmt: skip
    assert main(["report", "--store", store, "--metrics", str(out / "metrics.json"),
                 "--interpretation", str(out / "interpretation"), "--title", "tiny run",
                 "--out", str(out / "report.html")]) == 0  # fmt: skip
    return out / "report.html"


def test_report_is_one_self_contained_file_with_every_section(report):
    page = report.read_text()
    for heading in ("Data", "Cross-validated results", "What the model looked at", "Motifs",
                    "Against the ground truth", "Provenance"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    # nothing is fetched: no external source or stylesheet, figures are inline PNGs
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert page.count('src="data:image/png;base64,') >= 2  # curves and at least one logo
    assert "DeepRC (this run)" in page and "SLRF" in page
    assert "tiny run" in page


def test_report_renders_in_headless_chromium(report, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    screenshot = tmp_path / "report.png"
    done = subprocess.run(
        ["timeout", "-k", "5", "120", chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--hide-scrollbars", f"--screenshot={screenshot}", "--window-size=1200,2400",
         report.as_uri()],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0 and screenshot.exists(), done.stderr
    pixels = imread(screenshot)
    assert pixels.shape[0] == 2400 and pixels.shape[1] == 1200
    # a rendered page, not a blank one: many distinct colours (text, figures, shading)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 100
