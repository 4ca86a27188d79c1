"""Scoring answers per category, and comparing models on the same items.

An *item* is one prompt (a validation record or a probe) with its reference answer. Every model
answers every item; :func:`score_answer` turns one answer into numbers, :func:`summarise`
aggregates a model's answers per category (means with bootstrap intervals, corpus chrF per
translation direction, distinct-n), and :func:`compare` gives paired deltas between two models.

Which numbers matter depends on the category (DESIGN.md, "The seven categories"):

- unique QA (open_qa, closed_qa, classification): normalised exact and contains match; for
  questions with accepted answers (probes), facts recall: an accepted answer appears in the reply;
  for classification, the label the reply gives (the whole reply or its first part); and
  whether the reply copies the prompt (the notes section, or the given text read back) instead
  of answering, which finds a right answer without picking it out;
- translation: chrF, per direction, and the share of replies in the target language;
- creative (brainstorming, creative, question_to_question): loops, repeated lines, distinct-n,
  length; brainstorming and creative also chrF against the record's answer (there is no one right
  answer, so this measures how close the reply comes to the keeper's own, in words and
  language); question_to_question the share of sentences that are questions and the share of
  replies that ask at least two.

Loops are measured in every category, and outside translation and classification whether the
reply is in the language of the item (where its language can be told).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bonsai.evaluate.metrics import (
    Interval,
    bootstrap,
    chrf,
    contains_match,
    copies_prompt,
    distinct_n,
    exact_match,
    gives_label,
    is_looping,
    paired_bootstrap_delta,
    question_count,
    question_share,
    recalls,
    repeated_line_ratio,
    sentence_chrf,
    units,
)
from bonsai.records import CATEGORIES, REASONING_MAX_LINES, REASONING_MAX_WORDS

QA_CATEGORIES = ("open_qa", "closed_qa", "classification")
OPEN_ENDED = ("brainstorming", "creative")
"""Categories without one right answer: scored against the record's answer by chrF."""

HEADLINE: dict[str, tuple[str, str]] = {
    "open_qa": ("contains", "answer contains the reference"),
    "closed_qa": ("contains", "answer contains the reference"),
    "classification": ("label", "exact label"),
    "translation": ("chrf", "chrF"),
    "brainstorming": ("ref_chrf", "chrF against the keeper's answer"),
    "creative": ("ref_chrf", "chrF against the keeper's answer"),
    "question_to_question": ("two_questions", "replies asking two or more questions"),
}
"""The one number per category that the report's bars show (higher is better for all)."""

LOWER_IS_BETTER = frozenset({"loop", "repeated_lines", "val_loss", "copied"})
CHRF_METRICS = frozenset({"chrf", "ref_chrf", "corpus_chrf"})
"""Metrics on chrF's 0–100 scale (the others are shares from 0 to 1, or lengths)."""


@dataclass
class Item:
    """One prompt every model answers."""

    id: str
    source: str
    """'val' (a validation record) or 'probe'."""
    category: str
    language: str | None
    instruction: str
    input: str
    reference: str
    accept: list[str] = field(default_factory=list)
    """Other acceptable answers (probes)."""
    reasoning: str | None = None
    """The record's reasoning (kept for the report; chat's prompt carries none)."""
    target_language: str | None = None
    """The language a translation must be in, when the item says so; otherwise it is read from
    ``language`` ('ja-en' → 'en'), the instruction ("into English") or the reference."""

    @property
    def question(self) -> str:
        """What a person types in chat for this item: the instruction, then the text it is
        about."""
        parts = (self.instruction.strip(), self.input.strip())
        return "\n\n".join(p for p in parts if p)

    @property
    def accepted(self) -> list[str]:
        """Answers that count as right: a probe's reference and its other accepted answers. A
        validation record's output is one way to answer, not a fact to find in the reply."""
        if self.source != "probe" and not self.accept:
            return []
        return [a for a in (self.reference, *self.accept) if a.strip()]

    def target(self, detect: Callable[[str], str | None]) -> str | None:
        """The language a translation must be in (None when nothing says)."""
        from bonsai.curate.language import named_target

        if self.target_language:
            return self.target_language
        if self.language and "-" in self.language:
            return self.language.split("-", 1)[1] or None
        return named_target(self.instruction) or (
            detect(self.reference) if self.reference.strip() else None
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "category": self.category,
            "language": self.language,
            "instruction": self.instruction,
            "input": self.input,
            "reference": self.reference,
            "accept": list(self.accept),
            "question": self.question,
            **({"target_language": self.target_language} if self.target_language else {}),
        }


def reasoning_within_limits(reasoning: str | None) -> bool:
    """The reasoning a `bonsai`-layout model writes keeps its limits: present, at most
    ``REASONING_MAX_LINES`` lines and ``REASONING_MAX_WORDS`` words (CJK characters count as
    words, as :func:`~bonsai.evaluate.metrics.units` splits them)."""
    if reasoning is None or not reasoning.strip():
        return False
    lines = [line for line in reasoning.splitlines() if line.strip()]
    return len(lines) <= REASONING_MAX_LINES and len(units(reasoning)) <= REASONING_MAX_WORDS


Detect = Callable[[str], "str | None"]
"""Text → its language (ISO 639-1), or None."""


def detect_language(text: str) -> str | None:
    """The language of a reply, as :mod:`bonsai.curate.language` sees it."""
    from bonsai.curate.language import default_detector

    return default_detector().detect(text) if text.strip() else None


