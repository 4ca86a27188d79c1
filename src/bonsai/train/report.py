"""What the train stage shows a person: the plan of a run, dry-run examples with their masks,
progress while it trains, and summaries of finished runs."""

from __future__ import annotations

import math
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from bonsai.runs import Run, RunManifest
from bonsai.train.data import render_masked

if TYPE_CHECKING:
    from bonsai.train.checkpoint import TrainState
    from bonsai.train.prepare import Prepared


class RunLog:
    """Prints to the console and keeps a plain-text copy in the run's ``train.log``."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self._buffer: list[str] = []
        self._path: Path | None = None

    def attach(self, path: Path) -> None:
        """From now on write to ``path`` too (what was printed before goes first)."""
        self._path = path
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in self._buffer)
        self._buffer = []

    def _write(self, markup: str) -> None:
        line = Text.from_markup(markup).plain
        if self._path is None:
            self._buffer.append(line)
        else:
            with self._path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def info(self, markup: str) -> None:
        self.console.print(markup)
        self._write(markup)

    def note(self, text: str) -> None:
        self.info(f"  · {escape(text)}")

    def warning(self, text: str) -> None:
        self.info(f"[yellow]warning:[/] {escape(text)}")


class StepProgress:
    """A progress bar with step, loss, validation loss, tokens/s and ETA (terminals only; logs
    get the evaluation lines instead)."""

    def __init__(self, console: Console, total: int, state: TrainState) -> None:
        self.progress = Progress(
            TextColumn("[bold green]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("val {task.fields[val]}"),
            TextColumn("{task.fields[speed]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task(
            "train", total=total, completed=state.step, loss="-", val="-", speed="-"
        )

    def __enter__(self) -> StepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, state: TrainState, loss: float, tokens_per_s: float) -> None:
        self.progress.update(
            self.task, completed=state.step, loss=f"{loss:.4f}", speed=f"{tokens_per_s:,.0f}"
        )

    def set_val(self, val: float) -> None:
        self.progress.update(self.task, val=f"{val:.4f}")


# -- the plan -------------------------------------------------------------------------------------


def print_plan(prep: Prepared, log: RunLog) -> None:
    """What the run will do: data, derived settings, warnings."""
    args = prep.args
    shard = f", shard {args.shard}" if args.shard is not None else ""
    parent = f", continuing run {prep.parent.id}" if prep.parent else ""
    log.info(
        f"Training on dataset [bold]{escape(args.dataset)}[/]{shard}: {len(prep.train):,} "
        f"training and {len(prep.val):,} validation examples, layout [bold]{prep.layout}[/], "
        f"base model {escape(prep.base_model)}{parent}."
    )
    for note in prep.notes:
        log.note(note)
    for warning in prep.warnings:
        log.warning(warning)
    loss_tokens = sum(e.n_target for e in prep.train)
    epochs = f"{args.epochs:g} epoch(s)" if args.max_steps is None else "max_steps"
    log.info(
        f"{prep.train_tokens:,} training tokens ({loss_tokens:,} carry loss), longest example "
        f"{prep.train_report.longest}; {prep.steps_per_epoch[0]} steps per epoch, "
        f"{prep.total_steps} steps ({epochs}) of up to {args.batch_tokens:,} tokens, "
        f"lr {args.lr:g}, LoRA r{args.lora_rank} alpha {args.lora_alpha:g} on {args.lora_targets}."
    )


def print_examples(prep: Prepared, console: Console, count: int = 3) -> None:
    """A few training examples as the model sees them: special tokens shown, every line marked
    'masked' (prompt, no loss) or 'trained' (target, loss), and token counts."""
    for i, example in enumerate(prep.train[:count], start=1):
        console.rule(
            f"example {i} of {len(prep.train)} · {example.record_id} · {example.category} · "
            f"{len(example.input_ids)} tokens: {example.n_prompt} masked, "
            f"{example.n_target} trained" + (" · truncated" if example.truncated else ""),
            style="dim",
        )
        for trained, line in render_masked(example, prep.tokenizer):
            text = Text(
                "trained │ " if trained else " masked │ ", style="bold green" if trained else "dim"
            )
            text.append(line, style="green" if trained else "dim")
            console.print(text, soft_wrap=True)
    console.rule(style="dim")
    train_loss = sum(e.n_target for e in prep.train)
    val_tokens = sum(len(e.input_ids) for e in prep.val)
    console.print(
        f"Dry run: {len(prep.train):,} training examples, {prep.train_tokens:,} tokens "
        f"({train_loss:,} trained, {prep.train_tokens - train_loss:,} masked); "
        f"{len(prep.val):,} validation examples, {val_tokens:,} tokens. "
        f"Truncated: {prep.train_report.truncated + prep.val_report.truncated}; skipped: "
        f"{sum(prep.train_report.skipped.values()) + sum(prep.val_report.skipped.values())}. "
        "Nothing was trained or written."
    )


# -- the manifest ---------------------------------------------------------------------------------


def code_versions() -> dict[str, Any]:
    """Versions of BONSAI (and its git commit when run from a checkout) and of the libraries."""
    from importlib.metadata import PackageNotFoundError, version

    import bonsai

    versions: dict[str, Any] = {"bonsai": bonsai.__version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "accelerate"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    try:
        source = Path(bonsai.__file__).resolve().parent
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5
        )
        if commit.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no", "."],
                cwd=source,
                capture_output=True,
                text=True,
                timeout=5,
            )
            versions["git_commit"] = commit.stdout.strip()
            versions["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return versions


def run_manifest(prep: Prepared) -> RunManifest:
    from bonsai.student import resolve_base_model

    parent = prep.parent
    return RunManifest(
        dataset=prep.args.dataset,
        shard=prep.args.shard,
        layout=prep.layout,
        base_model={"name": prep.base_model, "resolved": resolve_base_model(prep.base_model)},
        parent=parent.id if parent else None,
        parent_adapter=str(parent.final_adapter()) if parent else None,
        args=prep.args.to_dict(),
        derived=prep.notes,
        warnings=prep.warnings,
        data=prep.data_manifest(),
        total_steps=prep.total_steps,
        code=code_versions(),
        summary={},
    )


# -- finished runs --------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


PROMOTED_MARK = "*"


def runs_table(all_runs: Sequence[Run], promoted: str | None = None) -> Table:
    """One line per run, narrow enough for 80 columns (the run id names the dataset; `bonsai
    runs ID` shows the layout and the rest); ``promoted`` (a run id) is marked."""
    from bonsai.util.text import shown

    table = Table(title="Training runs", title_justify="left", box=None, header_style="bold")
    table.add_column("run", no_wrap=True)
    table.add_column("status", no_wrap=True, overflow="ellipsis")
    table.add_column("steps", justify="right", no_wrap=True)
    table.add_column("loss", justify="right", no_wrap=True)
    table.add_column("parent", no_wrap=True, overflow="ellipsis")
    for run in all_runs:
        summary = run.manifest.summary
        total = run.manifest.total_steps
        steps = f"{summary.get('steps', 0)}/{'?' if total is None else total}"
        shard = run.manifest.shard
        mark = PROMOTED_MARK if run.id == promoted else " "
        table.add_row(
            f"{mark} {shown(run.id)}" + (f" #{shard}" if shard is not None else ""),
            run.status + (" (stale)" if run.status == "running" and not run.is_live() else ""),
            steps,
            _fmt(summary.get("val_loss")),
            shown(_short_id(run.parent)),
        )
    if promoted:
        table.caption = f"{PROMOTED_MARK} promoted: chat and serve use it by default"
        table.caption_justify = "left"
    return table


def _short_id(run_id: str | None) -> str:
    """A run id by its date and time (a unique start `bonsai runs` accepts), or ''."""
    if not run_id:
        return ""
    parts = run_id.split("-")
    return "-".join(parts[:2]) if len(parts) > 2 and parts[0].isdigit() else run_id


def epoch_step_downs(entries: Sequence[dict[str, Any]]) -> list[tuple[int, float, float]]:
    """(epoch, mean train loss just before it starts, just after): a sharp drop at each epoch
    start, larger than the trend, means the model has started to remember records it saw."""
    train = {e["step"]: e["loss"] for e in entries if e.get("kind") == "train"}
    starts = [e for e in entries if e.get("kind") == "epoch" and e.get("epoch", 0) > 0]
    out = []
    for entry in starts:
        boundary = entry["step"]
        length = boundary / max(1, entry["epoch"])
        k = max(1, min(5, int(length // 4)))
        before = [train[s] for s in range(boundary - k + 1, boundary + 1) if s in train]
        after = [train[s] for s in range(boundary + 1, boundary + k + 1) if s in train]
        if before and after:
            out.append((entry["epoch"] + 1, sum(before) / len(before), sum(after) / len(after)))
    return out


def show_run(
    run: Run, entries: Sequence[dict[str, Any]], console: Console, *, promoted: bool = False
) -> None:
    """A summary of one run: settings, data, losses, per category, warnings, files."""
    m = run.manifest
    summary, args, data = m.summary, m.args, m.data
    mark = "  [bold]promoted[/] (chat and serve use it)" if promoted else ""
    console.print(f"[bold]{escape(run.id)}[/]  {run.status}{mark}  ({escape(str(run.dir))})")
    shard = f" shard {m.shard}" if m.shard is not None else ""
    console.print(
        f"  dataset {escape(run.dataset)}{shard}, layout {m.layout or None}, base model "
        f"{escape(m.base_model_name or 'None')}"
    )
    if run.parent:
        console.print(f"  continues run {run.parent}")
    console.print(
        f"  data: {data.get('train_examples')} training / {data.get('val_examples')} validation "
        f"examples (split: {data.get('split')}), {data.get('train_tokens', 0):,} training "
        f"tokens, hash {data.get('hash')}"
    )
    console.print(
        f"  settings: lr {args.get('lr')}, LoRA r{args.get('lora_rank')} alpha "
        f"{args.get('lora_alpha')} on {args.get('lora_targets')}, {args.get('precision')}, "
        f"{args.get('batch_tokens')} tokens per step, max length {args.get('max_length')}"
    )
    console.print(
        f"  progress: {summary.get('steps', 0)} of {m.total_steps} steps, "
        f"{summary.get('tokens', 0):,} tokens in {summary.get('seconds', 0)} s "
        f"({summary.get('tokens_per_s') or '-'} tokens/s)"
    )
    console.print(
        f"  loss: train {_fmt(summary.get('train_loss'))}, validation "
        f"{_fmt(summary.get('val_loss'))} (best {_fmt(summary.get('best_val_loss'))})"
    )
    vals = [e for e in entries if e.get("kind") == "val"]
    if vals:
        first, last = vals[0].get("by_category", {}), vals[-1].get("by_category", {})
        table = Table(title="validation loss by category", title_justify="left")
        for column in ("category", "first eval", "last eval", "train (last)"):
            table.add_column(column, justify="left" if column == "category" else "right")
        trained = vals[-1].get("train_by_category", {})
        for name in sorted(last):
            table.add_row(name, _fmt(first.get(name)), _fmt(last[name]), _fmt(trained.get(name)))
        console.print(table)
    for epoch, before, after in epoch_step_downs(entries):
        change = (after - before) / before if before else 0.0
        console.print(
            f"  epoch {epoch} starts: training loss {before:.4f} → {after:.4f} ({change:+.0%})"
        )
    for entry in entries:
        if entry.get("kind") == "warning":
            console.print(
                f"  [yellow]warning[/] at step {entry['step']}: {escape(entry['message'])}"
            )
    if m.error:
        console.print(f"  [red]stopped by an error:[/] {escape(m.error)}")
    files = [p.name for p in sorted(run.dir.iterdir()) if not p.name.startswith(".")]
    console.print(f"  files: {', '.join(files)}")
