"""A session over a real HTTP endpoint stays usable across event loops (several `asyncio.run` calls)."""

from __future__ import annotations

import asyncio

from codi_agents import Document, Settings, load_flow, load_persona
from codi_agents.session import Session
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
