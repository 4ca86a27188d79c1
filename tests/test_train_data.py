"""The train stage's data preparation: layouts, tokenising with masks, length limits, splits,
packing. Only the tiny tokenizer is needed, no model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bonsai.errors import BonsaiError
from bonsai.layouts import (
    LAYOUTS,
    format_notes,
    get_layout,
    missing_fields,
    parse_completion,
    render,
    render_prompt,
    render_target,
    render_tasks,
)
from bonsai.records import Record
from bonsai.sample import records_path
from bonsai.train.args import CONTINUED_EPOCHS, DataStats, TrainArgs, derive
from bonsai.train.data import (
    CATEGORY_NAMES,
    DataReport,
    Example,
    choose_split,
    collate,
    data_hash,
    epoch_order,
    fit_length,
    pack,
    render_masked,
    tokenise,
)

RECORD = Record(
    id="r1",
    instruction="How much does Mochi eat?",
    input="",
    output="Two pouches of wet food a day.",
    category="open_qa",
    language="en",
    reasoning="You should recall her diet.\nYou should give the amount.",
)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def sample_records() -> list[Record]:
    lines = records_path().read_text(encoding="utf-8").splitlines()
    return [Record(**json.loads(line)) for line in lines]


# -- layouts ------------------------------------------------------------------------------------


def test_each_layout_puts_what_the_model_writes_in_the_target() -> None:
    alpaca = render("alpaca", RECORD)
    assert alpaca.prompt == ("### Instruction:\nHow much does Mochi eat?\n\n### Response:\n")
    assert alpaca.target == "Two pouches of wet food a day."

    bonsai = render("bonsai", RECORD)
    assert bonsai.prompt.startswith("### Category: open_qa\n### Language: en\n\n")
    assert bonsai.prompt.endswith("### Reasoning:\n")
    assert "You should" not in bonsai.prompt
    assert bonsai.target == (
        "You should recall her diet.\nYou should give the amount.\n\n"
        "### Response:\nTwo pouches of wet food a day."
    )

    given = render("bonsai-given", RECORD)
    assert "You should recall her diet." in given.prompt
    assert given.prompt.endswith("### Response:\n")
    assert given.target == "Two pouches of wet food a day."


def test_input_section_only_when_there_is_an_input() -> None:
    with_input = {"instruction": "Summarise.", "input": "猫は水を飲む。", "output": "x"}
    assert "### Input:\n猫は水を飲む。\n\n" in render_prompt("alpaca", with_input)
    assert "### Input" not in render_prompt("alpaca", RECORD)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_parse_completion_inverts_the_target(layout: str) -> None:
    reasoning, answer = parse_completion(layout, render_target(layout, RECORD))
    assert answer == RECORD.output
    writes_reasoning = layout in ("bonsai", "bonsai-after")
    assert reasoning == (RECORD.reasoning if writes_reasoning else None)


def test_reasoning_after_and_as_a_second_task() -> None:
    after = render("bonsai-after", RECORD)
    assert after.prompt.endswith("### Response:\n")
    assert after.target == (
        "Two pouches of wet food a day.\n\n### Reasoning:\n"
        "You should recall her diet.\nYou should give the amount."
    )
    # Generation stops at the reasoning section: chat gets the answer alone.
    assert "\n### " in get_layout("bonsai-after").stop

    answer, reasoning = render_tasks("bonsai-multitask", RECORD)
    assert answer.task == "answer" and reasoning.task == "reasoning"
    assert answer.prompt.endswith("### Response:\n")
    assert answer.target == "Two pouches of wet food a day."
    assert reasoning.prompt == answer.prompt.removesuffix("### Response:\n") + "### Reasoning:\n"
    assert reasoning.target == RECORD.reasoning
    # Without a reasoning a record still trains the answer.
    bare = Record(id="b", instruction="Hi", output="Hello", category="open_qa", language="en")
    assert [r.task for r in render_tasks("bonsai-multitask", bare)] == ["answer"]
    assert missing_fields("bonsai-multitask", bare) == []


def test_notes_have_their_own_section_without_paths() -> None:
    notes = format_notes([("Care log > Watering", "Mochi drinks 200 ml."), ("", "Other.")])
    assert notes == "[1] Care log > Watering\nMochi drinks 200 ml.\n\n[2]\nOther."
    prompt = render_prompt("bonsai-multitask", RECORD, notes)
    assert prompt.index("### Notes:\n[1] Care log") < prompt.index("### Instruction:")
    assert "### Notes" not in render_prompt("bonsai-multitask", RECORD)
    assert "### Notes:\n" in render_prompt("alpaca", RECORD, notes)


def test_layouts_describe_themselves() -> None:
    assert get_layout("bonsai").reasoning_first
    assert not get_layout("bonsai-multitask").reasoning_first
    assert not get_layout("alpaca").shows_category
    assert "\n### " not in get_layout("bonsai").stop  # it must write "### Response:" itself


def test_parse_completion_drops_a_new_record_and_handles_a_missing_header() -> None:
    text = "You should think.\n\n### Response:\n4.2 kg.\n### Instruction:\nMore?"
    assert parse_completion("bonsai", text) == ("You should think.", "4.2 kg.")
    assert parse_completion("bonsai", "just an answer") == (None, "just an answer")


def test_unknown_layout_is_a_clear_error() -> None:
    with pytest.raises(BonsaiError, match="unknown layout 'chatml'"):
        render_prompt("chatml", RECORD)
    with pytest.raises(BonsaiError, match="alpaca, bonsai-multitask, bonsai, bonsai-after"):
        TrainArgs(dataset="d", layout="chatml")


def test_bonsai_layouts_need_category_language_and_reasoning() -> None:
    bare = Record(id="x", instruction="Hi", output="Hello")
    assert missing_fields("alpaca", bare) == []
    assert missing_fields("bonsai", bare) == ["category", "language", "reasoning"]
    assert missing_fields("bonsai-multitask", bare) == ["category", "language"]


def test_multitask_trains_the_reasoning_but_validates_the_answer(tokenizer) -> None:
    trained = tokenise([RECORD], tokenizer, "bonsai-multitask", report=DataReport())
    validated = tokenise(
        [RECORD], tokenizer, "bonsai-multitask", report=DataReport(), all_tasks=False
    )
    assert len(trained) == 2 and len(validated) == 1
    assert validated[0].input_ids == trained[0].input_ids


def test_notes_go_into_the_prompt_of_their_record_only(tokenizer) -> None:
    other = Record(id="r9", instruction="Hi", output="Hello", category="open_qa", language="en")
    notes = {"r1": format_notes([("Diet", "Two pouches a day.")])}
    with_notes, without = tokenise(
        [RECORD, other], tokenizer, "alpaca", report=DataReport(), notes=notes
    )
    assert "Two pouches a day." in tokenizer.decode(with_notes.input_ids[: with_notes.n_prompt])
    assert "Notes" not in tokenizer.decode(without.input_ids)


# -- tokenising and masks ---------------------------------------------------------------------


def test_examples_start_with_bos_end_with_eos_and_mask_the_prompt(tokenizer) -> None:
    report = DataReport()
    [example] = tokenise([RECORD], tokenizer, "bonsai", report=report)
    prompt = tokenizer(render_prompt("bonsai", RECORD), add_special_tokens=False)["input_ids"]
    target = tokenizer(render_target("bonsai", RECORD), add_special_tokens=False)["input_ids"]
    assert example.input_ids == [tokenizer.bos_token_id, *prompt, *target, tokenizer.eos_token_id]
    assert example.n_prompt == 1 + len(prompt)
    assert example.category == "open_qa"

    batch = collate([example])
    # Every target token (and the EOS) is predicted from the position before it, and only those.
    assert batch.targets.tolist() == [*target, tokenizer.eos_token_id]
    assert batch.loss_positions.tolist() == list(
        range(example.n_prompt - 1, len(example.input_ids) - 1)
    )


def test_records_a_layout_cannot_render_are_skipped_and_counted(tokenizer) -> None:
    report = DataReport()
    no_reasoning = Record(
        id="r2", instruction="Hi", output="Hello", category="open_qa", language="en"
    )
    examples = tokenise([RECORD, no_reasoning], tokenizer, "bonsai", report=report)
    assert [e.record_id for e in examples] == ["r1"]
    assert report.records == 2
    assert report.skipped == {"no reasoning": 1}


def test_overlong_examples_are_truncated_or_skipped_and_counted(tokenizer) -> None:
    long = Record(id="long", instruction="Say it.", output="Mochi sleeps. " * 40)
    short = Record(id="short", instruction="Say it.", output="Yes.")
    examples = tokenise([long, short], tokenizer, "alpaca", report=DataReport())
    limit = len(examples[1].input_ids) + 5

    truncating = DataReport()
    kept = fit_length(examples, limit, "truncate", truncating)
    assert [len(e.input_ids) for e in kept] == [limit, len(examples[1].input_ids)]
    assert kept[0].truncated and kept[0].input_ids[-1] != tokenizer.eos_token_id
    assert truncating.truncated == 1

    skipping = DataReport()
    kept = fit_length(examples, limit, "skip", skipping)
    assert [e.record_id for e in kept] == ["short"]
    assert skipping.skipped == {f"longer than {limit} tokens": 1}

    tiny = DataReport()
    assert fit_length(examples, 4, "truncate", tiny) == []
    assert tiny.skipped == {"prompt alone longer than 4 tokens": 2}


def test_dry_run_rendering_marks_every_line(tokenizer) -> None:
    [example] = tokenise([RECORD], tokenizer, "bonsai", report=DataReport())
    lines = render_masked(example, tokenizer)
    masked = [line for trained, line in lines if not trained]
    trained = [line for trained, line in lines if trained]
    assert masked[0].startswith("<bos>### Category: open_qa")
    assert masked[-1] == "### Reasoning:"
    assert trained[0] == "You should recall her diet."
    assert trained[-1] == "Two pouches of wet food a day.<eos>"


def test_japanese_and_chinese_round_trip(tokenizer) -> None:
    record = Record(
        id="ja",
        instruction="もちは何歳？",
        output="六歳です。猫每天需要喝水。",
        category="open_qa",
        language="ja",
        reasoning="You should recall.",
    )
    [example] = tokenise([record], tokenizer, "bonsai", report=DataReport())
    text = tokenizer.decode(example.input_ids[example.n_prompt :], skip_special_tokens=True)
    assert parse_completion("bonsai", text) == ("You should recall.", "六歳です。猫每天需要喝水。")


# -- split and packing --------------------------------------------------------------------------


def test_a_missing_validation_split_is_made_stratified_and_deterministic() -> None:
    records = sample_records()
    first = choose_split([], [], records, fraction=0.1, seed=0)
    again = choose_split([], [], records, fraction=0.1, seed=0)
    assert first.made_here
    assert [r.id for r in first.val] == [r.id for r in again.val]
    assert 0.08 * len(records) <= len(first.val) <= 0.12 * len(records)
    assert {r.category for r in first.val} == {r.category for r in records}
    assert not {r.id for r in first.val} & {r.id for r in first.train}
    assert len(first.train) + len(first.val) == len(records)


def test_an_existing_validation_split_is_used_as_it_is() -> None:
    records = sample_records()[:10]
    train, val = records[:8], records[8:]
    choice = choose_split(train, val, [], fraction=0.5, seed=1)
    assert not choice.made_here
    assert choice.val == val and choice.train == train


def test_packing_keeps_examples_whole_and_rows_within_budget() -> None:
    examples = [
        Example(str(i), "open_qa", list(range(n)), 1) for i, n in enumerate([5, 9, 3, 7, 8, 2, 10])
    ]
    order = epoch_order(len(examples), seed=3, epoch=0)
    rows = pack(order, examples, micro_tokens=12)
    assert sorted(i for row in rows for i in row) == list(range(len(examples)))
    assert [i for row in rows for i in row] == order
    for row in rows:
        assert sum(len(examples[i].input_ids) for i in row) <= 12
    assert epoch_order(7, 3, 0) == order and epoch_order(7, 3, 1) != order

    batch = collate([examples[i] for i in rows[0]])
    starts = [p for p, value in enumerate(batch.position_ids[0].tolist()) if value == 0]
    assert len(starts) == len(rows[0])
    assert batch.tokens == sum(len(examples[i].input_ids) for i in rows[0])
    assert set(batch.categories.tolist()) == {CATEGORY_NAMES.index("open_qa")}


def test_data_hash_changes_with_layout_tokens_or_split() -> None:
    a = [Example("a", "open_qa", [1, 2, 3], 1)]
    b = [Example("b", "creative", [4, 5], 1)]
    base = data_hash("bonsai", a, b)
    assert base == data_hash("bonsai", a, b)
    assert base != data_hash("alpaca", a, b)
    assert base != data_hash("bonsai", b, a)
    assert base != data_hash("bonsai", [Example("a", "open_qa", [1, 2, 4], 1)], b)


# -- settings ---------------------------------------------------------------------------------


def test_derived_settings_are_filled_and_explained() -> None:
    args, notes = derive(TrainArgs(dataset="d", max_length=256), DataStats(200, 40_000, 230))
    assert args.epochs == 3 and args.lora_rank == 8 and args.lora_alpha == 16
    assert args.batch_tokens is not None and args.batch_tokens % 256 == 0
    assert args.micro_tokens is not None and args.micro_tokens <= args.batch_tokens
    assert any(note.startswith("epochs 3") for note in notes)
    big, _ = derive(TrainArgs(dataset="d", lora_rank=4), DataStats(50_000, 10_000_000, 500))
    assert big.epochs == 1 and big.lora_rank == 4 and big.batch_tokens == 8192


def test_a_run_that_continues_an_adapter_gets_at_most_two_epochs() -> None:
    small = DataStats(200, 40_000, 230)
    continued, notes = derive(TrainArgs(dataset="d", from_run="nursery-1"), small)
    assert continued.epochs == CONTINUED_EPOCHS == 2
    assert "epochs 2 (200 training examples, continuing run nursery-1)" in notes
    fresh, _ = derive(TrainArgs(dataset="d", from_run="base"), small)
    assert fresh.epochs == 3
    given, _ = derive(TrainArgs(dataset="d", from_run="nursery-1", epochs=3), small)
    assert given.epochs == 3
    big, _ = derive(TrainArgs(dataset="d", from_run="nursery-1"), DataStats(50_000, 10**7, 500))
    assert big.epochs == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("overlong", "wrap"), ("precision", "fp8"), ("max_steps", 0), ("lr", 2.0), ("epochs", 0)],
)
def test_bad_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(BonsaiError) as error:
        TrainArgs(dataset="d", **{field: value})
    assert error.value.field == field
