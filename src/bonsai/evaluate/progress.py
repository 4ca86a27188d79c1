"""Progress of a long evaluation: one bar per phase (generation per model, losses, report)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Phases(Protocol):
    """Where an evaluation reports what it is doing."""

    def phase(self, description: str, total: int) -> Callable[[int], None]:
        """Start a phase of ``total`` units; returns ``advance(n)``."""
        ...

    def note(self, message: str) -> None:
        """A line of information (what was derived or skipped)."""
        ...

    def close(self) -> None: ...


class QuietPhases:
    """No output (library use, tests)."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def phase(self, description: str, total: int) -> Callable[[int], None]:
        return lambda n: None

    def note(self, message: str) -> None:
        self.notes.append(message)

    def close(self) -> None:
        pass


class RichPhases:
    """Rich progress bars, one line per phase, kept on screen when done."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar = Progress(
            TextColumn("  [bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=4,
        )
        self._started = False

    def phase(self, description: str, total: int) -> Callable[[int], None]:
        if not self.console.is_terminal:
            # No live bar in a log file: say when each phase starts instead.
            self.console.print(f"  {description} ({total})…", markup=False, highlight=False)
        if not self._started:
            self._bar.start()
            self._started = True
        task = self._bar.add_task(description, total=max(total, 1))
        if total == 0:
            self._bar.update(task, completed=1)
        return lambda n: self._bar.advance(task, n)

    def note(self, message: str) -> None:
        self.console.print(f"  {message}", markup=False, highlight=False)

    def close(self) -> None:
        if self._started:
            self._bar.stop()
            self._started = False
