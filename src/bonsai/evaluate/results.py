"""Putting an evaluation together: answers and losses in, the results dict (report JSON) out.

Pure on purpose: no model here. :mod:`bonsai.evaluate.runner` produces the answers and losses;
this module scores them, compares the models and adds the diagnostics, and the report renders
the dict it returns.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bonsai import __version__
from bonsai.evaluate import diagnostics as diag
from bonsai.evaluate.scoring import Detect, Item, compare, score_answer, summarise


@dataclass
class Answer:
    text: str
    """The answer itself (for the `bonsai` layout: what follows the reasoning)."""
    reasoning: str | None = None
    """The reasoning a `bonsai`-layout model wrote first; None for other layouts."""
    raw: str | None = None
    """The whole completion as generated, when it differs from ``text``."""
    finish: str | None = None
    """Why generation ended: 'stop', 'length' or 'loop' (repeats cut off by the engine)."""
    prompt: str | None = None
    """The prompt the model was given, exactly as chat built it."""
    chat: dict[str, Any] = field(default_factory=dict)
    """What chat made of the question: the category and language it guessed, the mode, and the
    notes it retrieved (citations)."""


@dataclass
class ModelAnswers:
    """One model's part of an evaluation."""

    key: str
    """'base', 'parent', 'tuned', or a layout name in an ablation."""
    label: str
    """What the model is, for people (run id, layout, base model)."""
    answers: list[Answer]
    """One per item, in item order."""
    record_losses: list[diag.RecordLoss] = field(default_factory=list)
    """Per-record validation losses (teacher-forced); empty when not measured."""
    run_id: str | None = None
    layout: str | None = None


# -- reading results -------------------------------------------------------------------------------
# The results dict is the report's JSON; these typed views are how code reads a number out of it.


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class MetricCell:
    """One model's mean of one metric in one category, with its 95% interval where known."""

    mean: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricCell:
        return cls(
            _float(data.get("mean")),
            _float(data.get("low")),
            _float(data.get("high")),
            int(data.get("n") or 0),
        )


@dataclass(frozen=True)
class Delta:
    """``primary`` − another model on one metric in one category, paired over the same items."""

    delta: float | None
    low: float | None = None
    """The 95% paired-bootstrap interval; None when there were too few items."""
    high: float | None = None
    n: int = 0
    significant: bool = False
    """Whether the interval excludes zero."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Delta:
        return cls(
            _float(data.get("delta")),
            _float(data.get("low")),
            _float(data.get("high")),
            int(data.get("n") or 0),
            bool(data.get("significant")),
        )


def summary_cell(
    summary: dict[str, Any], model: str, category: str, metric: str
) -> MetricCell | None:
    """``model``'s ``metric`` in ``category`` of a results ``summary``; None where not measured."""
    found = (((summary.get(model) or {}).get(category) or {}).get("metrics") or {}).get(metric)
    return MetricCell.from_dict(found) if isinstance(found, dict) else None


def metric_cell(
    results: dict[str, Any], model: str, category: str, metric: str
) -> MetricCell | None:
    """``model``'s ``metric`` in ``category``; None where it was not measured."""
    return summary_cell(results.get("summary") or {}, model, category, metric)


def deltas_against(results: dict[str, Any], other: str) -> dict[str, dict[str, Delta]]:
    """Per category and metric, ``primary`` − ``other`` (empty when ``other`` was not compared)."""
    found = (results.get("deltas") or {}).get(other) or {}
    return {
        category: {name: Delta.from_dict(d) for name, d in metrics.items() if isinstance(d, dict)}
        for category, metrics in found.items()
    }


def delta_of(results: dict[str, Any], other: str, category: str, metric: str) -> Delta | None:
    """``primary`` − ``other`` on ``metric`` in ``category``; None where not compared."""
    return deltas_against(results, other).get(category, {}).get(metric)


def _raw(answer: Answer) -> dict[str, Any]:
    """The whole completion, kept only where it differs from the answer shown; the prompt and
    what chat made of the question, where known."""
    extra: dict[str, Any] = {"raw": answer.raw} if answer.raw not in (None, answer.text) else {}
    if answer.prompt is not None:
        extra["prompt"] = answer.prompt
    if answer.chat:
        extra["chat"] = answer.chat
    return extra


def _val_loss(losses: Sequence[diag.RecordLoss]) -> dict[str, Any] | None:
    val = [loss for loss in losses if loss.split == "val"]
    if not val:
        return None
    by_category: dict[str, list[diag.RecordLoss]] = {}
    for loss in val:
        by_category.setdefault(loss.category or "?", []).append(loss)

    def weighted(group: Sequence[diag.RecordLoss]) -> float:
        tokens = sum(g.tokens for g in group) or 1
        return sum(g.loss * g.tokens for g in group) / tokens

    return {
        "overall": weighted(val),
        "by_category": {c: weighted(g) for c, g in by_category.items()},
        "records": len(val),
    }


