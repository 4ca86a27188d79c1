"""Prompt templates for the teacher, one Jinja2 file per category.

The defaults ship in ``bonsai/teach/templates/``; a file of the same name in the garden's
``templates/`` folder replaces one (``bonsai teach --init-templates`` copies them there to edit).
A template sees the record (``instruction``, ``input``, ``output``, ``category``, ``language``)
and the rules it must state (``form``, ``max_lines``, ``max_words``, ``reasoning_language``, …).

A template's hash covers its own text and every template it includes or extends, so editing a
shared part re-teaches exactly the records whose prompt changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.records import (
    CREATIVE_CATEGORIES,
    REASONING_MAX_LINES,
    REASONING_MAX_WORDS,
    Record,
    category_group,
)

DEFAULTS_DIR = Path(__file__).parent / "templates"
UNCATEGORISED = "uncategorised"
"""Template for records that have no category yet."""

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "ja": "Japanese",
    "zh": "Chinese",
    "ko": "Korean",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "ru": "Russian",
    "uk": "Ukrainian",
    "pl": "Polish",
    "sv": "Swedish",
    "tr": "Turkish",
    "ar": "Arabic",
    "fa": "Persian",
    "hi": "Hindi",
    "vi": "Vietnamese",
    "id": "Indonesian",
    "th": "Thai",
}

# How the sentence form reads in languages whose reasoning is checked for it (see validate.py).
FORM_IN_LANGUAGE: dict[str, tuple[str, str]] = {
    "ja": ("あなたは…すべきです", "作り手は…すべきです"),
    "zh": ("你应该……", "创作者应该……"),
    "ko": ("당신은 …해야 합니다", "창작자는 …해야 합니다"),
}


def language_codes(language: str | None) -> list[str]:
    """ISO codes in a record's ``language``: 'ja' → ['ja'], a translation 'ja-en' → ['ja', 'en']."""
    if not language:
        return []
    parts = [p for p in language.replace("_", "-").split("-") if p]
    codes = [parts[0].lower()]
    # 'ja-JP' is a region tag, 'ja-en' a translation pair: only lower-case parts are languages.
    codes += [p for p in parts[1:] if p.islower() and p != codes[0]]
    return codes


def language_name(code: str | None) -> str:
    return LANGUAGE_NAMES.get(code or "", code or "unknown")


def reasoning_language(record: Record, policy: str) -> str | None:
    """The code of the language the reasoning must be written in, or None when unknown."""
    if policy == "en":
        return "en"
    codes = language_codes(record.language)
    return codes[0] if codes else None


def sentence_form(category: str | None) -> str:
    """'Creator should' for creative categories, 'You should' for the others."""
    return "Creator should" if category in CREATIVE_CATEGORIES else "You should"


@dataclass(frozen=True)
class Template:
    """A loaded template: which file, where from, and a hash of everything it renders from."""

    name: str
    """File name, e.g. ``closed_qa.j2``."""
    path: Path
    origin: str
    """'garden' (the user's file) or 'default' (shipped with BONSAI)."""
    hash: str
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    """Text of this template and of every template it includes, by name (for the manifest)."""


