"""Writing a run directory: records appended durably, a torn tail repaired, another run's files refused.

A conversation counts as finished once its line is flushed and fsynced. One writer thread does the
appending: records that finish together share one fsync (group commit), and the event loop never
waits on the disk. Only the run that holds the directory's lock (`RunLock`) calls these functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from codi_agents.errors import RunDirectoryError
from codi_agents.rundir._files import sync_directory, write_atomic
from codi_agents.rundir._layout import MANIFEST_FILE, RECORD_FILES, RUN_FILES, STREAM_FILES, Stream
from codi_agents.rundir._scan import BadLine, JsonlScan

logger = logging.getLogger("codi_agents.batch")
MAX_QUEUED_BATCH = 1024
"""Lines written with one fsync at most."""


@dataclass
class Repair:
    """What reading back a records file found."""

    file: str
    records: int = 0
    torn_bytes: int = 0
    """Bytes of an unfinished tail, cut off."""
    corrupt_lines: list[int] = field(default_factory=list)
    """Line numbers of complete lines that are not records, dropped."""


def scan_records(path: Path, visit: Callable[[dict[str, Any]], None]) -> Repair:
    """Call `visit` with each record of a JSONL file, then repair the file for appending: a torn tail is
    cut off and corrupt lines are dropped (see `codi_agents.rundir._scan` for the policy)."""
    repair = Repair(file=path.name)
    scan = JsonlScan(path, on_corrupt=lambda bad: None)
    for _, record in scan:
        visit(record)
    repair.records = scan.records
    if scan.corrupt:
        repair.corrupt_lines = [bad.number for bad in scan.corrupt]
        _rewrite_without(path, {bad.number for bad in (*scan.corrupt, *scan.torn)})
        logger.warning(
            "%s: dropped %d corrupt line(s): %s",
            path,
            len(scan.corrupt),
            ", ".join(map(str, repair.corrupt_lines[:10])),
        )
    elif scan.torn:
        repair.torn_bytes = _truncate(path, scan.torn[0])
        logger.warning(
            "%s: cut %d bytes of an unfinished last line (the run was stopped mid-write)", path, repair.torn_bytes
        )
    return repair


def _truncate(path: Path, first_torn: BadLine) -> int:
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(first_torn.start)
        handle.flush()
        os.fsync(handle.fileno())
    return size - first_torn.start


def _rewrite_without(path: Path, drop: set[int]) -> None:
    with path.open("rb") as source:
        kept = [line for number, line in enumerate(source, start=1) if number not in drop]
    write_atomic(path, b"".join(kept))


class RecordWriter:
    """Appends lines to the run's JSONL files from one thread; each `append` returns a future that
    completes once the line is on disk (flushed and fsynced)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._queue: queue.SimpleQueue[tuple[Stream, bytes, Future[None]] | None] = queue.SimpleQueue()
        self._handles: dict[Stream, BinaryIO] = {}
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
                while len(batch) < MAX_QUEUED_BATCH:
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
            sync_directory(self.directory)


def check_directory(out: Path) -> None:
    """Refuse an `--out` that is a file; create the directory."""
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"{out} is a file, not a directory. Give --out a directory.")
    out.mkdir(parents=True, exist_ok=True)


def prepare_directory(out: Path, *, resume: bool, force: bool) -> None:
    """Make `out` ready for a run: refuse another run's files unless resuming, or delete them when forced.
    The caller holds the directory's lock."""
    check_directory(out)
    existing = [name for name in (*RECORD_FILES, MANIFEST_FILE) if (out / name).exists()]
    if existing and not resume:
        if not force:
            raise RunDirectoryError(
                f"{out} already holds a run ({', '.join(existing)}). Resume it (--resume), or start over "
                "with --no-resume --force (this deletes its records), or choose another --out."
            )
        for name in RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
        # The index stays: it is keyed by each document's text, so it serves the new run as it is.
        logger.warning("%s: deleted the previous run's records (--no-resume --force)", out)
    for stale in out.glob(".*.json.*.tmp"):  # left by `write_atomic` in a process killed mid-write
        with contextlib.suppress(OSError):
            stale.unlink()
