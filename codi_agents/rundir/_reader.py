"""Reading a run directory: its conversations streamed, its manifest and summary as typed models.

Conversations are streamed one at a time, so exports and reports of millions of conversations
never hold the whole run in memory. Only whole lines are read, so a directory can be read while a
run writes it; a torn tail is skipped with a warning and a corrupt line stops with the file and
line (the policy of `codi_agents.rundir._scan`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from codi_agents._record import Conversation
from codi_agents.errors import RunDirectoryError
from codi_agents.rundir._files import field_errors, read_run_file
from codi_agents.rundir._layout import ACCEPTED_FILE, REJECTED_FILE, RunLayout
from codi_agents.rundir._lock import LockHolder, current_writer
from codi_agents.rundir._models import RunManifest, RunSummary
from codi_agents.rundir._scan import BadLine, JsonlScan, corrupt_message

Which = Literal["accepted", "rejected"]


class TornLineWarning(UserWarning):
    """The last line of a run file was cut off mid-write (or is being written) and was skipped."""


@dataclass
class RunDirectory:
    """A run directory written by `codi run`, opened for reading."""

    path: Path
    manifest: RunManifest | None = None
    """`manifest.json`, or None when the run wrote none (records copied by hand)."""
    summary: RunSummary | None = None
    """`summary.json`, or None before a run's first session ended."""
    writer: LockHolder | None = None
    """The run writing the directory when it was opened, if any: the numbers are a snapshot."""
    warnings: list[str] = field(default_factory=list)
    """Problems tolerated while reading (torn last lines, a run still writing), for the user to see."""

    @classmethod
    def open(cls, path: Path | str) -> RunDirectory:
        """Check that `path` is a run directory and read its manifest and summary."""
        layout = RunLayout(Path(path))
        if not layout.root.is_dir():
            raise RunDirectoryError(f"Run directory {layout.root} does not exist or is not a directory.")
        if not layout.accepted.is_file() and not layout.rejected.is_file():
            raise RunDirectoryError(
                f"{layout.root} holds neither {ACCEPTED_FILE} nor {REJECTED_FILE}: "
                "pass the --out directory of a `codi run`."
            )
        run = cls(
            path=layout.root,
            manifest=read_run_file(layout.manifest, RunManifest),
            summary=read_run_file(layout.summary, RunSummary),
            writer=current_writer(layout.root),
        )
        if run.writer is not None:
            run.warnings.append(
                f"A run is still writing {layout.root} ({run.writer.describe()}): these numbers are a snapshot."
            )
        return run

    def file(self, which: Which) -> Path:
        """The JSONL file of accepted or rejected conversations."""
        return RunLayout(self.path).stream(which)

    def conversations(self, *which: Which) -> Iterator[Conversation]:
        """Stream the conversations of the given files (default: accepted, then rejected)."""
        for name in which or ("accepted", "rejected"):
            yield from read_conversations(self.file(name), on_torn_line=self._torn_line)

    def _torn_line(self, message: str) -> None:
        if message not in self.warnings:  # a second pass over the same file stays quiet
            self.warnings.append(message)
            warnings.warn(message, TornLineWarning, stacklevel=4)


def read_conversations(path: Path, on_torn_line: Callable[[str], None] | None = None) -> Iterator[Conversation]:
    """Conversations from one JSONL file; a missing file yields nothing.

    A corrupt line, or a record that is not a valid conversation, raises `RunDirectoryError` naming
    the file and line; a torn tail is skipped and reported to `on_torn_line` (default: a `TornLineWarning`).
    """
    scan = JsonlScan(path, on_corrupt=lambda bad: _raise_corrupt(path, bad))
    for number, record in scan:
        try:
            yield Conversation.model_validate(record)
        except ValidationError as error:
            raise RunDirectoryError(
                f"{path}, line {number}: not a codi conversation record ({field_errors(error)}). "
                "Was this file written by a different codi version or edited by hand?"
            ) from error
    message = scan.torn_message()
    if message is not None:
        if on_torn_line is not None:
            on_torn_line(message)
        else:
            warnings.warn(message, TornLineWarning, stacklevel=2)


def _raise_corrupt(path: Path, bad: BadLine) -> None:
    raise RunDirectoryError(corrupt_message(path, bad))
