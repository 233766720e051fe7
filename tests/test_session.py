"""A session over a real HTTP endpoint: usable across event loops (several `asyncio.run` calls), and indexing a
document holds up no conversation on another."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from codi_agents import Document, Settings, load_flow, load_persona
from codi_agents.retrieval import _index
from codi_agents.simulation._session import Session
from codi_agents.testing import FakeOpenAIServer, HashingEmbeddingFunction


def test_one_session_serves_several_event_loops(document: Document) -> None:
    with FakeOpenAIServer() as server:
        settings = Settings(seed=1, endpoint={"base_url": server.base_url, "model": server.model, "api_key": "fake"})
        with Session(settings, embedding_function=HashingEmbeddingFunction()) as session:
            flow = load_flow("factoid_short")
            first = asyncio.run(session.simulate(document, load_persona("child"), flow, seed=1))
            second = asyncio.run(session.simulate(document, load_persona("child"), flow, seed=2))
    assert first.turns and second.turns
    assert first.models["assistant"] == server.model
    assert second.usage["assistant"].requests >= 1


def test_a_session_can_use_an_embedded_server_another_process_started(document: Document) -> None:
    """Batch workers share their parent's embedded server: the roles stay `embedded`, no server starts."""
    with (
        FakeOpenAIServer(model="smollm2-135m-instruct") as server,
        Session(
            Settings(seed=1), embedding_function=HashingEmbeddingFunction(), local_server_url=server.base_url
        ) as session,
    ):
        assert session.server is None
        assert session.context is not None
        assert session.context.embedded_roles == {"user", "assistant", "critic"}
        assert session.context.structured_user_turns()
        conversation = asyncio.run(
            session.simulate(document, load_persona("child"), load_flow("factoid_short"), seed=1)
        )
    assert conversation.models["user"] == "smollm2-135m-instruct"
    assert conversation.usage["user"].requests >= 1


def test_a_document_being_indexed_holds_up_no_other_conversation(
    document: Document, wiki_document: Document, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexing runs on threads of its own: asyncio's default executor (here one thread) stays free for the
    short jobs of conversations whose documents are ready (a search, the critic's signals)."""
    indexing, release = threading.Event(), threading.Event()
    detect = _index.detect_injections

    def slow_detector(texts: Sequence[str]) -> list[Any]:
        if any(wiki_document.text[:40] in text for text in texts):
            indexing.set()
            release.wait(60)
        return detect(texts)

    monkeypatch.setattr(_index, "detect_injections", slow_detector)

    async def both(session: Session) -> tuple[list[Any], Any]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        slow = asyncio.ensure_future(session.aprepare(wiki_document))
        await asyncio.to_thread(indexing.wait, 10)
        flow, persona = load_flow("factoid_short"), load_persona("child")
        conversation = await asyncio.wait_for(session.simulate(document, persona, flow, seed=1), 60)
        assert not slow.done()  # the other document is still being indexed
        release.set()
        passages = await slow
        await session.close_connections()
        return passages, conversation

    with FakeOpenAIServer() as server:
        settings = Settings(seed=1, endpoint={"base_url": server.base_url, "model": server.model, "api_key": "fake"})
        with Session(settings, embedding_function=HashingEmbeddingFunction()) as session:
            try:
                passages, conversation = asyncio.run(both(session))
            finally:
                release.set()
    assert conversation.turns and conversation.doc_id == document.id
    assert passages and all(passage.doc_id == wiki_document.id for passage in passages)
