"""codi's own OpenAI-compatible chat client: it sends what ChatOpenAI sends, reads replies as LangChain does,
and its failures are retried, refused or reported exactly as the SDK's are."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from codi_agents.config import Settings
from codi_agents.errors import RequestRejectedError, ServerUnavailableError
from codi_agents.llm._calls import Endpoint, RoleModel
from codi_agents.llm._limits import AdaptiveLimiter
from codi_agents.llm._models import build_role_models
from codi_agents.llm._openai_http import OpenAIChatClient
from codi_agents.testing._fake_api import FakeApi, ServerConfig

MESSAGES = [SystemMessage("Answer from the passages."), HumanMessage("What does the estimator use?"), AIMessage("Hi")]


class Verdict(BaseModel):
    """A judge's verdict."""

    reasons: str = Field(description="why")
    grounded: bool
    score: float = Field(ge=0, le=1)


Handler = Callable[[dict[str, Any]], web.StreamResponse | None]


@asynccontextmanager
async def capturing_server(handler: Handler | None = None) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible server that records each request's body and headers; `handler` may answer instead."""
    seen: list[dict[str, Any]] = []
    fake = FakeApi(ServerConfig())

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append({"body": body, "authorization": request.headers.get("Authorization")})
        answer = handler(body) if handler else None
        if answer is not None:
            return answer
        completion = fake.completion(body)
        if "response_format" in body:  # JSON modes: the verdict as the reply's text
            completion["choices"][0]["message"]["content"] = json.dumps({"reasons": "r", "grounded": True, "score": 1})
        return web.json_response(completion)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("/v1")), seen
    finally:
        await server.close()


def chat_openai(base_url: str, **extra: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="m",
        api_key="sk-test",
        base_url=base_url,
        temperature=0.3,
        max_retries=0,
        timeout=httpx.Timeout(None),
        **extra,
    )


def client(base_url: str, **extra: Any) -> OpenAIChatClient:
    return OpenAIChatClient(base_url=base_url, model="m", api_key="sk-test", temperature=0.3, **extra)


def role_model(base_url: str, retries: int = 2, timeout: float | None = None) -> RoleModel:
    endpoint = Endpoint(key=base_url, limiter=AdaptiveLimiter(8))
    return RoleModel(
        "critic", chat_openai(base_url), endpoint, max_retries=retries, timeout=timeout, client=client(base_url)
    )


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_requests_are_the_ones_chatopenai_sends(method: Any) -> None:
    async def scenario() -> None:
        async with capturing_server() as (url, seen):
            runnable = chat_openai(url).with_structured_output(Verdict, method=method, include_raw=True)
            await runnable.ainvoke(MESSAGES)
            await client(url).structured(Verdict, method, MESSAGES)
        theirs, ours = seen[0], seen[1]
        assert ours["body"] == theirs["body"]
        assert ours["authorization"] == theirs["authorization"] == "Bearer sk-test"

    asyncio.run(scenario())


def test_plain_requests_and_replies_match_chatopenai_with_max_tokens() -> None:
    async def scenario() -> None:
        async with capturing_server() as (url, seen):
            theirs = await chat_openai(url, extra_body={"max_tokens": 40}).ainvoke(MESSAGES)
            ours = await client(url, max_tokens=40).complete(MESSAGES)
        assert seen[1]["body"] == seen[0]["body"]
        assert seen[1]["body"]["max_tokens"] == 40
        assert ours.content == theirs.content and ours.content
        assert ours.usage_metadata is not None and theirs.usage_metadata is not None
        assert ours.usage_metadata["input_tokens"] == theirs.usage_metadata["input_tokens"]
        assert ours.usage_metadata["output_tokens"] == theirs.usage_metadata["output_tokens"]

    asyncio.run(scenario())


def test_structured_replies_parse_as_langchain_parses_them() -> None:
    async def scenario() -> None:
        async with capturing_server() as (url, _):
            for method in ("function_calling", "json_schema", "json_mode"):
                langchain = chat_openai(url).with_structured_output(Verdict, method=method, include_raw=True)
                theirs = await langchain.ainvoke(MESSAGES)
                ours = await client(url).structured(Verdict, method, MESSAGES)  # type: ignore[arg-type]
                assert isinstance(ours["parsed"], Verdict) and ours["parsed"] == theirs["parsed"]
                assert ours["parsing_error"] is None
                assert [call["args"] for call in ours["raw"].tool_calls] == [
                    call["args"] for call in theirs["raw"].tool_calls
                ]

    asyncio.run(scenario())


