"""The run directory on disk: records appended durably, a torn tail repaired, the manifest written atomically.

    DIR/accepted.jsonl   one `Conversation` JSON per line, accepted by the critic
    DIR/rejected.jsonl   one `Conversation` JSON per line, rejected (kept as data)
    DIR/errors.jsonl     conversations that failed on a server error; not finished, a resume retries them
    DIR/manifest.json    config, fingerprint, codi version, models per role (never keys); written atomically
    DIR/summary.json     the run's statistics; written atomically
    DIR/index/           the persistent Chroma collection of the corpus's passages

A conversation counts as finished once its line is flushed and fsynced. One writer thread does the
appending: records that finish together share one fsync (group commit), and the event loop never
waits on the disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from codi_agents.errors import UserError

logger = logging.getLogger("codi_agents.batch")

ACCEPTED_FILE = "accepted.jsonl"
REJECTED_FILE = "rejected.jsonl"
ERRORS_FILE = "errors.jsonl"
MANIFEST_FILE = "manifest.json"
SUMMARY_FILE = "summary.json"
INDEX_DIR = "index"
RECORD_FILES = (ACCEPTED_FILE, REJECTED_FILE)

Stream = Literal["accepted", "rejected", "errors"]
STREAM_FILES: dict[Stream, str] = {"accepted": ACCEPTED_FILE, "rejected": REJECTED_FILE, "errors": ERRORS_FILE}


class RunDirectoryError(UserError):
    """The output directory cannot be used as asked (another run's files, a changed config)."""


@dataclass
class Repair:
    """What reading back a records file found."""

    file: str
    records: int = 0
    torn_bytes: int = 0
    """Bytes of an unfinished last line, cut off."""
    corrupt_lines: list[int] = field(default_factory=list)
    """Line numbers of complete lines that are not JSON, dropped."""


def scan_records(path: Path, visit: Callable[[dict[str, Any]], None]) -> Repair:
    """Call `visit` with each record of a JSONL file, repairing it first: a torn last line (no newline,
    or not JSON: the write was cut by a crash) is truncated away, and corrupt lines are dropped."""
    repair = Repair(file=path.name)
    if not path.exists():
        return repair
    keep_until = offset = number = 0
    bad: list[int] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):  # `number` is the line count after the loop
            offset += len(line)
            record = _parse(line) if line.endswith(b"\n") else None
            if record is None:
                bad.append(number)
                continue
            visit(record)
            repair.records += 1
            if not bad:
                keep_until = offset
    if bad and bad[-1] == number and _contiguous(bad):
        # Only the tail is bad: what a crash mid-write leaves. Cut it off after the last good line.
        repair.torn_bytes = offset - keep_until
        with path.open("r+b") as handle:
            handle.truncate(keep_until)
            handle.flush()
            os.fsync(handle.fileno())
        logger.warning(
            "%s: cut %d bytes of an unfinished last line (the run was stopped mid-write)", path, repair.torn_bytes
        )
    elif bad:
        repair.corrupt_lines = bad
        _rewrite_without(path, set(bad))
        logger.warning("%s: dropped %d corrupt line(s): %s", path, len(bad), ", ".join(map(str, bad[:10])))
    return repair


def _contiguous(numbers: list[int]) -> bool:
    return numbers[-1] - numbers[0] == len(numbers) - 1


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("id"), str) else None


def _rewrite_without(path: Path, drop: set[int]) -> None:
    with path.open("rb") as source:
        kept = [line for number, line in enumerate(source, start=1) if number not in drop]
    write_atomic(path, b"".join(kept))


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _sync_directory(path.parent)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when it does not exist."""
    if not path.exists():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunDirectoryError(
            f"{path} cannot be read ({error}). Remove it or start a new run with --force."
        ) from error
    if not isinstance(value, dict):
        raise RunDirectoryError(f"{path} is not a JSON object. Remove it or start a new run with --force.")
    return value


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class RecordWriter:
    """Appends lines to the run's JSONL files from one thread; each `append` returns a future that
    completes once the line is on disk (flushed and fsynced)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._queue: queue.SimpleQueue[tuple[Stream, bytes, Future[None]] | None] = queue.SimpleQueue()
        self._handles: dict[Stream, Any] = {}
        self._thread = threading.Thread(target=self._loop, name="codi-record-writer", daemon=True)
        self._thread.start()

    def append(self, stream: Stream, line: str) -> Future[None]:
        """Queue one line (without its newline) for `stream`; the future is done once it is durable."""
        done: Future[None] = Future()
        self._queue.put((stream, line.encode("utf-8") + b"\n", done))
        return done

    def close(self) -> None:
        """Write what is queued, then stop the thread and close the files."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _loop(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 1024:
                    batch.append(self._queue.get_nowait())
            items = [item for item in batch if item is not None]
            stop = len(items) < len(batch)
            try:
                self._write(items)
            except BaseException as error:  # report to every waiter; the run decides what to do
                for _, _, done in items:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _, _, done in items:
                done.set_result(None)
        for handle in self._handles.values():
            handle.close()

    def _write(self, items: list[tuple[Stream, bytes, Future[None]]]) -> None:
        touched = set()
        created = False
        for stream, data, _ in items:
            handle = self._handles.get(stream)
            if handle is None:
                path = self.directory / STREAM_FILES[stream]
                created = created or not path.exists()
                handle = self._handles[stream] = path.open("ab", buffering=0)
            handle.write(data)
            touched.add(stream)
        for stream in touched:
            os.fsync(self._handles[stream].fileno())
        if created:  # a new file's name is durable only once its directory is synced
            _sync_directory(self.directory)


def prepare_directory(out: Path, *, resume: bool, force: bool) -> None:
    """Make `out` ready for a run: refuse another run's files unless resuming, or delete them when forced."""
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"{out} is a file, not a directory. Give --out a directory.")
    existing = [name for name in (*RECORD_FILES, MANIFEST_FILE) if (out / name).exists()]
    if existing and not resume:
        if not force:
            raise RunDirectoryError(
                f"{out} already holds a run ({', '.join(existing)}). Resume it (--resume), or start over "
                "with --no-resume --force (this deletes its records), or choose another --out."
            )
        for name in (*RECORD_FILES, ERRORS_FILE, MANIFEST_FILE, SUMMARY_FILE):
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
        # The index stays: it is keyed by each document's text, so it serves the new run as it is.
        logger.warning("%s: deleted the previous run's records (--no-resume --force)", out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.json.*.tmp"):  # left by `write_atomic` in a process killed mid-write
        with contextlib.suppress(OSError):
            stale.unlink()
