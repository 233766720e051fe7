"""A fake OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks: real HTTP, no model.

It serves `GET /v1/models` and `POST /v1/chat/completions`. The replies are made up but useful:

- a request with tools gets a call of the chosen (or first) tool, with arguments generated from the
  tool's JSON schema, so `with_structured_output(method="function_calling")` parses; arguments given
  in `tool_arguments` for a tool name override the generated ones (by default the grounded judge's
  tool gets an approving verdict);
- without tools, a prompt that quotes passages (`<passage id=...>`) gets the first sentence of the
  first passage, as a grounded assistant would answer; any other prompt gets a user's question about
  words of the document it shows (`codi_agents.testing._scripted`).

Latency per request and faults (429 with `Retry-After`, 5xx, dropped connections, a server that
fails everything) are set at start and can be changed while it runs (`set_faults`); `stats()` counts
what it answered. Run it in a thread of this process (tests), or in a child process (benchmarks, so
that it shares neither codi's event loop nor its GIL):

    with FakeOpenAIServer(latency=0.2, process=True) as server:
        settings = Settings(endpoint={"base_url": server.base_url, "model": server.model, "api_key": "fake"})
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_MODEL = "codi-fake"
STARTUP_TIMEOUT_SECONDS = 60.0
_PASSAGE = re.compile(r"<passage id=\"[^\"]+\"[^>]*>\n")


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


@dataclass
class ServerConfig:
    """How the fake server behaves."""

    latency: float = 0.0
    """Seconds each successful answer takes."""
    model: str = DEFAULT_MODEL
    other_models: tuple[str, ...] = ()
    """More model names `GET /v1/models` lists after `model` (a server serving several models)."""
    faults: Faults = field(default_factory=Faults)
    tool_arguments: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(_default_tool_arguments()))
    """Arguments that override the generated ones, by tool name."""


def _default_tool_arguments() -> dict[str, dict[str, Any]]:
    from codi_agents.testing._scripted import approving_judgement

    return {"GroundedJudgement": approving_judgement([])}


class _Handler:
    """The aiohttp application's state and routes."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.counts: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._remaining = Counter[str]()
        self.set_faults(config.faults)

    def set_faults(self, faults: Faults) -> None:
        self.config.faults = faults
        self._remaining = Counter(
            rate_limit=faults.rate_limit_first, server_error=faults.server_error_first, drop=faults.drop_first
        )

    def app(self) -> web.Application:
        application = web.Application()
        application.router.add_get("/v1/models", self.models)
        application.router.add_post("/v1/chat/completions", self.chat)
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
        self.counts["requests"] += 1
        faults = self.config.faults
        if faults.reject_key:
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            status = faults.fail_all_status or 401
            return self._error(status, f"Incorrect API key provided: {key}. You can find your key in your account.")
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
            tool = _chosen_tool(tools, body.get("tool_choice"))
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


