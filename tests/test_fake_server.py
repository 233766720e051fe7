"""The fake OpenAI-compatible server: real HTTP, schema-valid tool calls, grounded replies, injected faults."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Literal

import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from codi_agents.tasks.grounded_qa.judge import GroundedJudgement
from codi_agents.testing import FakeOpenAIServer, Faults
from codi_agents.testing._replies import example_from_schema


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as running:
        yield running


@pytest.fixture
def client(server: FakeOpenAIServer) -> openai.OpenAI:
    server.set_faults(Faults())
    return openai.OpenAI(base_url=server.base_url, api_key="fake", max_retries=0)


class Step(BaseModel):
    kind: Literal["read", "write"]
    count: int = Field(ge=3, le=9)


class Plan(BaseModel):
    reasons: str = Field(min_length=5)
    steps: list[Step] = Field(min_length=2)
    owner: str | None
    ratio: float
    tags: dict[str, int]


def test_models_endpoint_lists_the_model(server: FakeOpenAIServer) -> None:
    with urllib.request.urlopen(f"{server.base_url}/models") as response:
        body = json.loads(response.read())
    assert [model["id"] for model in body["data"]] == [server.model]


def test_prompt_with_passages_gets_a_sentence_of_the_first_passage(server: FakeOpenAIServer) -> None:
    chat = ChatOpenAI(model=server.model, base_url=server.base_url, api_key="fake", max_retries=0)
    system = 'Answer.\n<passage id="doc::0">\nRenew your licence online. It takes ten minutes.\n</passage>'
    reply = chat.invoke([("system", system), ("user", "How do I renew?")])
    assert reply.content == "Renew your licence online."
    assert reply.usage_metadata is not None and reply.usage_metadata["input_tokens"] > 0


def test_prompt_showing_a_document_gets_a_user_question_about_it(server: FakeOpenAIServer) -> None:
    chat = ChatOpenAI(model=server.model, base_url=server.base_url, api_key="fake", max_retries=0)
    system = "You are the user.\n<document>\nVehicle registration renewals happen every second year.\n</document>"
    reply = chat.invoke([("system", system), ("user", "(Your next message: Ask your first question.)")])
    assert isinstance(reply.content, str) and reply.content.endswith("?")
    assert "vehicle" in reply.content.lower()


def test_grounded_judge_gets_an_approving_verdict_that_parses(server: FakeOpenAIServer) -> None:
    chat = ChatOpenAI(model=server.model, base_url=server.base_url, api_key="fake", max_retries=0)
    judge = chat.with_structured_output(GroundedJudgement, method="function_calling")
    verdict = judge.invoke([("user", "judge this reply")])
    assert isinstance(verdict, GroundedJudgement)
    assert verdict.grounded and verdict.faithful and not verdict.follows_instructions_in_passages
    assert verdict.score >= 0.9


def test_any_tool_schema_gets_arguments_valid_against_it(server: FakeOpenAIServer) -> None:
    chat = ChatOpenAI(model=server.model, base_url=server.base_url, api_key="fake", max_retries=0)
    plan = chat.with_structured_output(Plan, method="function_calling").invoke([("user", "plan")])
    assert isinstance(plan, Plan)
    assert len(plan.steps) >= 2 and all(3 <= step.count <= 9 for step in plan.steps)
    assert Plan.model_validate(example_from_schema(Plan.model_json_schema())) is not None


def test_rate_limit_faults_carry_retry_after_then_stop(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.set_faults(Faults(rate_limit_first=2, retry_after=3))
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": "hi"}])
        assert caught.value.response.headers["retry-after"] == "3"
    reply = client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content


def test_server_errors_and_a_failing_server(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.set_faults(Faults(server_error_first=1, server_error_status=502))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": "hi"}])
    client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": "hi"}])
    server.set_faults(Faults(fail_all_status=503))
    for _ in range(3):
        with pytest.raises(openai.InternalServerError, match="fail every request"):
            client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": "hi"}])
    assert server.stats()["status_503"] >= 3


def test_dropped_connections(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    server.set_faults(Faults(drop_first=1))
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": "hi"}])
    assert server.stats()["dropped"] >= 1


def test_streaming_requests_are_refused_clearly(server: FakeOpenAIServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="does not stream"):
        client.chat.completions.create(model=server.model, messages=[{"role": "user", "content": "hi"}], stream=True)


def test_child_process_server_answers_and_stops() -> None:
    with FakeOpenAIServer(process=True, faults=Faults(rate_limit_first=1)) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key="fake", max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model=running.model, messages=[{"role": "user", "content": "hi"}])
        client.chat.completions.create(model=running.model, messages=[{"role": "user", "content": "hi"}])
        url = running.base_url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/models", timeout=2)


def test_the_server_records_the_most_chat_requests_it_answered_at_once() -> None:
    import asyncio

    async def ask(server: FakeOpenAIServer, times: int) -> None:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="fake", max_retries=0) as client:
            message = [{"role": "user", "content": "hello"}]
            requests = (client.chat.completions.create(model=server.model, messages=message) for _ in range(times))  # type: ignore[call-overload]
            await asyncio.gather(*requests)

    with FakeOpenAIServer(latency=1.0) as slow:
        asyncio.run(ask(slow, 1))
        assert slow.stats()["peak_in_flight"] == 1
        asyncio.run(ask(slow, 5))  # 1 s each: the five overlap
        assert slow.stats()["peak_in_flight"] == 5 and slow.stats()["answered"] == 6
