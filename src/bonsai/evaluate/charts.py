"""The report's pictures, drawn with matplotlib and returned as PNG bytes (inlined as base64)."""

from __future__ import annotations

import io
from typing import Any

from bonsai.evaluate.results import summary_cell
from bonsai.evaluate.scoring import CHRF_METRICS, HEADLINE

MODEL_COLOURS = {"base": "#9aa5b1", "parent": "#e0a458", "tuned": "#2f855a", "alpaca": "#3182ce"}
"""One colour per model in every chart, so the eye can follow a model across pictures."""


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    return plt, fig, ax


def _png(plt: Any, fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def loss_curves(history: dict[str, Any]) -> bytes | None:
    """Training loss, validation loss (overall and per category) and the epoch boundaries."""
    train = history.get("train") or []
    val = history.get("val") or []
    if not train and not val:
        return None
    plt, fig, ax = _figure(8, 4)
    if train:
        ax.plot([p["step"] for p in train], [p["loss"] for p in train], label="train", lw=1.2)
    if val:
        ax.plot(
            [p["step"] for p in val],
            [p["loss"] for p in val],
            "o-",
            label="validation",
            lw=2,
            color="#c53030",
        )
        categories = sorted({c for p in val for c in p.get("by_category", {})})
        for category in categories:
            points = [
                (p["step"], p["by_category"][category])
                for p in val
                if category in p.get("by_category", {})
            ]
            ax.plot(
                [s for s, _ in points],
                [v for _, v in points],
                ":",
                lw=1,
                alpha=0.8,
                label=f"val · {category}",
            )
    for i, boundary in enumerate(history.get("epoch_boundaries") or []):
        ax.axvline(boundary, color="#718096", ls="--", lw=0.8, label="epoch" if i == 0 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / target token)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    return _png(plt, fig)


def category_bars(summary: dict[str, dict[str, Any]], models: list[dict[str, Any]]) -> bytes | None:
    """One panel per category: each model's headline metric with its bootstrap interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories = [c for c in HEADLINE if any(c in summary.get(m["key"], {}) for m in models)]
    if not categories:
        return None
    columns = min(4, len(categories))
    rows = -(-len(categories) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 2.9 * rows), dpi=100, squeeze=False
    )
    for panel, category in zip(axes.flat, categories, strict=False):
        metric, label = HEADLINE[category]
        names: list[str] = []
        means: list[float] = []
        errors: list[list[float]] = [[], []]
        colours: list[str] = []
        for model in models:
            cell = summary_cell(summary, model["key"], category, metric)
            if not cell or cell.mean is None:
                continue
            mean = cell.mean
            names.append(model["key"])
            means.append(mean)
            low = cell.low if cell.low is not None else mean
            high = cell.high if cell.high is not None else mean
            errors[0].append(max(0.0, mean - low))
            errors[1].append(max(0.0, high - mean))
            colours.append(MODEL_COLOURS.get(model["key"], "#4a5568"))
        panel.bar(names, means, yerr=errors, color=colours, capsize=4)
        panel.set_title(category, fontsize=10)
        panel.set_ylabel(label if len(label) < 28 else metric, fontsize=7)
        top = 100.0 if metric in CHRF_METRICS else 1.0
        panel.set_ylim(0, top * 1.05)
        panel.grid(axis="y", alpha=0.3)
        for x, mean in enumerate(means):
            panel.text(
                x,
                mean,
                f"{mean:.2f}" if top == 1.0 else f"{mean:.0f}",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    for panel in list(axes.flat)[len(categories) :]:
        panel.axis("off")
    return _png(plt, fig)


def val_loss_bars(
    val_loss: dict[str, dict[str, Any]], models: list[dict[str, Any]]
) -> bytes | None:
    """Validation loss per category, grouped by category, one bar per model."""
    keys = [m["key"] for m in models if val_loss.get(m["key"])]
    if not keys:
        return None
    categories = sorted({c for k in keys for c in val_loss[k].get("by_category", {})})
    if not categories:
        return None
    plt, fig, ax = _figure(8, 3.4)
    width = 0.8 / len(keys)
    for i, key in enumerate(keys):
        values = [val_loss[key]["by_category"].get(c, 0.0) for c in categories]
        xs = [x + (i - (len(keys) - 1) / 2) * width for x in range(len(categories))]
        ax.bar(xs, values, width, label=key, color=MODEL_COLOURS.get(key, "#4a5568"))
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels(categories, rotation=20, fontsize=8)
    ax.set_ylabel("validation loss")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(plt, fig)
