"""What a deployed student sees for one human turn: the passages codi's assistant would retrieve,
under the system prompt of codi's training exports, then the history and the user's turn.

Retrieval is codi's: the document chunked with the settings' `chunk_size`/`chunk_overlap`, indexed
with the embedding function, searched with the user turn alone and in context (`contextual_queries`),
`top_k` passages. The system prompt is the task's `training_system` template, the one a student
trained on a `codi export` saw, so zero-shot and trained students are asked the same way.
"""

from __future__ import annotations

from typing import Any

from chromadb.api.types import Documents, EmbeddingFunction

from codi_agents._record import Turn
from codi_agents._sentences import sentences
from codi_agents.config._settings import Settings
from codi_agents.inputs._passages import Passage, chunk_document
from codi_agents.retrieval._index import PassageIndex
from codi_agents.retrieval._queries import contextual_queries
from codi_agents.simulation._prompting import render_passages
from codi_agents.student._references import ReferenceTurn
from codi_agents.tasks import get_task


class StudentPrompter:
    """Builds the chat messages of each reference turn; owns an in-memory passage index."""

    def __init__(self, settings: Settings, embedding_function: EmbeddingFunction[Documents] | None = None) -> None:
        if embedding_function is None:
            from codi_agents.retrieval._embeddings import default_embedding_function

            embedding_function = default_embedding_function(settings)
        self.settings = settings
        self.template = get_task(settings.task).prompts.training_system
        self.index = PassageIndex.open(embedding_function)

    def describe(self) -> dict[str, Any]:
        """The fixed prompt and retrieval settings, recorded with the results."""
        return {
            "task": self.settings.task,
            "system_template": self.template,
            "top_k": self.settings.top_k,
            "chunk_size": self.settings.chunk_size,
            "chunk_overlap": self.settings.chunk_overlap,
            "retrieval": "codi contextual queries (user turn; with previous question; with previous answer), CombSUM",
        }

    def retrieve(self, turn: ReferenceTurn) -> list[Passage]:
        """The passages codi's assistant would get for this turn's user message, in its context."""
        passages = chunk_document(
            turn.document, chunk_size=self.settings.chunk_size, chunk_overlap=self.settings.chunk_overlap
        )
        self.index.add(turn.document, passages)
        history = [
            Turn(role="user" if m["role"] == "user" else "assistant", content=m["content"]) for m in turn.history
        ]
        queries = contextual_queries(turn.question, history, sentences)
        return self.index.search(turn.document, queries, self.settings.top_k)

    def system_prompt(self, title: str, passages: list[Passage]) -> str:
        """The training system prompt over `passages`."""
        return self.template.format(passages=render_passages(passages), document_title=title)

    def messages(self, turn: ReferenceTurn) -> tuple[list[dict[str, str]], list[str]]:
        """The chat messages for `turn`, and the ids of the passages put in its system prompt."""
        found = self.retrieve(turn)
        system = self.system_prompt(turn.document.title or turn.document.id, found)
        messages = [{"role": "system", "content": system}, *turn.history, {"role": "user", "content": turn.question}]
        return messages, [passage.id for passage in found]

    def close(self) -> None:
        """Drop the in-memory index."""
        self.index.close()
