"""What a dataset holds: records per category x language, lengths in the student's tokens, and
a picture of both (PNG, drawn with matplotlib's Agg renderer, no display needed)."""

from __future__ import annotations

import math
import statistics
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bonsai.curate.tokens import CountTokens, record_tokens
from bonsai.records import CATEGORIES, Record
from bonsai.util.atomic import atomic_path

NONE_LABEL = "-"


@dataclass
class LengthSummary:
    """Token lengths of a group of records."""

    records: int
    min: int
    median: float
    p90: float
    max: int

    @classmethod
    def of(cls, lengths: Sequence[int]) -> LengthSummary:
        ordered = sorted(lengths)
        return cls(
            len(ordered), ordered[0], statistics.median(ordered), _quantile(ordered, 0.9),
            ordered[-1],
        )  # fmt: skip


def _quantile(ordered: Sequence[int], q: float) -> float:
    """Linear-interpolated quantile of sorted values (numpy's default method)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class DatasetStats:
    """Counts and lengths of one dataset."""

    records: int
    counts: dict[str, dict[str, int]]
    """category -> language -> records (missing values are '-')."""
    categories: list[str]
    """Categories present, in the order of the seven (then '-' for none)."""
    languages: list[str]
    """Languages present, most records first."""
    tokens: dict[str, list[int]] | None = None
    """category -> total tokens of each record; None when not counted."""
    parts: dict[str, int] = field(default_factory=dict)
    """'train', 'val', 'shard N' -> records, when the dataset has been split."""

    def lengths(self) -> dict[str, LengthSummary]:
        """Length summary per category, and 'all'."""
        if not self.tokens:
            return {}
        out = {c: LengthSummary.of(self.tokens[c]) for c in self.categories if self.tokens[c]}
        out["all"] = LengthSummary.of([n for c in self.categories for n in self.tokens[c]])
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "counts": self.counts,
            "parts": self.parts,
            "lengths": {k: vars(v) for k, v in self.lengths().items()},
        }


def compute_stats(
    records: Sequence[Record], count_tokens: CountTokens | None = None
) -> DatasetStats:
    from bonsai.curate.split import part_of, part_order

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    languages: Counter[str] = Counter()
    for r in records:
        counts[r.category or NONE_LABEL][r.language or NONE_LABEL] += 1
        languages[r.language or NONE_LABEL] += 1
    categories = [c for c in (*CATEGORIES, NONE_LABEL) if c in counts]
    categories += sorted(set(counts) - set(categories))
    tokens = None
    if count_tokens is not None and records:
        by_category: defaultdict[str, list[int]] = defaultdict(list)
        for r, n in zip(records, record_tokens(records, count_tokens), strict=True):
            by_category[r.category or NONE_LABEL].append(n)
        tokens = dict(by_category)
    parts = Counter(part_of(r) for r in records if r.split or r.shard is not None)
    ordered_parts = sorted(parts, key=part_order)
    return DatasetStats(
        records=len(records),
        counts={c: dict(counts[c]) for c in categories},
        categories=categories,
        languages=[lang for lang, _ in sorted(languages.items(), key=lambda x: (-x[1], x[0]))],
        tokens=tokens,
        parts={p: parts[p] for p in ordered_parts},
    )


# -- the picture -----------------------------------------------------------------------------------

_CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic",
              "WenQuanYi Zen Hei", "Source Han Sans JP", "Hiragino Sans", "Yu Gothic",
              "Microsoft YaHei", "SimHei")  # fmt: skip


def _font_family() -> list[str]:
    """DejaVu Sans, then a CJK font if one is installed, so Japanese dataset names render."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in _CJK_FONTS if name in installed)]


def write_png(stats: DatasetStats, path: Path, title: str) -> Path:
    """Draw the counts heatmap and one token-length histogram per category; write atomically."""
    # A bare Figure renders with Agg and leaves pyplot's global state (and backend) alone.
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    histograms = [c for c in stats.categories if stats.tokens and stats.tokens.get(c)]
    columns = 4
    rows = math.ceil(len(histograms) / columns)
    heat_height = 1.2 + 0.42 * len(stats.categories)
    with matplotlib.rc_context({"font.family": _font_family(), "font.size": 9}):
        fig = Figure(figsize=(13, heat_height + 2.6 * rows), layout="constrained")
        grid = fig.add_gridspec(1 + rows, columns, height_ratios=[heat_height] + [2.6] * rows)
        _draw_counts(fig.add_subplot(grid[0, :]), stats, np)
        for n, category in enumerate(histograms):
            ax = fig.add_subplot(grid[1 + n // columns, n % columns])
            _draw_lengths(ax, category, stats, np)
            if n % columns == 0:
                ax.set_ylabel("records")
        fig.suptitle(title, fontsize=12, fontweight="bold")
        with warnings.catch_warnings(), atomic_path(path) as tmp:
            warnings.filterwarnings("ignore", message="Glyph .* missing")
            fig.savefig(tmp, format="png", dpi=110)
    return path


def _draw_counts(ax: Any, stats: DatasetStats, np: Any) -> None:
    languages = stats.languages
    grid = np.array(
        [[stats.counts[c].get(lang, 0) for lang in languages] for c in stats.categories]
    )
    ax.imshow(grid, cmap="Greens", aspect="auto", vmin=0, vmax=max(1, grid.max()) * 1.25)
    ax.set_xticks(range(len(languages)), [*languages])
    ax.set_yticks(range(len(stats.categories)), stats.categories)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for y in range(grid.shape[0]):
        for x in range(grid.shape[1]):
            if grid[y, x]:
                ax.text(x, y, f"{grid[y, x]:,}", ha="center", va="center", fontsize=9)
    totals = grid.sum(axis=1)
    right = len(languages) - 0.4
    ax.text(right, -0.75, "  total", ha="left", va="center", fontweight="bold")
    for y, total in enumerate(totals):
        ax.text(right, y, f"  {total:,}", ha="left", va="center", fontweight="bold")
    ax.set_xlim(-0.5, len(languages) - 0.5)
    ax.set_title(
        f"Records per category x language ({stats.records:,} in all)",
        loc="left",
    )
    for spine in ax.spines.values():
        spine.set_visible(False)


def _draw_lengths(ax: Any, category: str, stats: DatasetStats, np: Any) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    assert stats.tokens is not None
    values = np.array(stats.tokens[category])
    everything = np.array([n for c in stats.categories for n in stats.tokens[c]])
    low, high = max(1, int(everything.min())), max(2, int(everything.max()))
    # Lengths spread over orders of magnitude read best on a log axis.
    if high / low > 20:
        bins = np.geomspace(low, high + 1, 30)
        ax.set_xscale("log")
        # 10, 20, 50, 100, ... rather than powers of ten: token counts read as plain numbers.
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        bins = np.linspace(low, high + 1, 30)
    ax.hist(np.clip(values, low, high), bins=bins, color="#3a7d44", alpha=0.85)
    median = float(np.median(values))
    ax.axvline(median, color="#222222", linewidth=1, linestyle="--")
    ax.set_title(
        f"{category}\n{len(values):,} records, median {median:,.0f} tokens (dashed)", fontsize=9
    )
    ax.set_xlabel("tokens per record")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)
