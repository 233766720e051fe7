"""Each passage's sentence vectors, kept for the critic: a matrix per passage, in memory and beside the index.

With the packaged MiniLM a passage's sentence vectors come from the run that embeds the passage
(`_late_chunking`), so they are made when a corpus is indexed and wait here until a conversation's critic
asks for them. They are keyed by the passage's text (one key per passage, its matrix as the value): the
same sentence in two passages has two vectors, each read in its own passage. A bounded LRU holds the
recent ones; the `VectorStore` beside a persistent index holds every one, so a later run over the same
corpus finds them without running the model. They never share keys with single texts' vectors.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from codi_agents._sentences import sentence_spans
from codi_agents.retrieval._vector_store import VectorStore

CACHE_PASSAGES = 4096
"""Passages whose sentence vectors are kept in memory: about 50 MB at 8 sentences of 384 floats each."""


def sentences_key(passage: str) -> bytes:
    """The key of a passage's sentence vectors; unlike `_batcher.text_key`, it names a passage's matrix."""
    return hashlib.blake2b(passage.encode("utf-8", "surrogatepass"), digest_size=16, person=b"codi-sentences").digest()


class PassageSentences:
    """Sentence-vector matrices by passage text; safe to call from several threads."""

    def __init__(self, capacity: int = CACHE_PASSAGES) -> None:
        self.capacity = capacity
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, passages: Sequence[str]) -> dict[str, np.ndarray]:
        """The matrices of those `passages` that memory holds."""
        found = {}
        with self._lock:
            for passage in passages:
                key = sentences_key(passage)
                if (matrix := self._cache.get(key)) is not None:
                    self._cache.move_to_end(key)
                    found[passage] = matrix
        return found

    def found(self, passages: Iterable[str], store: VectorStore | None) -> dict[str, np.ndarray]:
        """The matrices of those `passages` that memory or `store` holds (kept in memory once read from `store`)."""
        passages = list(dict.fromkeys(passages))
        found = self.cached(passages)
        wanted = {passage: sentences_key(passage) for passage in passages if passage not in found}
        if store is not None and wanted:
            restored = {
                passage: _matrix(flat, len(sentence_spans(passage))) for passage, flat in store.vectors(wanted).items()
            }
            self._remember(restored)
            found.update({passage: matrix for passage, matrix in restored.items() if matrix is not None})
        return found

    def keep(self, matrices: Mapping[str, np.ndarray], store: VectorStore | None) -> None:
        """Hold these passages' matrices in memory and write them to `store`."""
        self._remember(matrices)
        if store is not None and matrices:
            store.put((sentences_key(passage), matrix) for passage, matrix in matrices.items())

    def _remember(self, matrices: Mapping[str, np.ndarray | None]) -> None:
        with self._lock:
            for passage, matrix in matrices.items():
                if matrix is not None:
                    self._cache[sentences_key(passage)] = matrix
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)


def _matrix(flat: np.ndarray, rows: int) -> np.ndarray | None:
    """A stored matrix back in shape, or None when its size does not fit the passage's sentences (then it is
    made afresh)."""
    if rows == 0:
        return np.zeros((0, 0), dtype=np.float32) if flat.size == 0 else None  # adds no row when stacked
    if flat.size % rows:
        return None
    return flat.reshape(rows, flat.size // rows)
