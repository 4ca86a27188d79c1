"""The knowledge base: chunking, adding (incremental, atomic), hybrid retrieval, CJK search."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bonsai.db import MIGRATIONS, connect, migrate
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.rag import format_citation, index, retrieve
from bonsai.rag.chunking import ChunkConfig, chunk_markdown, chunk_text, markdown_title
from bonsai.rag.embed import HashingEncoder
from bonsai.rag.focus import focus_hits
from bonsai.rag.notes import (
    add_dataset,
    add_paths,
    add_text,
    embed_missing,
    list_documents,
    remove,
)
from bonsai.rag.retrieve import fuse
from bonsai.rag.text import index_text, query_terms, units
from bonsai.records import Record
from bonsai.store import Change, RecordStore

CAT_MD = """# Cat care

Notes on looking after Mochi.

## Litter box

Scoop the litter box every morning. Replace all the litter once a week and wash the box with
mild soap, never bleach.

## Food

Mochi eats wet food twice a day, at 7:00 and 19:00. Fresh water always.
"""

NEKO_MD = """# 猫の世話

## トイレ

猫のトイレは毎日掃除する。砂は週に一度すべて交換し、容器は中性洗剤で洗う。

## ごはん

もちは一日二回ウェットフードを食べる。朝七時と夜七時。
"""


class CountingEncoder(HashingEncoder):
    """The hashing encoder, counting the texts and queries it was asked to embed."""

    def __init__(self, dim: int = 128) -> None:
        super().__init__(dim=dim)
        self.encoded: list[str] = []
        self.queries: list[str] = []

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded.extend(texts)
        return super().encode_passages(texts)

    def encode_query(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return super().encode_query(text)


@pytest.fixture
def encoder() -> CountingEncoder:
    return CountingEncoder()


@pytest.fixture
def notes_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "cat.md").write_text(CAT_MD, encoding="utf-8")
    (folder / "neko.md").write_text(NEKO_MD, encoding="utf-8")
    return folder


# -- text and chunking --------------------------------------------------------------------------


def test_units_count_words_and_cjk_characters() -> None:
    assert units("Scoop the litter box") == 4
    assert units("猫のトイレ") == 5
    assert units("Mochi は猫") == 3


def test_markdown_chunks_follow_headings() -> None:
    chunks = chunk_markdown(CAT_MD)
    assert [c.heading for c in chunks] == [
        "Cat care",
        "Cat care > Litter box",
        "Cat care > Food",
    ]
    assert chunks[1].text.startswith("Scoop the litter box")
    assert [c.ordinal for c in chunks] == [0, 1, 2]
    assert markdown_title(CAT_MD) == "Cat care"


def test_english_paragraphs_are_packed_and_capped() -> None:
    sentence = "The cat sleeps on the warm windowsill all afternoon."  # 9 words
    paragraph = " ".join([sentence] * 6)  # 54 words: bigger than the cap, cut at sentence ends
    text = f"## Sleep\n\n{paragraph}\n\nShort note.\n\n```\ncode  block\n```\n"
    chunks = chunk_markdown(text, ChunkConfig(max_units=20))
    assert all(units(c.text) <= 20 for c in chunks)
    assert all(c.heading == "Sleep" for c in chunks)
    joined = " ".join(c.text for c in chunks)
    assert joined.count("windowsill") == 6  # nothing lost
    assert chunks[0].text == f"{sentence} {sentence}"  # sentences of one paragraph rejoined
    assert "```\ncode  block\n```" in chunks[-1].text  # the code block kept whole


def test_japanese_is_cut_by_characters_at_sentence_ends() -> None:
    sentence = "猫は窓辺の暖かい場所で午後ずっと眠っている。"  # 22 characters
    text = sentence * 10
    chunks = chunk_text(text, ChunkConfig(max_units=50))
    assert len(chunks) == 5
    assert all(units(c.text) <= 50 for c in chunks)
    assert all(c.text.endswith("。") for c in chunks)
    assert "".join(c.text for c in chunks) == text  # rejoined without added spaces


def test_a_sentence_longer_than_the_cap_is_cut_at_the_cap() -> None:
    text = "あ" * 130
    chunks = chunk_text(text, ChunkConfig(max_units=50))
    assert [len(c.text) for c in chunks] == [50, 50, 30]


def test_chunk_config_checks_its_value() -> None:
    with pytest.raises(ValueError, match="max_units"):
        ChunkConfig(max_units=3)


def test_cjk_index_text_and_query_terms() -> None:
    assert index_text("猫のトイレ") == " 猫の のト トイ イレ レ "
    assert index_text("ＡＢＣ") == "abc"  # NFKC: full-width letters fold to ASCII
    terms = query_terms("How often should I clean the litter box?")
    assert terms == ['"often"', '"clean"', '"litter"', '"box"']
    assert query_terms("掃除") == ['"掃除"']
    assert query_terms("猫") == ['"猫" *']
    # hiragana-only pairs (particles) are dropped while better terms remain
    assert query_terms("トイレはどこ") == ['"トイ"', '"イレ"', '"レは"']
    assert query_terms("the") == ['"the"']  # only stopwords: keep them rather than nothing


# -- adding -------------------------------------------------------------------------------------


def test_add_folder_then_re_add_embeds_nothing(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    first = add_paths(garden, [notes_dir], encoder=encoder)
    assert sorted(first.added) == [
        (notes_dir / n).resolve().as_posix() for n in ("cat.md", "neko.md")
    ]
    assert first.chunks == 5  # neko.md's title section has no text of its own
    # Four sections hold two statements each, and each statement has a vector of its own; the
    # title section is one statement, which its own vector already is.
    assert garden.db.execute("SELECT COUNT(*) FROM knowledge_statements").fetchone()[0] == 8
    assert first.embedded == len(encoder.encoded) == 5 + 8
    encoder.encoded.clear()
    again = add_paths(garden, [notes_dir], encoder=encoder)
    assert encoder.encoded == []
    assert again.embedded == 0 and again.chunks == 0
    assert len(again.unchanged) == 2
    docs = list_documents(garden, model=encoder.name)
    assert [(d.chunks, d.embedded) for d in docs] == [(3, 3), (2, 2)]


def test_each_chunk_gets_its_own_vector(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)  # texts of several lengths, one batch
    rows = garden.db.execute(
        "SELECT c.heading, c.text, e.vector FROM knowledge_chunks c"
        " JOIN knowledge_embeddings e ON e.content_hash = c.content_hash AND e.model = ?",
        (encoder.name,),
    ).fetchall()
    assert len(rows) == 5
    for heading, text, blob in rows:
        expected = encoder.encode_passages([f"{heading}\n{text}"])[0]
        assert np.array_equal(np.frombuffer(blob, dtype=np.float32), expected)


def test_changed_file_replaces_its_chunks(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    path = notes_dir / "cat.md"
    before = garden.db.execute("SELECT COUNT(*) FROM knowledge_embeddings").fetchone()[0]
    path.write_text(CAT_MD.replace("never bleach", "never use citrus cleaners"), "utf-8")
    encoder.encoded.clear()
    report = add_paths(garden, [path], encoder=encoder)
    assert report.updated == [path.resolve().as_posix()]
    # Only the edited paragraph and its edited statement; the others keep their vectors.
    assert sorted(encoder.encoded) == [
        "Cat care > Litter box\nReplace all the litter once a week and wash the box with mild"
        " soap, never use citrus cleaners.",
        "Cat care > Litter box\nScoop the litter box every morning. Replace all the litter once a"
        " week and wash the box with\nmild soap, never use citrus cleaners.",
    ]
    texts = [
        r[0]
        for r in garden.db.execute(
            "SELECT c.text FROM knowledge_chunks c JOIN knowledge_documents d"
            " ON d.id = c.document_id WHERE d.source = ? ORDER BY c.ordinal",
            (path.resolve().as_posix(),),
        )
    ]
    assert len(texts) == 3 and not any("bleach" in t for t in texts)
    assert retrieve(garden, "bleach", k=5, mode="bm25") == []
    assert retrieve(garden, "citrus cleaners", k=1, mode="bm25")[0].heading.endswith("Litter box")
    # the old paragraph's vector is gone, the new one is there: same count as before
    after = garden.db.execute("SELECT COUNT(*) FROM knowledge_embeddings").fetchone()[0]
    assert after == before


def test_adding_a_folder_again_drops_notes_whose_file_is_gone(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    (notes_dir / "cat.md").unlink()
    report = add_paths(garden, [notes_dir], encoder=encoder)
    assert report.removed == [(notes_dir / "cat.md").resolve().as_posix()]
    assert report.unchanged == [(notes_dir / "neko.md").resolve().as_posix()]
    assert [d.source for d in list_documents(garden, model=encoder.name)] == report.unchanged
    assert retrieve(garden, "litter", k=5, mode="bm25") == []


def test_a_bad_file_named_on_its_own_stops_the_add(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    broken = notes_dir / "broken.md"
    broken.write_bytes("# 猫\n\nよい行\n".encode() + b"\xff\xfe bad\n")
    with pytest.raises(BonsaiError) as err:
        add_paths(garden, [notes_dir / "cat.md", broken], encoder=encoder)
    assert err.value.file == broken
    assert err.value.line == 4
    assert "UTF-8" in str(err.value)
    assert garden.db.execute("SELECT COUNT(*) FROM knowledge_chunks").fetchone()[0] == 0
    assert encoder.encoded == []  # nothing embedded either: the files are checked first


def test_bad_inputs_name_the_file(garden: Garden, tmp_path: Path, encoder: CountingEncoder) -> None:
    with pytest.raises(BonsaiError, match="no such file") as err:
        add_paths(garden, [tmp_path / "missing.md"], encoder=encoder)
    assert err.value.file == tmp_path / "missing.md"
    binary = tmp_path / "photo.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(BonsaiError, match="binary") as err:
        add_paths(garden, [binary], encoder=encoder)
    assert err.value.file == binary
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(BonsaiError, match="no markdown or text files") as err:
        add_paths(garden, [empty], encoder=encoder)
    assert err.value.file == empty


def test_empty_file_adds_nothing(garden: Garden, tmp_path: Path, encoder: CountingEncoder) -> None:
    path = tmp_path / "blank.txt"
    path.write_text("\n\n  \n", encoding="utf-8")
    report = add_paths(garden, [path], encoder=encoder)
    assert report.empty == [path.resolve().as_posix()] and report.added == []
    assert list_documents(garden, model=encoder.name) == []


def test_notes_inside_the_garden_are_named_relative_to_it(
    garden: Garden, encoder: CountingEncoder
) -> None:
    path = garden.notes_dir / "neko.md"
    path.write_text(NEKO_MD, encoding="utf-8")
    report = add_paths(garden, [path], encoder=encoder)
    assert report.added == ["notes/neko.md"]
    hit = retrieve(garden, "トイレ掃除", k=1, encoder=encoder)[0]
    assert format_citation(hit) == "notes/neko.md > 猫の世話 > トイレ"
    assert remove(garden, [str(garden.notes_dir)]) == ["notes/neko.md"]


def test_remove_by_path_folder_or_unknown(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    with pytest.raises(BonsaiError, match="not in the knowledge base"):
        remove(garden, [str(notes_dir / "cat.md"), str(notes_dir / "dog.md")])
    assert len(list_documents(garden, model=encoder.name)) == 2  # all or nothing
    assert remove(garden, [str(notes_dir / "cat.md")]) == [(notes_dir / "cat.md").as_posix()]
    assert retrieve(garden, "litter", k=5, mode="bm25") == []
    # neko.md's two sections and their two statements each are left
    assert garden.db.execute("SELECT COUNT(*) FROM knowledge_embeddings").fetchone()[0] == 6
    remove(garden, [str(notes_dir)])
    assert garden.db.execute("SELECT COUNT(*) FROM knowledge_statements").fetchone()[0] == 0
    assert list_documents(garden, model=encoder.name) == []
    assert garden.db.execute("SELECT COUNT(*) FROM knowledge_fts").fetchone()[0] == 0


# -- datasets -----------------------------------------------------------------------------------


def _records() -> list[Record]:
    return [
        Record(id="r1", instruction="How often should Mochi see the vet?", output="Once a year."),
        Record(
            id="r2",
            instruction="もちの爪切りはどのくらいの頻度で？",
            input="もちは室内飼いの猫です。",
            output="二週間に一度が目安です。",
        ),
    ]


def test_dataset_records_become_chunks(garden: Garden, encoder: CountingEncoder) -> None:
    store = RecordStore(garden.db)
    store.apply("cats", [Change(None, r) for r in _records()], kind="import", description="t")
    report = add_dataset(garden, "cats", encoder=encoder)
    assert report.added == ["dataset:cats"] and report.chunks == 2
    hit = retrieve(garden, "爪切り", k=1, encoder=encoder)[0]
    assert hit.source == "dataset:cats#r2" and hit.kind == "dataset"
    assert hit.text == "\n\n".join(
        [
            "もちの爪切りはどのくらいの頻度で？",
            "もちは室内飼いの猫です。",
            "二週間に一度が目安です。",
        ]
    )
    encoder.encoded.clear()
    assert add_dataset(garden, "cats", encoder=encoder).unchanged == ["dataset:cats"]
    assert encoder.encoded == []
    edited = _records()[0]
    edited.output = "Once a year, and twice after age ten."
    store.update("cats", [edited], kind="edit", description="t")
    report = add_dataset(garden, "cats", encoder=encoder)
    assert report.updated == ["dataset:cats"] and len(encoder.encoded) == 1
    assert retrieve(garden, "age ten", k=1, mode="bm25")[0].source == "dataset:cats#r1"


def test_unknown_dataset_is_a_clear_error(garden: Garden, encoder: CountingEncoder) -> None:
    with pytest.raises(BonsaiError, match="no dataset named 'nope'"):
        add_dataset(garden, "nope", encoder=encoder)


# -- retrieval ----------------------------------------------------------------------------------


def test_japanese_queries_find_the_japanese_chunk(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    for query in ("猫のトイレはどのくらいの頻度で掃除する？", "掃除", "洗剤"):
        hits = retrieve(garden, query, k=3, mode="bm25")
        assert hits[0].heading == "猫の世話 > トイレ", query
        assert hits[0].bm25_rank == 1 and hits[0].dense_rank is None
    one_char = retrieve(garden, "砂", k=3, mode="bm25")  # one character: prefix of bigrams
    assert [h.heading for h in one_char] == ["猫の世話 > トイレ"]
    hybrid = retrieve(garden, "掃除", k=3, encoder=encoder)
    assert hybrid[0].heading == "猫の世話 > トイレ" and hybrid[0].dense_rank is not None


def test_english_search_uses_stems(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    hits = retrieve(garden, "scooping litter boxes", k=1, mode="bm25")
    assert hits[0].heading == "Cat care > Litter box"
    assert retrieve(garden, "the", k=5, mode="bm25") != []  # stopword-only query still runs
    assert retrieve(garden, "   ", k=5) == []


def test_fusion_rewards_agreement() -> None:
    fused = fuse({"bm25": [1, 2, 3], "dense": [3, 4, 1]})
    assert [item for item, _ in fused] == [1, 3, 2, 4]  # 1: ranks 1+3, 3: ranks 3+1 (tie → 1)
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 63)
    assert fused[2][1] == pytest.approx(1 / 62)
    # a chunk both retrievers rank 3rd beats one that only one retriever ranks 1st
    both = fuse({"bm25": [10, 11, 7], "dense": [12, 13, 7]})
    assert both[0][0] == 7


def test_hybrid_ranks_and_scores(garden: Garden, notes_dir: Path, encoder: CountingEncoder) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    hits = retrieve(garden, "wet food twice a day", k=6, encoder=encoder)
    assert hits[0].heading == "Cat care > Food"
    assert hits[0].bm25_rank == 1 and hits[0].dense_rank == 1
    assert hits[0].score == pytest.approx(2 / 61)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        expected = sum(1 / (60 + r) for r in (hit.bm25_rank, hit.dense_rank) if r is not None)
        assert hit.score == pytest.approx(expected)
    dense_only = retrieve(garden, "wet food twice a day", k=2, mode="dense", encoder=encoder)
    assert all(h.bm25_rank is None and h.dense_rank for h in dense_only)


def test_dense_index_follows_changes(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir / "cat.md"], encoder=encoder)
    first = index.dense_index(garden.db, encoder.name)
    assert len(first.chunk_ids) == 3
    assert index.dense_index(garden.db, encoder.name) is first  # cached while nothing changes
    add_paths(garden, [notes_dir / "neko.md"], encoder=encoder)
    assert len(index.dense_index(garden.db, encoder.name).chunk_ids) == 5


def test_switching_models_embeds_missing_chunks(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    other = HashingEncoder(dim=64)
    assert retrieve(garden, "litter", k=3, mode="dense", encoder=other) == []
    report = embed_missing(garden, encoder=other)
    assert report.embedded == 5 + 8 and report.model == "hashing-64"  # chunks and statements
    assert retrieve(garden, "litter", k=3, mode="dense", encoder=other) != []


def test_migration_applies_to_an_older_database(tmp_path: Path) -> None:
    names = [name for name, _ in MIGRATIONS]
    before = names[names.index("m006_knowledge_base") - 1]
    conn = connect(tmp_path / "old.db", migrate_schema=False)
    migrate(conn, upto=before)
    assert "knowledge_chunks" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "m006_knowledge_base" in migrate(conn)
    assert index.generation(conn) == 0
    conn.close()


def test_add_text_keeps_a_note_file(garden: Garden, encoder: CountingEncoder) -> None:
    path = add_text(garden, "もちは雷が苦手。雷の日はクローゼットに隠れる。", encoder=encoder)
    assert path.parent == garden.notes_dir and path.suffix == ".md"
    assert path.read_text(encoding="utf-8").startswith("もちは雷が苦手")
    hit = retrieve(garden, "雷", k=1, encoder=encoder)[0]
    assert hit.source == f"notes/{path.name}"
    second = add_text(garden, "Mochi hides from thunder.", title="Thunder", encoder=encoder)
    assert second != path and second.read_text(encoding="utf-8").startswith("# Thunder")
    with pytest.raises(BonsaiError, match="empty"):
        add_text(garden, "  \n", encoder=encoder)


def test_retrieve_loads_no_model_without_vectors(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    monkeypatch.setenv("BONSAI_EMBED_MODEL", "all-minilm-l6-v2")

    def refuse(name: str | None = None) -> None:
        raise AssertionError("no vectors of this model: nothing to load")

    # (the package re-exports the function `retrieve`, which hides the module of that name)
    monkeypatch.setattr(sys.modules["bonsai.rag.retrieve"], "load_encoder", refuse)
    hits = retrieve(garden, "litter box", k=2)
    assert hits and all(h.dense_rank is None for h in hits)  # BM25 still answers


# -- statements ---------------------------------------------------------------------------------


def test_a_note_chunk_keeps_its_statements_and_a_record_none(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    RecordStore(garden.db).apply(
        "cats", [Change(None, r) for r in _records()], kind="import", description="test"
    )
    add_dataset(garden, "cats", encoder=encoder)
    rows = garden.db.execute(
        "SELECT d.kind, c.heading, s.ordinal, s.text FROM knowledge_statements s"
        " JOIN knowledge_chunks c ON c.id = s.chunk_id"
        " JOIN knowledge_documents d ON d.id = c.document_id"
        " ORDER BY d.source, c.ordinal, s.ordinal"
    ).fetchall()
    assert {row[0] for row in rows} == {"file"}  # records are one vector each
    assert [(heading, n, text) for _, heading, n, text in rows][:2] == [
        ("Cat care > Litter box", 0, "Scoop the litter box every morning."),
        (
            "Cat care > Litter box",
            1,
            "Replace all the litter once a week and wash the box with mild soap, never bleach.",
        ),
    ]
    # Each statement's vector is made as a chunk's is: the heading above the text.
    vector = garden.db.execute(
        "SELECT e.vector FROM knowledge_embeddings e JOIN knowledge_statements s"
        " ON s.content_hash = e.content_hash WHERE s.text = ?",
        ("Scoop the litter box every morning.",),
    ).fetchone()[0]
    expected = encoder.encode_passages(
        ["Cat care > Litter box\nScoop the litter box every morning."]
    )
    assert np.array_equal(np.frombuffer(vector, dtype=np.float32), expected[0])


def test_notes_added_before_statements_get_them_when_added_again(
    garden: Garden, notes_dir: Path, encoder: CountingEncoder
) -> None:
    add_paths(garden, [notes_dir], encoder=encoder)
    # A garden from before: no statements, and documents hashed by the older chunking.
    with garden.db:
        garden.db.execute("DELETE FROM knowledge_statements")
        index.prune_vectors(garden.db)
        garden.db.execute("UPDATE knowledge_documents SET content_hash = 'chunk-v1'")
    hits = retrieve(garden, "litter", k=3, encoder=encoder)
    assert focus_hits(garden.db, "litter", hits, 1, encoder=encoder) == hits  # shown whole
    encoder.encoded.clear()
    report = add_paths(garden, [notes_dir], encoder=encoder)
    assert len(report.updated) == 2
    # The chunks keep their vectors (same text); only the statements are embedded.
    assert len(encoder.encoded) == 8 and all("\n" in text for text in encoder.encoded)
    assert garden.db.execute("SELECT COUNT(*) FROM knowledge_statements").fetchone()[0] == 8
    hits = retrieve(garden, "litter", k=3, encoder=encoder)
    assert focus_hits(garden.db, "litter", hits, 1, encoder=encoder) != hits


def test_the_statement_table_comes_with_a_migration(tmp_path: Path) -> None:
    names = [name for name, _ in MIGRATIONS]
    conn = connect(tmp_path / "old.db", migrate_schema=False)
    migrate(conn, upto=names[names.index("m012_knowledge_statements") - 1])
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "knowledge_chunks" in tables and "knowledge_statements" not in tables
    assert migrate(conn) == names[names.index("m012_knowledge_statements") :]
    assert "knowledge_statements" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()


KITCHEN_MD = """# Kitchen