def reply_text(messages: list[dict[str, Any]]) -> str:
    """A grounded answer when the prompt quotes passages, else a user's question about the document shown."""
    from langchain_core.messages import convert_to_messages

    from codi_agents.testing._scripted import scripted_assistant, scripted_user

    converted = convert_to_messages(
        [{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in messages]
    )
    system = str(converted[0].content) if converted else ""
    return scripted_assistant(converted) if _PASSAGE.search(system) else scripted_user(converted)


def example_from_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A value valid against a JSON schema (the subset pydantic and tool definitions use)."""
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    if "$ref" in schema:
        return example_from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [option for option in schema[key] if option.get("type") != "null"] or schema[key]
            return example_from_schema(options[0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((item for item in kind if item != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: example_from_schema(sub, defs) for name, sub in properties.items()}
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        return [example_from_schema(schema.get("items", {"type": "string"}), defs) for _ in range(count)]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", max(low, 1)))
        value = (low + high) / 2
        return int(value) if kind == "integer" else float(value)
    if kind == "null":
        return None
    text = "An example value."
    return text.ljust(int(schema.get("minLength", 0)), ".")[: schema.get("maxLength", len(text) + 10**6)]


def _chosen_tool(tools: list[dict[str, Any]], choice: Any) -> dict[str, Any]:
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name")
        for tool in tools:
            if tool.get("function", {}).get("name") == wanted:
                return tool
    return tools[0]


class FakeOpenAIServer:
    """Start and stop the fake server; use as a context manager. `process=True` runs it in a child process."""

    def __init__(
        self,
        latency: float = 0.0,
        *,
        faults: Faults | None = None,
        model: str = DEFAULT_MODEL,
        other_models: tuple[str, ...] = (),
        process: bool = False,
        port: int = 0,
    ) -> None:
        self.config = ServerConfig(latency=latency, model=model, other_models=other_models, faults=faults or Faults())
        self.process_mode = process
        self.port = port
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    @property
    def model(self) -> str:
        """The model name the server reports."""
        return self.config.model

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> str:
        """Start serving; return the base URL."""
        if self.process_mode:
            self._start_process()
        else:
            self._start_thread()
        return self.base_url

    def stop(self) -> None:
        """Stop serving (connections are refused afterwards); safe to call twice."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        loop, runner = self._loop, self._runner
        if loop is not None and runner is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread, self._loop, self._runner = None, None, None

    def set_faults(self, faults: Faults) -> None:
        """Change the faults while the server runs."""
        self._post("/_codi/faults", asdict(faults))

    def stats(self) -> dict[str, int]:
        """Counters: requests, answered, rate_limited, status_<code>, prompt_tokens, completion_tokens."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_codi/stats", timeout=10) as response:
            return dict(json.loads(response.read()))

    def __enter__(self) -> FakeOpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _start_thread(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._runner, self.port = loop.run_until_complete(_serve(self.config, self.port))
            except BaseException as error:
                failure.append(error)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name="codi-fake-openai-server", daemon=True)
        self._thread.start()
        ready.wait(STARTUP_TIMEOUT_SECONDS)
        if failure:
            raise RuntimeError(f"The fake server could not start: {failure[0]}") from failure[0]

    def _start_process(self) -> None:
        command = [sys.executable, "-c", "from codi_agents.testing._server import main; main()"]
        command += ["--port", str(self.port)]
        command += ["--latency", str(self.config.latency), "--model", self.config.model]
        command += [argument for name in self.config.other_models for argument in ("--other-model", name)]
        command += ["--faults", json.dumps(asdict(self.config.faults))]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        match = re.search(r":(\d+)/v1", line)
        if match is None:
            self.stop()
            raise RuntimeError(f"The fake server process did not start: {line!r}")
        self.port = int(match.group(1))


async def _serve(config: ServerConfig, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(_Handler(config).app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    return runner, int(runner.addresses[0][1])


def main(argv: list[str] | None = None) -> None:
    """`python -m codi_agents.testing._server`: serve until SIGTERM or SIGINT; print the URL first."""
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible chat server for codi's tests.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--other-model", action="append", default=[], help="More names /v1/models lists.")
    parser.add_argument("--faults", default="{}", help="Faults as JSON, e.g. '{\"rate_limit_first\": 5}'.")
    args = parser.parse_args(argv)
    config = ServerConfig(
        latency=args.latency,
        model=args.model,
        other_models=tuple(args.other_model),
        faults=Faults(**json.loads(args.faults)),
    )

    async def serve() -> None:
        runner, port = await _serve(config, args.port)
        print(f"listening on http://127.0.0.1:{port}/v1", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        parent = os.getppid()

        async def orphaned() -> None:  # the process that started us died without stopping us: stop too
            while os.getppid() == parent:
                await asyncio.sleep(1)
            stop.set()

        watch = asyncio.create_task(orphaned())
        await stop.wait()
        watch.cancel()
        await runner.cleanup()

    try:
        import uvloop  # a faster loop when installed: the server is a benchmark's counterpart, not its subject
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main()
