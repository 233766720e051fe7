"""A conversation searches one document's passages turn after turn: keep them and their vectors in memory.

A search is restricted to one document, which has a few to a few dozen passages, so ranking them is one
small matrix product; asking Chroma for each turn's queries cost more than that product. The passages and
vectors of the most recently searched documents are read from the collection once (`Collection.get`), or
handed over by the index when it has just embedded them, and kept in a bounded LRU, keyed by the document's
key (its id and text hashed, so an entry never goes stale).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from codi_agents.inputs._passages import Passage
from codi_agents.retrieval._vectors import unit_rows

DOCUMENTS_KEPT = 2048
"""Documents whose passages and vectors are kept (about 12 KB each for eight 384-d passages)."""

Loader = Callable[[str], tuple[list[Passage], NDArray[np.float32]]]
"""A document key -> its passages in document order and their vectors (one row each)."""


class DocumentVectors:
    """The passages and unit vectors of recently searched documents, loaded once each by `load`."""

    def __init__(self, load: Loader, capacity: int = DOCUMENTS_KEPT) -> None:
        self.load = load
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[list[Passage], NDArray[np.float32]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[list[Passage], NDArray[np.float32]]:
        """The document's passages and unit vectors, loaded on first use (an empty list for an unknown key)."""
        if (entry := self.kept(key)) is not None:
            return entry
        passages, vectors = self.load(key)
        if not passages:  # a document not indexed yet is not remembered as empty
            return [], np.zeros((0, 0), dtype=np.float32)
        return self.put(key, passages, vectors)

    def kept(self, key: str) -> tuple[list[Passage], NDArray[np.float32]] | None:
        """The document's passages and unit vectors if they are in memory, without loading them."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(
        self, key: str, passages: list[Passage], vectors: NDArray[np.float32]
    ) -> tuple[list[Passage], NDArray[np.float32]]:
        """Keep a document's passages and vectors (those of a document just indexed, before Chroma has them)."""
        entry = (passages, unit_rows(vectors))
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return entry


def rank(
    passages: list[Passage], vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int, candidates: int
) -> list[Passage]:
    """The `k` passages scoring highest on the sum, over queries, of their cosine with the query (CombSUM).

    Each query counts for its `candidates` nearest passages only, with negative cosines counted as 0, as
    a nearest-neighbour search for each query returning `candidates` results would; ties go to the earlier
    passage. The passages returned are copies, so a caller may change them."""
    if not passages or len(queries) == 0:
        return []
    similarity = vectors @ unit_rows(queries).T  # passages x queries
    take = min(candidates, len(passages))
    scores: dict[int, float] = {}
    for column in similarity.T:
        for row in np.argpartition(-column, take - 1)[:take]:
            scores[int(row)] = scores.get(int(row), 0.0) + max(0.0, float(column[row]))
    ranked = sorted(scores, key=lambda row: (-round(scores[row], 6), passages[row].index))
    return [passages[row].model_copy(deep=True) for row in ranked[:k]]
