"""A session over a real HTTP endpoint stays usable across event loops (several `asyncio.run` calls)."""

from __future__ import annotations

import asyncio

from codi_agents import Document, Settings, load_flow, load_persona
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
