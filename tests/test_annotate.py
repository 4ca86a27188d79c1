"""``bonsai data annotate``: what it writes, what it never overwrites, dry runs, undo, errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bonsai.curate.annotate import AnnotateArgs, annotate_dataset
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import Change, RecordStore

RECORDS = [
    Record("q1", "What is the capital of Australia?", "", "Canberra is the capital."),
    Record("q2", "日本で一番高い山は何ですか？", "", "富士山です。"),
    Record("t1", "次の文を英語に訳してください。", "猫が好きです。", "I like cats."),
    Record("b1", "Give me a list of ideas for a rainy weekend.", "", "- Bake\n- Read\n- Nap"),
    Record("z1", "请列举五种水果。", "", "苹果、香蕉、橙子、葡萄、西瓜"),
    # labels a person gave: a wrong-looking category and a language stay exactly as they are
    Record(
        "h1",
        "Write a poem about the sea.",
        "",
        "Waves roll in.",
        category="open_qa",
        category_source="human",
        language="fr",
        language_source="human",
    ),
    # a label that came with the data without a recorded source counts as a person's
    Record("h2", "Why is the sky blue?", "", "Rayleigh scattering.", category="creative"),
    # an earlier suggestion: refreshed
    Record(
        "a1",
        "Translate into French: good night",
        "",
        "Bonne nuit",
        category="creative",
        category_source="auto",
        category_confidence=0.2,
        language="de",
        language_source="auto",
    ),
]


@pytest.fixture
def store(garden: Garden) -> RecordStore:
    s = RecordStore(garden.db)
    s.apply("pets", [Change(None, r) for r in RECORDS], kind="import", description="test data")
    return s


def _by_id(store: RecordStore) -> dict[str, Record]:
    return {r.id: r for r in store.records("pets")}


def test_annotate_sets_languages_and_categories(store: RecordStore) -> None:
    result = annotate_dataset(store, "pets", AnnotateArgs())
    got = _by_id(store)
    assert got["q1"].language == "en" and got["q1"].category == "open_qa"
    assert got["q2"].language == "ja"
    assert got["t1"].category == "translation" and got["t1"].language == "ja-en"
    assert got["b1"].category == "brainstorming"
    assert got["z1"].language == "zh" and got["z1"].category == "brainstorming"
    for record in got.values():
        if record.category_source == "auto":
            assert 0.0 <= record.category_confidence <= 1.0
            assert record.language_source == "auto"
    # refreshed earlier suggestions
    assert got["a1"].category == "translation" and got["a1"].language == "en-fr"
    assert got["a1"].category_confidence > 0.2
    assert result.changeset is not None
    assert store.history("pets")[-1].kind == "annotate"
    assert result.human_categories_kept == 2 and result.human_languages_kept == 1


def test_human_labels_are_never_overwritten(store: RecordStore) -> None:
    before = _by_id(store)
    annotate_dataset(store, "pets", AnnotateArgs(min_confidence=0.0))
    annotate_dataset(store, "pets", AnnotateArgs(only="language"))
    got = _by_id(store)
    for field in ("category", "category_source", "language", "language_source"):
        assert getattr(got["h1"], field) == getattr(before["h1"], field)
    assert got["h2"].category == "creative" and got["h2"].category_source is None
    assert got["h2"].language == "en"  # its language was not given: detected


def test_min_confidence_leaves_records_for_a_person(store: RecordStore) -> None:
    result = annotate_dataset(store, "pets", AnnotateArgs(min_confidence=0.999))
    got = _by_id(store)
    unlabelled = [r for r in got.values() if r.category is None]
    assert unlabelled and sum(result.below_confidence.values()) == len(unlabelled)
    assert result.unlabelled == len(unlabelled)
    # the old auto label under the threshold is cleared; human labels stay
    assert got["h1"].category == "open_qa" and got["h2"].category == "creative"
    assert all(r.category_confidence is None for r in unlabelled)


def test_only_one_field(store: RecordStore) -> None:
    annotate_dataset(store, "pets", AnnotateArgs(only="language"))
    got = _by_id(store)
    assert got["q1"].language == "en" and got["q1"].category is None
    # a translation request is still recognised for its language without storing the category
    assert got["t1"].language == "ja-en" and got["t1"].category is None
    annotate_dataset(store, "pets", AnnotateArgs(only="category"))
    assert _by_id(store)["q1"].category == "open_qa"


def test_rerun_changes_nothing_more(store: RecordStore) -> None:
    annotate_dataset(store, "pets", AnnotateArgs())
    history = len(store.history("pets"))
    result = annotate_dataset(store, "pets", AnnotateArgs())
    assert result.changed == 0 and result.changeset is None
    assert len(store.history("pets")) == history


def test_undo_reverts_an_annotate(store: RecordStore) -> None:
    before = store.records("pets")
    annotate_dataset(store, "pets", AnnotateArgs())
    assert store.records("pets") != before
    store.undo("pets")
    assert store.records("pets") == before


def test_many_records_in_chunks_report_progress(garden: Garden) -> None:
    store = RecordStore(garden.db)
    base = RECORDS[:5]
    records = [replace(base[i % 5], id=f"r{i}") for i in range(2100)]
    store.apply("many", [Change(None, r) for r in records], kind="import", description="many")
    calls: list[tuple[int, int]] = []
    result = annotate_dataset(
        store, "many", AnnotateArgs(), progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(2000, 2101), (2100, 2101), (2101, 2101)]
    assert result.changed == 2100 and result.languages["en"] == 840
    assert all(r.category and r.language for r in store.records("many"))


def test_bad_args() -> None:
    with pytest.raises(BonsaiError, match="--only"):
        AnnotateArgs(only="reasoning")
    with pytest.raises(BonsaiError, match="--min-confidence"):
        AnnotateArgs(min_confidence=1.5)


# -- the command ----------------------------------------------------------------------------------


def test_cli_annotate_prints_a_summary(cli, garden: Garden, store: RecordStore) -> None:
    result = cli("data", "annotate", "--dataset", "pets", "--garden", garden.root)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "language" in out and "ja-en" in out and "zh" in out
    assert "suggested category" in out and "mean confidence" in out
    assert "translation" in out and "brainstorming" in out
    assert "left for a person to label" in out
    assert "categories set by a person and kept: 2" in out
    assert "recorded as change #" in out
    assert _by_id(store)["q1"].category == "open_qa"


def test_cli_dry_run_writes_nothing(cli, garden: Garden, store: RecordStore) -> None:
    before = store.records("pets")
    history = store.history("pets")
    result = cli("data", "annotate", "-d", "pets", "-g", garden.root, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.stdout and "nothing was written" in result.stdout
    assert store.records("pets") == before
    assert store.history("pets") == history


def test_cli_min_confidence_reports_unlabelled(cli, garden: Garden, store: RecordStore) -> None:
    result = cli("data", "annotate", "-d", "pets", "-g", garden.root, "--min-confidence", "0.999")
    assert result.exit_code == 0, result.output
    unlabelled = sum(r.category is None for r in store.records("pets"))
    assert unlabelled > 0
    assert f"left for a person to label (no category): {unlabelled}" in result.stdout


def test_cli_unknown_dataset(cli, garden: Garden, store: RecordStore) -> None:
    result = cli("data", "annotate", "--dataset", "nope", "--garden", garden.root)
    assert result.exit_code == 2
    assert "no dataset named 'nope'" in result.stderr and "pets" in result.stderr
    assert "Traceback" not in result.output


def test_cli_bad_only(cli, garden: Garden, store: RecordStore) -> None:
    result = cli("data", "annotate", "-d", "pets", "-g", garden.root, "--only", "reasoning")
    assert result.exit_code == 2
    assert "--only must be one of language, category" in result.stderr
    assert store.history("pets")[-1].kind == "import"


def test_cli_fast_and_undo(cli, garden: Garden, store: RecordStore) -> None:
    before = store.records("pets")
    result = cli("data", "annotate", "-d", "pets", "-g", garden.root, "--fast")
    assert result.exit_code == 0, result.output
    got = _by_id(store)
    assert got["q1"].language == "en" and got["t1"].language == "ja-en"
    assert store.history("pets")[-1].kind == "annotate"
    if "undo" not in cli("data", "--help").stdout:
        pytest.skip("`bonsai data undo` is not there yet")
    result = cli("data", "undo", "-d", "pets", "-g", garden.root)
    assert result.exit_code == 0, result.output
    assert store.records("pets") == before
