"""Indexed documents written to Chroma in batches, on a thread of their own, behind the conversations using them.

Chroma pays much of a write per call (a transaction, a log entry, an HNSW update): one document's eight
passages and its marker per call took about twice the CPU of the same passages 64 at a time (2,144
doc2dial passages into an on-disk collection: 9.3 against 4.8 CPU seconds). So a document whose vectors
are computed is handed to the writer, which waits up to `LINGER_SECONDS` for others and writes all of
them at once: one upsert of their passages, then one of their completion markers. A document's
conversations do not wait for it: the index keeps its passages and vectors in memory (`DocumentVectors`).

The index's promise holds: a marker is written after its passages, in a later call, so a process killed
at any moment leaves each document complete or without a marker (indexed again by the next run, under
the same ids, so nothing is stored twice). `flush` waits until everything handed over is written; the
index flushes before it closes, and a Ray worker before it reports a slice indexed. A write that fails (a
full disk, a Chroma server gone) is raised by the next `put` or `flush`; the documents of that batch get
no marker.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from chromadb.api.models.Collection import Collection
from numpy.typing import NDArray

from codi_agents.errors import RunError
from codi_agents.inputs._passages import Passage

UPSERT_BATCH = 256
"""Passages per upsert call."""
LINGER_SECONDS = 0.5
"""How long the first document of a batch waits for others (nothing waits on the write itself)."""
MAX_PENDING = 4096
"""Passages handed over and not yet written; `put` waits beyond this, so memory stays bounded."""
IDLE_SECONDS = 1.0
"""The thread ends after this long without documents (and starts again on the next)."""


@dataclass(frozen=True)
class IndexedDocument:
    """A document's passages (with their flags), their vectors, and what its completion marker records."""

    key: str
    doc_id: str
    passages: Sequence[Passage]
    vectors: NDArray[np.float32]
    flags: Mapping[int, list[str]]


class IndexWriter:
    """Writes handed-over documents to a passage collection and its markers collection, in batches."""

    def __init__(self, collection: Collection, markers: Collection) -> None:
        self.collection = collection
        self.markers = markers
        self._queue: deque[IndexedDocument] = deque()
        self._pending = 0
        self._writing = False
        self._flushing = 0
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._condition = threading.Condition()

    def put(self, document: IndexedDocument) -> None:
        """Hand a document over to be written (waits while too much is pending)."""
        with self._condition:
            self._raise_failure()
            while self._pending >= MAX_PENDING and self._error is None:
                self._condition.wait()
            self._raise_failure()
            self._queue.append(document)
            self._pending += len(document.passages)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="codi-index-writer", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def flush(self) -> None:
        """Wait until every document handed over is written; raise the failure when a write failed."""
        with self._condition:
            self._flushing += 1
            self._condition.notify_all()
            try:
                while (self._queue or self._writing) and self._error is None:
                    self._condition.wait()
            finally:
                self._flushing -= 1
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise RunError(
                f"Writing the passage index failed: {self._error!r}. The documents of that write are not marked "
                "indexed; the next run indexes them again."
            ) from self._error

    def _serve(self) -> None:
        while (batch := self._next_batch()) is not None:
            failed: BaseException | None = None
            try:
                self._write(batch)
            except Exception as error:  # raised to the callers by `put` and `flush`
                failed = error
            with self._condition:
                self._writing = False
                self._pending -= sum(len(document.passages) for document in batch)
                self._error = self._error or failed
                self._condition.notify_all()

    def _next_batch(self) -> list[IndexedDocument] | None:
        """The documents to write next, after lingering for more; None when idle long enough to stop."""
        with self._condition:
            if not self._queue and not self._condition.wait_for(lambda: bool(self._queue), IDLE_SECONDS):
                self._thread = None
                return None
            deadline = time.monotonic() + LINGER_SECONDS
            while self._pending < UPSERT_BATCH and not self._flushing and (left := deadline - time.monotonic()) > 0:
                self._condition.wait(left)
            batch: list[IndexedDocument] = []
            size = 0
            while self._queue and (not batch or size + len(self._queue[0].passages) <= UPSERT_BATCH):
                batch.append(self._queue.popleft())
                size += len(batch[-1].passages)
            self._writing = True
            return batch

    def _write(self, batch: Sequence[IndexedDocument]) -> None:
        # two conversations may start on one document at once and both index it: Chroma refuses an id twice in a call
        batch = list({document.key: document for document in batch}.values())
        records = [(document, passage, vector) for document in batch for passage, vector in _rows(document)]
        for start in range(0, len(records), UPSERT_BATCH):
            part = records[start : start + UPSERT_BATCH]
            self.collection.upsert(
                ids=[record_id(document.key, passage) for document, passage, _ in part],
                embeddings=np.stack([vector for _, _, vector in part]),
                documents=[passage.text for _, passage, _ in part],
                metadatas=[passage_metadata(passage, document.key) for document, passage, _ in part],
            )
        self.markers.upsert(  # last: only now do these documents count as indexed
            ids=[document.key for document in batch],
            # the vector is unused; distinct values keep Chroma's HNSW graph of markers sane
            embeddings=np.array([[int(document.key[:6], 16) / 2**24] for document in batch], dtype=np.float32),
            metadatas=[_marker(document) for document in batch],
        )


def _rows(document: IndexedDocument) -> list[tuple[Passage, NDArray[np.float32]]]:
    return list(zip(document.passages, document.vectors, strict=True))


def _marker(document: IndexedDocument) -> dict[str, Any]:
    return {"doc_id": document.doc_id, "passages": len(document.passages), "flags": json.dumps(dict(document.flags))}


def record_id(key: str, passage: Passage) -> str:
    """A passage's id in the collection: unique across the texts of one document id."""
    return f"{key}:{passage.index}"


def passage_metadata(passage: Passage, key: str) -> dict[str, Any]:
    """What the collection stores beside a passage's text and vector."""
    return {"doc_id": passage.doc_id, "doc_key": key, "index": passage.index, "flags": ",".join(passage.flags)}
