"""Scoring answers per category, and comparing models on the same items.

An *item* is one prompt (a validation record or a probe) with its reference answer. Every model
answers every item; :func:`score_answer` turns one answer into numbers, :func:`summarise`
aggregates a model's answers per category (means with bootstrap intervals, corpus chrF per
translation direction, distinct-n), and :func:`compare` gives paired deltas between two models.

Which numbers matter depends on the category (DESIGN.md, "The seven categories"):

- unique QA (open_qa, closed_qa, classification): normalised exact and contains match;
- translation: chrF, per direction;
- creative (brainstorming, creative, question_to_question): loops, repeated lines, distinct-n,
  length; question_to_question also the share of sentences that are questions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bonsai.evaluate.metrics import (
    Interval,
    bootstrap,
    chrf,
    contains_match,
    distinct_n,
    exact_match,
    is_looping,
    paired_bootstrap_delta,
    question_share,
    repeated_line_ratio,
    sentence_chrf,
    units,
)
from bonsai.records import CATEGORIES, REASONING_MAX_LINES, REASONING_MAX_WORDS

QA_CATEGORIES = ("open_qa", "closed_qa", "classification")

HEADLINE: dict[str, tuple[str, str]] = {
    "open_qa": ("contains", "answer contains the reference"),
    "closed_qa": ("contains", "answer contains the reference"),
    "classification": ("exact", "exact label"),
    "translation": ("chrf", "chrF"),
    "brainstorming": ("loop_free", "answers not caught in a loop"),
    "creative": ("loop_free", "answers not caught in a loop"),
    "question_to_question": ("question_share", "share of sentences that are questions"),
}
"""The one number per category that the report's bars show (higher is better for all)."""

LOWER_IS_BETTER = frozenset({"loop", "repeated_lines", "val_loss"})


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
    """The record's reasoning (for the `bonsai-given` layout, which puts it in the prompt)."""

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
        }


def reasoning_within_limits(reasoning: str | None) -> bool:
    """The reasoning a `bonsai`-layout model writes keeps its limits: present, at most
    ``REASONING_MAX_LINES`` lines and ``REASONING_MAX_WORDS`` words (CJK characters count as
    words, as :func:`~bonsai.evaluate.metrics.units` splits them)."""
    if reasoning is None or not reasoning.strip():
        return False
    lines = [line for line in reasoning.splitlines() if line.strip()]
    return len(lines) <= REASONING_MAX_LINES and len(units(reasoning)) <= REASONING_MAX_WORDS


def score_answer(
    item: Item, answer: str, reasoning: str | None = None, *, cut_loop: bool = False
) -> dict[str, float]:
    """Per-item numbers for one answer. ``reasoning`` is what a `bonsai`-layout model wrote
    before its answer (None for layouts that write no reasoning). ``cut_loop``: the engine
    caught the answer in a loop and cut the repeats off, so the text alone no longer shows it."""
    scores: dict[str, float] = {"length": float(len(units(answer)))}
    if item.category in QA_CATEGORIES:
        references = [item.reference, *item.accept]
        scores["exact"] = float(any(exact_match(answer, ref) for ref in references))
        scores["contains"] = float(any(contains_match(answer, ref) for ref in references))
    elif item.category == "translation":
        scores["chrf"] = sentence_chrf(answer, item.reference)
    looping = cut_loop or is_looping(answer)
    scores["loop"] = float(looping)
    scores["loop_free"] = 1.0 - float(looping)
    scores["repeated_lines"] = repeated_line_ratio(answer)
    if item.category == "question_to_question":
        scores["question_share"] = question_share(answer)
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
