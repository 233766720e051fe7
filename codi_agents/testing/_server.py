"""A fake OpenAI-compatible chat server on 127.0.0.1 for tests and benchmarks: real HTTP, no model.

It serves `GET /v1/models`, `POST /v1/chat/completions` and `POST /v1/embeddings`. The replies are
made up but useful:

- a request with tools gets a call of the chosen (or first) tool, with arguments generated from the
  tool's JSON schema, so `with_structured_output(method="function_calling")` parses; arguments given
  in `tool_arguments` for a tool name override the generated ones (by default the grounded judge's
  tool gets an approving verdict);
- without tools, a prompt that quotes passages (`<passage id=...>`) gets the first sentence of the
  first passage, as a grounded assistant would answer; any other prompt gets a user's question about
  words of the document it shows (`codi_agents.testing._scripted`);
- an embeddings request gets a hashed bag-of-words vector per text, of `embedding_dimensions` floats
  (or the `dimensions` asked for), salted by the model's name: deterministic, and lexical retrieval works.

Latency per request and faults (429 with `Retry-After`, 5xx, dropped connections, a server that
fails everything; for embeddings: 429s, failures, vectors of the wrong size or count, null vectors)
are set at start and can be changed while it runs (`set_faults`); `stats()` counts what it answered.
Run it in a thread of this process (tests), or in a child process (benchmarks, so that it shares
neither codi's event loop nor its GIL):

    with FakeOpenAIServer(latency=0.2, process=True) as server:
        settings = Settings(endpoint={"base_url": server.base_url, "model": server.model, "api_key": "fake"})
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from dataclasses import asdict
from typing import Any

from aiohttp import web

from codi_agents.testing._fake_api import DEFAULT_MODEL, FakeApi, Faults, ServerConfig

__all__ = ["DEFAULT_MODEL", "FakeOpenAIServer", "Faults", "ServerConfig", "main"]

STARTUP_TIMEOUT_SECONDS = 60.0


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
        embedding_dimensions: int = 64,
    ) -> None:
        self.config = ServerConfig(
            latency=latency,
            model=model,
            other_models=other_models,
            faults=faults or Faults(),
            embedding_dimensions=embedding_dimensions,
        )
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
        """Counters: requests, answered, rate_limited, status_<code>, prompt_tokens, completion_tokens,
        peak_in_flight (the most chat requests it was answering at once, 429s included); for embeddings:
        embedding_requests, embedding_answered, embedded_texts, embedding_rate_limited."""
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
        command += ["--embedding-dimensions", str(self.config.embedding_dimensions)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        match = re.search(r":(\d+)/v1", line)
        if match is None:
            self.stop()
            raise RuntimeError(f"The fake server process did not start: {line!r}")
        self.port = int(match.group(1))


async def _serve(config: ServerConfig, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(FakeApi(config).app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    return runner, int(runner.addresses[0][1])


def main(argv: list[str] | None = None) -> None:
    """`python -m codi_agents.testing._server`: serve until SIGTERM or SIGINT; print the URL first."""
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible chat and embeddings server for codi's tests.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--other-model", action="append", default=[], help="More names /v1/models lists.")
    parser.add_argument("--faults", default="{}", help="Faults as JSON, e.g. '{\"rate_limit_first\": 5}'.")
    parser.add_argument("--embedding-dimensions", type=int, default=64, help="Size of the embedding vectors.")
    args = parser.parse_args(argv)
    config = ServerConfig(
        latency=args.latency,
        model=args.model,
        other_models=tuple(args.other_model),
        faults=Faults(**json.loads(args.faults)),
        embedding_dimensions=args.embedding_dimensions,
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
