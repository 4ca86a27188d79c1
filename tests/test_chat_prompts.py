"""How chat reads a question: translation requests, categories and the notes section."""

from __future__ import annotations

import pytest

from bonsai.chat.prompts import (
    PromptParts,
    build_record,
    guess_category,
    note_label,
    notes_block,
    notes_that_fit,
    split_given_text,
    translation_request,
)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("英語に訳してください：猫は水をよく飲みます。", ("ja", "en")),
        ("「おはようございます」を英語で言うと？", ("ja", "en")),
        ("Translate into Japanese: The cat drinks a lot of water.", ("en", "ja")),
        ('What does "ねこじゃらし" mean in English?', ("ja", "en")),
        ("次の文を日本語に訳して：I feed her twice a day.", ("en", "ja")),
        ("请把这句话翻译成英文：猫喜欢睡觉。", ("zh", "en")),
    ],
)
def test_translation_requests_name_both_sides(question: str, expected: tuple[str, str]) -> None:
    assert translation_request(question) == expected
    assert guess_category(question, "", "answer") == "translation"
    record = build_record(
        question,
        mode="answer",
        parts=PromptParts(),
        language="xx",
        category="translation",
        layout_shows_category=True,
    )
    assert record.language == f"{expected[0]}-{expected[1]}"


@pytest.mark.parametrize(
    "question",
    ["How much does Mochi weigh?", "もちは何歳ですか？", "What is the English name of this plant?"],
)
def test_other_questions_are_not_translations(question: str) -> None:
    assert translation_request(question) is None


class Hit:
    def __init__(self, title: str, heading: str, text: str, kind: str = "file") -> None:
        self.title, self.heading, self.text, self.kind = title, heading, text, kind
        self.source = "/home/keeper/notes/care-log.md"


def test_notes_carry_a_label_in_words_and_no_path() -> None:
    hits = [
        Hit("Care log", "Care log > Watering", "Mochi drinks 200 ml a day."),
        Hit("Vet", "", "Next check-up in April."),
    ]
    assert note_label(hits[0]) == "Care log > Watering"
    assert note_label(hits[1]) == "Vet"
    block = notes_block(hits, 1000)
    assert block == (
        "[1] Care log > Watering\nMochi drinks 200 ml a day.\n\n[2] Vet\nNext check-up in April."
    )
    assert "/home/" not in block


def test_only_whole_notes_that_fit_are_kept() -> None:
    hits = [Hit("A", "", "x" * 300), Hit("B", "", "y" * 300), Hit("C", "", "z" * 300)]
    assert [h.title for h in notes_that_fit(hits, 700)] == ["A", "B"]
    assert [h.title for h in notes_that_fit(hits, 10)] == ["A"]  # the best one always


def test_a_note_longer_than_the_budget_is_cut_at_a_sentence_end() -> None:
    long = Hit("Log", "", "Mochi naps in the sun. " * 20 + "She wakes at noon")
    block = notes_block([long], 200)
    assert block.startswith("[1] Log\n") and block.endswith("sun.")
    assert len(block) <= 200
    japanese = Hit("記録", "", "もちは朝にごはんを食べる。" * 30)
    assert notes_block([japanese], 120).endswith("。")


def test_notes_come_first_with_one_place_kept_for_a_record() -> None:
    from bonsai.chat.session import notes_first

    def hit(name: str, kind: str) -> Hit:
        made = Hit(name, "", name, kind=kind)
        made.source = name
        return made

    r1, r2, n1, r3, n2, n3 = (
        hit("r1", "dataset"), hit("r2", "dataset"), hit("n1", "file"),
        hit("r3", "dataset"), hit("n2", "file"), hit("n3", "file"),
    )  # fmt: skip
    pool = [r1, r2, n1, r3, n2, n3]
    assert notes_first(pool, 3) == [r1, n1, n2]  # the two best notes and the best record, ranked
    assert notes_first([r1, r2, n1, r3], 3) == [r1, r2, n1]  # too few notes: records fill in
    assert notes_first([r1, r2], 3) == [r1, r2]
    assert notes_first(pool, 1) == [n1]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Where did she hide?\n\nThe report: under the bed.",
            ("Where did she hide?", "The report: under the bed."),
        ),
        (
            "この記録から答えてください：\n\n体重4.2kg。\n\n食欲あり。",
            ("この記録から答えてください：", "体重4.2kg。\n\n食欲あり。"),
        ),
        (
            "根据留言回答。\n　\n麻糬二十分钟就吃完了。",
            ("根据留言回答。", "麻糬二十分钟就吃完了。"),
        ),
        ("How much does Mochi weigh?", ("How much does Mochi weigh?", "")),
        (
            "She eats twice a day.\n\nIs that enough?",
            ("She eats twice a day.\n\nIs that enough?", ""),
        ),
        (
            "My cat is old\nand slow.\n\nShe sleeps a lot.",
            ("My cat is old\nand slow.\n\nShe sleeps a lot.", ""),
        ),
        ("  Summarise:\n\n\n  ", ("Summarise:", "")),
    ],
)
def test_a_message_splits_into_request_and_given_text(
    message: str, expected: tuple[str, str]
) -> None:
    assert split_given_text(message) == expected


def test_a_note_ranked_below_many_records_still_reaches_the_prompt(
    garden, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chat chooses its notes from a deep pool: a garden's records, short and worded like the
    question, can fill the first dozen places, and the note that holds the answer is below them."""
    from bonsai.chat.session import garden_retriever
    from bonsai.rag import retrieve
    from bonsai.rag.embed import HashingEncoder
    from bonsai.rag.notes import add_dataset, add_paths
    from bonsai.records import Record
    from bonsai.store import Change, RecordStore

    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")
    encoder = HashingEncoder()
    records = [
        Record(
            id=f"r{n:02d}",
            instruction=f"How often should the water fountain filter be changed, try {n}?",
            output=f"Check the water fountain filter on day {n}.",
        )
        for n in range(30)
    ]
    RecordStore(garden.db).apply(
        "cats", [Change(None, r) for r in records], kind="import", description="t"
    )
    add_dataset(garden, "cats", encoder=encoder)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "water.md").write_text(
        "# Water\n\nThe fountain gets a new filter every four weeks; the bowl is washed daily.\n",
        encoding="utf-8",
    )
    add_paths(garden, [notes], encoder=encoder)
    question = "How often should the water fountain filter be changed?"

    ranked = retrieve(garden, question, 50, encoder=encoder)
    note_rank = next(n for n, hit in enumerate(ranked, 1) if hit.kind == "file")
    assert note_rank > 12  # the records outrank it

    chosen = garden_retriever(garden.db)(question, 3)
    assert [hit.kind for hit in chosen].count("file") == 1
    assert sum(hit.kind == "dataset" for hit in chosen) == 2  # records fill the other places
