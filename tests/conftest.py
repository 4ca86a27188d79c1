"""Shared fixtures: a fresh garden in a temp folder and an in-process CLI runner."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from bonsai.cli import main
from bonsai.garden import Garden

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("BONSAI_GARDEN", raising=False)


@pytest.fixture(autouse=True)
def _own_temp_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Temporary files a test leaves on purpose (a refused edit is kept for the keeper) land in
    pytest's own folder, which pytest prunes, not in the machine's /tmp."""
    import tempfile

    folder = tmp_path_factory.mktemp("tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("TMPDIR", str(folder))


@pytest.fixture
def garden(tmp_path: Path) -> Garden:
    g = Garden.init(tmp_path / "garden")
    yield g
    g.close()


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``bonsai ARGS…`` in-process; returns exit code and captured output."""

    def run(*args: str | os.PathLike[str]) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def shared_data(relative: str) -> Path:
    """A file from the shared test data; skips the test when that data is not present."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared test data not present: {path}")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Gemma-3-architecture model with a small BPE tokenizer, built in-process."""
    from bonsai.student.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-gemma3"), arch="gemma3")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama-architecture model with the same small tokenizer."""
    from bonsai.student.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama")
