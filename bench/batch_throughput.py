"""Benchmark of batch runs: codi's own cost per turn, throughput against a slow server, and peak memory.

    python bench/batch_throughput.py                      # the full table (a few minutes)
    python bench/batch_throughput.py --quick              # a smoke run
    python bench/batch_throughput.py --client lean        # with the lean OpenAI client (see below)
    python bench/batch_throughput.py --gc-threshold 0     # with Python's own garbage-collector thresholds

(1) Cost per turn at zero latency: conversations one at a time (K = 1); a turn is one exchange (user
    message, retrieval, assistant reply, critic). Measured three ways: scripted models in-process with
    hashing embeddings (the framework alone), the same through HTTP to the fake server (adds the OpenAI
    client), and scripted models with the packaged MiniLM embeddings (adds the critic's embeddings).
(2) Throughput: the fake server in a child process answers every request after 200 ms. With K
    conversations in flight and one request in flight per conversation, the ideal is K / 0.2 requests
    per second, i.e. K / (requests per conversation x 0.2 s) conversations per second. Reported as a
    ratio to that ideal, median of --runs runs per K: over the whole run, and in the steady state (until
    the last planned conversation has started, which leaves out the tail where fewer than K remain).
    `cpu ms/req` is this process's CPU time per request: on one core, requests per second cannot exceed
    1000 / (cpu ms/req), which bounds the ratio at K / 0.2 requests per second.
(3) Peak RSS of this process (codi, not the fake server) during the K = 128 runs (measured before part (1)
    loads the MiniLM model into the same process).

`--client lean` passes, through the public `models=` argument, ChatOpenAI instances that skip the
OpenAI SDK's client-side re-validation of the request body (messages and tools go in `extra_body`,
byte-identical on the wire) and use the aiohttp transport instead of httpx's connection pool, whose
per-request bookkeeping grows with the number of open connections. It shows what those two changes in
`models.py` would buy; the default measures codi as shipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from codi_agents import iter_conversations
from codi_agents.testing import FakeOpenAIServer, HashingEmbeddingFunction, scripted_models

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "doc2dial_docs.jsonl"
LATENCY = 0.2


_LEAN: dict[str, dict[str, Any]] = {}
_RUN_CONFIG: list[Path] = []
"""The run config of every measured run (set from --gc-threshold), if any."""


def lean_models(base_url: str) -> dict[str, Any]:
    """ChatOpenAI per role without the SDK's request transform, on the aiohttp transport (one set per server)."""
    if base_url not in _LEAN:
        _LEAN[base_url] = _lean_models(base_url)
    return _LEAN[base_url]


def _lean_models(base_url: str) -> dict[str, Any]:
    import openai
    from langchain_openai import ChatOpenAI

    class LeanChatOpenAI(ChatOpenAI):
        def _get_request_payload(self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any) -> dict:
            payload = super()._get_request_payload(input_, stop=stop, **kwargs)
            extra = dict(payload.pop("extra_body", None) or {})
            for key in ("messages", "tools"):
                if key in payload:
                    extra[key] = payload.pop(key)
            return {**payload, "messages": [], "extra_body": extra}

    try:
        client: Any = openai.DefaultAioHttpClient(timeout=120)  # needs httpx-aiohttp (pip install "openai[aiohttp]")
    except RuntimeError:
        client = None
    temperatures = {"user": 0.8, "assistant": 0.3, "critic": 0.0}
    return {
        role: LeanChatOpenAI(
            model="codi-fake", base_url=base_url, api_key="fake", max_retries=0, temperature=t, http_async_client=client
        )
        for role, t in temperatures.items()
    }


async def one_run(
    *, n: int, concurrency: int, url: str | None, client: str, embedding: Any = None, models: Any = None
) -> tuple[list[float], int]:
    """One batch run; each conversation's ms per turn (its own duration: indexing is not in it), and turns."""
    with tempfile.TemporaryDirectory(prefix="codi-bench-") as out:
        if models is None and url is not None and client == "lean":
            models = lean_models(url)
        endpoint = {"base_url": url, "model": "codi-fake", "api_key": "fake"} if url else {}
        per_turn: list[float] = []
        turns = 0
        async with iter_conversations(
            CORPUS,
            out,
            n=n,
            concurrency=concurrency,
            models=models,
            embedding_function=embedding or HashingEmbeddingFunction(),
            endpoint={**endpoint, "max_concurrency": concurrency},
        ) as conversations:
            async for conversation in conversations:
                if conversation.exchanges:
                    per_turn.append(conversation.duration_seconds * 1000 / conversation.exchanges)
                    turns += conversation.exchanges
    return per_turn, turns