class TemplateSet:
    """The templates of one garden: its own files first, then the shipped defaults."""

    def __init__(self, garden_dir: Path | None = None) -> None:
        import jinja2  # lazy: keeps `bonsai --help` fast

        self._jinja = jinja2
        self.search_path = [p for p in (garden_dir, DEFAULTS_DIR) if p is not None]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(p) for p in self.search_path], encoding="utf-8"),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates: dict[str, Template] = {}
        self._compiled: dict[str, Any] = {}

    # -- loading ------------------------------------------------------------------------------

    def _locate(self, name: str) -> tuple[Path, str]:
        for folder in self.search_path:
            path = folder / name
            if path.is_file():
                return path, ("default" if folder == DEFAULTS_DIR else "garden")
        raise BonsaiError(f"no template named '{name}'", file=self.search_path[0])

    def _source(self, name: str, path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise BonsaiError("template is not UTF-8 text", file=path) from None

    def _closure(self, name: str, seen: dict[str, str]) -> None:
        """Read ``name`` and every template it references, for the hash."""
        from jinja2 import meta

        if name in seen:
            return
        path, _ = self._locate(name)
        text = self._source(name, path)
        seen[name] = text
        try:
            ast = self.env.parse(text, name=name, filename=str(path))
        except self._jinja.TemplateSyntaxError as exc:
            raise _syntax_error(exc, path) from None
        for child in meta.find_referenced_templates(ast):
            if child is None:  # a computed name: cannot be known before rendering
                raise BonsaiError(
                    "include/extends needs a fixed template name (so its hash can be known)",
                    file=path,
                )
            if not any((folder / child).is_file() for folder in self.search_path):
                raise BonsaiError(f"includes '{child}', which does not exist", file=path)
            self._closure(child, seen)

    def template_name(self, category: str | None) -> str:
        """``<category>.j2`` where there is one; the uncategorised template otherwise."""
        name = f"{category or UNCATEGORISED}.j2"
        if category and not any((folder / name).is_file() for folder in self.search_path):
            return f"{UNCATEGORISED}.j2"
        return name

    def get(self, category: str | None) -> Template:
        """The template for ``category`` (checked, hashed, compiled once)."""
        name = self.template_name(category)
        if name not in self._templates:
            path, origin = self._locate(name)
            sources: dict[str, str] = {}
            self._closure(name, sources)
            digest = hashlib.sha256()
            for key in sorted(sources):
                digest.update(f"{key}\x00{sources[key]}\x00".encode())
            try:
                self._compiled[name] = self.env.get_template(name)
            except self._jinja.TemplateSyntaxError as exc:
                raise _syntax_error(exc, path) from None
            self._templates[name] = Template(
                name=name, path=path, origin=origin, hash=digest.hexdigest()[:16], sources=sources
            )
        return self._templates[name]

    # -- rendering ----------------------------------------------------------------------------

    def context(self, record: Record, policy: str) -> dict[str, Any]:
        """What a template sees."""
        codes = language_codes(record.language)
        target = reasoning_language(record, policy)
        creative = category_group(record.category) == "creative"
        native = FORM_IN_LANGUAGE.get(target or "")
        return {
            "instruction": record.instruction,
            "input": record.input,
            "output": record.output,
            "category": record.category,
            "source_category": record.source_category,
            "language": record.language,
            "language_name": " → ".join(language_name(c) for c in codes) or "unknown",
            "group": category_group(record.category),
            "form": sentence_form(record.category),
            "form_native": (native[1] if creative else native[0]) if native else None,
            "reasoning_language": language_name(target) if target else "the record's language",
            "language_policy": policy,
            "max_lines": REASONING_MAX_LINES,
            "max_words": REASONING_MAX_WORDS,
        }

    def render(self, record: Record, policy: str) -> tuple[Template, str]:
        """The prompt for one record; a template that fails names its file and line."""
        template = self.get(record.category)
        try:
            text = self._compiled[template.name].render(**self.context(record, policy))
        except self._jinja.TemplateSyntaxError as exc:  # in an included file
            raise _syntax_error(exc, template.path) from None
        except Exception as exc:
            file, line = self._failing_line(exc, template)
            raise BonsaiError(
                f"template failed to render for record '{record.id}': {exc}",
                file=file,
                line=line,
                hint="fix the template, or delete it to use the default",
            ) from None
        text = text.strip()
        if not text:
            raise BonsaiError(
                f"template renders an empty prompt for record '{record.id}'", file=template.path
            )
        return template, text

    def _failing_line(self, exc: BaseException, template: Template) -> tuple[Path, int | None]:
        """The template file and line where rendering failed (Jinja maps its frames to them)."""
        files = {str(folder / name) for folder in self.search_path for name in template.sources}
        found: tuple[Path, int | None] = (template.path, None)
        tb = exc.__traceback__
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if filename in files:
                found = (Path(filename), tb.tb_lineno)
            tb = tb.tb_next
        return found

    def default_names(self) -> list[str]:
        """Shipped template files (categories, the uncategorised one and shared parts)."""
        return sorted(p.name for p in DEFAULTS_DIR.glob("*.j2"))


def _syntax_error(exc: Any, fallback: Path) -> BonsaiError:
    return BonsaiError(
        f"template syntax error: {exc.message}",
        file=exc.filename or fallback,
        line=exc.lineno,
        hint="fix the template, or delete it to use the default",
    )


def init_templates(garden_dir: Path) -> list[Path]:
    """Copy the default templates into the garden to be edited; existing files are kept."""
    from bonsai.util.atomic import atomic_write_text

    garden_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(DEFAULTS_DIR.glob("*.j2")):
        target = garden_dir / source.name
        if not target.exists():
            atomic_write_text(target, source.read_text(encoding="utf-8"))
            written.append(target)
    return written
