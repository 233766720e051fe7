"""The fake server's HTTP application: its routes (models, chat, embeddings), its injected faults and its counters."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from codi_agents.testing._embeddings import hashed_vector
from codi_agents.testing._replies import chosen_tool, example_from_schema, reply_text

DEFAULT_MODEL = "codi-fake"


@dataclass
class Faults:
    """What goes wrong, counted from when the faults are set."""

    rate_limit_first: int = 0
    """Answer this many requests with 429 and a `Retry-After` header."""
    retry_after: float = 1.0
    """Seconds sent in `Retry-After`."""
    server_error_first: int = 0
    """Then answer this many with `server_error_status`."""
    server_error_status: int = 503
    drop_first: int = 0
    """Then close this many connections without answering."""
    fail_all_status: int | None = None
    """Answer every request with this status (a server that is up but broken)."""
    reject_key: bool = False
    """Answer every request with 401 (or `fail_all_status`) and an error message that repeats the API key it
    was sent, as some servers do: what codi writes and prints must still never show the key."""
    embedding_rate_limit_first: int = 0
    """Answer this many embeddings requests with 429 and `Retry-After` (chat requests are not affected)."""
    embedding_fail_all_status: int | None = None
    """Answer every embeddings request with this status."""
    embedding_wrong_size_after: int | None = None
    """After this many answered embeddings requests, answer vectors one longer (a server that changed model)."""
    embedding_missing_vectors: int = 0
    """Leave this many vectors out of every embeddings answer (fewer vectors than texts)."""
    embedding_empty: bool = False
    """Answer `null` in place of every vector."""


@dataclass
class ServerConfig:
    """How the fake server behaves."""

    latency: float = 0.0
    """Seconds each successful answer takes."""
    model: str = DEFAULT_MODEL
    other_models: tuple[str, ...] = ()
    """More model names `GET /v1/models` lists after `model` (a server serving several models)."""
    faults: Faults = field(default_factory=Faults)
    embedding_dimensions: int = 64
    """Size of the vectors `POST /v1/embeddings` answers (unless a request asks for `dimensions`)."""
    tool_arguments: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(_default_tool_arguments()))
    """Arguments that override the generated ones, by tool name."""


def _default_tool_arguments() -> dict[str, dict[str, Any]]:
    from codi_agents.testing._scripted import approving_judgement

    return {"GroundedJudgement": approving_judgement([])}


class FakeApi:
    """The aiohttp application's state and routes."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        """Chat requests being answered now; `counts["peak_in_flight"]` keeps the most at once."""
        self._ids = itertools.count(1)
        self._remaining = Counter[str]()
        self.set_faults(config.faults)

    def set_faults(self, faults: Faults) -> None:
        self.config.faults = faults
        self._remaining = Counter(
            rate_limit=faults.rate_limit_first,
            server_error=faults.server_error_first,
            drop=faults.drop_first,
            embedding_rate_limit=faults.embedding_rate_limit_first,
        )

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_get("/v1/models", self.models)
        application.router.add_post("/v1/chat/completions", self.chat)
        application.router.add_post("/v1/embeddings", self.embeddings)
        application.router.add_get("/_codi/stats", self.stats)
        application.router.add_post("/_codi/faults", self.faults)
        return application

    async def models(self, request: web.Request) -> web.Response:
        del request
        self.counts["models"] += 1
        names = [self.config.model, *self.config.other_models]
        return web.json_response(
            {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "codi"} for name in names]}
        )

    async def stats(self, request: web.Request) -> web.Response:
        del request
        return web.json_response(dict(self.counts))

    async def faults(self, request: web.Request) -> web.Response:
        self.set_faults(Faults(**await request.json()))
        return web.json_response(asdict(self.config.faults))

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.counts["peak_in_flight"] = max(self.counts["peak_in_flight"], self.in_flight)
        try:
            return await self._chat(request)
        finally:
            self.in_flight -= 1

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.counts["requests"] += 1
        faults = self.config.faults
        if faults.reject_key:
            return self._key_rejected(request)
        if faults.fail_all_status is not None:
            return self._error(faults.fail_all_status, "the fake server is set to fail every request")
        if self._take("rate_limit"):
            self.counts["rate_limited"] += 1
            return self._error(429, "rate limit reached", {"Retry-After": f"{faults.retry_after:g}"})
        if self._take("server_error"):
            return self._error(faults.server_error_status, "the fake server had an error")
        if self._take("drop"):
            self.counts["dropped"] += 1
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)
        body = await request.json()
        if body.get("stream"):
            return self._error(400, "the fake server does not stream; call it without stream=true")
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        self.counts["answered"] += 1
        return web.json_response(self.completion(body))

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI chat completion answering `body`."""
        messages = body.get("messages") or []
        message: dict[str, Any] = {"role": "assistant", "content": None}
        tools = body.get("tools") or []
        if tools:
            tool = chosen_tool(tools, body.get("tool_choice"))
            name = tool["function"]["name"]
            arguments = example_from_schema(tool["function"].get("parameters") or {"type": "object"})
            if isinstance(arguments, dict):
                arguments.update(self.config.tool_arguments.get(name, {}))
            output = json.dumps(arguments)
            message["tool_calls"] = [
                {"id": f"call_{next(self._ids)}", "type": "function", "function": {"name": name, "arguments": output}}
            ]
            finish = "tool_calls"
        else:
            output = reply_text(messages)
            message["content"] = output
            finish = "stop"
        prompt_chars = sum(len(str(item.get("content") or "")) for item in messages)
        prompt_tokens, completion_tokens = prompt_chars // 4 + 1, len(output) // 4 + 1
        self.counts["prompt_tokens"] += prompt_tokens
        self.counts["completion_tokens"] += completion_tokens
        return {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.config.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def embeddings(self, request: web.Request) -> web.Response:
        """`POST /v1/embeddings`: a hashed bag-of-words vector per text (salted by the model's name)."""
        self.counts["embedding_requests"] += 1
        faults = self.config.faults
        if faults.reject_key:
            return self._key_rejected(request)
        if faults.embedding_fail_all_status is not None:
            return self._error(faults.embedding_fail_all_status, "the fake server is set to fail every embedding")
        if self._take("embedding_rate_limit"):
            self.counts["embedding_rate_limited"] += 1
            return self._error(429, "rate limit reached", {"Retry-After": f"{faults.retry_after:g}"})
        body = await request.json()
        texts = [body.get("input")] if isinstance(body.get("input"), str) else body.get("input")
        if not isinstance(texts, list) or not all(isinstance(text, str) and text for text in texts):
            return self._error(400, "input must be a non-empty string or a list of them (no token ids)")
        model = str(body.get("model") or self.config.model)
        size = int(body.get("dimensions") or self.config.embedding_dimensions)
        if faults.embedding_wrong_size_after is not None and self.counts["embedding_answered"] >= (
            faults.embedding_wrong_size_after
        ):
            size += 1
        if self.config.latency:
            await asyncio.sleep(self.config.latency)
        self.counts["embedding_answered"] += 1
        self.counts["embedded_texts"] += len(texts)
        data = []
        for index, text in enumerate(texts):
            vector = hashed_vector(text, size, salt=model)
            encoded: Any = vector.tolist()
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(vector.astype("<f4").tobytes()).decode()
            data.append(
                {"object": "embedding", "index": index, "embedding": None if faults.embedding_empty else encoded}
            )
        data = data[: max(0, len(data) - faults.embedding_missing_vectors)]
        tokens = sum(len(text) // 4 + 1 for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})

    def _key_rejected(self, request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        status = self.config.faults.fail_all_status or 401
        return self._error(status, f"Incorrect API key provided: {key}. You can find your key in your account.")

    def _take(self, fault: str) -> bool:
        if self._remaining[fault] > 0:
            self._remaining[fault] -= 1
            return True
        return False

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        self.counts[f"status_{status}"] += 1
        return web.json_response(
            {"error": {"message": message, "type": "fake_server_error", "code": status}}, status=status, headers=headers
        )
