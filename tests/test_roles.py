"""The resolved spec of each role: the temperature, timeout, down window and judge weight are decided once."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from codi_agents import Settings, load_settings
from codi_agents.config import RunConfig, resolve_roles, settings_for_run
from codi_agents.errors import ServerUnavailableError
from codi_agents.llm._models import build_role_models
from codi_agents.testing import FakeOpenAIServer, ScriptedChatModel

ROLES = ("user", "assistant", "critic")
REMOTE = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}


def temperatures(settings: Settings, instances: tuple[str, ...] = ()) -> dict[str, float]:
    roles = resolve_roles(settings, instances)  # type: ignore[arg-type]
    return {role: roles[role].temperature for role in ROLES}  # type: ignore[index]


def test_embedded_roles_keep_their_lower_temperatures_unless_the_user_sets_one() -> None:
    assert temperatures(Settings()) == {"user": 0.6, "assistant": 0.2, "critic": 0.0}
    assert temperatures(Settings(endpoint=REMOTE)) == {"user": 0.8, "assistant": 0.3, "critic": 0.0}
    shared = Settings(endpoint={"temperature": 0.9}, critic={"temperature": 0.1})
    assert temperatures(shared) == {"user": 0.9, "assistant": 0.9, "critic": 0.1}  # a role's own beats the shared
    models = build_role_models(shared, {}, local_url="http://127.0.0.1:9/v1", local_model_name="small")
    sent = {role: models[role].chat.temperature for role in ROLES}  # type: ignore[index, attr-defined]
    assert sent == {"user": 0.9, "assistant": 0.9, "critic": 0.1}  # what the client sends is the spec's
    embedded = build_role_models(Settings(), {}, local_url="http://127.0.0.1:9/v1", local_model_name="small")
    assert embedded["user"].chat.temperature == 0.6  # type: ignore[attr-defined]


def test_the_timeout_is_the_specs_and_only_role_model_enforces_it() -> None:
    assert resolve_roles(Settings())["user"].timeout == 300.0  # the embedded model queues requests
    assert resolve_roles(Settings(endpoint=REMOTE))["user"].timeout == 120.0
    assert resolve_roles(Settings(endpoint={**REMOTE, "timeout": 7}))["critic"].timeout == 7.0
    settings = Settings(endpoint={**REMOTE, "timeout": 7, "http_transport": "aiohttp"})
    model = build_role_models(settings, {})["assistant"]
    assert model.timeout == 7.0
    assert isinstance(model.chat, ChatOpenAI) and isinstance(model.chat.request_timeout, httpx.Timeout)
    assert model.chat.request_timeout.read is None and model.chat.request_timeout.connect is None
    assert model.chat.http_async_client.timeout.read is None  # type: ignore[union-attr]
    given = build_role_models(settings, dict.fromkeys(ROLES, ScriptedChatModel(script=["hi"])))  # type: ignore[arg-type]
    assert given["user"].timeout == 7.0  # a chat model given in code is bounded the same way


def test_a_slow_server_is_cut_off_at_the_timeout() -> None:
    async def ask(base_url: str) -> float:
        settings = Settings(endpoint={"base_url": base_url, "model": "m", "timeout": 0.3, "max_retries": 0})
        model = build_role_models(settings, {})["assistant"]
        started = time.monotonic()
        try:
            with pytest.raises(ServerUnavailableError, match="did not answer after 1 attempts"):
                await model.complete([HumanMessage("hello")])
        finally:
            await model.aclose()
        return time.monotonic() - started

    with FakeOpenAIServer(latency=3.0) as server:
        assert asyncio.run(ask(server.base_url)) < 2.0


def test_the_endpoint_down_window_is_a_setting_a_run_fills_before_building() -> None:
    assert resolve_roles(Settings())["user"].endpoint_down_seconds == 30.0
    own = Settings(endpoint={**REMOTE, "endpoint_down_seconds": 5})
    assert build_role_models(own, {})["user"].endpoint.health.sustained_seconds == 5.0
    run = RunConfig.model_validate({"limits": {"endpoint_down_seconds": 12}})
    filled = settings_for_run(Settings(endpoint=REMOTE), run)
    assert resolve_roles(filled)["critic"].endpoint_down_seconds == 12.0
    assert filled.endpoint.http_transport == "aiohttp" and filled.chroma_path is None  # the index comes later
    assert settings_for_run(own, run).endpoint.endpoint_down_seconds == 5.0  # the setting wins
    assert load_settings(environ={}, endpoint={"endpoint_down_seconds": 2}).fingerprint() == Settings().fingerprint()


def test_the_judge_weight_follows_the_critics_kind_unless_set() -> None:
    def weight(settings: Settings, instances: tuple[str, ...] = ()) -> float:
        return resolve_roles(settings, instances).judge_weight(  # type: ignore[arg-type]
            settings.judge_weight, embedded=0.25, remote=0.75
        )

    assert weight(Settings()) == 0.25
    assert weight(Settings(critic=REMOTE)) == 0.75
    assert weight(Settings(), ROLES) == 0.75  # a chat model given in code counts as remote
    assert weight(Settings(judge_weight=0.0, critic=REMOTE)) == 0.0
