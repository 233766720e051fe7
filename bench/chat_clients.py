"""CPU per chat request, layer by layer: what each client costs codi's process, against one fake server.

    python bench/chat_clients.py                  # 400 requests per client, 16 in flight
    python bench/chat_clients.py --n 1000 --k 32

The fake OpenAI-compatible server runs in its own process and answers at once, so the numbers are the
client side only: CPU seconds of this process (user + system) per request, and requests per second. The
prompt is a system message with a passage of ~3 KB and a question, as codi's assistant sends. Measured per
client, in turn, after 20 unmeasured requests:

- aiohttp + json (the floor), httpx + json, `openai.AsyncOpenAI`;
- langchain-openai's `ChatOpenAI` (plain, and `with_structured_output(method="function_calling")`);
- codi's `RoleModel` through `ChatOpenAI` (`client = "langchain-openai"`) and through its own client
  (`client = "codi"`, the default), plain and structured.

Compare rows of one invocation: the machine's load moves all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from codi_agents.llm._calls import Endpoint, RoleModel
from codi_agents.llm._limits import AdaptiveLimiter
from codi_agents.llm._openai_http import OpenAIChatClient
from codi_agents.testing import FakeOpenAIServer

PASSAGE = "The retirement estimator uses your earnings record to project your benefit at each claiming age. " * 30


class Judgement(BaseModel):
    """A verdict on a reply."""

    reasons: str
    grounded: bool
    score: float = Field(ge=0, le=1)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(name: str, one: Callable[[], Awaitable[object]], n: int, k: int) -> None:
    slots = asyncio.Semaphore(k)

    async def bounded() -> None:
        async with slots:
            await one()

    for _ in range(20):
        await one()
    cpu, start = _cpu(), time.perf_counter()
    await asyncio.gather(*(bounded() for _ in range(n)))
    wall = time.perf_counter() - start
    print(f"| {name} | {1000 * (_cpu() - cpu) / n:.2f} | {n / wall:.0f} |", flush=True)


async def _main(n: int, k: int) -> None:
    from langchain_openai import ChatOpenAI
    from openai import AsyncOpenAI

    with FakeOpenAIServer(process=True) as server:
        url, model = server.base_url, server.model
        system = f"Answer from the passage.\n{PASSAGE}"
        plain = [{"role": "system", "content": system}, {"role": "user", "content": "?"}]
        messages = [SystemMessage(system), HumanMessage("?")]
        body = json.dumps({"model": model, "messages": plain})
        headers = {"Content-Type": "application/json"}
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        client = httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=None))
        sdk = AsyncOpenAI(base_url=url, api_key="fake", max_retries=0)
        chat = ChatOpenAI(model=model, base_url=url, api_key="fake", max_retries=0, timeout=httpx.Timeout(None))
        structured = chat.with_structured_output(Judgement, method="function_calling", include_raw=True)
        through_langchain = RoleModel("critic", chat, Endpoint(key="a", limiter=AdaptiveLimiter(k)))
        own = OpenAIChatClient(base_url=url, model=model, api_key="fake", temperature=0.7)
        through_own = RoleModel("critic", chat, Endpoint(key="b", limiter=AdaptiveLimiter(k)), client=own)

        async def aiohttp_json() -> object:
            async with session.post(url + "/chat/completions", data=body, headers=headers) as answer:
                return json.loads(await answer.read())

        async def httpx_json() -> object:
            return json.loads((await client.post(url + "/chat/completions", content=body, headers=headers)).content)

        cases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("aiohttp + json", aiohttp_json),
            ("httpx + json", httpx_json),
            ("AsyncOpenAI", lambda: sdk.chat.completions.create(model=model, messages=plain)),  # type: ignore[arg-type]
            ("ChatOpenAI", lambda: chat.ainvoke(messages)),
            ("ChatOpenAI structured", lambda: structured.ainvoke(messages)),
            ("RoleModel, client = langchain-openai", lambda: through_langchain.complete(messages)),
            ("RoleModel structured, client = langchain-openai", lambda: through_langchain.structured(
                Judgement, messages, parse_retries=0)),
            ("RoleModel, client = codi", lambda: through_own.complete(messages)),
            ("RoleModel structured, client = codi", lambda: through_own.structured(
                Judgement, messages, parse_retries=0)),
        ]  # fmt: skip
        print(f"{n} requests per client, {k} in flight; fake server in its own process, answering at once\n")
        print("| client | CPU ms / request | requests / s |\n|---|---|---|")
        try:
            for name, one in cases:
                await _measure(name, one, n, k)
        finally:
            await session.close()
            await client.aclose()
            await own.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="Requests per client.")
    parser.add_argument("--k", type=int, default=16, help="Requests in flight.")
    args = parser.parse_args()
    asyncio.run(_main(args.n, args.k))


if __name__ == "__main__":
    main()
