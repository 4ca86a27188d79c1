"""Diagnostics: is the model memorising, which records contradict each other, where the loss is.

- **Memorisation** from a run's ``metrics.jsonl``: the gap between validation and training loss
  at the end, whether validation loss rose while training loss kept falling, and the *per-epoch
  step-down* — training loss that drops abruptly at the start of each new epoch, because the model
  recognises records it has already seen (the seeds' tell-tale staircase curve).
- **Suspected contradictions**: pairs found by ``bonsai data check`` and records whose loss stays
  far above their category's after training (a record that disagrees with others cannot be fitted),
  each linked to the records that look like the other side.
- **Loss by category × language**: mean loss per cell and its share of all the loss.

Everything here is pure: it works on plain data so that it can be tested without a model.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.evaluate.metrics import normalise
from bonsai.records import Record
from bonsai.util.chars import trigram_similarity

# -- the run's loss history --------------------------------------------------------------------


@dataclass
class LossPoint:
    step: int
    loss: float
    epoch: float | None = None
    by_category: dict[str, float] = field(default_factory=dict)


@dataclass
class LossHistory:
    """Train and validation loss over steps, as a run's ``metrics.jsonl`` records them."""

    train: list[LossPoint] = field(default_factory=list)
    val: list[LossPoint] = field(default_factory=list)
    epoch_starts: list[int] = field(default_factory=list)
    """Steps completed when a new epoch (after the first) began, as the train stage logs them."""

    def epoch_boundaries(self) -> list[int]:
        """Steps after which a new epoch starts."""
        if self.epoch_starts:
            return sorted(set(self.epoch_starts))
        boundaries: list[int] = []
        previous: LossPoint | None = None
        for point in self.train:
            if (
                previous is not None
                and point.epoch is not None
                and previous.epoch is not None
                and math.floor(point.epoch + 1e-9) > math.floor(previous.epoch + 1e-9)
            ):
                boundaries.append(previous.step)
            previous = point
        return boundaries


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _categories(entry: dict[str, Any], prefix: str) -> dict[str, float]:
    for key in (f"{prefix}_loss_by_category", f"{prefix}_by_category", "by_category"):
        value = entry.get(key)
        if isinstance(value, dict):
            return {str(k): float(v) for k, v in value.items() if _number(v) is not None}
    return {}


def parse_metrics_line(entry: dict[str, Any], history: LossHistory) -> None:
    """Add one ``metrics.jsonl`` entry to ``history``.

    The train stage writes one object per event, told apart by ``kind``: ``train`` (``step``,
    ``epoch``, ``loss``), ``val`` (``step``, ``loss``, ``by_category``), ``epoch`` (the step at
    which an epoch starts) and others (warnings, resumes) that are skipped here. Entries without
    a ``kind`` may carry ``train_loss`` and ``val_loss`` (``val_loss_by_category``) instead.
    """
    step = entry.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        return
    epoch = _number(entry.get("epoch"))
    kind = entry.get("kind") or entry.get("split")
    if kind == "epoch":
        if epoch is not None and epoch > 0:
            history.epoch_starts.append(step)
        return
    if kind in ("train", "val"):
        loss = _number(entry.get("loss"))
        if loss is None:
            return
        if kind == "train":
            history.train.append(LossPoint(step, loss, epoch))
        else:
            history.val.append(LossPoint(step, loss, epoch, _categories(entry, "val")))
        return
    if kind is not None:
        return
    train_loss = _number(entry.get("train_loss"))
    val_loss = _number(entry.get("val_loss"))
    if train_loss is not None:
        history.train.append(LossPoint(step, train_loss, epoch))
    if val_loss is not None:
        history.val.append(LossPoint(step, val_loss, epoch, _categories(entry, "val")))


def load_metrics(path: Path) -> LossHistory:
    """Read a run's ``metrics.jsonl``. A missing file gives an empty history; a line that is not
    JSON is an error naming the line (a file cut short by a kill loses at most its last line,
    which is skipped)."""
    history = LossHistory()
    if not path.is_file():
        return history
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise BonsaiError(f"invalid JSON: {exc.msg}", file=path, line=number) from None
        if isinstance(entry, dict):
            parse_metrics_line(entry, history)
    history.train.sort(key=lambda p: p.step)
    history.val.sort(key=lambda p: p.step)
    return history


