"""`bonsai.curate.split` and `bonsai data split`: stratified, deterministic, nothing lost."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from bonsai.curate.split import SplitArgs, assign_splits, split_dataset
from bonsai.errors import BonsaiError
from bonsai.records import CATEGORIES, Record
from bonsai.store import Change, RecordStore

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "bonsai" / "sample" / "cat-care.jsonl"
LANGUAGES = ("en", "ja", "zh")


def make_records(n: int, seed: int = 0) -> list[Record]:
    """n records over the seven categories and three languages, unevenly."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        category = CATEGORIES[min(int(rng.expovariate(0.5)), len(CATEGORIES) - 1)]
        language = "ja-en" if category == "translation" else rng.choice(LANGUAGES)
        out.append(
            Record(
                f"r{i:05d}",
                f"Question {i}?",
                output=f"Answer {i}.",
                category=category,
                language=language,
            )
        )
    return out


def sample_records() -> list[Record]:
    if not SAMPLE.exists():
        pytest.skip("the sample dataset is not there yet")
    return [Record.from_dict(json.loads(line)) for line in SAMPLE.read_text("utf-8").splitlines()]


def assignment(records: list[Record]) -> dict[str, tuple[str | None, int | None]]:
    return {r.id: (r.split, r.shard) for r in records}


def test_same_seed_same_split_whatever_the_order() -> None:
    records = make_records(500)
    first = assign_splits(records, SplitArgs(val=0.1, shards=3, seed=7)).records
    again = assign_splits(records, SplitArgs(val=0.1, shards=3, seed=7)).records
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    reordered = assign_splits(shuffled, SplitArgs(val=0.1, shards=3, seed=7)).records
    assert assignment(first) == assignment(again) == assignment(reordered)
    other = assign_splits(records, SplitArgs(val=0.1, shards=3, seed=8)).records
    assert assignment(other) != assignment(first)
    val = {r.id for r in first if r.split == "val"}
    assert val != {r.id for r in other if r.split == "val"}


def test_no_record_lost_or_duplicated() -> None:
    records = make_records(1000)
    result = assign_splits(records, SplitArgs(val=0.15, seed=3))
    assert [r.id for r in result.records] == [r.id for r in records]
    assert all(r.split in ("train", "val") for r in result.records)
    # Only split and shard change.
    for before, after in zip(records, result.records, strict=True):
        assert (before.instruction, before.output, before.category, before.language) == (
            after.instruction,
            after.output,
            after.category,
            after.language,
        )
    assert sum(sum(c.values()) for c in result.counts.values()) == 1000


def test_val_fraction_is_stratified_by_category_and_language() -> None:
    records = make_records(2000)
    result = assign_splits(records, SplitArgs(val=0.1, seed=0))
    val = [r for r in result.records if r.split == "val"]
    assert abs(len(val) - 200) <= len(CATEGORIES)  # round(N x f), plus at most one per category
    groups = Counter((r.category, r.language) for r in records)
    val_groups = Counter((r.category, r.language) for r in val)
    for key, n in groups.items():
        assert abs(val_groups[key] - n * 0.1) <= 1, key


def test_every_category_of_two_or_more_has_val_and_train() -> None:
    records = [
        *make_records(100),
        Record("tiny-1", "Q?", output="A.", category="question_to_question", language="zh"),
        Record("tiny-2", "Q2?", output="A2.", category="question_to_question", language="zh"),
        Record("solo", "Q3?", output="A3.", category="creative", language="ko"),
        Record("nolabel-1", "Q4?", output="A4.", category=None, language=None),
        Record("nolabel-2", "Q5?", output="A5.", category=None, language=None),
    ]
    records = [r for r in records if r.category != "creative" or r.id == "solo"]
    result = assign_splits(records, SplitArgs(val=0.05, seed=1))
    by_category: dict[str | None, Counter[str]] = {}
    for r in result.records:
        by_category.setdefault(r.category, Counter())[r.split or "-"] += 1
    for category, counts in by_category.items():
        if sum(counts.values()) >= 2:
            assert counts["val"] >= 1 and counts["train"] >= 1, (category, counts)
    assert by_category["creative"] == Counter({"train": 1})  # a category of one stays in train


@pytest.mark.parametrize("args", [SplitArgs(shards=4), SplitArgs(shard_size=4000)])
def test_16k_records_make_four_shards_of_4k(args: SplitArgs) -> None:
    records = make_records(16_000)
    result = assign_splits(records, args)
    assert result.shards == 4
    sizes = Counter(r.shard for r in result.records)
    assert sizes == {0: 4000, 1: 4000, 2: 4000, 3: 4000}
    assert all(r.split is None for r in result.records)
    # Stratified: every shard holds a quarter of every category x language group.
    groups = Counter((r.category, r.language) for r in records)
    for shard in range(4):
        in_shard = Counter((r.category, r.language) for r in result.records if r.shard == shard)
        for key, n in groups.items():
            assert abs(in_shard[key] - n / 4) <= 1, (shard, key)


