"""One run at a time per run directory: an OS lock on `DIR/run.lock`, held for the run's whole life.

(`FileLock` is the same lock on any file: the shared index cache locks its entries with it.)

The lock is `flock(2)` on the lock file: the kernel releases it when the holder's last descriptor
closes, which includes the process dying in any way (kill -9, a crash, a power cut), so a stale lock
cannot exist. The file itself only *names* the holder (pid, host, start time, codi version) for the
error a second run gets; its content after the holder died means nothing, and the next run
overwrites it. Readers (`codi export`, `codi report`) never take the lock: they read whole lines.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, ValidationError

from codi_agents._version import __version__
from codi_agents.errors import RunDirectoryError
from codi_agents.rundir._layout import LOCK_FILE

ACQUIRE_SECONDS = 1.0
"""How long a run waits for the lock: long enough to ride out a reader's probe, short enough to fail at once."""
_POLL_SECONDS = 0.05


class LockHolder(BaseModel):
    """The process that holds a run directory's lock."""

    pid: int
    host: str
    started_at: datetime
    codi_version: str

    def describe(self) -> str:
        """The holder, for a person."""
        return (
            f"pid {self.pid} on {self.host}, started {self.started_at.isoformat(timespec='seconds')}, "
            f"codi {self.codi_version}"
        )


class FileLock:
    """An exclusive OS lock on one file, which names its holder; a run directory's and an index cache entry's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._descriptor: int | None = None

    def try_acquire(self, wait_seconds: float = ACQUIRE_SECONDS) -> LockHolder | None:
        """Take the lock within `wait_seconds` and record this process as its holder; None when another holds it."""
        if self._descriptor is not None:
            raise RuntimeError(f"{self.path} is already held by this lock")
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if not _flock(descriptor, fcntl.LOCK_EX, wait_seconds):
                os.close(descriptor)
                return None
            holder = LockHolder(
                pid=os.getpid(), host=socket.gethostname(), started_at=datetime.now(UTC), codi_version=__version__
            )
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, (holder.model_dump_json() + "\n").encode("utf-8"), 0)
        except BaseException:
            os.close(descriptor)  # closing the descriptor releases the lock, if it was taken
            raise
        self._descriptor = descriptor
        return holder

    def release(self) -> None:
        """Let the next holder in; the lock file stays (removing it would race with a process opening it)."""
        if self._descriptor is None:
            return
        descriptor, self._descriptor = self._descriptor, None
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
        os.close(descriptor)

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._descriptor is not None


class RunLock(FileLock):
    """The exclusive lock of one run directory; a context manager. `acquire` fails at once, naming the holder."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory / LOCK_FILE)
        self.directory = directory

    def acquire(self) -> LockHolder:
        """Take the lock and record this process as its holder; `RunDirectoryError` when a run holds it."""
        holder = self.try_acquire()
        if holder is None:
            raise RunDirectoryError(_held_message(self.directory, read_holder(self.path)))
        return holder

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()


def current_writer(directory: Path) -> LockHolder | None:
    """The run writing `directory` now, or None. A probe: it takes a shared lock for an instant, never waits."""
    path = directory / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if _flock(descriptor, fcntl.LOCK_SH, 0.0):
            return None  # nobody holds it; closing the descriptor lets go at once
        return read_holder(path) or LockHolder(
            pid=0, host="?", started_at=datetime.now(UTC), codi_version="? (the holder has not written its name yet)"
        )
    finally:
        os.close(descriptor)


def read_holder(path: Path) -> LockHolder | None:
    """Who the lock file says holds it (meaningful only while the lock is held)."""
    try:
        return LockHolder.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None


def _flock(descriptor: int, mode: int, wait_seconds: float) -> bool:
    """Try to lock `descriptor` for up to `wait_seconds`; False when another holder keeps it."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(descriptor, mode | fcntl.LOCK_NB)
            return True
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)


def _held_message(directory: Path, holder: LockHolder | None) -> str:
    who = holder.describe() if holder is not None else "a process that has not written its name yet"
    return (
        f"{directory} is being written by another run ({who}). Wait for it to end, stop it, or choose another "
        "--out. (`codi export` and `codi report` can read the directory meanwhile.)"
    )
