"""The nursery stock: sources read into records, notes placed as chat places them, the deal,
and a keeper's run starting from the stock by default."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.layouts import BASE
from bonsai.nursery import install_stock, rehearsal, stock_fits
from bonsai.nursery.build import NurseryConfig, deal, with_notes, write_records
from bonsai.nursery.sources import Source, join_english, join_japanese, read_dolly
from bonsai.records import CATEGORIES, Record
from bonsai.train.args import TrainArgs
from bonsai.train.prepare import prepare


def test_tokenised_sentence_pairs_are_written_as_people_write_them() -> None:
    assert join_english("i 'm in the tennis club .") == "I'm in the tennis club."
    assert (
        join_english("i can 't tell who will arrive first .")
        == "I can't tell who will arrive first."
    )
    assert join_japanese("私 は テニス 部員 で す 。") == "私はテニス部員です。"
    assert join_japanese("CD プレーヤー を 買 っ た") == "CDプレーヤーを買った"


def _dolly(path: Path, n: int, language: str) -> None:
    categories = ["open_qa", "closed_qa", "classification", "brainstorming", "creative_writing"]
    rows = []
    for i in range(n):
        category = categories[i % len(categories)]
        context = f"Context {i}: the answer is {i}." if category == "closed_qa" else ""
        text = "質問" if language == "ja" else "Question"
        rows.append(
            {
                "index": str(i),
                "instruction": f"{text} {i}?",
                "input": context,
                "output": f"Answer {i}.",
                "category": category,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    _dolly(data / "dolly-ja" / "databricks-dolly-15k-ja.jsonl", 60, "ja")
    _dolly(data / "dolly" / "dolly-sample.jsonl", 20, "en")
    pairs = data / "enja-pairs"
    pairs.mkdir()
    (pairs / "train.en").write_text("".join(f"this is pen {i} .\n" for i in range(40)), "utf-8")
    (pairs / "train.ja").write_text(
        "".join(f"これ は ペン {i} で す 。\n" for i in range(40)), "utf-8"
    )
    return data


def _config(data: Path, work: Path) -> NurseryConfig:
    return NurseryConfig(
        data_dir=data,
        work_dir=work,
        dolly_ja_per_shard=20,
        pairs_per_shard=10,
        val_records=10,
        val_pairs=6,
    )


def test_dolly_categories_map_to_the_seven_and_keep_the_original(data_dir: Path) -> None:
    sources = read_dolly(data_dir / "dolly" / "dolly-sample.jsonl", language="en", prefix="en")
    assert {s.record.category for s in sources} <= set(CATEGORIES)
    creative = next(s for s in sources if s.record.source_category == "creative_writing")
    assert creative.record.category == "creative"
    assert all(s.record.input == "" for s in sources)  # the context is placed later


def test_the_deal_is_deterministic_and_covers_every_category(data_dir: Path, tmp_path) -> None:
    first = deal(_config(data_dir, tmp_path / "w1"))
    second = deal(_config(data_dir, tmp_path / "w2"))
    assert [r.id for r in first.val] == [r.id for r in second.val]
    assert first.notes == second.notes
    assert len(first.shards) == 3
    ids = [r.id for part in (first.val, *first.shards) for r in part]
    assert len(ids) == len(set(ids))  # no record twice
    seen = {r.category for shard in first.shards for r in shard}
    assert seen == set(CATEGORIES)
    translations = [r for r in first.shards[0] if r.category == "translation"]
    assert {r.language for r in translations} == {"ja-en", "en-ja"}
    assert all("{text}" not in r.instruction + r.input for r in translations)
    assert all(r.split == "val" for r in first.val)
    assert {r.shard for r in first.shards[1]} == {1}


def test_shard_c_reads_the_texts_no_other_shard_took(data_dir: Path, tmp_path: Path) -> None:
    dealt = deal(_config(data_dir, tmp_path / "w"))
    shard_a, shard_b, shard_c = dealt.shards
    taken = {r.id for r in (*dealt.val, *shard_a, *shard_b)}
    dolly = [r for r in shard_c if r.id.startswith("dolly-ja-")]
    # Every fifth of the 60 Japanese records is a closed question with a text: those of them
    # that neither the validation set nor shards A and B took.
    left = {f"dolly-ja-{i}" for i in range(1, 60, 5)} - taken
    assert left and {r.id for r in dolly} == left
    for record in dolly:
        assert record.category == "closed_qa"
        assert record.input or "the answer is" in dealt.notes[record.id]  # its text, to read
    translations = [r for r in shard_c if r.category == "translation"]
    assert len(translations) == 5  # half a shard's pairs, none of them trained before
    assert not {r.instruction for r in translations} & {r.instruction for r in shard_a + shard_b}
    assert {r.category for r in shard_c} >= {"question_to_question", "classification"}
    assert {r.shard for r in shard_c} == {2}


def test_a_reference_text_becomes_a_note_or_stays_the_given_input() -> None:
    items = [
        Source(
            Record(id=f"r{i}", instruction="Q?", output="A.", category="closed_qa"), f"Text {i}."
        )
        for i in range(200)
    ]
    records, notes = with_notes(items, seed=0)
    as_note = [r for r in records if r.input == "" and f"Text {r.id[1:]}." in notes.get(r.id, "")]
    as_input = [r for r in records if r.input]
    assert 70 < len(as_note) < 130 and 70 < len(as_input) < 130
    for record in as_input:
        # A given text is never also one of the notes.
        assert record.input not in notes.get(record.id, "")
    assert all(text.startswith("[1]") for text in notes.values())
    assert "/" not in "".join(notes.values())  # no paths


def test_a_keepers_run_starts_from_the_stock_of_its_base_model(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bonsai.nursery as nursery

    stock = tmp_path / "stock"
    (stock / "adapter").mkdir(parents=True)
    (stock / "adapter" / "adapter_config.json").write_text("{}")
    manifest = {
        "id": "20260101-000000-nursery",
        "base_model": {"name": str(tiny_model_dir)},
        "layout": "bonsai-multitask",
        "dataset": "nursery",
        "status": "finished",
        "created_at": 1.0,
        "args": {"lora_rank": 4, "lora_alpha": 8.0, "lora_targets": "all-linear"},
    }
    (stock / "manifest.json").write_text(json.dumps(manifest))
    shipped = [
        Record(id=f"n{i}", instruction=f"Label {i}?", output="yes", category=c, language="en")
        for i, c in enumerate(["classification", "closed_qa"] * 10)
    ]
    rehearsal.write(
        stock / rehearsal.REHEARSAL_FILE,
        rehearsal.choose(shipped, {"n0": "[1] A note of the nursery."}),
    )
    monkeypatch.setattr(nursery, "STOCK_DIR", stock)
    assert stock_fits(str(tiny_model_dir)) and not stock_fits("another/model")

    garden = Garden.init(tmp_path / "g")
    from bonsai.store import Change, RecordStore

    records = [
        Record(id=f"r{i}", instruction=f"Q {i}?", output="A.", category="open_qa", language="en")
        for i in range(12)
    ]
    RecordStore(garden.db).apply(
        "d", [Change(None, r) for r in records], kind="import", description="t"
    )
    prep = prepare(garden, TrainArgs(dataset="d", base_model=str(tiny_model_dir)))
    assert prep.parent is not None and prep.parent.id == install_stock(garden)
    assert prep.layout == "bonsai-multitask" and prep.args.lora_rank == 4
    assert any("nursery stock" in note for note in prep.notes)
    assert not any(e.record_id.startswith(rehearsal.ID_PREFIX) for e in prep.train)  # off
    on = prepare(garden, TrainArgs(dataset="d", base_model=str(tiny_model_dir), rehearsal="on"))
    rehearsed = [e for e in on.train if e.record_id.startswith(rehearsal.ID_PREFIX)]
    assert len(rehearsed) == len(on.split.train) // rehearsal.SHARE > 0
    assert {e.category for e in rehearsed} == {"classification", "closed_qa"}
    assert not any(e.record_id.startswith(rehearsal.ID_PREFIX) for e in on.val)
    assert any("rehearsal records" in note for note in on.notes)
    bare = prepare(
        garden,
        TrainArgs(dataset="d", base_model=str(tiny_model_dir), from_run=BASE, rehearsal="on"),
    )
    assert bare.parent is None
    assert not any(e.record_id.startswith(rehearsal.ID_PREFIX) for e in bare.train)
    assert any("nothing to rehearse" in warning for warning in bare.warnings)


def test_rehearsal_ships_short_records_of_every_category_and_language() -> None:
    records = [
        Record(
            id=f"r{i}",
            instruction="Q?" if i % 5 else "Q? " + "long " * 300,
            output="A.",
            category=("open_qa", "translation")[i % 2],
            language=("en", "ja", "zh")[i % 3],
        )
        for i in range(120)
    ]
    lines = rehearsal.choose(records, {"r1": "[1] a note"}, per_category=12)
    assert all(len(line["instruction"]) < rehearsal.MAX_CHARS for line in lines)
    for category in ("open_qa", "translation"):
        mine = [line for line in lines if line["category"] == category]
        assert len(mine) == 12
        assert {line["language"]: 0 for line in mine}.keys() == {"en", "ja", "zh"}
        assert [line["language"] for line in mine].count("en") == 4
    assert rehearsal.choose(records, {}, per_category=12, seed=1) != rehearsal.choose(
        records, {}, per_category=12, seed=2
    )


def test_a_run_draws_rehearsal_records_in_turn_and_the_same_for_the_same_seed(
    tmp_path: Path,
) -> None:
    lines = [
        {"id": f"c{i}", "category": c, "language": "en", "instruction": f"{c}?", "output": "A."}
        for c in ("classification", "closed_qa", "question_to_question")
        for i in range(10)
    ]
    lines[0]["notes"] = "[1] note"
    path = tmp_path / rehearsal.REHEARSAL_FILE
    rehearsal.write(path, lines)
    shipped = rehearsal.load(path)
    assert len(shipped.records) == 30
    assert all(r.id.startswith(rehearsal.ID_PREFIX) for r in shipped.records)
    assert shipped.notes == {rehearsal.ID_PREFIX + "c0": "[1] note"}
    drawn = rehearsal.draw(shipped, n_train=13, seed=7)
    assert len(drawn.records) == 6
    assert sorted(r.category for r in drawn.records) == sorted(
        ["classification", "closed_qa", "question_to_question"] * 2
    )
    again = rehearsal.draw(shipped, n_train=13, seed=7)
    assert [r.id for r in again.records] == [r.id for r in drawn.records]
    assert rehearsal.draw(shipped, n_train=1, seed=7).records == []
    assert rehearsal.load(tmp_path / "missing.jsonl").records == []


def test_an_unreadable_rehearsal_line_names_the_file_and_the_line(tmp_path: Path) -> None:
    from bonsai.errors import BonsaiError

    path = tmp_path / rehearsal.REHEARSAL_FILE
    path.write_text(
        '{"id": "a", "category": "open_qa", "instruction": "Q", "output": "A"}\n{"id": "b"}\n'
    )
    with pytest.raises(BonsaiError) as error:
        rehearsal.load(path)
    assert error.value.line == 2 and error.value.field == "instruction"
    assert str(path) in str(error.value)
    path.write_text("not json\n")
    with pytest.raises(BonsaiError) as error:
        rehearsal.load(path)
    assert error.value.line == 1 and "not readable" in str(error.value)


def test_records_and_notes_are_written_once(data_dir: Path, tmp_path: Path) -> None:
    config = _config(data_dir, tmp_path / "w")
    garden = Garden.init(config.work_dir)
    dealt = deal(config)
    notes_path = write_records(garden, dealt)
    write_records(garden, replace(dealt))  # a rerun adds nothing
    from bonsai.store import RecordStore

    total = len(dealt.val) + sum(len(s) for s in dealt.shards)
    assert RecordStore(garden.db).count("nursery") == total
    assert json.loads(notes_path.read_text("utf-8")) == dealt.notes


def test_a_work_garden_from_before_shard_c_gets_its_records(data_dir: Path, tmp_path: Path):
    from bonsai.store import RecordStore

    config = _config(data_dir, tmp_path / "w")
    garden = Garden.init(config.work_dir)
    dealt = deal(config)
    write_records(garden, replace(dealt, shards=dealt.shards[:2]))  # an older build's deal
    write_records(garden, dealt)
    store = RecordStore(garden.db)
    assert len(store.records("nursery", shard=2)) == len(dealt.shards[2]) > 0
    assert store.count("nursery") == len(dealt.val) + sum(len(s) for s in dealt.shards)


def test_rehearsal_only_writes_the_file_beside_the_stock_and_trains_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    from bonsai.nursery.build import build

    config = replace(
        _config(data_dir, tmp_path / "work"), out_dir=tmp_path / "stock", only_rehearsal=True
    )
    written = build(config)
    assert written == (tmp_path / "stock").resolve()
    shipped = rehearsal.load(written / rehearsal.REHEARSAL_FILE)
    trained = {r.id for shard in deal(config).shards for r in shard}
    assert shipped.records
    assert {r.id.removeprefix(rehearsal.ID_PREFIX) for r in shipped.records} <= trained
    assert {r.category for r in shipped.records} == set(CATEGORIES)
    assert not (tmp_path / "work").exists()


def test_a_build_can_continue_the_shipped_stock_with_the_shards_it_lacks(
    data_dir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bonsai.nursery as nursery
    from bonsai.nursery.build import build

    def config(work: str, out: str, **changes) -> NurseryConfig:
        return replace(
            _config(data_dir, tmp_path / work),
            out_dir=tmp_path / out,
            base_model=str(tiny_model_dir),
            max_steps=1,
            batch_tokens=256,
            micro_tokens=256,
            max_length=64,
            **changes,
        )

    stock = build(config("w1", "stock", shards=1))
    assert stock is not None
    monkeypatch.setattr(nursery, "STOCK_DIR", stock)
    with pytest.raises(BonsaiError, match="already holds shards A") as error:
        build(config("w2", "next", shards=1, continue_stock=True))
    assert error.value.hint == "--shards 2 trains shard B on top of it"

    grown = build(config("w2", "next", shards=3, continue_stock=True))
    assert grown is not None
    shipped = json.loads((stock / "manifest.json").read_text("utf-8"))["nursery"]["lineage"]
    lineage = json.loads((grown / "manifest.json").read_text("utf-8"))["nursery"]["lineage"]
    assert [step["shard"] for step in lineage] == ["A", "B", "C"]
    assert lineage[0] == shipped[0]  # shard A as the shipped stock recorded it, not trained again
    from bonsai import runs

    work = Garden(tmp_path / "w2")
    trained = runs.list_runs(work, dataset="nursery")
    assert sorted(r.manifest.shard for r in trained if not r.id.startswith("nursery-")) == [1, 2]
    work.close()


def test_a_shard_count_out_of_range_is_refused_before_anything_is_written(tmp_path: Path):
    with pytest.raises(BonsaiError, match="between 1 and 3") as error:
        NurseryConfig(data_dir=tmp_path / "data", work_dir=tmp_path / "work", shards=4)
    assert error.value.field == "shards"
    assert not (tmp_path / "work").exists()
