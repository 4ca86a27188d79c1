"""One self-contained HTML report per evaluation, plus the same results as JSON beside it.

:func:`render_html` turns a results dict (what :mod:`bonsai.evaluate.runner` produces and the
JSON file holds) into HTML; :func:`write_report` writes both files atomically: either both
appear whole, or neither does. :func:`check_writable` is called before any slow work, so that a
folder that cannot be written is reported in a second, not after an hour of generation.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.evaluate.results import Delta, delta_of, deltas_against, metric_cell
from bonsai.evaluate.scoring import CHRF_METRICS, HEADLINE, LOWER_IS_BETTER
from bonsai.records import CATEGORIES

SAMPLES_PER_CATEGORY = 3
"""Items per category shown side by side (the JSON keeps every answer)."""

METRIC_LABELS = {
    "facts": "facts recall (an accepted answer in the reply)",
    "copied": "copies the notes or the given text",
    "label": "exact label",
    "exact": "exact match",
    "contains": "contains the reference",
    "chrf": "chrF (mean of sentences)",
    "corpus_chrf": "chrF (corpus)",
    "target_language": "reply in the target language",
    "in_language": "reply in the item's language",
    "ref_chrf": "chrF against the keeper's answer",
    "loop": "caught in a loop",
    "loop_free": "not in a loop",
    "repeated_lines": "repeated-line ratio",
    "distinct_1": "distinct-1",
    "distinct_2": "distinct-2",
    "length": "length (words / CJK chars)",
    "two_questions": "replies with two or more questions",
    "question_share": "share of question sentences",
    "reasoning_ok": "reasoning within limits",
}
_METRIC_ORDER = list(METRIC_LABELS)


def check_writable(folder: Path) -> None:
    """Fail now, with a clear message, if a report cannot be written into ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BonsaiError(
            f"cannot write the report here: {exc.strerror or exc}",
            file=folder,
            hint="check the folder's permissions and free space, or pass --out DIR",
        ) from None


def report_stem(kind: str, against: str | None = None, when: float | None = None) -> str:
    """``report-20250612-101500-vs-base``: sortable, one per evaluation, never overwritten."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    safe = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in (against or "")
    )
    prefix = "report-ablation" if kind == "ablation" else "report"
    return f"{prefix}-{stamp}" + (f"-vs-{safe}" if safe else "")


def write_report(folder: Path, stem: str, results: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``<stem>.html`` and ``<stem>.json`` into ``folder``, both or neither."""
    html = render_html(results)
    text = json.dumps(results, ensure_ascii=False, indent=1, default=str) + "\n"
    html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
    temps: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for content in (text, html):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
            temps.append(Path(tmp))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temps[0], json_path)
        try:
            os.replace(temps[1], html_path)
        except OSError:
            json_path.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BonsaiError(
            f"cannot write the report: {exc.strerror or exc}",
            file=folder,
            hint="check the folder's permissions and free space",
        ) from None
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    return html_path, json_path


# -- rendering ----------------------------------------------------------------------------------