def score_answer(
    item: Item,
    answer: str,
    reasoning: str | None = None,
    *,
    cut_loop: bool = False,
    detect: Detect | None = None,
) -> dict[str, float]:
    """Per-item numbers for one answer. ``reasoning`` is what a `bonsai`-layout model wrote
    before its answer (None for layouts that write no reasoning). ``cut_loop``: the engine
    caught the answer in a loop and cut the repeats off, so the text alone no longer shows it.
    ``detect`` tells a reply's language (default: :func:`detect_language`)."""
    scores: dict[str, float] = {"length": float(len(units(answer)))}
    if item.category in QA_CATEGORIES:
        references = [item.reference, *item.accept]
        scores["exact"] = float(any(exact_match(answer, ref) for ref in references))
        scores["contains"] = float(any(contains_match(answer, ref) for ref in references))
        if item.category == "classification":
            scores["label"] = float(gives_label(answer, references))
        elif item.accepted:
            scores["facts"] = float(recalls(answer, item.accepted))
        scores["copied"] = float(copies_prompt(answer, item.input))
    elif item.category == "translation":
        scores["chrf"] = sentence_chrf(answer, item.reference)
        detect = detect or detect_language
        target = item.target(detect)
        if target:
            scores["target_language"] = float(detect(answer) == target)
    if item.category not in ("translation", "classification") and item.language:
        # A label, or a reply too short to tell ("4.2 kg"), says nothing about its language.
        found = (detect or detect_language)(answer) if answer.strip() else None
        if found and "-" not in item.language:
            scores["in_language"] = float(found == item.language)
    if item.category in OPEN_ENDED and item.reference.strip():
        scores["ref_chrf"] = sentence_chrf(answer, item.reference)
    looping = cut_loop or is_looping(answer)
    scores["loop"] = float(looping)
    scores["loop_free"] = 1.0 - float(looping)
    scores["repeated_lines"] = repeated_line_ratio(answer)
    if item.category == "question_to_question":
        scores["question_share"] = question_share(answer)
        scores["two_questions"] = float(question_count(answer) >= 2)
    if reasoning is not None:
        scores["reasoning_ok"] = float(reasoning_within_limits(reasoning))
    return scores


def _interval(values: Sequence[float], samples: int, seed: int) -> dict[str, Any]:
    mean = sum(values) / len(values) if values else None
    ci = bootstrap(values, samples=samples, seed=seed)
    return {
        "mean": mean,
        "low": ci.low if ci else None,
        "high": ci.high if ci else None,
        "n": len(values),
    }


def _direction_key(item: Item) -> str:
    return item.language if item.language and "-" in item.language else "?"


def summarise(
    items: Sequence[Item],
    scores: Sequence[dict[str, float]],
    answers: Sequence[str],
    *,
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per category: each metric's mean with a bootstrap interval (None when n < 5), corpus
    chrF overall and per translation direction, distinct-1/2 over the category's answers."""
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        by_category[item.category].append(index)
    out: dict[str, dict[str, Any]] = {}
    for category in [c for c in CATEGORIES if c in by_category]:
        idx = by_category[category]
        metrics: dict[str, Any] = {}
        names = sorted({name for i in idx for name in scores[i]})
        for name in names:
            values = [scores[i][name] for i in idx if name in scores[i]]
            metrics[name] = _interval(values, samples, seed)
        cat_answers = [answers[i] for i in idx]
        metrics["distinct_1"] = {"mean": distinct_n(cat_answers, 1), "n": len(idx)}
        metrics["distinct_2"] = {"mean": distinct_n(cat_answers, 2), "n": len(idx)}
        if category == "translation":
            refs = [items[i].reference for i in idx]
            metrics["corpus_chrf"] = {"mean": chrf(cat_answers, refs), "n": len(idx)}
            directions: dict[str, list[int]] = defaultdict(list)
            for i in idx:
                directions[_direction_key(items[i])].append(i)
            metrics["chrf_by_direction"] = {
                d: {
                    "mean": chrf([answers[i] for i in ii], [items[i].reference for i in ii]),
                    "n": len(ii),
                }
                for d, ii in sorted(directions.items())
            }
        out[category] = {"n": len(idx), "metrics": metrics}
    return out


def compare(
    items: Sequence[Item],
    reference_scores: Sequence[dict[str, float]],
    scores: Sequence[dict[str, float]],
    *,
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Per category, for each metric both models have: mean(``scores`` − ``reference_scores``)
    over the same items, with a paired bootstrap interval (None when fewer than 5 items)."""
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        by_category[item.category].append(index)
    out: dict[str, dict[str, Any]] = {}
    for category in [c for c in CATEGORIES if c in by_category]:
        idx = by_category[category]
        deltas: dict[str, Any] = {}
        names = sorted(
            {n for i in idx for n in scores[i]} & {n for i in idx for n in reference_scores[i]}
        )
        for name in names:
            pairs = [
                (reference_scores[i][name], scores[i][name])
                for i in idx
                if name in scores[i] and name in reference_scores[i]
            ]
            a = [p[0] for p in pairs]
            b = [p[1] for p in pairs]
            ci: Interval | None = paired_bootstrap_delta(a, b, samples=samples, seed=seed)
            delta = (sum(b) - sum(a)) / len(pairs) if pairs else None
            deltas[name] = {
                "delta": delta,
                "low": ci.low if ci else None,
                "high": ci.high if ci else None,
                "n": len(pairs),
                "significant": bool(ci and (ci.low > 0 or ci.high < 0)),
            }
        out[category] = deltas
    return out


def headline(summary: dict[str, dict[str, Any]], category: str) -> dict[str, Any] | None:
    """The headline metric of ``category`` from a :func:`summarise` result."""
    if category not in summary:
        return None
    name, _ = HEADLINE[category]
    return summary[category]["metrics"].get(name)
