"""Model selection: instances, configured endpoints and the embedded model, per role."""

from __future__ import annotations

import subprocess
import sys

import openai
import pytest
from langchain_openai import ChatOpenAI

from codi_agents import load_settings
from codi_agents.config import resolve_roles
from codi_agents.errors import ConfigError
from codi_agents.llm._models import build_role_models, role_instances
from codi_agents.testing import ScriptedChatModel


def test_no_endpoint_means_every_role_uses_the_shared_embedded_server() -> None:
    settings = load_settings(environ={})
    assert resolve_roles(settings).needs_embedded_model
    models = build_role_models(settings, {}, local_url="http://127.0.0.1:9999/v1", local_model_name="smollm2")
    assert {role: m.name for role, m in models.items()} == dict.fromkeys(("user", "assistant", "critic"), "smollm2")
    assert len({id(m.endpoint) for m in models.values()}) == 1
    assert models["user"].endpoint.limiter.maximum == 1
    chat = models["critic"].chat
    assert isinstance(chat, ChatOpenAI)
    assert chat.openai_api_base == "http://127.0.0.1:9999/v1"
    assert chat.temperature == 0.0
    assert chat.extra_body == {"max_tokens": models["critic"].max_tokens}


def test_a_configured_endpoint_takes_precedence_over_the_embedded_model() -> None:
    settings = load_settings(
        environ={
            "OPENAI_BASE_URL": "http://vllm.internal:8000/v1",
            "OPENAI_API_KEY": "sk-x",
            "CODI_MODEL": "qwen2.5-7b",
        }
    )
    assert not resolve_roles(settings).needs_embedded_model
    models = build_role_models(settings, {})
    for model in models.values():
        assert isinstance(model.chat, ChatOpenAI)
        assert model.chat.openai_api_base == "http://vllm.internal:8000/v1"
        assert model.name == "qwen2.5-7b"
        assert model.chat.max_retries == 0


def test_one_role_on_an_endpoint_and_the_others_embedded() -> None:
    settings = load_settings(environ={}, critic={"base_url": "http://judge:8000/v1", "model": "judge-70b"})
    assert resolve_roles(settings).embedded_roles == {"user", "assistant"}
    models = build_role_models(settings, {}, local_url="http://127.0.0.1:1/v1", local_model_name="small")
    assert models["critic"].name == "judge-70b" and models["user"].name == "small"
    assert models["critic"].endpoint is not models["user"].endpoint


def test_instances_win_and_need_no_server() -> None:
    scripted = ScriptedChatModel(script=["hi"], model_name="mine")
    instances = role_instances(scripted)
    assert not resolve_roles(load_settings(environ={}), instances.keys()).needs_embedded_model
    models = build_role_models(load_settings(environ={}), instances)
    assert all(model.name == "mine" for model in models.values())
    with pytest.raises(ConfigError, match="Unknown role"):
        role_instances({"narrator": scripted})


def test_an_endpoint_without_a_model_name_is_a_clear_error() -> None:
    settings = load_settings(environ={"OPENAI_BASE_URL": "http://localhost:11434/v1"})
    with pytest.raises(ConfigError, match="no model name"):
        build_role_models(settings, {})


def test_batch_runs_talk_through_aiohttp_and_single_sessions_through_the_sdk_default(tmp_path: object) -> None:
    import asyncio
    from pathlib import Path

    from codi_agents import iter_conversations
    from codi_agents.testing import FakeOpenAIServer, HashingEmbeddingFunction

    endpoint = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "k"}
    plain = build_role_models(load_settings(None, endpoint=endpoint), {})["assistant"].chat
    assert isinstance(plain, ChatOpenAI) and plain.http_async_client is None  # the SDK's own httpx client
    faster = build_role_models(load_settings(None, endpoint={**endpoint, "http_transport": "aiohttp"}), {})
    assert isinstance(faster["assistant"].chat.http_async_client, openai.DefaultAioHttpClient)  # type: ignore[attr-defined]

    corpus = Path(__file__).parent / "data" / "doc2dial_docs.jsonl"

    async def transports() -> set[type]:
        with FakeOpenAIServer() as server:
            batch = iter_conversations(
                corpus, None, n=1, embedding_function=HashingEmbeddingFunction(),
                endpoint={"base_url": server.base_url, "model": server.model, "api_key": "k"},
            )  # fmt: skip
            async with batch:
                async for _ in batch:
                    assert batch.session is not None and batch.session.context is not None
                    models = batch.session.context.models.values()
                    seen = {type(m.chat.http_async_client) for m in models}  # type: ignore[attr-defined]
            return seen

    assert asyncio.run(transports()) == {openai.DefaultAioHttpClient}


def test_with_codis_client_the_langchain_model_and_the_openai_sdk_are_not_loaded_until_asked_for() -> None:
    """Building a run's models for an endpoint imports neither langchain-openai nor the openai SDK (about a
    second of start-up); LangChain's model is still there, built on first use, for code that asks for it."""
    script = (
        "import sys\n"
        "from codi_agents.config import load_settings\n"
        "from codi_agents.llm._models import build_role_models\n"
        "environ = {'CODI_BASE_URL': 'http://127.0.0.1:9/v1', 'CODI_MODEL': 'm'}\n"
        "models = build_role_models(load_settings(environ=environ), {})\n"
        "print(sorted({'langchain_openai', 'openai'} & set(sys.modules)), models['user'].name)\n"
        "print(type(models['user'].chat).__name__, models['user'].chat.model_name)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["[] m", "ChatOpenAI m"]
