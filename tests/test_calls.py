"""Calling models: retries on transient failures, Retry-After, no retry on 4xx, timeouts, unparseable output."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel
from tenacity import RetryCallState

from codi_agents.errors import RequestRejectedError, ServerUnavailableError
from codi_agents.llm._calls import Endpoint, RoleModel
from codi_agents.llm._failures import is_transient, retry_after_seconds, wait_for_server
from codi_agents.llm._limits import AdaptiveLimiter
from codi_agents.testing import ScriptedChatModel

PROMPT = [HumanMessage("hello")]


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://model.test/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    kinds = {
        429: openai.RateLimitError,
        400: openai.BadRequestError,
        500: openai.InternalServerError,
        503: openai.InternalServerError,
    }
    return kinds[status](f"status {status}", response=response, body=None)


def role_model(script: list[object], retries: int = 3, timeout: float | None = None, delay: float = 0.0) -> RoleModel:
    chat = ScriptedChatModel(script=script, delay_seconds=delay)
    endpoint = Endpoint(key="http://model.test/v1", limiter=AdaptiveLimiter(8))
    return RoleModel("assistant", chat, endpoint, max_retries=retries, timeout=timeout)


def test_server_errors_are_retried_until_success(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.0)
    model = role_model([status_error(500), status_error(503), "fine"])
    result = asyncio.run(model.complete(PROMPT))
    assert result.text == "fine"
    assert model.endpoint.stats.retries == 2
    assert model.endpoint.stats.requests == 3


def test_rate_limit_halves_concurrency_and_honours_retry_after() -> None:
    model = role_model([status_error(429, {"retry-after": "0.05"}), "ok"])
    assert asyncio.run(model.complete(PROMPT)).text == "ok"
    assert model.endpoint.stats.rate_limited == 1
    assert model.endpoint.limiter.limit == 4
    error = status_error(429, {"retry-after": "7"})
    assert retry_after_seconds(error) == 7.0
    assert retry_after_seconds(status_error(429, {"retry-after-ms": "1500"})) == 1.5
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.set_exception((type(error), error, None))
    assert 7.0 <= wait_for_server(state) <= 7.0 * 1.1 + 0.05


def test_client_errors_are_not_retried() -> None:
    model = role_model([status_error(400), "never reached"])
    with pytest.raises(RequestRejectedError, match="refused the request: HTTP 400"):
        asyncio.run(model.complete(PROMPT))
    assert model.endpoint.stats.requests == 1


def test_a_server_that_stays_down_gives_a_clear_error_after_bounded_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.0)
    model = role_model([ConnectionError("connection refused")] * 10, retries=2)
    with pytest.raises(
        ServerUnavailableError,
        match=r"did not answer after 3 attempts: ConnectionError: connection refused.*http://model.test/v1",
    ):
        asyncio.run(model.complete(PROMPT))
    assert model.endpoint.stats.requests == 3


def test_a_hanging_model_times_out_and_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("codi_agents.llm._failures._backoff", lambda state: 0.0)
    model = role_model(["late", "late"], retries=1, timeout=0.05, delay=1.0)
    with pytest.raises(ServerUnavailableError, match="TimeoutError"):
        asyncio.run(model.complete(PROMPT))
    assert model.endpoint.stats.requests == 2


class Answer(BaseModel):
    reasons: str
    value: int


def test_unparseable_structured_output_is_asked_again_then_returned_as_failure() -> None:
    model = role_model(["not json", '{"reasons": "x", "value": "NaN?"}', '{"reasons": "ok", "value": 3}'])
    result = asyncio.run(model.structured(Answer, PROMPT, parse_retries=2))
    assert result.parsed == Answer(reasons="ok", value=3)
    assert result.usage.requests == 3
    failing = role_model(["nope"] * 3)
    result = asyncio.run(failing.structured(Answer, PROMPT, parse_retries=2))
    assert result.parsed is None
    assert result.raw_outputs == ["nope"] * 3
    assert "unparseable Answer" in (result.error or "")


def test_transient_classification() -> None:
    assert is_transient(status_error(429)) and is_transient(status_error(500)) and is_transient(TimeoutError())
    assert not is_transient(status_error(400)) and not is_transient(ValueError("bug"))


def test_dropped_connections_are_transient_whoever_wraps_them() -> None:
    """langchain-openai re-raises openai's errors as its own subclasses (`OpenAIConnectionError`)."""

    class WrappedConnectionError(openai.APIConnectionError):
        pass

    WrappedConnectionError.__module__ = "langchain_openai.chat_models.base"
    request = httpx.Request("POST", "http://model.test/v1/chat/completions")
    assert is_transient(WrappedConnectionError(request=request))
    assert is_transient(openai.APITimeoutError(request=request))
    assert is_transient(httpx.ConnectError("connection refused")) and is_transient(httpx.ReadTimeout("slow"))


def test_limiter_never_exceeds_its_limit_and_recovers_after_successes() -> None:
    limiter = AdaptiveLimiter(4)
    peak = 0

    async def one() -> None:
        nonlocal peak
        async with limiter.slot():
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.001)

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(50)))

    asyncio.run(many())
    assert peak == 4
    limiter.record_rate_limited()
    assert limiter.limit == 2
    for _ in range(40):
        limiter.record_success()
    assert limiter.limit == 4


def test_an_endpoint_failing_fast_for_long_enough_is_down_and_a_success_streak_brings_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from codi_agents.llm._limits import HealthWatch

    now = [100.0]
    monkeypatch.setattr("codi_agents.llm._limits.time.monotonic", lambda: now[0])
    health = HealthWatch(sustained_seconds=1.0)
    for step in range(200):  # refused at once, in bursts: no window of 20 spans a second by itself
        now[0] = 100.0 + step * 0.01
        health.record(False, "refused")
        if step < 100:
            assert health.failing() is None
    assert health.failing() == "refused"
    for _ in range(5):
        health.record(True)
    assert health.failing() is None  # most of the window still failed, but the streak was broken...
    health.record(False, "refused again")
    assert health.failing() is None  # ...and a new one starts its own sustained period
