"""The progress bar of a teach run: records done of total, rate, time left, failures so far."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} rec/s" if speed else "– rec/s", style="progress.data.speed")


class RichProgress:
    """A rich progress bar; rich redraws it a few times a second from its own thread, so an
    update costs the run only a counter increment."""

    def __init__(self, console: Console, *, description: str = "teaching") -> None:
        self.description = description
        self.failed = 0
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=4,
            transient=False,
        )
        self._task: TaskID | None = None

    def start(self, total: int, *, completed: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task(
            self.description, total=total, completed=completed, failed=""
        )

    def advance(self, *, failed: bool) -> None:
        if self._task is None:
            return
        if failed:
            self.failed += 1
            self._bar.update(self._task, advance=1, failed=f"[red]{self.failed} failed[/]")
        else:
            self._bar.advance(self._task)

    def stop(self) -> None:
        self._bar.stop()
