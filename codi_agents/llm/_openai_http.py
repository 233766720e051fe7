"""codi's own client for OpenAI-compatible chat endpoints: one POST per request, aiohttp, plain JSON.

A batch run spends most of its Python time in the chat client, not in codi: measured at K = 32 against
a fake server, langchain-openai's `ChatOpenAI` costs 3.2 ms of CPU per plain request and 6.9 ms per
structured one, the OpenAI SDK under it 2.5 ms, httpx alone 2.7 ms, and aiohttp with `json` 0.2 ms. Under
one GIL that CPU caps how many conversations a process keeps in flight. So for the endpoints codi builds
(`[endpoint]` settings and the embedded model) `RoleModel` sends requests through this client, and keeps
the `ChatOpenAI` of the same endpoint for anyone who wants a LangChain model (`client = "langchain-openai"`
sends every request through it instead). Chat models passed in as instances are always called as given.

It sends what `ChatOpenAI` sends for the same call (checked by a test): the model, the messages, the
temperature, `max_tokens` (`max_completion_tokens` on api.openai.com), and for structured output a forced
tool call (`function_calling`), a strict `json_schema` response format, or `json_object` (`json_mode`).
Replies come back as LangChain `AIMessage`s with tool calls and token usage, so every caller reads them as
before. Errors are `HttpStatusError`, with the server's status and headers (a reply that is no chat completion
counts as a 502), or aiohttp's connection errors; `llm._failures` classifies them as it does openai's. The
client has no timeout or retries of its own: `RoleModel` owns both. One aiohttp session per event loop,
opened on first use in that loop.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ValidationError

from codi_agents.config._settings import StructuredOutputMethod
from codi_agents.llm._failures import HttpStatusError

BAD_REPLY_STATUS = 502
"""A 200 whose body is no chat completion counts as a bad gateway's answer: retried, and counted against the
endpoint's health, so a wrong URL stops a run as a server that is down does."""
CONNECTIONS_PER_HOST = 0
"""No cap of aiohttp's own: `RoleModel`'s adaptive limiter decides how many requests are in flight."""


class OpenAIChatClient:
    """Chat completions from one OpenAI-compatible endpoint, as `AIMessage`s; safe to share between roles."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        temperature: float,
        max_tokens: int | None = None,
        max_tokens_field: str = "max_tokens",
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_tokens_field = max_tokens_field
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
            weakref.WeakKeyDictionary()
        )
        self._requests: dict[tuple[type[BaseModel], str], dict[str, Any]] = {}

    async def complete(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The model's reply to `messages`."""
        return await self._post(self._body(messages))

    async def structured(
        self, schema: type[BaseModel], method: StructuredOutputMethod, messages: Sequence[BaseMessage]
    ) -> dict[str, Any]:
        """What `with_structured_output(schema, method=method, include_raw=True)` returns: `raw` (the reply),
        `parsed` (a `schema` instance, or None) and `parsing_error` (why it did not parse, or None)."""
        extra = self._requests.get((schema, method))
        if extra is None:
            extra = self._requests[(schema, method)] = structured_request(schema, method)
        raw = await self._post(self._body(messages) | extra)
        parsed, error = parse_structured(raw, schema, method)
        return {"raw": raw, "parsed": parsed, "parsing_error": error}

    async def aclose(self) -> None:
        """Close this event loop's connections (those of loops already closed went with them)."""
        session = self._sessions.pop(asyncio.get_running_loop(), None)
        if session is not None:
            await session.close()

    def _body(self, messages: Sequence[BaseMessage]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": convert_to_openai_messages(list(messages)),
            "stream": False,
            "temperature": self.temperature,
        }
        if self.max_tokens:
            body[self.max_tokens_field] = self.max_tokens
        return body

    async def _post(self, body: dict[str, Any]) -> AIMessage:
        session = self._session()
        async with session.post(self.url, data=orjson.dumps(body), headers=self._headers) as response:
            content = await response.read()
            if response.status >= 400:
                raise HttpStatusError.of(response.status, response.headers, content, response.reason)
        try:
            return reply_message(orjson.loads(content))
        except (ValueError, KeyError, IndexError, TypeError) as exc:  # a proxy's page, a truncated answer
            message = f"the endpoint's reply is not a chat completion: {content[:200]!r}"
            raise HttpStatusError(BAD_REPLY_STATUS, message, response.headers) from exc

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS_PER_HOST, limit_per_host=CONNECTIONS_PER_HOST)
            session = self._sessions[loop] = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None)
            )
        return session


def structured_request(schema: type[BaseModel], method: StructuredOutputMethod) -> dict[str, Any]:
    """The request fields that ask for `schema` by `method`, as langchain-openai asks for them."""
    if method == "function_calling":
        tool = convert_to_openai_tool(schema)
        name = tool["function"]["name"]
        return {
            "tools": [tool],
            "tool_choice": {"type": "function", "function": {"name": name}},
            "parallel_tool_calls": False,
        }
    if method == "json_schema":
        json_schema = {**schema.model_json_schema(), "additionalProperties": False}
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"schema": json_schema, "name": schema.__name__, "strict": True},
            }
        }
    return {"response_format": {"type": "json_object"}}


def parse_structured(
    raw: AIMessage, schema: type[BaseModel], method: StructuredOutputMethod
) -> tuple[BaseModel | None, str | None]:
    """`schema` read from a reply (its first tool call, or its text as JSON), or None and the reason."""
    if method == "function_calling":
        if not raw.tool_calls:
            problem = raw.invalid_tool_calls[0].get("error") if raw.invalid_tool_calls else None
            return None, problem or "the reply has no tool call"
        arguments: Any = raw.tool_calls[0]["args"]
    else:
        text = raw.content if isinstance(raw.content, str) else ""
        try:
            arguments = json.loads(text)
        except ValueError as exc:
            return None, f"Invalid json output: {text[:200]} ({exc})"
    try:
        return schema.model_validate(arguments), None
    except ValidationError as exc:
        return None, str(exc)


def reply_message(completion: dict[str, Any]) -> AIMessage:
    """A chat completion as the `AIMessage` langchain-openai would make of it (text, tool calls, usage)."""
    choice = completion["choices"][0]
    message = choice["message"]
    calls, invalid = [], []
    for raw_call in message.get("tool_calls") or []:
        function = raw_call.get("function") or {}
        name, arguments, call_id = function.get("name"), function.get("arguments") or "{}", raw_call.get("id")
        try:
            parsed = json.loads(arguments)
            if not isinstance(parsed, dict):
                raise ValueError("the arguments are not a JSON object")
            calls.append(tool_call(name=name or "", args=parsed, id=call_id))
        except ValueError as exc:
            invalid.append(invalid_tool_call(name=name, args=arguments, id=call_id, error=f"invalid arguments: {exc}"))
    usage = completion.get("usage") or {}
    metadata = None
    if usage:
        input_tokens, output_tokens = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        metadata = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }
    return AIMessage(
        content=message.get("content") or "",
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata=metadata,
        response_metadata={"finish_reason": choice.get("finish_reason"), "model_name": completion.get("model")},
        id=completion.get("id"),
    )
