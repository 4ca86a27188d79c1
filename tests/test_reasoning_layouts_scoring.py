"""Scoring of bench/reasoning_layouts.py: per-item figures, their means and paired intervals."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from reasoning_layouts import deltas, earlier_answers, item_figures, score

from bonsai.records import Record


def record(i: int, category: str, output: str, language: str = "en") -> Record:
    return Record(
        id=f"r{i}", instruction="?", input="", output=output, category=category, language=language
    )


def test_item_figures_per_category() -> None:
    assert item_figures(record(1, "classification", "toxic"), "Toxic") == {
        "loops": 0.0,
        "labels": 1.0,
    }
    assert item_figures(record(2, "translation", "猫です。", "en-ja"), "猫です。")[
        "translation_lang"
    ] == pytest.approx(1.0)
    assert item_figures(record(3, "question_to_question", "?"), "Which?\nWhen?")["q2q"] == 1.0
    assert item_figures(record(4, "question_to_question", "?"), "Feed her.")["q2q"] == 0.0
    assert item_figures(record(5, "closed_qa", "abc"), "abc")["closed_qa_f1"] == pytest.approx(1.0)


def test_score_averages_the_items_and_adds_corpus_chrf() -> None:
    items = [
        (record(1, "closed_qa", "abcd"), "abcd"),
        (record(2, "closed_qa", "abcd"), "wxyz"),
        (record(3, "translation", "I bake.", "ja-en"), "I bake."),
    ]
    figures = score(items)
    assert figures["closed_qa_f1"] == pytest.approx(0.5)
    assert figures["translation_lang"] == 1.0
    assert figures["chrf"] == pytest.approx(100.0)
    assert figures["loops"] == 0.0


def test_deltas_pair_the_same_items_against_the_default() -> None:
    items = [record(i, "closed_qa", "abcd") for i in range(8)]
    said = {"bonsai": ["abcd"] * 8, "bonsai-multitask": ["wxyz"] * 4 + ["abcd"] * 4}
    row = deltas(items, said, against="bonsai-multitask")["bonsai"]
    mean, low, high = row["closed_qa_f1"]
    assert mean == pytest.approx(0.5)
    assert 0.0 < low <= mean <= high <= 1.0
    assert row["loops"] == (0.0, 0.0, 0.0)
    few = deltas(items[:3], {k: v[:3] for k, v in said.items()}, against="bonsai-multitask")
    assert few["bonsai"]["closed_qa_f1"] is None  # fewer than five items: no interval


def test_an_answers_file_that_is_not_one_is_refused_by_name(tmp_path: Path) -> None:
    items = [record(1, "closed_qa", "abcd")]
    for name, content in (
        ("other.json", b'{"x": 1}'),
        ("broken.json", b"{"),
        ("bom.json", b"\xff"),
    ):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(SystemExit, match=re.escape(name)):
            earlier_answers(path, items)
    with pytest.raises(SystemExit, match=re.escape("missing.json")):
        earlier_answers(tmp_path / "missing.json", items)
    partial = tmp_path / "partial.json"
    partial.write_text('{"answers": {"bonsai": []}, "results": {}}', encoding="utf-8")
    with pytest.raises(SystemExit, match="no bonsai answer to 1 of the items"):
        earlier_answers(partial, items)