def invalid_arguments(body: dict[str, Any]) -> web.Response:
    call = {"id": "call_1", "type": "function", "function": {"name": "Verdict", "arguments": '{"reasons": "cut of'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return web.json_response({"id": "x", "model": "m", "choices": [{"message": message, "finish_reason": "stop"}]})


def test_unparseable_tool_arguments_are_a_failure_with_the_raw_output_not_an_exception() -> None:
    async def scenario() -> None:
        async with capturing_server(invalid_arguments) as (url, seen):
            result = await role_model(url).structured(Verdict, MESSAGES, parse_retries=1)
        assert result.parsed is None and len(seen) == 2  # asked again once, then given up
        assert result.raw_outputs == ['{"reasons": "cut of', '{"reasons": "cut of']
        assert result.error is not None and "Verdict" in result.error

    asyncio.run(scenario())


def failing_first(statuses: list[int], headers: dict[str, str] | None = None) -> Handler:
    remaining = list(statuses)

    def handler(body: dict[str, Any]) -> web.Response | None:
        if remaining:
            status = remaining.pop(0)
            return web.json_response({"error": {"message": f"busy ({status})"}}, status=status, headers=headers)
        return None

    return handler


def test_rate_limits_and_server_errors_are_retried_and_rate_limits_halve_the_limit() -> None:
    async def scenario() -> RoleModel:
        async with capturing_server(failing_first([429, 503], {"Retry-After": "0.01"})) as (url, seen):
            model = role_model(url)
            result = await model.complete(MESSAGES)
        assert result.text and len(seen) == 3
        return model

    model = asyncio.run(scenario())
    assert model.endpoint.stats.retries == 2 and model.endpoint.stats.rate_limited == 1
    assert model.endpoint.limiter.limit == 4


def test_a_refused_request_is_not_retried_and_names_the_servers_reason() -> None:
    async def scenario() -> None:
        async with capturing_server(failing_first([400])) as (url, seen):
            with pytest.raises(RequestRejectedError, match=r"HTTP 400: busy \(400\)"):
                await role_model(url).complete(MESSAGES)
        assert len(seen) == 1

    asyncio.run(scenario())


def test_a_server_that_is_not_there_is_reported_after_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.0)

    async def scenario() -> None:
        async with capturing_server() as (url, _):
            pass  # closed: nothing listens at `url` any more
        model = role_model(url, retries=1)
        with pytest.raises(ServerUnavailableError, match="did not answer after 2 attempts"):
            await model.complete(MESSAGES)
        assert model.endpoint.stats.requests == 2

    asyncio.run(scenario())


def test_a_reply_that_takes_too_long_times_out_and_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.0)
    calls: list[int] = []

    async def scenario() -> None:
        async def chat(request: web.Request) -> web.Response:
            calls.append(1)
            if len(calls) == 1:
                await asyncio.sleep(5)
            return web.json_response(FakeApi(ServerConfig()).completion(await request.json()))

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        server = TestServer(app)
        await server.start_server()
        try:
            result = await role_model(str(server.make_url("/v1")), timeout=0.5).complete(MESSAGES)
        finally:
            await server.close()
        assert result.text and len(calls) == 2

    asyncio.run(scenario())


def test_a_reply_that_is_not_a_chat_completion_is_retried_then_reported_quoting_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.0)

    def garbage(body: dict[str, Any]) -> web.Response:
        return web.Response(text="<html>proxy login</html>", content_type="text/html")

    async def scenario() -> None:
        async with capturing_server(garbage) as (url, seen):
            model = role_model(url, retries=1)
            with pytest.raises(ServerUnavailableError, match=r"HTTP 502: .*not a chat completion.*proxy login"):
                await model.complete(MESSAGES)
        assert len(seen) == 2 and model.endpoint.stats.errors == 1

    asyncio.run(scenario())


def test_one_client_serves_several_event_loops_in_turn() -> None:
    shared = {}

    async def once() -> str:
        async with capturing_server() as (url, _):
            chat = shared.setdefault("client", client(url))
            chat.url = url + "/chat/completions"  # each loop has its own server here
            reply = await chat.complete(MESSAGES)
            await chat.aclose()
        return str(reply.content)

    assert asyncio.run(once()) and asyncio.run(once())


def test_codi_builds_its_own_client_unless_told_to_use_langchain_openai() -> None:
    endpoint = {"base_url": "http://model.test/v1", "model": "m", "api_key": "sk-test"}
    built = build_role_models(Settings(endpoint=endpoint), {})
    assert all(model.client is not None for model in built.values())
    assert built["critic"].client is not None and built["critic"].client.url == "http://model.test/v1/chat/completions"
    through_langchain = build_role_models(Settings(endpoint={**endpoint, "client": "langchain-openai"}), {})
    assert all(model.client is None and isinstance(model.chat, ChatOpenAI) for model in through_langchain.values())
    openai = build_role_models(Settings(endpoint={"api_key": "sk-test", "max_tokens": 50}), {})
    assert openai["assistant"].client is not None
    assert openai["assistant"].client.max_tokens_field == "max_completion_tokens"  # as ChatOpenAI sends to OpenAI
    assert json.dumps(Settings(endpoint={**endpoint, "client": "codi"}).output_affecting()) == json.dumps(
        Settings(endpoint=endpoint).output_affecting()
    )  # the client is not part of the fingerprint: the same requests either way
