"""The sample garden that ships in the package: records, notes, and the problems planted in them.

The records are read with `json` only, so these tests do not depend on the importer.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from itertools import combinations
from pathlib import Path

import pytest

import bonsai
from bonsai import sample
from bonsai.records import (
    CATEGORIES,
    CREATIVE_CATEGORIES,
    REASONING_MAX_LINES,
    REASONING_MAX_WORDS,
    UNIQUE_CATEGORIES,
)

KEYS = ("id", "instruction", "input", "output", "category", "language", "reasoning")
BASE_LANGUAGES = {"en", "ja", "zh"}
KANA = re.compile(r"[\u3040-\u30ff]")
HAN = re.compile(r"[\u4e00-\u9fff]")
REPO = Path(__file__).resolve().parents[1]


def _load_lines() -> list[str]:
    raw = sample.records_path().read_bytes()
    text = raw.decode("utf-8")  # fails loudly on anything that is not UTF-8
    assert text.endswith("\n"), "the file should end with a newline"
    return text.splitlines()


@pytest.fixture(scope="module")
def records() -> list[dict]:
    out = []
    for number, line in enumerate(_load_lines(), 1):
        assert line.strip(), f"line {number} is blank"
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {number} is not a JSON object"
        out.append(obj)
    return out


@pytest.fixture(scope="module")
def by_id(records: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in records}


def _text(r: dict) -> str:
    return r["instruction"] + "\n" + r["input"] + "\n" + r["output"]


def _norm(s: str) -> str:
    return re.sub(r"[\W_]+", "", s.lower())


def _trigrams(s: str) -> set[str]:
    s = _norm(s)
    return {s[i : i + 3] for i in range(len(s) - 2)}


def _similarity(a: dict, b: dict) -> float:
    """Jaccard similarity of character trigrams over instruction and output."""
    x = _trigrams(a["instruction"] + a["output"])
    y = _trigrams(b["instruction"] + b["output"])
    return len(x & y) / len(x | y)


# ---- shape ---------------------------------------------------------------------------------


def test_every_line_is_a_record_with_the_keys_in_order(records: list[dict]) -> None:
    for r in records:
        assert tuple(r) == KEYS, r.get("id")
        for key in KEYS:
            assert isinstance(r[key], str), (r["id"], key)
        assert r["instruction"].strip() and r["output"].strip(), r["id"]


def test_written_with_real_unicode_not_escapes() -> None:
    # ensure_ascii=False: a person opening the file sees Japanese, not \\u3082.
    text = sample.records_path().read_text(encoding="utf-8")
    assert "\\u" not in text
    assert "もち" in text and "麻糬" in text


def test_count_is_within_range(records: list[dict]) -> None:
    assert 200 <= len(records) <= 260


def test_ids_are_unique_and_stable_looking(records: list[dict]) -> None:
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"cat-\d{4}", i) for i in ids)


def test_every_category_is_known_and_has_at_least_15(records: list[dict]) -> None:
    counts = Counter(r["category"] for r in records)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 15, counts
    # question_to_question is the heart of the project: it should be the largest category.
    assert counts.most_common(1)[0][0] == "question_to_question"


def test_languages(records: list[dict]) -> None:
    for r in records:
        lang = r["language"]
        if r["category"] == "translation":
            src, _, dst = lang.partition("-")
            assert src in BASE_LANGUAGES and dst in BASE_LANGUAGES and src != dst, r["id"]
        else:
            assert lang in BASE_LANGUAGES, r["id"]
    share = Counter(r["language"].split("-")[0] for r in records)
    total = len(records)
    assert 0.35 <= share["en"] / total <= 0.55
    assert 0.30 <= share["ja"] / total <= 0.50
    assert 0.10 <= share["zh"] / total <= 0.22


def test_scripts_match_the_language(records: list[dict]) -> None:
    for r in records:
        lang = r["language"]
        text = _text(r)
        if lang == "ja":
            assert KANA.search(text), r["id"]
        elif lang == "zh":
            assert HAN.search(text) and not KANA.search(text), r["id"]
        elif lang == "en":
            assert not KANA.search(text) and not HAN.search(text), r["id"]
        else:  # translation: the output is written in the target language
            dst = lang.split("-")[1]
            out = r["output"]
            if dst == "ja":
                assert KANA.search(out), r["id"]
            elif dst == "en":
                assert not KANA.search(out) and not HAN.search(out), r["id"]


def test_reasoning_within_limits_and_in_the_house_style(records: list[dict]) -> None:
    for r in records:
        reasoning = r["reasoning"]
        if not reasoning:
            continue
        lines = reasoning.split("\n")
        assert len(lines) <= REASONING_MAX_LINES, r["id"]
        assert len(reasoning.split()) <= REASONING_MAX_WORDS, r["id"]
        # Written in English; it may quote a word of the record ("use 'loves' for 大好き").
        latin = len(re.findall(r"[A-Za-z]", reasoning))
        cjk = len(KANA.findall(reasoning)) + len(HAN.findall(reasoning))
        assert latin >= 3 * cjk, r["id"]
        if r["category"] in UNIQUE_CATEGORIES:
            assert all(line.startswith("You should ") for line in lines), r["id"]
        else:
            assert r["category"] in CREATIVE_CATEGORIES
            assert all(line.startswith("Creator should ") for line in lines), r["id"]


def test_some_records_are_left_for_the_teacher(records: list[dict]) -> None:
    empty = [r for r in records if not r["reasoning"]]
    assert 0.05 <= len(empty) / len(records) <= 0.15
    # Spread over the categories, so the demo's teach stage shows every template at work.
    assert {r["category"] for r in empty} == set(CATEGORIES)


def test_closed_qa_has_an_input_and_others_mostly_do_not(records: list[dict]) -> None:
    for r in records:
        if r["category"] == "closed_qa":
            assert len(r["input"]) > 40, r["id"]
    with_input = [r for r in records if r["input"] and r["category"] != "closed_qa"]
    assert len(with_input) <= 5


def test_question_to_question_answers_with_two_to_four_questions(records: list[dict]) -> None:
    for r in records:
        if r["category"] != "question_to_question":
            continue
        questions = r["output"].count("?") + r["output"].count("？")
        assert 2 <= questions <= 5, r["id"]  # one line may hold a follow-up in two parts
        lines = r["output"].split("\n")
        assert 2 <= len(lines) <= 4, r["id"]


def test_outputs_stay_short_for_a_small_student(records: list[dict]) -> None:
    # Characters as a tokenizer-free proxy: the longest record is far below ~300 tokens.
    lengths = sorted(len(_text(r)) for r in records)
    assert lengths[len(lengths) // 2] < 250
    assert lengths[-1] < 1000


# ---- consistency of the facts -----------------------------------------------------------------


def _unplanted(records: list[dict]) -> list[dict]:
    planted = set(sample.PLANTED_CONTRADICTION_IDS)
    return [r for r in records if r["id"] not in planted]


def test_mochis_weight_is_consistent_outside_the_planted_contradiction(
    records: list[dict],
) -> None:
    weights = set()
    for r in _unplanted(records):
        weights.update(re.findall(r"(\d\.\d)\s*(?:kg|公斤)", _text(r)))
    # 4.1 kg (2024), 4.2 kg (2025), 4.0-4.3 kg (the vet's range).
    assert weights and weights <= {"4.0", "4.1", "4.2", "4.3"}, weights


def test_one_vet_one_clinic(records: list[dict]) -> None:
    doctors = {m for r in records for m in re.findall(r"Dr\. (\w+)", _text(r))}
    assert doctors == {"Tanaka"}
    clinics = {m for r in records for m in re.findall(r"(\w+) Animal Clinic", _text(r))}
    assert clinics == {"Sakura"}


# ---- the planted problems ---------------------------------------------------------------------


def test_planted_contradiction(by_id: dict[str, dict]) -> None:
    a, b = (by_id[i] for i in sample.PLANTED_CONTRADICTION_IDS)
    assert a["category"] == b["category"] and a["category"] in UNIQUE_CATEGORIES
    assert _norm(a["instruction"] + a["input"]) == _norm(b["instruction"] + b["input"])
    assert a["output"] != b["output"]
    # Different facts in different words: a contradiction, not a near-duplicate.
    assert _similarity(a, b) < 0.5
    assert {"3.6", "4.2"} <= set(re.findall(r"\d\.\d", a["output"] + b["output"]))


def test_planted_near_duplicates(by_id: dict[str, dict]) -> None:
    assert len(sample.PLANTED_NEAR_DUPLICATE_IDS) >= 2
    for first, second in sample.PLANTED_NEAR_DUPLICATE_IDS:
        a, b = by_id[first], by_id[second]
        assert (a["category"], a["language"]) == (b["category"], b["language"])
        assert a["instruction"] != b["instruction"] and a["output"] != b["output"]
        assert _similarity(a, b) >= 0.6, (first, second)


def test_nothing_else_looks_duplicated(records: list[dict]) -> None:
    planted = {frozenset(p) for p in sample.PLANTED_NEAR_DUPLICATE_IDS}
    planted.add(frozenset(sample.PLANTED_CONTRADICTION_IDS))
    seen: dict[str, str] = {}
    for r in records:
        key = _norm(r["instruction"] + r["input"])
        if key in seen:
            assert frozenset((seen[key], r["id"])) in planted, (seen[key], r["id"])
        seen[key] = r["id"]
    grams = {r["id"]: _trigrams(r["instruction"] + r["output"]) for r in records}
    for a, b in combinations(records, 2):
        if frozenset((a["id"], b["id"])) in planted:
            continue
        x, y = grams[a["id"]], grams[b["id"]]
        assert len(x & y) / len(x | y) < 0.5, (a["id"], b["id"])


def test_readme_lists_the_planted_ids_and_the_real_counts(records: list[dict]) -> None:
    readme = (sample.sample_dir() / "README.md").read_text(encoding="utf-8")
    for rid in sample.PLANTED_CONTRADICTION_IDS:
        assert f"`{rid}`" in readme
    for pair in sample.PLANTED_NEAR_DUPLICATE_IDS:
        assert all(f"`{rid}`" in readme for rid in pair)
    header = next(line for line in readme.splitlines() if line.startswith("| category | en |"))
    languages = [c.strip() for c in header.strip("|").split("|")][1:-1]
    counts = Counter((r["category"], r["language"]) for r in records)
    for category in CATEGORIES:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{category}` |"))
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        expected = [str(counts[(category, lang)] or "–") for lang in languages]
        assert cells == [*expected, str(sum(counts[(category, lang)] for lang in languages))]


# ---- notes and packaging ----------------------------------------------------------------------


def test_notes_are_utf8_markdown_with_headings() -> None:
    notes = sorted(sample.notes_dir().glob("*.md"))
    assert 4 <= len(notes) <= 6
    texts = []
    for path in notes:
        text = path.read_bytes().decode("utf-8")
        first = next(line for line in text.splitlines() if line.strip())
        assert first.startswith("# "), path.name
        assert re.search(r"^## ", text, re.M), path.name
        assert 1000 <= len(text) <= 12000, path.name
        texts.append(text)
    assert any(KANA.search(t) for t in texts)  # some notes are Japanese
    assert any("麻糬" in t for t in texts)  # one carries a Chinese section


def test_sample_files_are_package_data() -> None:
    package = Path(bonsai.__file__).resolve().parent
    assert sample.sample_dir() == package / "sample"
    assert sample.records_path().is_file() and sample.notes_dir().is_dir()
    pyproject = REPO / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not running from a source checkout")
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["bonsai"]
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    wanted = {sample.records_path(), sample.sample_dir() / "README.md"}
    wanted |= set(sample.notes_dir().glob("*.md"))
    assert wanted <= shipped
