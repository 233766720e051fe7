"""Calling a role's chat model: bounded retries, per-endpoint concurrency, timeouts and token accounting.

Every model request in codi goes through `RoleModel`. Transient failures (429, 5xx, timeouts,
dropped connections) are retried with tenacity, honouring `Retry-After` and backing off with
jitter; a 429 also halves the endpoint's concurrency (once per burst) and holds back the endpoint's
new requests for the `Retry-After` time. Other 4xx answers are not retried: they
raise `RequestRejectedError`. Structured output that does not parse is asked for again a bounded
number of times and then returned as a failure with the raw outputs, never raised.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import BaseModel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from codi_agents._record import Usage
from codi_agents.config._roles import DEFAULT_TIMEOUT_SECONDS
from codi_agents.config._settings import Role, StructuredOutputMethod
from codi_agents.errors import EndpointDownError, RequestRejectedError, ServerUnavailableError
from codi_agents.llm._failures import (
    describe_failure,
    is_transient,
    retry_after_seconds,
    says_server_is_down,
    status_code,
    wait_for_server,
)
from codi_agents.llm._limits import AdaptiveLimiter, EndpointSnapshot, EndpointStats, HealthWatch
from codi_agents.llm._openai_http import OpenAIChatClient

SchemaT = TypeVar("SchemaT", bound=BaseModel)

DEFAULT_MAX_RETRIES = 4


@dataclass
class Endpoint:
    """Shared by every role that talks to the same server: its limiter, health and counters."""

    key: str
    limiter: AdaptiveLimiter
    health: HealthWatch = field(default_factory=HealthWatch)
    stats: EndpointStats = field(default_factory=EndpointStats)

    def snapshot(self) -> EndpointSnapshot:
        """The counters and the concurrency now, in one value (callers need not know the parts)."""
        return EndpointSnapshot(
            key=self.key,
            **dataclasses.asdict(self.stats),
            in_flight=self.limiter.in_flight,
            limit=self.limiter.limit,
            maximum=self.limiter.maximum,
        )


@dataclass
class ChatResult:
    """A plain-text reply."""

    text: str
    usage: Usage
    message: AIMessage


@dataclass
class StructuredResult(Generic[SchemaT]):
    """A structured reply, or the raw outputs of every attempt when none parsed."""

    parsed: SchemaT | None
    usage: Usage
    raw_outputs: list[str] = field(default_factory=list)
    error: str | None = None


class RoleModel:
    """One role's chat model with the call discipline above.

    `timeout` bounds each attempt here, and only here (the HTTP clients codi builds have none of their own).
    With a `client` (codi's own OpenAI-compatible client, for endpoints codi built), requests go through it
    and `chat` (the same endpoint's LangChain model) is not called; without one, `chat` serves them. `chat` may
    be given as a function that builds it, called on first use: with codi's client it is never built, which
    spares a run the import of langchain-openai and the openai SDK (about a second)."""

    def __init__(
        self,
        role: Role,
        chat: BaseChatModel | Callable[[], BaseChatModel],
        endpoint: Endpoint,
        *,
        name: str | None = None,
        method: StructuredOutputMethod = "function_calling",
        timeout: float | None = None,
        max_retries: int | None = None,
        context_window: int | None = None,
        max_tokens: int | None = None,
        owns_client: bool = False,
        client: OpenAIChatClient | None = None,
    ) -> None:
        self.role = role
        self._chat = chat if isinstance(chat, BaseChatModel) else None
        self._build_chat = None if isinstance(chat, BaseChatModel) else chat
        self.endpoint = endpoint
        self.name = name or model_name(self.chat)
        self.method = method
        self.timeout = timeout or DEFAULT_TIMEOUT_SECONDS
        self.max_retries = DEFAULT_MAX_RETRIES if max_retries is None else max_retries
        self.context_window = context_window
        self.max_tokens = max_tokens
        self.owns_client = owns_client
        self.client = client
        self._structured: dict[type[BaseModel], Any] = {}

    @property
    def chat(self) -> BaseChatModel:
        """The LangChain chat model (built now if it was given as a function)."""
        if self._chat is None:
            assert self._build_chat is not None
            self._chat = self._build_chat()
        return self._chat

    async def aclose(self) -> None:
        """Close the HTTP connections of a chat model codi built (a model passed in belongs to its owner)."""
        if not self.owns_client:
            return
        if self.client is not None:
            await self.client.aclose()
        for attribute in ("root_async_client", "root_client"):
            client = getattr(self._chat, attribute, None)  # a chat model never built has no connections
            close = getattr(client, "close", None)
            if close is None:
                continue
            result = close()
            if inspect.isawaitable(result):
                await result

    async def complete(self, messages: Sequence[BaseMessage]) -> ChatResult:
        """The model's text reply to `messages`."""
        if self.client is not None:
            message = await self._call(self.client.complete, messages)
        else:
            message = await self._call(self.chat.ainvoke, messages)
        usage = usage_of(message)
        self._count_tokens(usage)
        return ChatResult(text=message_text(message), usage=usage, message=message)

    async def structured(
        self, schema: type[SchemaT], messages: Sequence[BaseMessage], *, parse_retries: int
    ) -> StructuredResult[SchemaT]:
        """A `schema` instance from the model, asking again up to `parse_retries` times if it does not parse."""
        usage = Usage()
        raw_outputs: list[str] = []
        error = "no output"
        for _ in range(parse_retries + 1):
            result = await self._call(self._structured_call(schema), messages)
            raw = result.get("raw") if isinstance(result, dict) else None
            if isinstance(raw, AIMessage):
                usage = usage + usage_of(raw)
                self._count_tokens(usage_of(raw))
                raw_outputs.append(raw_output_text(raw))
            parsed = result.get("parsed") if isinstance(result, dict) else result
            if isinstance(parsed, schema):
                return StructuredResult(parsed=parsed, usage=usage, raw_outputs=raw_outputs)
            problem = result.get("parsing_error") if isinstance(result, dict) else None
            error = f"unparseable {schema.__name__}: {problem or 'no structured output in the reply'}"
        return StructuredResult(parsed=None, usage=usage, raw_outputs=raw_outputs, error=error)

    def _structured_call(self, schema: type[BaseModel]) -> Callable[[list[BaseMessage]], Awaitable[Any]]:
        """What asks for `schema`: the client's structured call, or the chat model's structured runnable."""
        client = self.client
        if client is not None:
            return lambda messages: client.structured(schema, self.method, messages)
        runnable = self._structured.get(schema)
        if runnable is None:
            runnable = self.chat.with_structured_output(schema, method=self.method, include_raw=True)
            self._structured[schema] = runnable
        return runnable.ainvoke  # type: ignore[no-any-return]

    async def _call(self, send: Callable[[list[BaseMessage]], Awaitable[Any]], messages: Sequence[BaseMessage]) -> Any:
        endpoint = self.endpoint
        if (last_answer := endpoint.health.failing()) is not None:
            raise EndpointDownError(
                f"Most requests to {endpoint.key} have failed for a while; the last answer was: {last_answer}. "
                "Check the server, then resume the run."
            )
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_for_server,
            retry=retry_if_exception(is_transient),
            before_sleep=self._before_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with endpoint.limiter.slot():
                        endpoint.stats.requests += 1
                        try:
                            async with asyncio.timeout(self.timeout):
                                result = await send(list(messages))
                        except Exception as exc:
                            if says_server_is_down(exc):
                                endpoint.health.record(False, describe_failure(exc))
                            raise
                    endpoint.health.record(True)
                    endpoint.limiter.record_success()
                    return result
        except Exception as exc:
            endpoint.stats.errors += 1
            if is_transient(exc):
                raise ServerUnavailableError(
                    f"The {self.role} model ({self.name}) did not answer after {self.max_retries + 1} attempts: "
                    f"{describe_failure(exc)}. Check that the server at {endpoint.key} is up and reachable."
                ) from exc
            if status_code(exc) is not None:
                raise RequestRejectedError(
                    f"The {self.role} model ({self.name}) refused the request: {describe_failure(exc)}"
                ) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _before_retry(self, state: RetryCallState) -> None:
        self.endpoint.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and status_code(exc) == 429:
            self.endpoint.stats.rate_limited += 1
            self.endpoint.limiter.record_rate_limited()
            if (asked := retry_after_seconds(exc)) is not None:
                self.endpoint.limiter.pause(asked)  # the whole endpoint waits, not only this request

    def _count_tokens(self, usage: Usage) -> None:
        self.endpoint.stats.input_tokens += usage.input_tokens
        self.endpoint.stats.output_tokens += usage.output_tokens


def model_name(chat: BaseChatModel) -> str:
    """A readable name for any chat model."""
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(chat, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(chat).__name__


def message_text(message: AIMessage) -> str:
    """The text content of a reply, whatever shape the content has."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = [part.get("text", "") if isinstance(part, dict) else str(part) for part in content]
    return "".join(parts)


def raw_output_text(message: AIMessage) -> str:
    """What the model actually produced: tool-call arguments if any, else its text."""
    if message.tool_calls:
        return json.dumps(message.tool_calls[0].get("args", {}), ensure_ascii=False)
    if message.invalid_tool_calls:
        return str(message.invalid_tool_calls[0].get("args") or "")
    return message_text(message)


def usage_of(message: AIMessage) -> Usage:
    """Token usage reported with a reply (estimated from characters when the server reports none)."""
    metadata = message.usage_metadata
    if metadata:
        return Usage(requests=1, input_tokens=metadata["input_tokens"], output_tokens=metadata["output_tokens"])
    return Usage(requests=1, output_tokens=max(1, len(raw_output_text(message)) // 4))