# -- memorisation ------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _window(points: Sequence[LossPoint], size: int) -> int:
    return max(1, min(size, len(points) // 4 or 1))


@dataclass
class EpochStep:
    boundary: int
    """The last step of the epoch that ends here."""
    before: float
    after: float
    drop: float
    """Mean loss just before the boundary minus just after it."""
    usual_drop: float
    """How much the loss usually falls over the same number of steps inside an epoch."""

    @property
    def ratio(self) -> float | None:
        return self.drop / self.usual_drop if self.usual_drop > 1e-9 else None


def epoch_steps(history: LossHistory, window: int = 5) -> list[EpochStep]:
    """The per-epoch step-down: for each epoch boundary, the training loss drop across it,
    next to the drop over as many steps inside the epoch (what the trend alone explains)."""
    train = history.train
    if len(train) < 4:
        return []
    size = _window(train, window)
    out: list[EpochStep] = []
    steps = [p.step for p in train]
    for boundary in history.epoch_boundaries():
        cut = next((i for i, s in enumerate(steps) if s > boundary), None)
        if cut is None or cut < size or cut + size > len(train):
            continue
        before = [p.loss for p in train[cut - size : cut]]
        after = [p.loss for p in train[cut : cut + size]]
        inside = [p.loss for p in train[max(0, cut - 3 * size) : cut]]
        # The trend: how much the loss falls over `size` steps within the same epoch.
        usual = 0.0
        if len(inside) >= 2 * size:
            usual = max(0.0, (_mean(inside[:size]) or 0.0) - (_mean(inside[-size:]) or 0.0))
            usual *= size / max(1, len(inside) - size)
        b, a = _mean(before) or 0.0, _mean(after) or 0.0
        out.append(EpochStep(boundary, b, a, b - a, usual))
    return out


@dataclass
class Memorisation:
    final_train: float | None
    final_val: float | None
    gap: float | None
    """Final validation loss minus final (smoothed) training loss."""
    best_val: float | None
    best_val_step: int | None
    val_rising: bool
    """Validation loss ended above its best while training loss kept falling."""
    epoch_steps: list[EpochStep]
    verdict: str
    """'none', 'mild' or 'strong': how clearly the curves say the model memorises."""
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "final_train": self.final_train,
            "final_val": self.final_val,
            "gap": self.gap,
            "best_val": self.best_val,
            "best_val_step": self.best_val_step,
            "val_rising": self.val_rising,
            "epoch_steps": [
                {
                    "boundary": s.boundary,
                    "before": s.before,
                    "after": s.after,
                    "drop": s.drop,
                    "usual_drop": s.usual_drop,
                    "ratio": s.ratio,
                }
                for s in self.epoch_steps
            ],
            "verdict": self.verdict,
            "notes": list(self.notes),
        }


GAP_MILD = 0.3
GAP_STRONG = 1.0
"""Validation minus training loss (nats/token) from which the report calls memorisation mild
or strong. Fine-tuning a small model on a few hundred records typically ends within 0.3."""


def memorisation(history: LossHistory, window: int = 5) -> Memorisation:
    notes: list[str] = []
    train, val = history.train, history.val
    final_train = _mean([p.loss for p in train[-_window(train, window) :]]) if train else None
    final_val = val[-1].loss if val else None
    gap = final_val - final_train if final_val is not None and final_train is not None else None
    best = min(val, key=lambda p: p.loss) if val else None
    val_rising = False
    if best is not None and final_val is not None and val[-1].step > best.step:
        train_at_best = [p.loss for p in train if p.step <= best.step][-_window(train, window) :]
        train_fell = (
            bool(train_at_best)
            and final_train is not None
            and (final_train < (_mean(train_at_best) or 0.0) - 0.02)
        )
        val_rising = final_val > best.loss + 0.02 and train_fell
    if val_rising and best is not None:
        notes.append(
            f"validation loss rose from {best.loss:.3f} (step {best.step}) to {final_val:.3f} "
            "while training loss kept falling: the model is learning the training records by "
            "heart; fewer epochs or the checkpoint at the best step would generalise better"
        )
    steps = epoch_steps(history, window)
    sharp = [s for s in steps if s.drop > 0.05 and (s.ratio is None or s.ratio > 3)]
    if sharp:
        notes.append(
            "training loss steps down at the start of "
            + (
                "each new epoch"
                if len(sharp) == len(steps)
                else f"{len(sharp)} of {len(steps)} epochs"
            )
            + f" (by {max(s.drop for s in sharp):.2f} at most, several times the usual fall): "
            "the model recognises records it has already seen"
        )
    if gap is not None and gap > GAP_MILD:
        notes.append(
            f"validation loss ends {gap:.2f} above training loss"
            + (" (a large gap)" if gap > GAP_STRONG else "")
        )
    signals = int(val_rising) + int(bool(sharp)) + int(gap is not None and gap > GAP_MILD)
    strong = (gap is not None and gap > GAP_STRONG) or signals >= 2
    verdict = "strong" if strong else ("mild" if signals else "none")
    if verdict == "none" and (train or val):
        notes.append("no sign of memorisation in the curves")
    return Memorisation(
        final_train=final_train,
        final_val=final_val,
        gap=gap,
        best_val=best.loss if best else None,
        best_val_step=best.step if best else None,
        val_rising=val_rising,
        epoch_steps=steps,
        verdict=verdict,
        notes=notes,
    )


# -- per-record losses, contradictions ---------------------------------------------------------


@dataclass
class RecordLoss:
    """A record's mean loss per target token under a model, and how many tokens it has."""

    id: str
    category: str | None
    language: str | None
    split: str | None
    loss: float
    tokens: int


def loss_outliers(losses: Sequence[RecordLoss], threshold: float = 3.5) -> list[dict[str, Any]]:
    """Records whose loss is far above their category's: robust z-score (median and MAD) above
    ``threshold``. Categories with fewer than 5 records are compared with all records."""
    by_category: dict[str | None, list[RecordLoss]] = defaultdict(list)
    for loss in losses:
        by_category[loss.category].append(loss)
    out: list[dict[str, Any]] = []
    for loss in losses:
        group = by_category[loss.category]
        if len(group) < 5:
            group = list(losses)
        if len(group) < 5:
            continue
        values = [g.loss for g in group]
        median = statistics.median(values)
        mad = statistics.median(abs(v - median) for v in values) or 1e-6
        z = 0.6745 * (loss.loss - median) / mad
        if z > threshold and loss.loss > median + 0.5:
            out.append(
                {
                    "id": loss.id,
                    "category": loss.category,
                    "language": loss.language,
                    "split": loss.split,
                    "loss": loss.loss,
                    "category_median": median,
                    "z": z,
                }
            )
    out.sort(key=lambda o: -o["z"])
    return out


def similar_records(
    record: Record, others: Iterable[Record], *, min_similarity: float = 0.6, limit: int = 3
) -> list[dict[str, Any]]:
    """Records asking (nearly) the same thing as ``record`` with a different answer: the other
    side of a suspected contradiction."""
    prompt = f"{record.instruction}\n{record.input}"
    found: list[dict[str, Any]] = []
    for other in others:
        if other.id == record.id:
            continue
        similarity = trigram_similarity(prompt, f"{other.instruction}\n{other.input}")
        if similarity >= min_similarity and normalise(other.output) != normalise(record.output):
            found.append({"id": other.id, "similarity": round(similarity, 3)})
    found.sort(key=lambda f: -f["similarity"])
    return found[:limit]


def _finding_fields(finding: Any) -> tuple[str | None, list[str], str]:
    """(kind, record ids, message) of a check finding, whether an object or a dict."""

    def get(name: str) -> Any:
        return finding.get(name) if isinstance(finding, dict) else getattr(finding, name, None)

    kind = get("kind") or get("code") or get("type")
    ids = get("record_ids") or get("ids") or get("records") or []
    if isinstance(ids, str):
        ids = [ids]
    message = get("message") or get("detail") or ""
    return (str(kind) if kind else None), [str(i) for i in ids], str(message)


def contradictions(
    records: Sequence[Record],
    *,
    check_findings: Iterable[Any] = (),
    losses: Sequence[RecordLoss] = (),
) -> list[dict[str, Any]]:
    """Suspected contradictions, each linked to the records behind it.

    From the check: every finding of kind ``contradiction``. From the losses: every outlier
    that asks nearly the same thing as another record with another answer (an outlier with no
    such partner is a hard record, see :func:`hard_records`). An outlier whose pair the check
    already reported is merged into that entry (both sources listed).
    """
    by_id = {r.id: r for r in records}
    out: list[dict[str, Any]] = []
    for finding in check_findings:
        kind, ids, message = _finding_fields(finding)
        if kind != "contradiction":
            continue
        out.append(
            {
                "records": ids,
                "sources": ["check"],
                "message": message,
                "details": [_record_brief(by_id[i]) for i in ids if i in by_id],
            }
        )
    for outlier, partners in _outliers_with_partners(records, losses):
        if not partners:
            continue
        ids = [outlier["id"], *(p["id"] for p in partners)]
        message = (
            f"loss {outlier['loss']:.2f} against a category median of "
            f"{outlier['category_median']:.2f}; asks the same as "
            f"{', '.join(p['id'] for p in partners)} with another answer"
        )
        merged = next((c for c in out if set(ids) & set(c["records"])), None)
        if merged is not None:
            merged["sources"] = sorted({*merged["sources"], "loss"})
            merged["loss"] = outlier
            merged["message"] = f"{merged['message']}; {message}".strip("; ")
            continue
        out.append(
            {
                "records": ids,
                "sources": ["loss"],
                "message": message,
                "loss": outlier,
                "details": [_record_brief(by_id[i]) for i in ids if i in by_id],
            }
        )
    return out


def hard_records(records: Sequence[Record], losses: Sequence[RecordLoss]) -> list[dict[str, Any]]:
    """Loss outliers with no record that asks the same thing: hard, unusual or wrong on their
    own (worth a look, but not a contradiction between two records)."""
    by_id = {r.id: r for r in records}
    return [
        {**outlier, **_record_brief(by_id[outlier["id"]])}
        for outlier, partners in _outliers_with_partners(records, losses)
        if not partners
    ]


def _outliers_with_partners(
    records: Sequence[Record], losses: Sequence[RecordLoss]
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    by_id = {r.id: r for r in records}
    return [
        (outlier, similar_records(by_id[outlier["id"]], records))
        for outlier in loss_outliers(losses)
        if outlier["id"] in by_id
    ]


def _record_brief(record: Record, width: int = 160) -> dict[str, Any]:
    def cut(text: str) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    return {
        "id": record.id,
        "category": record.category,
        "language": record.language,
        "instruction": cut(record.instruction),
        "output": cut(record.output),
    }


# -- where the loss comes from -----------------------------------------------------------------


def loss_table(losses: Sequence[RecordLoss]) -> list[dict[str, Any]]:
    """Mean loss per (category, language) cell and the cell's share of all target-token loss."""
    cells: dict[tuple[str, str], list[RecordLoss]] = defaultdict(list)
    for loss in losses:
        cells[(loss.category or "?", loss.language or "?")].append(loss)
    total = sum(loss.loss * loss.tokens for loss in losses) or 1.0
    rows: list[dict[str, Any]] = []
    for (category, language), group in cells.items():
        tokens = sum(g.tokens for g in group)
        summed = sum(g.loss * g.tokens for g in group)
        rows.append(
            {
                "category": category,
                "language": language,
                "records": len(group),
                "tokens": tokens,
                "mean_loss": summed / tokens if tokens else None,
                "share": summed / total,
            }
        )
    rows.sort(key=lambda r: -r["share"])
    return rows
