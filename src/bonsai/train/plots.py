"""Loss curves as PNG files, drawn from a run's ``metrics.jsonl`` with matplotlib (no display).

* ``loss.png``: training loss per step (and its running mean), validation loss at each
  evaluation, and a dashed line where each epoch starts. A drop of the training loss right at an
  epoch line, while validation does not follow, is the sign of memorisation.
* ``loss_by_category.png``: validation loss per category (solid) and training loss per category
  over the same intervals (dotted), one colour per category.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bonsai.util.atomic import atomic_path


def _running_mean(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _mark_epochs(ax: Any, entries: Sequence[dict[str, Any]]) -> None:
    for entry in entries:
        if entry.get("kind") == "epoch" and entry.get("epoch", 0) > 0:
            ax.axvline(entry["step"], color="grey", linestyle="--", linewidth=0.8, alpha=0.7)
            ax.annotate(
                f"epoch {entry['epoch'] + 1}",
                xy=(entry["step"], 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -10),
                textcoords="offset points",
                fontsize=7,
                color="grey",
            )


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def plot_losses(entries: Sequence[dict[str, Any]], out: Path, *, title: str = "") -> Path:
    """Write ``out`` (loss.png): train vs validation loss with epoch starts marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [e for e in entries if e.get("kind") == "train"]
    val = [e for e in entries if e.get("kind") == "val"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if train:
        steps = [e["step"] for e in train]
        losses = [e["loss"] for e in train]
        ax.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="train (step)")
        window = max(1, len(train) // 20)
        if window > 1:
            ax.plot(steps, _running_mean(losses, window), color="tab:blue", label="train (mean)")
    if val:
        ax.plot(
            [e["step"] for e in val],
            [e["loss"] for e in val],
            color="tab:orange",
            marker="o",
            markersize=3,
            label="validation",
        )
    _mark_epochs(ax, entries)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (cross-entropy per target token)")
    ax.set_title(title or "loss")
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    return out


def plot_categories(entries: Sequence[dict[str, Any]], out: Path, *, title: str = "") -> Path:
    """Write ``out`` (loss_by_category.png): validation and training loss per category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    val = [e for e in entries if e.get("kind") == "val"]
    names = sorted({name for e in val for name in e.get("by_category", {})})
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        colour = colours(i % 10)
        points = [(e["step"], e["by_category"][name]) for e in val if name in e["by_category"]]
        ax.plot(*zip(*points, strict=True), color=colour, marker="o", markersize=3, label=name)
        trained = [
            (e["step"], e["train_by_category"][name])
            for e in val
            if name in e.get("train_by_category", {})
        ]
        if trained:
            ax.plot(*zip(*trained, strict=True), color=colour, linestyle=":", linewidth=1)
    _mark_epochs(ax, entries)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per target token")
    ax.set_title(title or "validation loss by category (dotted: training)")
    ax.grid(alpha=0.3)
    if names:
        ax.legend(loc="upper right", fontsize=7, ncol=2)
    fig.tight_layout()
    _save(fig, out)
    plt.close(fig)
    return out


def plot_run(entries: Sequence[dict[str, Any]], folder: Path, *, title: str = "") -> list[Path]:
    """Both pictures of a run, into its folder."""
    return [
        plot_losses(entries, folder / "loss.png", title=title),
        plot_categories(entries, folder / "loss_by_category.png", title=title),
    ]