def _fmt(value: Any, metric: str | None = None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if metric in CHRF_METRICS or metric == "length":
            return f"{value:.1f}"
        return f"{value:.3f}"
    return str(value)


NEUTRAL = frozenset({"length"})
"""Metrics where neither direction is better in itself (shorter answers are not worse)."""
HIDDEN_IN_TABLES = frozenset({"loop_free"})
"""Shown as the headline of creative categories; the tables show its complement, "loop"."""


def _trend(metric: str, delta: Delta | None) -> str:
    if metric in NEUTRAL:
        return ""
    if not delta or delta.delta is None or not delta.significant:
        return ""
    better = delta.delta < 0 if metric in LOWER_IS_BETTER else delta.delta > 0
    return "up" if better else "down"


def _delta_text(metric: str, delta: Delta | None) -> str:
    if not delta or delta.delta is None:
        return "–"
    wide = metric in CHRF_METRICS or metric == "length"
    text = f"{delta.delta:+.1f}" if wide else f"{delta.delta:+.3f}"
    if delta.low is not None and delta.high is not None:
        lo, hi = delta.low, delta.high
        text += f" [{lo:+.1f}, {hi:+.1f}]" if wide else f" [{lo:+.2f}, {hi:+.2f}]"
    else:
        text += " (n<5, no CI)"
    return text


def _model_keys(results: dict[str, Any]) -> list[str]:
    return [m["key"] for m in results.get("models", [])]


def _cards(results: dict[str, Any]) -> list[dict[str, str]]:
    primary = results["primary"]
    summary = results.get("summary", {})
    compare_to = results.get("headline_against")
    cards = []
    for category in CATEGORIES:
        cell = summary.get(primary, {}).get(category)
        if not cell:
            continue
        metric, label = HEADLINE[category]
        found = metric_cell(results, primary, category, metric)
        value = found.mean if found else None
        delta = delta_of(results, compare_to, category, metric) if compare_to else None
        cards.append(
            {
                "category": category,
                "value": _fmt(value, metric),
                "metric": label,
                "delta": (f"vs {compare_to}: {_delta_text(metric, delta)}" if compare_to else ""),
                "trend": _trend(metric, delta),
            }
        )
    return cards


def _metric_tables(results: dict[str, Any]) -> list[dict[str, Any]]:
    keys = _model_keys(results)
    summary = results.get("summary", {})
    deltas = results.get("deltas", {})
    delta_keys = [k for k in keys if k in deltas]
    blocks = []
    for category in CATEGORIES:
        present = [k for k in keys if category in summary.get(k, {})]
        if not present:
            continue
        names = sorted(
            {
                n
                for k in present
                for n in summary[k][category]["metrics"]
                if n in METRIC_LABELS and n not in HIDDEN_IN_TABLES
            },
            key=_METRIC_ORDER.index,
        )
        rows = []
        for name in names:
            cells = []
            for key in keys:
                cell = metric_cell(results, key, category, name)
                if not cell:
                    cells.append("–")
                    continue
                text = _fmt(cell.mean, name)
                if cell.low is not None:
                    text += f" [{_fmt(cell.low, name)}, {_fmt(cell.high, name)}]"
                cells.append(text)
            row_deltas = []
            for other in delta_keys:
                d = delta_of(results, other, category, name)
                row_deltas.append({"text": _delta_text(name, d), "trend": _trend(name, d)})
            rows.append({"metric": METRIC_LABELS[name], "cells": cells, "deltas": row_deltas})
        directions = []
        if category == "translation":
            found = sorted(
                {
                    d
                    for k in present
                    for d in summary[k][category]["metrics"].get("chrf_by_direction", {})
                }
            )
            for direction in found:
                cells, n = [], 0
                for key in keys:
                    cell = (
                        summary.get(key, {})
                        .get(category, {})
                        .get("metrics", {})
                        .get("chrf_by_direction", {})
                        .get(direction)
                    )
                    cells.append(_fmt(cell["mean"], "chrf") if cell else "–")
                    n = max(n, cell["n"] if cell else 0)
                directions.append({"direction": direction, "cells": cells, "n": n})
        n = max(summary[k][category]["n"] for k in present)
        blocks.append(
            {
                "category": category,
                "n": n,
                "rows": rows,
                "delta_keys": delta_keys,
                "directions": directions,
            }
        )
    return blocks


def _val_loss_rows(results: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    val_loss = results.get("val_loss") or {}
    keys = [k for k in _model_keys(results) if val_loss.get(k)]
    if not keys:
        return [], []
    categories = [
        c for c in CATEGORIES if any(c in val_loss[k].get("by_category", {}) for k in keys)
    ]
    rows = [{"category": "all", "cells": [_fmt(val_loss[k].get("overall")) for k in keys]}]
    for category in categories:
        rows.append(
            {
                "category": category,
                "cells": [_fmt(val_loss[k]["by_category"].get(category)) for k in keys],
            }
        )
    return keys, rows


def _badges(item: dict[str, Any], scores: dict[str, float]) -> list[dict[str, str]]:
    badges = []
    if scores.get("loop"):
        badges.append({"kind": "", "text": "loop"})
    if scores.get("copied"):
        badges.append({"kind": "", "text": "copied"})
    if "label" in scores:
        badges.append(
            {
                "kind": "good" if scores["label"] else "",
                "text": "label" if scores["label"] else "wrong label",
            }
        )
    elif "facts" in scores:
        badges.append(
            {
                "kind": "good" if scores["facts"] else "",
                "text": "fact" if scores["facts"] else "miss",
            }
        )
    elif scores.get("contains"):
        badges.append({"kind": "good", "text": "exact" if scores.get("exact") else "contains"})
    elif "contains" in scores:
        badges.append({"kind": "", "text": "miss"})
    if "chrf" in scores:
        badges.append(
            {"kind": "good" if scores["chrf"] >= 50 else "", "text": f"chrF {scores['chrf']:.0f}"}
        )
    if "target_language" in scores and not scores["target_language"]:
        badges.append({"kind": "", "text": "wrong language"})
    if "two_questions" in scores:
        asks = bool(scores["two_questions"])
        badges.append({"kind": "good" if asks else "", "text": "asks" if asks else "asks < 2"})
    if "reasoning_ok" in scores and not scores["reasoning_ok"]:
        badges.append({"kind": "", "text": "reasoning off limits"})
    return badges


def _samples(results: dict[str, Any]) -> list[dict[str, Any]]:
    keys = _model_keys(results)
    shown: dict[tuple[str, str], int] = {}
    out = []
    for item in results.get("items", []):
        slot = (item["category"], item["source"])
        if shown.get(slot, 0) >= SAMPLES_PER_CATEGORY:
            continue
        shown[slot] = shown.get(slot, 0) + 1
        prompt = item.get("question") or item["instruction"] + (
            f"\n\n{item['input']}" if item.get("input") else ""
        )
        primary = item.get("answers", {}).get(results["primary"]) or {}
        answers: list[dict[str, Any]] = []
        for key in keys:
            answer = item.get("answers", {}).get(key)
            if answer is None:
                answers.append({"text": "–", "reasoning": None, "badges": []})
                continue
            answers.append(
                {
                    "text": answer.get("text", ""),
                    "reasoning": answer.get("reasoning"),
                    "badges": _badges(item, answer.get("scores", {})),
                }
            )
        out.append(
            {
                "source": item["source"],
                "category": item["category"],
                "language": item.get("language") or "?",
                "prompt": prompt,
                "chat": primary.get("chat"),
                "reference": item.get("reference", ""),
                "answers": answers,
            }
        )
    order = {c: i for i, c in enumerate(CATEGORIES)}
    out.sort(key=lambda s: (s["source"] != "val", order.get(s["category"], 99)))
    return out


def _memorisation_view(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return None
    return {
        "verdict": data.get("verdict", "none"),
        "final_train": _fmt(data.get("final_train")),
        "final_val": _fmt(data.get("final_val")),
        "gap": _fmt(data.get("gap")),
        "best_val": _fmt(data.get("best_val"))
        + (f" (step {data['best_val_step']})" if data.get("best_val_step") is not None else ""),
        "notes": data.get("notes", []),
        "epoch_steps": [
            {k: _fmt(v) for k, v in step.items() if k != "ratio"}
            for step in data.get("epoch_steps", [])
        ],
    }


def _ablation_view(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return None
    columns = sorted(
        {k for facts in data.values() for k in facts if k != "layout"},
        key=lambda k: (k != "run", k),
    )
    rows = [
        {"layout": layout, "cells": [_fmt(facts.get(k)) for k in columns]}
        for layout, facts in data.items()
    ]
    return {"columns": columns, "rows": rows}


def _images(results: dict[str, Any]) -> dict[str, str | None]:
    from bonsai.evaluate import charts

    models = results.get("models", [])

    def encode(png: bytes | None) -> str | None:
        return base64.b64encode(png).decode("ascii") if png else None

    return {
        "loss": encode(charts.loss_curves(results.get("history") or {})),
        "bars": encode(charts.category_bars(results.get("summary", {}), models)),
        "val_loss": encode(charts.val_loss_bars(results.get("val_loss") or {}, models)),
    }


def _glance(results: dict[str, Any]) -> str:
    primary = results["primary"]
    against = results.get("headline_against")
    counts = results.get("counts", {})
    text = (
        f"{counts.get('val', 0)} validation records and {counts.get('probe', 0)} probes, "
        f"answered by {', '.join(_model_keys(results))} with the same deterministic settings."
    )
    chat = (results.get("settings") or {}).get("chat")
    if chat:
        text += " Each was asked as `bonsai chat` asks it, " + (
            f"with the notes retrieval found ({chat.get('prompts_with_notes', 0)} of the "
            "prompts carried notes)."
            if chat.get("rag")
            else "without notes (--no-rag)."
        )
        if chat.get("own_record_left_out"):
            text += (
                f" {chat['own_record_left_out']} validation record(s) were retrieved for their "
                "own question and left out of its prompt."
            )
        guessed = chat.get("category_guessed") or {}
        wrong = [c for c, share in guessed.items() if share < 1]
        if wrong:
            text += " Chat read some questions as another category than the item's: " + (
                ", ".join(f"{c} {100 * (1 - guessed[c]):.0f}%" for c in wrong) + "."
            )
    if against:
        better = worse = ahead = behind = 0
        compared = deltas_against(results, against)
        for category, deltas in compared.items():
            metric, _ = HEADLINE[category]
            delta = deltas.get(metric)
            trend = _trend(metric, delta)
            better += trend == "up"
            worse += trend == "down"
            if delta is not None and delta.delta is not None:
                ahead += delta.delta > 0
                behind += delta.delta < 0
        text += (
            f" Against {against}, {primary} is ahead on the mean of the headline metric in "
            f"{ahead} of {len(compared)} categories and behind in {behind}; clearly better in "
            f"{better} and clearly worse in {worse} (95% bootstrap intervals that exclude "
            "zero); the rest is within noise at this sample size."
        )
    return text


def render_html(results: dict[str, Any]) -> str:
    """The report as one HTML string, from a results dict."""
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    from bonsai.evaluate.report_template import TEMPLATE

    run = results.get("run") or {}
    keys, val_rows = _val_loss_rows(results)
    diagnostics = results.get("diagnostics") or {}
    loss_rows = [
        {**row, "mean_loss": _fmt(row.get("mean_loss")), "share": f"{100 * row['share']:.1f}%"}
        for row in diagnostics.get("loss_table", [])
    ]
    title = results.get("title") or f"BONSAI evaluation · {run.get('id', '?')}"
    subtitle = " · ".join(
        part
        for part in (
            f"dataset {run['dataset']}" if run.get("dataset") else "",
            f"layout {run['layout']}" if run.get("layout") else "",
            f"base model {run['base_model']}" if run.get("base_model") else "",
            results.get("created_at", ""),
        )
        if part
    )
    settings = results.get("settings", {})
    footer = (
        f"Generated by bonsai {results.get('bonsai_version', '')} in "
        f"{results.get('seconds', 0):.0f} s. Generation: "
        + ", ".join(f"{k}={v}" for k, v in sorted(settings.get("generation", {}).items()))
        + f". Bootstrap: {settings.get('bootstrap_samples', '?')} resamples,"
        + f" seed {settings.get('seed', '?')}."
        + " Every answer and score is in the JSON file next to this one."
    )
    return env.from_string(TEMPLATE).render(
        title=title,
        subtitle=subtitle,
        glance=_glance(results),
        cards=_cards(results),
        models=results.get("models", []),
        model_keys=_model_keys(results),
        primary=results["primary"],
        images=_images(results),
        metric_tables=_metric_tables(results),
        val_loss_keys=keys,
        val_loss_rows=val_rows,
        memorisation=_memorisation_view(diagnostics.get("memorisation")),
        contradictions=diagnostics.get("contradictions", []),
        hard_records=[
            {**d, "loss": _fmt(d.get("loss")), "category_median": _fmt(d.get("category_median"))}
            for d in diagnostics.get("hard_records", [])
        ],
        loss_table=loss_rows,
        loss_table_model=diagnostics.get("loss_table_model", results["primary"]),
        samples=_samples(results),
        ablation=_ablation_view(results.get("ablation")),
        footer=footer,
    )
