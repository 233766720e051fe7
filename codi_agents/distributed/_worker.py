"""The worker: a Ray actor that holds one long-lived object and processes chunks of work items with it.

The object is built once per worker from a picklable spec (for a batch run: a Session from Settings,
with its models, limits and index client), so a worker pays for its setup once, not per chunk.
Besides chunks, the driver sends small messages now and then (`exchange`: for a batch run, each
endpoint's share of requests in flight one way, the limiters' counters the other); they run on the
same event loop as the chunks, between their awaits. The class is plain Python; `WorkerPool` wraps
it with `ray.remote` so that importing codi never imports Ray.
"""

from __future__ import annotations

import importlib
import inspect
import os
import socket
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

Item: TypeAlias = tuple[str, Any]
"""A work item: its id (unique in the run) and its payload."""
Result: TypeAlias = tuple[str, Any]
"""A finished item: its id and what the work function returned for it."""
Process: TypeAlias = Callable[[Any, Sequence[Item]], Iterable[Result] | Awaitable[Iterable[Result]]]
"""The work function: (the worker's object, a chunk of items) -> a result per item (may be a coroutine)."""
Exchange: TypeAlias = Callable[[Any, Any], Any]
"""The worker's side of the driver's messages: (the worker's object, a message) -> the reply (quick, no await)."""


@dataclass(frozen=True)
class WorkerInfo:
    """Where a worker runs, and the modules it could not import (module -> the error, with its last line)."""

    pid: int
    host: str
    node_ip: str
    failed_imports: dict[str, str] = field(default_factory=dict)


class Worker:
    """Holds the object `build(spec)` returns and runs `process` on the chunks it is sent."""

    def __init__(self) -> None:
        self._state: Any = None
        self._process: Process | None = None
        self._exchange: Exchange | None = None

    def describe(self, modules: Sequence[str]) -> WorkerInfo:
        """This worker's process and node, after trying to import `modules` (the user's plug-ins)."""
        failed: dict[str, str] = {}
        for module in modules:
            try:
                importlib.import_module(module)
            except BaseException as error:  # any failure to import is reported, never raised in the worker
                last = traceback.format_exception_only(type(error), error)[-1].strip()
                failed[module] = last
        ray: Any = importlib.import_module("ray")
        return WorkerInfo(os.getpid(), socket.gethostname(), ray.util.get_node_ip_address(), failed)

    def setup(self, build: Callable[[Any], Any], spec: Any, process: Process, exchange: Exchange | None = None) -> None:
        """Build the long-lived object from `spec`; called once, after the imports are checked."""
        self._state = build(spec)
        self._process = process
        self._exchange = exchange

    async def exchange(self, message: Any) -> Any:
        """Answer a message of the driver's (async: it runs on the loop the chunks run on, never beside it)."""
        if self._exchange is None:
            raise RuntimeError("The worker was sent a message but set up without an exchange function.")
        return self._exchange(self._state, message)

    async def run(self, chunk: Sequence[Item]) -> list[Result]:
        """Process one chunk; the results come back together when the chunk is done."""
        if self._process is None:
            raise RuntimeError("The worker was sent work before setup(); WorkerPool.start() does both in order.")
        outcome = self._process(self._state, chunk)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return list(outcome)
