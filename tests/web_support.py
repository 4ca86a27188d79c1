"""Running the real ``bonsai ui`` process, and headless Chromium through Playwright.

The browser is Debian's Chromium (``/usr/bin/chromium``), launched by Playwright for Python;
nothing is downloaded. Without either, the browser tests skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_support import tiny_garden  # noqa: F401 - the same tiny garden as the server tests

from bonsai.garden import Garden
from bonsai.records import Record

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")


def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("BONSAI_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class UiProcess:
    """``bonsai ui`` in a subprocess on a free port; ``base`` once it has announced itself."""

    def __init__(self, garden: Garden, *extra: str) -> None:
        env = dict(
            os.environ, BONSAI_EMBED_MODEL="hashing", COLUMNS="200", NO_COLOR="1",
            PYTHONUNBUFFERED="1",
        )  # fmt: skip
        command = [
            sys.executable, "-c", "from bonsai.cli import main; main()",
            "ui", "--garden", str(garden.root), "--port", "0", "--precision", "bf16", *extra,
        ]  # fmt: skip
        self.log = garden.root / "ui.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        self.base = ""

    def wait_ready(self, timeout: float = 90.0) -> UiProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(encoding="utf-8", errors="replace")
            found = re.search(r"at (http://\S+?/)(\?token=(\S+))?[\s)]", text)
            if found:
                self.base = found.group(1).rstrip("/")
                self.token = found.group(3)
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"bonsai ui exited:\n{text}")
            time.sleep(0.2)
        raise AssertionError(f"bonsai ui did not start:\n{self.log.read_text()}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log_file.close()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """Kill the server (and so its worker's stdin closes) without a chance to clean up."""
        self.process.kill()
        self.process.wait(10)
        self._log_file.close()

    def job(self, job_id: int) -> dict:
        return httpx.get(f"{self.base}/jobs/{job_id}.json", timeout=10).json()


LOOP_RECORDS = [
    ("open_qa", "en", "How old is Mochi?", "Mochi is six years old."),
    ("open_qa", "en", "What does Mochi eat for breakfast?", "Mochi eats wet food."),
    ("closed_qa", "en", "Which toy does Mochi like, according to the note?", "The feather toy."),
    ("classification", "en", "Is a lily safe or dangerous for cats?", "Dangerous."),
    ("translation", "en", "Translate into Japanese: Give the cat water.", "猫に水をあげて。"),
    ("brainstorming", "en", "List games to play with a cat.", "Feather wand\nLaser\nBoxes"),
    ("open_qa", "ja", "もちは何歳ですか？", "もちは六歳です。"),
    ("open_qa", "ja", "もちの好きなおもちゃは何ですか？", "羽根のおもちゃです。"),
    (
        "question_to_question",
        "ja",
        "猫の健康について知りたい",
        "何歳の猫ですか？食欲はありますか？",
    ),
    ("open_qa", "zh", "猫每天需要喝水吗？", "需要，猫每天都要喝水。"),
]


def loop_records(n: int = 24) -> list[Record]:
    out = []
    for i in range(n):
        category, language, question, answer = LOOP_RECORDS[i % len(LOOP_RECORDS)]
        suffix = f" ({i})" if i >= len(LOOP_RECORDS) else ""
        out.append(
            Record(
                id=f"rec-{i:02d}",
                instruction=question + suffix,
                output=answer,
                category=category,
                language=language,
                split="val" if i % 4 == 0 else "train",
            )
        )
    return out


def write_jsonl(path: Path, records: list[Record]) -> Path:
    keys = ("id", "instruction", "input", "output", "category", "language")
    lines = [json.dumps({k: getattr(r, k) for k in keys}, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
