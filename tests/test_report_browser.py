"""The report opens in a real browser: headless Chromium renders it and the picture is not blank."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from eval_support import sample_results

from bonsai.evaluate.report import write_report

pytestmark = pytest.mark.browser

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")


def _screenshot(browser: str, page: Path, out: Path, tmp_path: Path, size: str) -> None:
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={out}",
            f"--window-size={size}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    from PIL import Image

    browser = _chromium()
    html, _ = write_report(tmp_path / "run", "report-browser", sample_results())
    shot = tmp_path / "shot.png"
    _screenshot(browser, html, shot, tmp_path, "1280,2000")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    pixels = np.asarray(image.resize((320, 500))).reshape(-1, 3)
    non_white = int((pixels.min(axis=1) < 235).sum())
    colours = {tuple(p) for p in (pixels // 32).tolist()}
    # Header band, charts, tables: a real page, not a blank or an error screen.
    assert non_white / len(pixels) > 0.05, f"only {non_white} non-white pixels"
    assert len(colours) >= 8, f"only {len(colours)} colours"
    # The green header band is at the top, where the template puts it.
    r, g, b = image.getpixel((640, 10))
    assert g > r and g > b


def test_blank_page_fails_the_same_check(tmp_path: Path) -> None:
    """The check above can fail: a blank page does."""
    from PIL import Image

    browser = _chromium()
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    shot = tmp_path / "blank.png"
    _screenshot(browser, page, shot, tmp_path, "640,480")
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    assert int((pixels.min(axis=1) < 235).sum()) == 0
