"""Reading a run directory: `accepted.jsonl`, `rejected.jsonl`, `manifest.json`, `summary.json`.

Conversations are streamed one at a time, so exports and reports of millions of conversations
never hold the whole run in memory. A corrupt line stops with the file and line number; a torn
last line (a run killed while writing) is skipped with a warning, as the run itself would repair it.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from codi_agents._record import Conversation
from codi_agents.errors import UserError

ACCEPTED_FILE = "accepted.jsonl"
REJECTED_FILE = "rejected.jsonl"
MANIFEST_FILE = "manifest.json"
SUMMARY_FILE = "summary.json"

Which = Literal["accepted", "rejected"]


class RunDirectoryError(UserError):
    """A run directory is missing, empty or holds a corrupt file; the message names the file and line."""


class TornLineWarning(UserWarning):
    """The last line of a run file was cut off mid-write and was skipped."""


@dataclass
class RunDirectory:
    """A run directory written by `codi run`, opened for reading."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    """`manifest.json`, loosely structured: config, fingerprint, codi version, models per role."""
    summary: dict[str, Any] = field(default_factory=dict)
    """`summary.json` if the run wrote one."""
    warnings: list[str] = field(default_factory=list)
    """Problems tolerated while reading (torn last lines), for the user to see."""

    @classmethod
    def open(cls, path: Path | str) -> RunDirectory:
        """Check that `path` is a run directory and read its manifest and summary."""
        path = Path(path)
        if not path.is_dir():
            raise RunDirectoryError(f"Run directory {path} does not exist or is not a directory.")
        if not (path / ACCEPTED_FILE).is_file() and not (path / REJECTED_FILE).is_file():
            raise RunDirectoryError(
                f"{path} holds neither {ACCEPTED_FILE} nor {REJECTED_FILE}: pass the --out directory of a `codi run`."
            )
        return cls(path=path, manifest=_read_json(path / MANIFEST_FILE), summary=_read_json(path / SUMMARY_FILE))

    def file(self, which: Which) -> Path:
        """The JSONL file of accepted or rejected conversations."""
        return self.path / (ACCEPTED_FILE if which == "accepted" else REJECTED_FILE)

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

    A line that is not a valid conversation raises `RunDirectoryError` naming the file and line,
    except for the last line when it is cut off, which is skipped and reported to `on_torn_line`
    (default: a `TornLineWarning`).
    """
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as handle:
        pending: tuple[int, str, json.JSONDecodeError] | None = None
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            if pending is not None:
                raise _corrupt(path, *pending)
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                pending = (number, line, error)
                continue
            try:
                yield Conversation.model_validate(data)
            except ValidationError as error:
                raise RunDirectoryError(
                    f"{path}, line {number}: not a codi conversation record ({_first_error(error)}). "
                    "Was this file written by a different codi version or edited by hand?"
                ) from error
        if pending is not None:
            number = pending[0]
            message = f"{path}, line {number}: the last line is cut off (a run stopped mid-write); skipped it."
            if on_torn_line is not None:
                on_torn_line(message)
            else:
                warnings.warn(message, TornLineWarning, stacklevel=2)


def _corrupt(path: Path, number: int, line: str, error: json.JSONDecodeError) -> RunDirectoryError:
    excerpt = line.strip()[:60]
    return RunDirectoryError(
        f"{path}, line {number}: not valid JSON ({error.msg} at column {error.colno}; starts {excerpt!r}). "
        "Only the last line of a run file may be cut off; fix or remove this line."
    )


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "record"
    return f"{where}: {first['msg']}"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as error:
        raise RunDirectoryError(
            f"{path}, line {error.lineno}: not valid JSON ({error.msg}). Restore it or delete it to continue."
        ) from error
    if not isinstance(data, dict):
        raise RunDirectoryError(f"{path}: expected a JSON object, found {type(data).__name__}.")
    return data
