"""Documents are indexed on threads of their own, never on asyncio's default executor.

Indexing a document the index does not hold yet embeds and scans every passage of it: up to seconds of
work. The default executor (a handful of threads) also runs each conversation's short jobs: a search, the
critic's signals, the faithfulness checker. Were documents indexed there, a first run over a corpus would
queue those jobs behind the indexing, and conversations whose documents are ready would wait for threads.

Two threads are enough: each document's passages are spread over the shared pool of ONNX runs
(`checkers._onnx.shared_runs`), so two documents at a time keep it busy, and the first documents asked for
finish first, so their conversations start while the rest are indexed.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from codi_agents.checkers._onnx import ParallelRuns

INDEXING_THREADS = 2
"""Documents indexed at once in a process."""

_Result = TypeVar("_Result")
_indexing = ParallelRuns(INDEXING_THREADS, name="codi-indexing")


def indexing_pool() -> ThreadPoolExecutor:
    """This process's indexing threads (a forked child makes its own)."""
    return _indexing.executor()


async def on_indexing_threads(function: Callable[..., _Result], *args: object) -> _Result:
    """`function(*args)` on the indexing threads, awaited."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(indexing_pool(), functools.partial(function, *args))
