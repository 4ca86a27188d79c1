"""Annotate a dataset's records with their language and a suggested category.

Labels a person gave are never touched: a category or language whose source is ``human`` (or that
came with the data, with no source recorded) stays as it is. Labels this stage set before
(source ``auto``) are refreshed on every run. All changes go into one undoable changeset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from bonsai.curate.category import CategorySuggestion, suggest_category
from bonsai.curate.language import LanguageDetector, RecordLanguages, default_detector
from bonsai.errors import BonsaiError
from bonsai.records import Record
from bonsai.store import RecordStore

ONLY_CHOICES = ("language", "category")

CHUNK = 2000
"""Records categorised per step: the unit of progress."""


@dataclass
class AnnotateArgs:
    """What ``bonsai data annotate`` does."""

    only: str | None = None
    """'language' or 'category' to annotate just that field; None for both."""
    min_confidence: float = 0.0
    """Suggested categories below this confidence are not stored: the record stays unlabelled."""
    dry_run: bool = False
    """Compute and report, but write nothing."""
    fast: bool = False
    """Use lingua's low-accuracy mode for the text the rules leave open: measured on 16k records,
    half the CPU time (3 s instead of 6 s) and 230 MB less memory, but wrong more often on texts
    of a few words (bench/annotate_accuracy.py)."""

    def __post_init__(self) -> None:
        if self.only is not None and self.only not in ONLY_CHOICES:
            raise BonsaiError(
                f"--only must be one of {', '.join(ONLY_CHOICES)}, not '{self.only}'",
                field="only",
            )
        if not 0.0 <= self.min_confidence <= 1.0:
            raise BonsaiError(
                f"--min-confidence must be between 0 and 1, not {self.min_confidence}",
                field="min_confidence",
            )

    @property
    def languages(self) -> bool:
        return self.only in (None, "language")

    @property
    def categories(self) -> bool:
        return self.only in (None, "category")


@dataclass
class AnnotateResult:
    """What an annotate run found and changed."""

    records: int = 0
    changed: int = 0
    languages: Counter[str] = field(default_factory=Counter)
    """Language of every record after the run (kept or detected); '?' when undetected."""
    languages_detected: int = 0
    suggested: dict[str, list[float]] = field(default_factory=dict)
    """Category -> confidences of the suggestions stored this run."""
    below_confidence: dict[str, int] = field(default_factory=dict)
    """Category -> suggestions left out for being under ``min_confidence``."""
    unlabelled: int = 0
    """Records with no category after the run: left for a person to label."""
    human_categories_kept: int = 0
    human_languages_kept: int = 0
    detector_stats: dict[str, int] = field(default_factory=dict)
    changeset: int | None = None

    def summary(self) -> dict[str, object]:
        """A JSON-able summary, stored with the changeset."""
        return {
            "records": self.records,
            "changed": self.changed,
            "languages": dict(self.languages),
            "suggested": {k: len(v) for k, v in self.suggested.items()},
            "below_confidence": self.below_confidence,
            "unlabelled": self.unlabelled,
            "human_categories_kept": self.human_categories_kept,
            "human_languages_kept": self.human_languages_kept,
        }


def _given_by_person(value: str | None, source: str | None) -> bool:
    # A value with no recorded source came with the data: a person wrote it, so it stays.
    return value is not None and source != "auto"


def _categorise(
    records: Sequence[Record], args: AnnotateArgs, result: AnnotateResult
) -> tuple[list[Record], list[str | None]]:
    """New versions of ``records`` with their categories, and the category each record has
    or would have (what language detection needs to know translation records by)."""
    updated: list[Record] = []
    effective: list[str | None] = []
    for record in records:
        new = replace(record)
        if _given_by_person(record.category, record.category_source):
            if args.categories:
                result.human_categories_kept += 1
            effective.append(record.category)
        elif not args.categories and record.category is not None:
            effective.append(record.category)  # an earlier suggestion, left as it is
        else:
            suggestion = suggest_category(record.instruction, record.input, record.output)
            effective.append(suggestion.category)
            if args.categories:
                _store_suggestion(new, suggestion, args, result)
        if new.category is None:
            result.unlabelled += 1
        updated.append(new)
    return updated, effective


def _store_suggestion(
    record: Record, suggestion: CategorySuggestion, args: AnnotateArgs, result: AnnotateResult
) -> None:
    if suggestion.confidence >= args.min_confidence:
        record.category = suggestion.category
        record.category_source = "auto"
        record.category_confidence = suggestion.confidence
        result.suggested.setdefault(suggestion.category, []).append(suggestion.confidence)
    else:
        record.category = record.category_source = record.category_confidence = None
        below = result.below_confidence
        below[suggestion.category] = below.get(suggestion.category, 0) + 1


class _Annotator:
    """Annotates records chunk by chunk; languages are settled once all chunks are in."""

    def __init__(
        self, args: AnnotateArgs, result: AnnotateResult, detector: LanguageDetector | None
    ) -> None:
        self.args = args
        self.result = result
        self.languages = RecordLanguages(detector)
        self.records: list[Record] = []
        self._todo: list[int] = []

    def add(self, records: Sequence[Record]) -> None:
        updated, categories = _categorise(records, self.args, self.result)
        if self.args.languages:
            todo = [
                i
                for i, r in enumerate(updated)
                if not _given_by_person(r.language, r.language_source)
            ]
            self.result.human_languages_kept += len(updated) - len(todo)
            self.languages.add([updated[i] for i in todo], [categories[i] for i in todo])
            self._todo += [len(self.records) + i for i in todo]
        self.records += updated

    def finish(self) -> list[Record]:
        if self.args.languages:
            for i, language in zip(self._todo, self.languages.finish(), strict=True):
                self.records[i].language = language
                self.records[i].language_source = "auto" if language else None
                self.result.languages_detected += language is not None
        for record in self.records:
            self.result.languages[record.language or "?"] += 1
        return self.records


def annotate_records(
    records: Sequence[Record],
    args: AnnotateArgs,
    result: AnnotateResult | None = None,
    detector: LanguageDetector | None = None,
) -> list[Record]:
    """New versions of ``records`` (same order); what happened is counted into ``result``."""
    annotator = _Annotator(args, result or AnnotateResult(records=len(records)), detector)
    annotator.add(records)
    return annotator.finish()


def annotate_dataset(
    store: RecordStore,
    dataset: str,
    args: AnnotateArgs,
    *,
    detector: LanguageDetector | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AnnotateResult:
    """Annotate every record of ``dataset`` and write the changes as one changeset.

    ``progress(done, total)`` is called after each chunk of records and at the end.
    """
    detector = detector or default_detector(low_accuracy=args.fast)
    records = store.records(dataset)
    result = AnnotateResult(records=len(records))
    stats_before = dict(detector.stats)
    annotator = _Annotator(args, result, detector)
    for start in range(0, len(records), CHUNK):
        annotator.add(records[start : start + CHUNK])
        if progress:
            progress(min(start + CHUNK, len(records)), len(records) + 1)
    annotated = annotator.finish()
    if progress:
        progress(len(records) + 1, len(records) + 1)
    changed = [a for a, b in zip(annotated, records, strict=True) if a != b]
    result.changed = len(changed)
    result.detector_stats = {k: v - stats_before.get(k, 0) for k, v in detector.stats.items()}
    if changed and not args.dry_run:
        what = {"language": "language", "category": "category"}.get(
            args.only or "", "language and category"
        )
        result.changeset = store.update(
            dataset,
            changed,
            kind="annotate",
            description=f"annotate {what} ({len(changed)} records)",
            summary=result.summary(),
            basis=records,  # an edit made while annotating is not overwritten
        )
    return result