## Tools

- The blue cast-iron pot preheats for 45 minutes at 250 degrees.
- The proofing box folds flat and lives on the top shelf of the cupboard.
- My scale weighs to a tenth of a gram for salt and yeast.
- The lame gets a new blade after every ten loaves.
- Flour goes into the grey tub by the window.

## Blades

I buy razor blades for the lame in packs of twenty. They come from the shop on the corner.
"""


@pytest.fixture
def kitchen(garden: Garden, tmp_path: Path, encoder: CountingEncoder) -> Garden:
    """The garden with KITCHEN_MD added."""
    notes = tmp_path / "kitchen.md"
    notes.write_text(KITCHEN_MD, encoding="utf-8")
    add_paths(garden, [notes], encoder=encoder)
    return garden


def test_a_section_is_focused_on_the_lines_closest_to_the_question(
    kitchen: Garden, encoder: CountingEncoder
) -> None:
    garden = kitchen
    question = "The lame gets a new blade after every ten loaves?"
    hits = retrieve(garden, question, k=2, encoder=encoder)
    assert {h.heading for h in hits} == {"Kitchen > Tools", "Kitchen > Blades"}
    focused = {h.heading: h for h in focus_hits(garden.db, question, hits, 3, encoder=encoder)}
    assert encoder.queries.count(question) == 1  # focusing reuses the vector retrieval made
    lines = focused["Kitchen > Tools"].text.splitlines()
    assert len(lines) == 3 and "The lame gets a new blade after every ten loaves." in lines
    order = [
        "The blue cast-iron pot preheats for 45 minutes at 250 degrees.",
        "The proofing box folds flat and lives on the top shelf of the cupboard.",
        "My scale weighs to a tenth of a gram for salt and yeast.",
        "The lame gets a new blade after every ten loaves.",
        "Flour goes into the grey tub by the window.",
    ]
    assert lines == [line for line in order if line in lines]  # in the note's order
    # Two statements are within the limit: the section is shown as it is.
    blades = next(h for h in hits if h.heading == "Kitchen > Blades")
    assert focused["Kitchen > Blades"] == blades
    assert focus_hits(garden.db, question, hits, 0, encoder=encoder) == hits


def test_records_and_sections_without_statement_vectors_are_shown_whole(
    kitchen: Garden, encoder: CountingEncoder
) -> None:
    garden = kitchen
    RecordStore(garden.db).apply(
        "cats", [Change(None, r) for r in _records()], kind="import", description="test"
    )
    add_dataset(garden, "cats", encoder=encoder)
    hits = retrieve(garden, "How often should Mochi see the vet?", k=5, encoder=encoder)
    record = next(h for h in hits if h.kind == "dataset")
    assert record in focus_hits(garden.db, "vet", hits, 1, encoder=encoder)
    # Another model has no vectors for the statements yet: nothing is cut, nothing encoded.
    other = CountingEncoder(dim=64)
    assert focus_hits(garden.db, "vet", hits, 1, encoder=other) == hits
    assert other.queries == []