def test_shard_size_balances_shards() -> None:
    result = assign_splits(make_records(16_000), SplitArgs(shard_size=5000))
    assert Counter(r.shard for r in result.records) == {0: 4000, 1: 4000, 2: 4000, 3: 4000}
    result = assign_splits(make_records(10), SplitArgs(shard_size=3))
    assert sorted(Counter(r.shard for r in result.records).values()) == [2, 2, 3, 3]


def test_val_and_shards_together_shard_the_training_part() -> None:
    result = assign_splits(make_records(1000), SplitArgs(val=0.2, shards=2, seed=5))
    val = [r for r in result.records if r.split == "val"]
    train = [r for r in result.records if r.split == "train"]
    assert all(r.shard is None for r in val)
    assert Counter(r.shard for r in train) == {0: len(train) // 2, 1: len(train) - len(train) // 2}
    assert set(result.counts) == {"val", "shard 0", "shard 1"}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(BonsaiError, match="say how to split"):
        SplitArgs()
    with pytest.raises(BonsaiError, match="not both"):
        SplitArgs(shards=2, shard_size=10)
    with pytest.raises(BonsaiError, match="between 0 and 1"):
        SplitArgs(val=1.0)
    with pytest.raises(BonsaiError, match="1 or more"):
        SplitArgs(shards=0)
    with pytest.raises(BonsaiError, match="only 3 records"):
        assign_splits(make_records(3), SplitArgs(shards=5))


def test_sample_dataset_split(garden) -> None:
    records = sample_records()
    store = RecordStore(garden.db)
    store.apply("cats", [Change(None, r) for r in records], kind="import", description="sample")
    result = split_dataset(store, "cats", SplitArgs(val=0.1, shards=2, seed=0))
    stored = store.records("cats")
    assert sorted(r.id for r in stored) == sorted(r.id for r in records)
    categories = Counter(r.category for r in records)
    val_categories = Counter(r.category for r in stored if r.split == "val")
    for category, n in categories.items():
        if n >= 2:
            assert val_categories[category] >= 1, category
    assert len(store.records("cats", split="val")) == sum(result.counts["val"].values())
    assert {r.shard for r in store.records("cats", split="train")} == {0, 1}


def test_split_is_stored_undoable_and_recorded(garden) -> None:
    store = RecordStore(garden.db)
    records = make_records(300)
    store.apply("ds", [Change(None, r) for r in records], kind="import", description="test")

    first = split_dataset(store, "ds", SplitArgs(val=0.1, seed=1))
    after_first = assignment(store.records("ds"))
    assert after_first == assignment(first.records)
    second = split_dataset(store, "ds", SplitArgs(val=0.1, shards=2, seed=2))
    after_second = assignment(store.records("ds"))
    assert after_second != after_first
    # Re-running the same split changes nothing and adds no change or row.
    assert split_dataset(store, "ds", SplitArgs(val=0.1, shards=2, seed=2)).changeset is None

    history = store.history("ds")
    assert [c.kind for c in history] == ["import", "split", "split"]
    assert history[-1].summary["seed"] == 2
    rows = garden.db.execute("SELECT kind, settings FROM splits ORDER BY id").fetchall()
    assert [r[0] for r in rows] == ["val", "val+shards"]
    settings = json.loads(rows[1][1])
    assert (settings["seed"], settings["shards"], settings["changeset"]) == (2, 2, second.changeset)

    store.undo("ds")
    assert assignment(store.records("ds")) == after_first
    store.undo("ds")
    assert all(r.split is None and r.shard is None for r in store.records("ds"))


def test_cli_prints_counts_per_part_and_category(garden, cli) -> None:
    store = RecordStore(garden.db)
    store.apply("ds", [Change(None, r) for r in make_records(400)], kind="import", description="t")
    result = cli("data", "split", "-d", "ds", "--val", "0.1", "--shards", "2", "--seed", "3",
                 "-g", garden.root)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("category"))
    assert header.split() == ["category", "shard", "0", "shard", "1", "val", "total"]
    total = next(line for line in lines if line.startswith("total")).split()
    stored = RecordStore(garden.db).records("ds")
    counts = Counter("val" if r.split == "val" else r.shard for r in stored)
    assert total[1:] == [str(counts[0]), str(counts[1]), str(counts["val"]), "400"]
    assert "bonsai data undo" in result.stdout

    result = cli("data", "undo", "-d", "ds", "-g", garden.root)
    assert result.exit_code == 0, result.output
    assert all(r.split is None for r in RecordStore(garden.db).records("ds"))


def test_cli_errors(garden, cli) -> None:
    store = RecordStore(garden.db)
    store.apply("ds", [Change(None, r) for r in make_records(10)], kind="import", description="t")
    for args, message in [
        (["-d", "nope", "--val", "0.1"], "no dataset named 'nope'"),
        (["-d", "ds"], "say how to split"),
        (["-d", "ds", "--val", "2"], "--val must be a fraction between 0 and 1"),
        (["-d", "ds", "--shards", "2", "--shard-size", "3"], "not both"),
    ]:
        result = cli("data", "split", *args, "-g", garden.root)
        assert result.exit_code == 2, args
        assert message in result.stderr
        assert "Traceback" not in result.output
    assert all(r.split is None for r in RecordStore(garden.db).records("ds"))
