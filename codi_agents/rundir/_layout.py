"""The names and paths of a run directory's files, in one place.

DIR/accepted.jsonl   one `Conversation` JSON per line, accepted by the critic
DIR/rejected.jsonl   one `Conversation` JSON per line, rejected (kept as data)
DIR/errors.jsonl     conversations that failed on a server error; not finished, a resume retries them
DIR/manifest.json    what made the run (`RunManifest`); written atomically
DIR/summary.json     the run's statistics (`RunSummary`); written atomically
DIR/index/           the run's own passage index (`--index run`, or when the shared cache entry was in use)
DIR/run.lock         held (an OS lock) by the one run writing the directory; names that run
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ACCEPTED_FILE = "accepted.jsonl"
REJECTED_FILE = "rejected.jsonl"
ERRORS_FILE = "errors.jsonl"
MANIFEST_FILE = "manifest.json"
SUMMARY_FILE = "summary.json"
INDEX_DIR = "index"
LOCK_FILE = "run.lock"

RECORD_FILES = (ACCEPTED_FILE, REJECTED_FILE)
"""The files of finished conversations."""
RUN_FILES = (ACCEPTED_FILE, REJECTED_FILE, ERRORS_FILE, MANIFEST_FILE, SUMMARY_FILE)
"""What a run writes besides its index and its lock: what starting over (`--no-resume --force`) deletes."""

Stream = Literal["accepted", "rejected", "errors"]
"""A JSONL file of the run, by what it holds."""
STREAM_FILES: dict[Stream, str] = {"accepted": ACCEPTED_FILE, "rejected": REJECTED_FILE, "errors": ERRORS_FILE}


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory's files."""

    root: Path

    def stream(self, stream: Stream) -> Path:
        """The JSONL file of `stream`."""
        return self.root / STREAM_FILES[stream]

    @property
    def accepted(self) -> Path:
        return self.root / ACCEPTED_FILE

    @property
    def rejected(self) -> Path:
        return self.root / REJECTED_FILE

    @property
    def errors(self) -> Path:
        return self.root / ERRORS_FILE

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_FILE

    @property
    def summary(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def index(self) -> Path:
        return self.root / INDEX_DIR

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE
