"""Prompt templates: defaults per category, garden overrides, hashes, and errors that point home."""

from __future__ import annotations

from pathlib import Path

import pytest

from bonsai.errors import BonsaiError
from bonsai.records import CATEGORIES, CREATIVE_CATEGORIES, Record
from bonsai.teach.templates import TemplateSet, init_templates, language_codes


def _record(category: str | None = "open_qa", **kw: str) -> Record:
    values = {
        "id": "r1",
        "instruction": "Why does Mochi knead the blanket?",
        "input": "",
        "output": "Kneading is a kitten habit that cats keep when they feel safe.",
        "category": category,
        "language": "en",
    }
    values.update(kw)
    return Record(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("category", [*CATEGORIES, None])
def test_every_category_has_a_careful_default(category: str | None) -> None:
    template, prompt = TemplateSet().render(_record(category), "en")
    assert template.origin == "default"
    assert template.name == f"{category or 'uncategorised'}.j2"
    form = "Creator should" if category in CREATIVE_CATEGORIES else "You should"
    assert f'Start every line with "{form}"' in prompt
    assert "Why does Mochi knead the blanket?" in prompt
    assert "Kneading is a kitten habit" in prompt
    # The teacher is told the answer is given and must not be restated.
    assert "already written" in prompt and "do not restate it" in prompt
    assert "At most 5 lines and 120 words" in prompt
    assert "## Input" not in prompt  # no input, no empty section


def test_input_section_only_when_there_is_input() -> None:
    _, prompt = TemplateSet().render(_record("closed_qa", input="Mochi is six."), "en")
    assert "## Input\nMochi is six." in prompt and "part of the input" in prompt


def test_record_language_policy_asks_for_that_language() -> None:
    record = _record("creative", language="ja", instruction="短歌をつくって", output="窓辺の猫")
    _, prompt = TemplateSet().render(record, "record")
    assert "Write in Japanese" in prompt and "作り手は…すべきです" in prompt
    _, prompt = TemplateSet().render(_record(language="fr"), "record")
    assert 'Write in French. Start every line with the French words for "You should"' in prompt


def test_translation_names_both_languages() -> None:
    _, prompt = TemplateSet().render(_record("translation", language="ja-en"), "en")
    assert "translation (Japanese → English)" in prompt
    assert language_codes("ja-JP") == ["ja"] and language_codes("en-ja") == ["en", "ja"]


def test_garden_file_overrides_the_default(tmp_path: Path) -> None:
    (tmp_path / "open_qa.j2").write_text("Mine: {{ instruction }} ({{ form }})", encoding="utf-8")
    templates = TemplateSet(tmp_path)
    template, prompt = templates.render(_record(), "en")
    assert template.origin == "garden" and prompt == (
        "Mine: Why does Mochi knead the blanket? (You should)"
    )
    other, _ = templates.render(_record("closed_qa"), "en")
    assert other.origin == "default"


def test_hash_covers_included_templates(tmp_path: Path) -> None:
    default = TemplateSet(tmp_path).get("open_qa")
    assert set(default.sources) == {"open_qa.j2", "_base.j2"}
    # Overriding only the shared base changes the hash of every category that extends it.
    base = (Path(__file__).parents[1] / "src/bonsai/teach/templates/_base.j2").read_text("utf-8")
    (tmp_path / "_base.j2").write_text(base + "\nOne more rule.\n", encoding="utf-8")
    changed = TemplateSet(tmp_path).get("open_qa")
    assert changed.hash != default.hash and changed.origin == "default"
    assert TemplateSet(tmp_path).get("open_qa").hash == changed.hash  # stable


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "brainstorming.j2"
    path.write_text("line one\nline two {{ instruction \n", encoding="utf-8")
    with pytest.raises(BonsaiError) as info:
        TemplateSet(tmp_path).render(_record("brainstorming"), "en")
    assert Path(str(info.value.file)) == path and info.value.line == 2
    assert "syntax error" in info.value.message


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    (tmp_path / "open_qa.j2").write_text('{% include "_part.j2" %}\n', encoding="utf-8")
    part = tmp_path / "_part.j2"
    part.write_text("ok\nok\n{{ instruction.nope() }}\n", encoding="utf-8")
    with pytest.raises(BonsaiError) as info:
        TemplateSet(tmp_path).render(_record(), "en")
    assert Path(str(info.value.file)) == part and info.value.line == 3


def test_undefined_variable_names_line(tmp_path: Path) -> None:
    (tmp_path / "open_qa.j2").write_text("a\nb\n{{ reasoning_of_cat }}\n", encoding="utf-8")
    with pytest.raises(BonsaiError) as info:
        TemplateSet(tmp_path).render(_record(), "en")
    assert info.value.line == 3 and "'reasoning_of_cat' is undefined" in info.value.message
    assert "r1" in info.value.message  # which record


def test_empty_prompt_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "open_qa.j2").write_text("{# nothing #}\n", encoding="utf-8")
    with pytest.raises(BonsaiError, match="empty prompt"):
        TemplateSet(tmp_path).render(_record(), "en")


def test_template_must_be_utf8(tmp_path: Path) -> None:
    (tmp_path / "open_qa.j2").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(BonsaiError, match="not UTF-8"):
        TemplateSet(tmp_path).render(_record(), "en")


def test_init_templates_keeps_existing_files(tmp_path: Path) -> None:
    written = init_templates(tmp_path / "templates")
    assert len(written) == len(TemplateSet().default_names())
    (tmp_path / "templates" / "creative.j2").write_text("mine", encoding="utf-8")
    assert init_templates(tmp_path / "templates") == []
    assert (tmp_path / "templates" / "creative.j2").read_text(encoding="utf-8") == "mine"
