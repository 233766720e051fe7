"""Vectors kept on disk beside a persistent passage index, so a later run does not embed the same sentences again.

The critic compares every reply sentence with the sentences of the passages it was shown. With the packaged
MiniLM their vectors are made while the corpus is indexed (`_late_chunking`) and kept under the passage's key,
a matrix per passage (`_passage_sentences`); with another embedding function each sentence is embedded when a
conversation first retrieves its passage and kept under the hash of its text. Either way a later run over the
same index finds them here: one SQLite file per collection, beside Chroma's files. The collection's name
already depends on the embedding model (its key), so a file only ever holds one model's vectors.

It is a cache, never the truth: a file that cannot be read or written (a full disk, a damaged file, a
read-only folder) is logged once and then left alone, and the run embeds as if it were not there. Writes are
SQLite transactions, so a process killed while writing leaves every committed vector readable. Two processes
may share a file (SQLite locks it), though the index cache gives each entry to one run at a time.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

logger = logging.getLogger("codi_agents.retrieval")

SUFFIX = ".sentences.sqlite"
"""The file of a collection `C` is `C.sentences.sqlite` in the index folder."""
LOCK_TIMEOUT_SECONDS = 10.0
"""How long a write waits for another process's write to the same file."""
MAX_PARAMETERS = 500
"""Keys per lookup query (SQLite limits the parameters of one statement)."""


class VectorStore:
    """Vectors by key (a text's hash) in one SQLite file; safe to call from several threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.restored = 0
        """Vectors found in the file."""
        self.stored = 0
        """Vectors written to the file."""
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._failed = False

    @classmethod
    def beside(cls, folder: str | Path, collection: str) -> VectorStore:
        """The store of `collection` in the index folder `folder`."""
        return cls(Path(folder) / f"{collection}{SUFFIX}")

    def vectors(self, keys: Mapping[str, bytes]) -> dict[str, np.ndarray]:
        """The kept vectors of those texts (each with its key) that the file holds, by text."""
        found = self._rows(list(keys.values()))
        return {text: found[key] for text, key in keys.items() if key in found}

    def _rows(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            connection = self._open()
            if connection is None or not keys:
                return found
            try:
                for start in range(0, len(keys), MAX_PARAMETERS):
                    part = keys[start : start + MAX_PARAMETERS]
                    marks = ",".join("?" * len(part))
                    rows = connection.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part)
                    for key, blob in rows:
                        found[key] = np.frombuffer(blob, dtype=np.float32)
            except sqlite3.Error as error:
                self._give_up("read", error)
                return {}
            self.restored += len(found)
        return found

    def put(self, items: Iterable[tuple[bytes, np.ndarray]]) -> None:
        """Keep these vectors (a key already kept keeps its first vector)."""
        rows = [(key, np.ascontiguousarray(vector, dtype=np.float32).tobytes()) for key, vector in items]
        with self._lock:
            connection = self._open()
            if connection is None or not rows:
                return
            try:
                with connection:  # one transaction: all of these rows or none
                    written = connection.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?)", rows).rowcount
            except sqlite3.Error as error:
                self._give_up("write", error)
                return
            self.stored += max(written, 0)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _open(self) -> sqlite3.Connection | None:
        if self._connection is not None or self._failed:
            return self._connection
        try:
            connection = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_SECONDS, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # a cache: safe from damage, may lose the last writes
            connection.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
        except sqlite3.Error as error:
            self._give_up("open", error)
            return None
        self._connection = connection
        return connection

    def _give_up(self, action: str, error: sqlite3.Error) -> None:
        self._failed = True
        logger.warning(
            "Could not %s the kept sentence vectors in %s (%s); embedding them afresh instead for the rest of this "
            "run. Delete the file if it is damaged.",
            action,
            self.path,
            error,
        )
        if self._connection is not None:
            self._connection.close()
            self._connection = None