def history_dict(history: diag.LossHistory) -> dict[str, Any]:
    return {
        "train": [{"step": p.step, "loss": p.loss, "epoch": p.epoch} for p in history.train],
        "val": [
            {"step": p.step, "loss": p.loss, "epoch": p.epoch, "by_category": p.by_category}
            for p in history.val
        ],
        "epoch_boundaries": history.epoch_boundaries(),
    }


def build_results(
    *,
    items: Sequence[Item],
    models: Sequence[ModelAnswers],
    primary: str,
    run: dict[str, Any] | None = None,
    history: diag.LossHistory | None = None,
    records: Sequence[Any] = (),
    check_findings: Iterable[Any] = (),
    outlier_losses: Sequence[diag.RecordLoss] = (),
    settings: dict[str, Any] | None = None,
    kind: str = "evaluation",
    title: str | None = None,
    headline_against: str | None = None,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    started: float | None = None,
    detect: Detect | None = None,
) -> dict[str, Any]:
    """Score every answer, summarise per category, compare ``primary`` with every other model
    (``primary`` − other, paired over the same items), and add the diagnostics. ``detect``
    tells a reply's language (see :func:`~bonsai.evaluate.scoring.score_answer`)."""
    keys = [m.key for m in models]
    if primary not in keys:
        raise ValueError(f"primary model {primary!r} is not among {keys}")
    for model in models:
        if len(model.answers) != len(items):
            raise ValueError(f"{model.key}: {len(model.answers)} answers for {len(items)} items")
    scores: dict[str, list[dict[str, float]]] = {}
    for model in models:
        scores[model.key] = [
            score_answer(
                item,
                answer.text,
                answer.reasoning,
                cut_loop=answer.finish == "loop",
                detect=detect,
            )
            for item, answer in zip(items, model.answers, strict=True)
        ]
    summary = {
        m.key: summarise(
            items,
            scores[m.key],
            [a.text for a in m.answers],
            samples=bootstrap_samples,
            seed=seed,
        )
        for m in models
    }
    deltas = {
        m.key: compare(items, scores[m.key], scores[primary], samples=bootstrap_samples, seed=seed)
        for m in models
        if m.key != primary
    }
    item_rows = []
    for index, item in enumerate(items):
        row = item.to_dict()
        row["answers"] = {
            m.key: {
                "text": m.answers[index].text,
                "reasoning": m.answers[index].reasoning,
                "finish": m.answers[index].finish,
                **_raw(m.answers[index]),
                "scores": scores[m.key][index],
            }
            for m in models
        }
        item_rows.append(row)
    primary_model = next(m for m in models if m.key == primary)
    diagnostics: dict[str, Any] = {}
    if history is not None:
        diagnostics["memorisation"] = diag.memorisation(history).to_dict()
    diagnostics["contradictions"] = diag.contradictions(
        records, check_findings=check_findings, losses=outlier_losses
    )
    diagnostics["hard_records"] = diag.hard_records(records, outlier_losses)
    table_losses = primary_model.record_losses or list(outlier_losses)
    diagnostics["loss_table"] = diag.loss_table(table_losses)
    diagnostics["loss_table_model"] = primary
    if headline_against is None:
        headline_against = "base" if "base" in keys and primary != "base" else None
    counts = {
        "val": sum(i.source == "val" for i in items),
        "probe": sum(i.source == "probe" for i in items),
    }
    return {
        "kind": kind,
        "title": title,
        "bonsai_version": __version__,
        "created_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": time.time() - started if started else 0.0,
        "run": run or {},
        "primary": primary,
        "headline_against": headline_against,
        "models": [
            {"key": m.key, "label": m.label, "run_id": m.run_id, "layout": m.layout} for m in models
        ],
        "counts": counts,
        "settings": {**(settings or {}), "bootstrap_samples": bootstrap_samples, "seed": seed},
        "summary": summary,
        "deltas": deltas,
        "val_loss": {m.key: _val_loss(m.record_losses) for m in models if m.record_losses},
        "history": history_dict(history) if history is not None else None,
        "diagnostics": diagnostics,
        "items": item_rows,
    }


def verdict(results: dict[str, Any], against: str) -> dict[str, Any]:
    """Did ``primary`` get clearly worse than ``against`` in any category's headline metric?

    What `bonsai grow` asks before promoting a run: it is promoted only if no category got
    significantly worse (95% paired bootstrap interval entirely below zero).
    """
    from bonsai.evaluate.scoring import HEADLINE

    worse: list[str] = []
    better: list[str] = []
    for category, deltas in deltas_against(results, against).items():
        metric, _ = HEADLINE[category]
        delta = deltas.get(metric)
        if not delta or not delta.significant or delta.delta is None:
            continue
        (better if delta.delta > 0 else worse).append(category)
    return {"against": against, "better": better, "worse": worse, "not_worse": not worse}
