"""The one scanner of a run's JSONL files, and its one policy for lines that are not records.

A record is a whole line (ending in a newline) holding a JSON object with a string `id`. Lines
that are not records fall in two kinds:

- the **torn tail**: the bad lines after the last record. A run killed mid-write leaves one; a
  run still writing has its last line half-written. Readers skip it (and say so); the writer,
  which holds the directory's lock, cuts it off before appending again.
- **corrupt** lines: a bad line with a record after it, which no crash leaves. Readers stop with
  the file and line; a resuming run drops them so that it can go on (and logs them).

Readers read whole lines only, so a directory that a run is writing can be read at any moment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BadLine:
    """A line that is not a record."""

    number: int
    start: int
    """Byte offset where the line starts."""
    problem: str
    excerpt: str


@dataclass
class JsonlScan:
    """Streams the records of one JSONL file; after the loop, `torn` holds the torn tail.

    `on_corrupt` is called with each corrupt line as soon as a record follows it (it may raise)."""

    path: Path
    on_corrupt: Callable[[BadLine], None]
    records: int = 0
    torn: list[BadLine] = field(default_factory=list)
    corrupt: list[BadLine] = field(default_factory=list)

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line number, record) for each record; a missing file has none."""
        self.records, self.torn, self.corrupt = 0, [], []
        if not self.path.is_file():
            return
        pending: list[BadLine] = []
        with self.path.open("rb") as handle:
            offset = 0
            for number, line in enumerate(handle, start=1):
                start, offset = offset, offset + len(line)
                if not line.strip() and line.endswith(b"\n"):
                    continue
                record, problem = _parse(line)
                if record is None:
                    pending.append(BadLine(number, start, problem, _excerpt(line)))
                    continue
                for bad in pending:
                    self.corrupt.append(bad)
                    self.on_corrupt(bad)
                pending = []
                self.records += 1
                yield number, record
        self.torn = pending

    def torn_message(self) -> str | None:
        """What the torn tail is, for a person; None when there is none."""
        if not self.torn:
            return None
        first = self.torn[0]
        lines = f"line {first.number}" if len(self.torn) == 1 else f"lines {first.number}-{self.torn[-1].number}"
        return (
            f"{self.path}, {lines}: the last line is cut off (a run stopped mid-write, or is still writing it); "
            "skipped it."
        )


def corrupt_message(path: Path, bad: BadLine) -> str:
    """A corrupt line, named by file and line, with what to do."""
    return (
        f"{path}, line {bad.number}: {bad.problem} (starts {bad.excerpt!r}). "
        "Only the last line of a run file may be cut off; fix or remove this line."
    )


def _parse(line: bytes) -> tuple[dict[str, Any] | None, str]:
    if not line.endswith(b"\n"):
        return None, "an incomplete line (no newline at the end)"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"not valid JSON ({error.msg} at column {error.colno})"
    except UnicodeDecodeError:
        return None, "not valid JSON (not UTF-8)"
    if not isinstance(record, dict):
        return None, f"not valid JSON for a record (a {type(record).__name__}, not an object)"
    if not isinstance(record.get("id"), str):
        return None, "not a record (no string `id`)"
    return record, ""


def _excerpt(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").strip()[:60]
