"""First contact with a server: an endpoint with a URL and no model name gets the one model it serves."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from codi_agents import Document, Session, load_settings
from codi_agents.config import resolve_roles, with_discovered_models
from codi_agents.errors import ConfigError
from codi_agents.testing import FakeOpenAIServer, HashingEmbeddingFunction


def test_a_server_with_one_model_is_asked_once_and_its_model_used(
    caplog: pytest.LogCaptureFixture, document: Document
) -> None:
    with FakeOpenAIServer() as server:
        settings = load_settings(environ={"OPENAI_BASE_URL": server.base_url})  # no CODI_MODEL
        with caplog.at_level(logging.INFO, logger="codi_agents.config"):
            found = with_discovered_models(settings)
        assert [found.endpoint_for(role).model for role in ("user", "assistant", "critic")] == [server.model] * 3
        assert server.stats()["models"] == 1  # one endpoint, three roles: asked once
        assert f"{server.base_url} serves one model, {server.model}: using it" in caplog.text
        assert (
            found.fingerprint()
            == load_settings(environ={"OPENAI_BASE_URL": server.base_url, "CODI_MODEL": server.model}).fingerprint()
        )  # the same conversation ids as naming the model

        session = Session(settings, embedding_function=HashingEmbeddingFunction())
        assert session.settings.endpoint_for("critic").model == server.model
        assert resolve_roles(session.settings)["user"].model == server.model
        with session:
            assert session.models == dict.fromkeys(("user", "assistant", "critic"), server.model)
            conversation = asyncio.run(session.simulate(document, *_persona_and_flow(session), seed=1))
        assert conversation.models["assistant"] == server.model
        assert server.stats()["models"] == 2 and server.stats()["requests"] > 0  # the session asked once more


def test_a_named_model_or_a_chat_model_given_in_code_needs_no_request() -> None:
    with FakeOpenAIServer() as server:
        named = load_settings(environ={"OPENAI_BASE_URL": server.base_url, "CODI_MODEL": "mine"})
        assert with_discovered_models(named) is named
        unnamed = load_settings(environ={"OPENAI_BASE_URL": server.base_url})
        assert with_discovered_models(unnamed, ("user", "assistant", "critic")) is unnamed
        assert "models" not in server.stats()


def test_a_server_with_several_models_is_an_error_that_lists_them() -> None:
    with FakeOpenAIServer(model="qwen-7b", other_models=("llama-8b", "phi-4")) as server:
        settings = load_settings(environ={}, critic={"base_url": server.base_url})
        with pytest.raises(ConfigError) as caught:
            Session(settings)
    message = str(caught.value)
    assert f"{server.base_url} serves 3 models and none is chosen" in message
    assert "qwen-7b, llama-8b, phi-4" in message and "--model" in message


def test_an_unreachable_server_is_an_error_naming_the_url_and_the_failure() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://user:hunter2-secret@127.0.0.1:{port}/v1"
    with pytest.raises(ConfigError) as caught:
        with_discovered_models(load_settings(environ={"CODI_BASE_URL": url}))
    message = str(caught.value)
    assert f"GET http://user:***@127.0.0.1:{port}/v1/models" in message
    assert "ConnectError" in message and "no model name" in message
    assert "hunter2" not in message


def _persona_and_flow(session: Session):  # type: ignore[no-untyped-def]
    from codi_agents import load_flow, load_persona

    task = session.task
    return load_persona(task.first_persona, search_dirs=task.persona_dirs), load_flow(
        "factoid_short", search_dirs=task.flow_dirs
    )


def test_eval_critic_asks_only_the_critics_endpoint() -> None:
    from codi_agents.critic._calibration import load_calibration
    from codi_agents.evaluation._evaluate import open_critic

    with FakeOpenAIServer(model="judge-x") as server:
        # the user's endpoint names no model and is unreachable: the critic's evaluation never asks it
        settings = load_settings(
            environ={}, critic={"base_url": server.base_url}, user={"base_url": "http://127.0.0.1:9/v1"}
        )
        with open_critic(settings, load_calibration(None)) as choice:
            assert choice.model is not None and choice.model.name == "judge-x"
            assert choice.description == f"judge-x @ {server.base_url}"
        assert server.stats()["models"] == 1