async def timed_run(*, n: int, concurrency: int, url: str | None, client: str, models: Any = None) -> dict[str, Any]:
    """A throughput run: requests and starts sampled every 50 ms, CPU time and RSS measured around it."""
    with tempfile.TemporaryDirectory(prefix="codi-bench-") as out:
        if models is None and url is not None and client == "lean":
            models = lean_models(url)
        batch = iter_conversations(
            CORPUS,
            out,
            config=_RUN_CONFIG[0] if _RUN_CONFIG else None,
            n=n,
            concurrency=concurrency,
            models=models,
            embedding_function=HashingEmbeddingFunction(),
            endpoint={"base_url": url, "model": "codi-fake", "api_key": "fake", "max_concurrency": concurrency},
        )
        samples: list[tuple[float, int, int]] = []
        peak = [psutil.Process().memory_info().rss]
        stop = threading.Event()

        def sample_rss() -> None:
            process = psutil.Process()
            while not stop.wait(0.05):
                peak[0] = max(peak[0], process.memory_info().rss)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()

        async def watch() -> None:
            while True:
                snapshot = batch.snapshot()
                if snapshot.planned:
                    samples.append((time.perf_counter(), snapshot.requests, snapshot.done + snapshot.in_flight))
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        async with batch:
            async for _ in batch:
                pass
        used = resource.getrusage(resource.RUSAGE_SELF)
        watcher.cancel()
        stop.set()
        sampler.join()
        summary = batch.summary or {}
    requests = summary["requests"]["requests"]
    finished = summary["finished"]
    per_conversation = requests / finished
    wall = summary["wall_seconds"]
    active = [sample for sample in samples if sample[1] > 0]
    start_time, start_requests = (active[0][0], active[0][1]) if active else (0.0, 0)
    exhausted = next((sample for sample in active if sample[2] >= n), active[-1] if active else (0.0, 0, 0))
    steady_seconds = max(exhausted[0] - start_time, 1e-9)
    steady_rate = (exhausted[1] - start_requests) / steady_seconds
    ideal_conversations = concurrency / (per_conversation * LATENCY)
    cpu_seconds = (used.ru_utime + used.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    return {
        "wall": wall,
        "conversations_per_second": finished / wall,
        "requests_per_conversation": per_conversation,
        "ratio": (finished / wall) / ideal_conversations,
        "steady_ratio": steady_rate / (concurrency / LATENCY),
        "cpu_ms_per_request": cpu_seconds * 1000 / requests,
        "peak_rss_mb": peak[0] / 2**20,
        "accepted": summary["accepted"],
    }


async def per_turn_costs(turns: int, console: Console) -> list[tuple[str, float, int]]:
    """(label, median ms per turn, turns measured) for each zero-latency set-up."""
    rows = []

    async def measure(label: str, **kwargs: Any) -> None:
        await one_run(n=4, concurrency=1, **kwargs)  # warm-up: imports, index, caches
        per_turn: list[float] = []
        measured = 0
        while measured < turns:
            times, count = await one_run(n=10, concurrency=1, **kwargs)
            per_turn += times
            measured += count
        rows.append((label, statistics.median(per_turn), measured))
        console.print(f"  {label}: {rows[-1][1]:.2f} ms/turn (median over {len(per_turn)} conversations)")

    await measure(
        "framework: scripted models in-process, hashing embeddings",
        url=None,
        client="default",
        models=scripted_models(),
    )
    with FakeOpenAIServer(latency=0.0, process=True) as server:
        await measure("+ OpenAI client over HTTP (fake server, 0 ms)", url=server.base_url, client="default")
        await measure("+ lean OpenAI client over HTTP (fake server, 0 ms)", url=server.base_url, client="lean")
    from codi_agents.retrieval._embeddings import default_embedding_function

    await measure(
        "scripted models, packaged MiniLM embeddings",
        url=None,
        client="default",
        models=scripted_models(),
        embedding=default_embedding_function(),
    )
    return rows


def main() -> None:
    """Parse the options; run every measurement in one event loop (clients are bound to their loop)."""
    asyncio.run(bench(parse_args()))


def parse_args() -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="Runs per K (the median is reported).")
    parser.add_argument("--ks", default="1,8,32,128", help="Conversations in flight to measure.")
    parser.add_argument("--waves", type=int, default=4, help="Conversations per run = max(waves x K, 8).")
    parser.add_argument("--turns", type=int, default=200, help="Turns measured per zero-latency set-up.")
    parser.add_argument("--client", choices=["default", "lean"], default="default")
    parser.add_argument("--skip-turns", action="store_true", help="Only the throughput part.")
    parser.add_argument("--quick", action="store_true", help="One run per K, K = 1 and 8, 40 turns.")
    parser.add_argument(
        "--gc-threshold", type=int, default=None, help="limits.gc_threshold of the runs (0: Python's own thresholds)."
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.ks, args.turns = 1, "1,8", 40
    return args


async def bench(args: argparse.Namespace) -> None:
    """The three measurements, printed as tables."""
    ks = [int(k) for k in args.ks.split(",")]
    console = Console()
    if args.gc_threshold is not None:
        config = Path(tempfile.mkdtemp(prefix="codi-bench-")) / "run.toml"
        config.write_text(f"[limits]\ngc_threshold = {args.gc_threshold}\n")
        _RUN_CONFIG.append(config)
    console.print(f"codi batch benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
                  f"Python {sys.version.split()[0]}, client {args.client}, "
                  f"gc_threshold {'default' if args.gc_threshold is None else args.gc_threshold}")  # fmt: skip

    console.print(f"(2) throughput with {LATENCY * 1000:.0f} ms per request")
    results: dict[int, list[dict[str, Any]]] = {}
    with FakeOpenAIServer(latency=LATENCY, process=True) as server:
        await timed_run(n=8, concurrency=4, url=server.base_url, client=args.client)  # warm-up
        for k in ks:
            for number in range(args.runs):
                result = await timed_run(
                    n=max(args.waves * k, 8), concurrency=k, url=server.base_url, client=args.client
                )
                results.setdefault(k, []).append(result)
                console.print(
                    f"  K={k} run {number + 1}: ratio {result['ratio']:.3f} (steady {result['steady_ratio']:.3f}), "
                    f"{result['conversations_per_second']:.2f} conv/s, {result['cpu_ms_per_request']:.2f} cpu ms/req, "
                    f"load {os.getloadavg()[0]:.1f}"
                )
    table = Table(
        title=f"(2) throughput, {LATENCY * 1000:.0f} ms per request, median of {args.runs} run(s) per K, "
        f"{args.client} client"
    )
    for column in ("K", "conv/s", "ideal conv/s", "ratio", "steady ratio", "req/conv", "cpu ms/req", "peak RSS MB"):
        table.add_column(column, justify="right")
    for k, runs in results.items():

        def median(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.median(run[key] for run in runs)

        ideal = k / (median("requests_per_conversation") * LATENCY)
        table.add_row(
            str(k),
            f"{median('conversations_per_second'):.2f}",
            f"{ideal:.2f}",
            f"{median('ratio'):.3f}",
            f"{median('steady_ratio'):.3f}",
            f"{median('requests_per_conversation'):.1f}",
            f"{median('cpu_ms_per_request'):.2f}",
            f"{max(run['peak_rss_mb'] for run in runs):.0f}",
        )
    console.print(table)
    if 128 in results:
        console.print(f"(3) peak RSS at K = 128: {max(run['peak_rss_mb'] for run in results[128]):.0f} MB")
    if not args.skip_turns:
        console.print("(1) cost per turn at zero latency")
        turn_rows = await per_turn_costs(args.turns, console)
        table = Table(title="(1) codi's own cost per turn, zero latency, K = 1")
        table.add_column("set-up")
        table.add_column("median ms/turn", justify="right")
        table.add_column("turns", justify="right")
        for label, value, count in turn_rows:
            table.add_row(label, f"{value:.2f}", str(count))
        console.print(table)

    console.print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
