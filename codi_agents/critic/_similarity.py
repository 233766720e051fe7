"""Sentence embeddings for the critic, through the embedding batcher shared with retrieval.

A conversation's turns are judged against the same few passages again and again (every turn,
every regenerated reply), so the vectors of passage sentences are kept: a repeated turn embeds
only the sentences of its new reply and question. The vectors live in the cache of the batcher
that belongs to the embedding function (`retrieval/_batcher.py`), a bounded LRU keyed by text
hash, so a user's message embedded for retrieval is not embedded again for the critic, and the
sentences of many conversations' turns are embedded together in one model call. Passage sentences are
also kept beside a persistent index, so a later run over the same corpus does not embed them again.

The signals themselves are computed synchronously (in a worker thread); `prefetch` embeds what
they will ask for beforehand, awaited on the event loop, so they find every vector in the cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from codi_agents.critic._text import sentences
from codi_agents.inputs._passages import Passage
from codi_agents.retrieval._batcher import EmbeddingBatcher, batcher_for
from codi_agents.retrieval._vectors import unit_rows

Embed = Callable[[list[str]], Any]
"""Texts to vectors; a Chroma embedding function qualifies."""

CACHE_SENTENCES = 8192
"""Sentences kept by a `SentenceVectors` made with its own cache (the shared batcher keeps more)."""


class SentenceVectors:
    """Unit vectors of sentences, each embedded once by `embed` and kept in an LRU of `capacity` entries.

    Made with an embedding function's shared batcher (`sentence_vectors`), or with a batcher and
    cache of its own when `capacity` is given.
    """

    def __init__(self, embed: Embed, capacity: int | None = None) -> None:
        self.embed = embed
        self.batcher = (
            batcher_for(embed) if capacity is None else EmbeddingBatcher(embed, cache_size=capacity, weak=False)
        )

    @property
    def hits(self) -> int:
        """Texts answered from the cache."""
        return self.batcher.hits

    @property
    def misses(self) -> int:
        """Texts the model had to embed."""
        return self.batcher.embedded

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dim) array of unit vectors; texts seen before are not embedded again."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return unit_rows(self.batcher.embed(list(texts)))

    async def warm(self, texts: Sequence[str], *, keep: bool = False) -> None:
        """Embed `texts` into the cache, awaited (batched with other conversations' requests); `keep`: passage
        sentences, kept beside a persistent index so that later runs find them (`retrieval._vector_store`)."""
        if texts:
            await self.batcher.aembed(list(dict.fromkeys(texts)), keep=keep)


def sentence_vectors(embed: Embed) -> SentenceVectors:
    """The sentence vectors of `embed`, cached in the batcher shared by everything that uses `embed`."""
    if isinstance(embed, SentenceVectors):
        return embed
    return SentenceVectors(embed)


async def prefetch(embed: Embed | None, answer: str, passages: Sequence[Passage], question: str) -> None:
    """Embed the sentences `similarity_signals` will need for this exchange, so it finds them cached."""
    if embed is None:
        return
    evidence_sentences = sentences("\n".join(passage.text for passage in passages))
    answer_sentences = sentences(answer)
    if not evidence_sentences or not answer_sentences:
        return
    texts = [*answer_sentences, question.strip()] if question.strip() else answer_sentences
    vectors = sentence_vectors(embed)
    await asyncio.gather(vectors.warm(texts), vectors.warm(evidence_sentences, keep=True))  # one batch


def best_similarities(vectors: SentenceVectors, queries: Sequence[str], support: Sequence[str]) -> np.ndarray:
    """For each query sentence, its highest cosine with any support sentence."""
    if not queries or not support:
        return np.zeros(len(queries), dtype=np.float32)
    matrix = vectors([*queries, *support])
    best: np.ndarray = (matrix[: len(queries)] @ matrix[len(queries) :].T).max(axis=1)
    return best
