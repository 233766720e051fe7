"""Sentence embeddings for the critic, with a bounded cache per embedding function.

A conversation's turns are judged against the same few passages again and again (every turn,
every regenerated reply), so the vectors of passage sentences are kept: a repeated turn embeds
only the sentences of its new reply and question. The cache is an LRU bounded by sentence count,
kept beside the embedding function (weakly, so it goes away with it) and safe across threads.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Embed = Callable[[list[str]], Any]
"""Texts to vectors; a Chroma embedding function qualifies."""

CACHE_SENTENCES = 8192
"""Sentences kept per embedding function: about 12 MB of 384-d vectors, hundreds of passages."""


class SentenceVectors:
    """Unit vectors of sentences, computed once each by `embed` and kept in an LRU of `capacity` entries."""

    def __init__(self, embed: Embed, capacity: int = CACHE_SENTENCES) -> None:
        self.embed = embed
        self.capacity = capacity
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dim) array of unit vectors; texts seen before are not embedded again."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            found = {text: self._vectors[text] for text in dict.fromkeys(texts) if text in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
            missing = [text for text in dict.fromkeys(texts) if text not in found]
            self.hits += len(found)
            self.misses += len(missing)
        if missing:
            fresh = _unit(np.asarray(self.embed(missing), dtype=np.float32))
            found.update(zip(missing, fresh, strict=True))
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._vectors[text] = vector
                while len(self._vectors) > self.capacity:
                    self._vectors.popitem(last=False)
        return np.stack([found[text] for text in texts])


_caches: weakref.WeakKeyDictionary[Any, SentenceVectors] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def sentence_vectors(embed: Embed) -> SentenceVectors:
    """The cache that belongs to `embed` (created on first use); uncached if `embed` cannot be weakly keyed."""
    if isinstance(embed, SentenceVectors):
        return embed
    with _caches_lock:
        try:
            cache = _caches.get(embed)
            if cache is None:
                cache = _caches[embed] = SentenceVectors(embed)
        except TypeError:
            return SentenceVectors(embed, capacity=0)
    return cache


def best_similarities(vectors: SentenceVectors, queries: Sequence[str], support: Sequence[str]) -> np.ndarray:
    """For each query sentence, its highest cosine with any support sentence."""
    if not queries or not support:
        return np.zeros(len(queries), dtype=np.float32)
    matrix = vectors([*queries, *support])
    best: np.ndarray = (matrix[: len(queries)] @ matrix[len(queries) :].T).max(axis=1)
    return best


def _unit(vectors: np.ndarray) -> np.ndarray:
    unit: np.ndarray = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9, None)
    return unit
