"""Retrieval queries in context, made from vectors a run has already computed."""

from __future__ import annotations

import numpy as np

from codi_agents._record import Turn
from codi_agents._sentences import sentences
from codi_agents.critic._similarity import prefetch
from codi_agents.inputs._documents import Document
from codi_agents.inputs._passages import chunk_document
from codi_agents.retrieval._batcher import EmbeddingBatcher
from codi_agents.retrieval._index import PassageIndex
from codi_agents.retrieval._queries import contextual_queries, describe_queries, query_texts, query_vectors
from codi_agents.testing import HashingEmbeddingFunction

HISTORY = [
    Turn(role="user", content="What happens if I forget to update my address?"),
    Turn(role="assistant", content="You may miss a suspension order. You could also be charged with an offence."),
]


def test_a_follow_up_is_searched_alone_with_the_previous_question_and_with_the_previous_answer() -> None:
    queries = contextual_queries("And by when?", HISTORY, sentences)
    assert queries == [
        "And by when?",
        ("What happens if I forget to update my address?", "And by when?"),
        ("And by when?", "You may miss a suspension order.", "You could also be charged with an offence."),
    ]
    assert contextual_queries("What is a title?", [], sentences) == ["What is a title?"]
    assert describe_queries(queries).count(" || ") == 2


def test_the_previous_answer_joins_up_to_its_budget_in_whole_sentences() -> None:
    long_answer = [HISTORY[0], Turn(role="assistant", content=("A very long sentence " * 30).strip() + ". Short one.")]
    *_, with_answer = contextual_queries("Why?", long_answer, sentences)
    assert with_answer == ("Why?", ("A very long sentence " * 30).strip() + ".")  # the first, whole; no more


def test_a_query_vector_is_the_sum_of_its_parts() -> None:
    texts = ["one two three", "four"]
    vectors = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    single, composed = query_vectors(["four", ("one two three", "four")], texts, vectors)
    assert np.allclose(single, [0.0, 1.0])
    assert np.allclose(composed, np.array([1.0, 1.0]) / np.sqrt(2.0))
    assert query_texts(["four", ("one two three", "four"), ("  ",)]) == ["four", "one two three"]


def test_a_follow_up_search_embeds_only_the_new_message(document: Document) -> None:
    """The previous question was a query before and the previous answer's sentences were judged by the
    critic: neither is embedded again."""
    import asyncio

    embedding = HashingEmbeddingFunction()
    index = PassageIndex.open(embedding)
    index.add(document, chunk_document(document))
    batcher: EmbeddingBatcher = index.embedder

    async def turns() -> int:
        await index.asearch(document, contextual_queries(HISTORY[0].content, [], sentences), 3)
        await prefetch(embedding, HISTORY[1].content, index.passages(document), HISTORY[0].content)
        before = batcher.embedded
        found = await index.asearch(document, contextual_queries("And by when?", HISTORY, sentences), 3)
        assert len(found) == 3
        return batcher.embedded - before

    assert asyncio.run(turns()) == 1
    index.close()
