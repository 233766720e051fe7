"""Retrieval queries in context: a follow-up like "when did he leave?" is searched with what came before it."""

from __future__ import annotations

from collections.abc import Sequence

from codi_agents._record import Turn

ANSWER_CONTEXT_CHARS = 300


def contextual_queries(message: str, history: Sequence[Turn]) -> list[str]:
    """Queries for one user message: alone, with the previous question, and with the previous answer.

    Scored together, they find the passage a context-dependent follow-up is about while a
    self-contained question still ranks its own passage first.
    """
    previous_question = next((turn.content for turn in reversed(history) if turn.role == "user"), "")
    previous_answer = next((turn.content for turn in reversed(history) if turn.role == "assistant"), "")
    queries = [message]
    if previous_question:
        queries.append(f"{previous_question} {message}")
    if previous_answer:
        queries.append(f"{message} {previous_answer[:ANSWER_CONTEXT_CHARS]}")
    return queries
