"""Retrieval queries in context: a follow-up like "when did he leave?" is searched with what came before it.

A query is the texts it is made of, and its vector is the normalised sum of their unit vectors, so a query
that joins the message to the previous question or to the previous answer costs no new embedding: the
previous question was embedded as the last turn's query, and the previous answer's sentences when the
critic judged them. Embedding the joined texts instead found the passage a human agent answered from a
little more often (hit@3 on Doc2Dial dialogues, `bench/retrieval_quality.py`) and embedded three texts
per turn, two of them long, where this embeds one short one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from codi_agents._record import Turn
from codi_agents.retrieval._vectors import unit_rows

ANSWER_CONTEXT_CHARS = 300
"""The previous answer joins the query up to this many characters (whole sentences, at least one)."""

Query = str | tuple[str, ...]
"""A retrieval query: one text, or the texts whose vectors make its vector."""


def contextual_queries(message: str, history: Sequence[Turn], split: Callable[[str], list[str]]) -> list[Query]:
    """Queries for one user message: alone, with the previous question, and with the previous answer.

    Scored together, they find the passage a context-dependent follow-up is about while a
    self-contained question still ranks its own passage first. `split` cuts the previous answer into
    the sentences the critic embedded (`critic._text.sentences`), so their vectors are reused.
    """
    previous_question = next((turn.content for turn in reversed(history) if turn.role == "user"), "")
    previous_answer = next((turn.content for turn in reversed(history) if turn.role == "assistant"), "")
    queries: list[Query] = [message]
    if previous_question.strip():
        queries.append((previous_question, message))
    answer_sentences = _leading_sentences(split(previous_answer), ANSWER_CONTEXT_CHARS)
    if answer_sentences:
        queries.append((message, *answer_sentences))
    return queries


def query_texts(queries: Sequence[Query]) -> list[str]:
    """The distinct non-blank texts of `queries`, in order: what has to be embedded."""
    return list(dict.fromkeys(text for query in queries for text in _parts(query) if text.strip()))


def query_vectors(queries: Sequence[Query], texts: Sequence[str], vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """One unit vector per query with any text: the normalised sum of its texts' unit vectors (rows of
    `vectors`, in the order of `texts`)."""
    row = {text: index for index, text in enumerate(texts)}
    unit = unit_rows(vectors)
    sums = [
        unit[rows].sum(axis=0) for query in queries if (rows := [row[text] for text in _parts(query) if text in row])
    ]
    return unit_rows(np.array(sums, dtype=np.float32).reshape(len(sums), unit.shape[1] if len(unit) else 0))


def describe_queries(queries: Sequence[Query]) -> str:
    """The queries as one line for the record: queries split by " || ", a query's texts joined by " + "."""
    return " || ".join(" + ".join(_parts(query)) for query in queries)


def _parts(query: Query) -> tuple[str, ...]:
    return (query,) if isinstance(query, str) else query


def _leading_sentences(sentences: list[str], budget: int) -> list[str]:
    """The first sentences within `budget` characters (always the first one, whole: its vector is cached)."""
    kept: list[str] = []
    used = 0
    for sentence in (sentence.strip() for sentence in sentences):
        if not sentence:
            continue
        if kept and used + len(sentence) > budget:
            break
        kept.append(sentence)
        used += len(sentence)
    return kept
