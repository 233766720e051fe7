"""Showing a run while it goes: a rich progress display on a terminal, plain log lines elsewhere.

The runner hands a `Snapshot` to the view every half second; the view decides what to draw.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

logger = logging.getLogger("codi_agents.batch")


@dataclass(frozen=True)
class Snapshot:
    """The state of a run at one moment."""

    planned: int
    resumed: int
    """Conversations already on disk when this session started."""
    accepted: int
    rejected: int
    errors: int
    near_duplicates: int
    in_flight: int
    requests: int
    retries: int
    rate_limited: int
    input_tokens: int
    output_tokens: int
    elapsed: float

    @property
    def done(self) -> int:
        """Finished conversations, earlier sessions included."""
        return self.accepted + self.rejected

    @property
    def done_now(self) -> int:
        """Finished in this session."""
        return self.done - self.resumed

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.done if self.done else None

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at this session's pace; None before the first conversation finishes."""
        if self.done_now <= 0 or self.elapsed <= 0:
            return None
        return max(self.planned - self.done, 0) * self.elapsed / self.done_now

    def rate(self, count: int) -> float:
        """`count` per second of this session."""
        return count / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        """The snapshot as one line of plain text."""
        acceptance = f"{self.acceptance:.0%}" if self.acceptance is not None else "-"
        tokens = self.input_tokens + self.output_tokens
        return (
            f"{self.done}/{self.planned} done, {self.accepted} accepted, {self.rejected} rejected ({acceptance}), "
            f"{self.in_flight} in flight | {self.rate(self.requests):.1f} req/s, {self.rate(tokens):,.0f} tok/s | "
            f"errors {self.errors}, retries {self.retries}, rate-limited {self.rate_limited}, "
            f"near-duplicates {self.near_duplicates} | ETA {_duration(self.eta_seconds)}"
        )


class ProgressView(Protocol):
    """Something that shows a run's progress."""

    def start(self, snapshot: Snapshot) -> None: ...

    def update(self, snapshot: Snapshot) -> None: ...

    def stop(self, snapshot: Snapshot) -> None: ...


class RichProgress:
    """A live progress bar with the run's counters, for a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress = Progress(
            TextColumn("[bold]codi run"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
            refresh_per_second=2,
            transient=False,
        )
        self._task = self._progress.add_task("run", total=None, stats="starting...")

    def start(self, snapshot: Snapshot) -> None:
        self._progress.start()
        self.update(snapshot)

    def update(self, snapshot: Snapshot) -> None:
        acceptance = f"{snapshot.acceptance:.0%}" if snapshot.acceptance is not None else "-"
        tokens = snapshot.input_tokens + snapshot.output_tokens
        stats = (
            f"[green]{snapshot.accepted} ok[/] [red]{snapshot.rejected} rejected[/] ({acceptance})  "
            f"{snapshot.in_flight} in flight  {snapshot.rate(snapshot.requests):.1f} req/s  "
            f"{snapshot.rate(tokens):,.0f} tok/s  "
            f"[yellow]errors {snapshot.errors} retries {snapshot.retries} 429s {snapshot.rate_limited}[/]  "
            f"dup {snapshot.near_duplicates}  ETA {_duration(snapshot.eta_seconds)}"
        )
        self._progress.update(self._task, total=snapshot.planned, completed=snapshot.done, stats=stats)

    def stop(self, snapshot: Snapshot) -> None:
        self.update(snapshot)
        self._progress.stop()


class LogProgress:
    """One plain line every `interval` seconds (and at start and end), for logs and pipes."""

    def __init__(self, write: Callable[[str], None] | None = None, interval: float = 10.0) -> None:
        self.write = write or (lambda text: logger.info("%s", text))
        self.interval = interval
        self._last = 0.0

    def start(self, snapshot: Snapshot) -> None:
        resumed = f", {snapshot.resumed} already done" if snapshot.resumed else ""
        self.write(f"codi run: {snapshot.planned} conversations planned{resumed}")
        self._last = time.monotonic()

    def update(self, snapshot: Snapshot) -> None:
        if time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            self.write(f"codi run: {snapshot.line()}")

    def stop(self, snapshot: Snapshot) -> None:
        self.write(f"codi run: {snapshot.line()}")


class NoProgress:
    """Shows nothing."""

    def start(self, snapshot: Snapshot) -> None:
        del snapshot

    def update(self, snapshot: Snapshot) -> None:
        del snapshot

    def stop(self, snapshot: Snapshot) -> None:
        del snapshot


def progress_for(console: Console, interval: float = 10.0) -> ProgressView:
    """A rich display when `console` is a terminal, else plain lines printed to it."""
    if console.is_terminal and not console.is_dumb_terminal:
        return RichProgress(console)
    return LogProgress(lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True), interval)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
