"""Sentence embeddings for the critic, through the embedding batcher shared with retrieval.

A conversation's turns are judged against the same few passages again and again (every turn,
every regenerated reply), so the vectors of passage sentences are kept: a repeated turn embeds
only the sentences of its new reply and question. The vectors live in the cache of the batcher
that belongs to the embedding function (`retrieval/_batcher.py`), a bounded LRU keyed by text
hash, so a user's message embedded for retrieval is not embedded again for the critic, and the
sentences of many conversations' turns are embedded together in one model call.

Passage sentences: with the packaged MiniLM, a passage's sentence vectors are pooled from the run that
embedded the passage for the index (`retrieval/_late_chunking.py`), so they cost no model time; a passage
the index did not embed (`codi eval-critic`'s evidence) is run once, the same way. Another embedding
function (an embeddings server) embeds each passage sentence on its own. Either way they are also kept
beside a persistent index, so a later run over the same corpus does not embed them again.

The signals themselves are computed synchronously (in a worker thread); `prefetch` embeds what
they will ask for beforehand, awaited on the event loop, so they find every vector in the cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from codi_agents._sentences import sentences
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

    def passage_rows(self, passages: Sequence[str]) -> np.ndarray:
        """Unit vectors of the sentences of `passages` (`_sentences.sentences` of each, passage after passage)."""
        if self.batcher.late:
            return unit_rows(self.batcher.embed(list(passages), sentences=True))
        return self([sentence for passage in passages for sentence in sentences(passage)])

    async def warm_passages(self, passages: Sequence[str]) -> None:
        """Make the vectors `passage_rows` will ask for, awaited."""
        if self.batcher.late:
            await self.batcher.aembed(list(dict.fromkeys(passages)), sentences=True)
        else:
            await self.warm([sentence for passage in passages for sentence in sentences(passage)], keep=True)


def sentence_vectors(embed: Embed) -> SentenceVectors:
    """The sentence vectors of `embed`, cached in the batcher shared by everything that uses `embed`."""
    if isinstance(embed, SentenceVectors):
        return embed
    return SentenceVectors(embed)


async def prefetch(embed: Embed | None, answer: str, passages: Sequence[Passage], question: str) -> None:
    """Embed the sentences `similarity_signals` will need for this exchange, so it finds them cached."""
    if embed is None:
        return
    answer_sentences = sentences(answer)
    if not answer_sentences or not any(sentences(passage.text) for passage in passages):
        return
    quoted = quoted_sentences(answer_sentences, passages)
    texts = [sentence for sentence in answer_sentences if sentence not in quoted]
    texts += [question.strip()] if question.strip() else []
    vectors = sentence_vectors(embed)
    await asyncio.gather(vectors.warm(texts), vectors.warm_passages([passage.text for passage in passages]))


def quoted_sentences(answer_sentences: Sequence[str], passages: Sequence[Passage]) -> set[str]:
    """The answer's sentences that are sentences of the passages word for word (they need no vector)."""
    return set(answer_sentences) & {sentence for passage in passages for sentence in sentences(passage.text)}


def best_similarities(queries: np.ndarray, support: np.ndarray) -> np.ndarray:
    """For each query row, its highest cosine with any support row (unit vectors)."""
    if not len(queries) or not len(support):
        return np.zeros(len(queries), dtype=np.float32)
    best: np.ndarray = (queries @ support.T).max(axis=1)
    return best
