"""The driver side: worker actors on a Ray cluster, fed small chunks, each item's result delivered once.

`WorkerPool.start()` joins or starts the cluster, places the workers and builds each one's long-lived
object (`_placement`: errors, not hangs, for a cluster that cannot hold them, a plug-in module they
cannot import, an object they cannot build). `WorkerPool.run(items)` keeps `chunks_in_flight` chunks
of `chunk_size` items on every live worker and yields `(id, result)` as chunks finish. While it
waits, it looks at the workers every `TICK_SECONDS`:

- a worker that died (killed, node lost) has its in-flight chunks handed to the others;
- a chunk not back after `chunk_timeout` seconds means a hung worker (alive, never answering): the
  chunk goes to another worker and the hung one is killed (its other chunks go elsewhere too). A
  chunk that times out on `MAX_TIMEOUTS` workers in turn stops the run: the work itself hangs;
- with a `Coordinator`, each worker is sent the coordinator's messages and its replies are handed
  back (`_exchange`: for a batch run, each endpoint's share of requests in flight).

A dead or killed worker's chunks return nothing, so an item is done by one worker only; results are
still filtered by id, so the caller can write each id exactly once whatever happens. `close()` may be
called from another thread while `run` waits: `run` returns within a tick.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from codi_agents.distributed._cluster import ClusterSpec, WorkerPoolError, connect, import_ray, shutdown
from codi_agents.distributed._exchange import Coordinator, Exchanges
from codi_agents.distributed._placement import START_TIMEOUT, place_workers, set_up
from codi_agents.distributed._worker import Exchange, Item, Process, Result, WorkerInfo
from codi_agents.errors import ConfigError

CHUNK_TIMEOUT = 1800.0
"""Seconds a chunk may take before its worker counts as hung; generous, since a chunk may wait on rate limits."""
MAX_TIMEOUTS = 2
"""Workers a chunk may hang before the run stops (the work hangs, not a worker)."""
TICK_SECONDS = 0.5
"""How often the driver looks at timeouts, messages and `close()` while it waits for chunks."""
DEATH_TIMEOUT = 30.0
"""Seconds to wait for a killed worker to be gone before its share of anything is handed on."""

logger = logging.getLogger("codi_agents.distributed")


@dataclass
class PoolStats:
    """What happened while running: chunks sent, chunks sent again after a worker died, workers lost."""

    chunks: int = 0
    redispatched: int = 0
    lost_workers: list[int] = field(default_factory=list)
    """Process ids of the workers that died or were stopped for hanging."""
    hung_workers: list[int] = field(default_factory=list)
    """Process ids of the workers stopped because a chunk of theirs timed out."""


@dataclass
class _Slot:
    """A worker actor, where it runs, and whether it still answers."""

    actor: Any
    info: WorkerInfo
    alive: bool = True
    in_flight: int = 0


@dataclass
class _Sent:
    """A chunk on a worker, and when it was sent."""

    slot: _Slot
    chunk: list[Item]
    at: float


class WorkerPool:
    """Workers holding `build(spec)`, running `process` on chunks of items; see the module docstring."""

    def __init__(
        self,
        cluster: ClusterSpec,
        *,
        build: Callable[[Any], Any],
        spec: Any,
        process: Process,
        modules: Sequence[str] = (),
        chunk_size: int = 8,
        chunks_in_flight: int = 2,
        start_timeout: float = START_TIMEOUT,
        chunk_timeout: float = CHUNK_TIMEOUT,
        exchange: Exchange | None = None,
        coordinator: Coordinator | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        if chunk_size < 1 or chunks_in_flight < 1:
            raise ConfigError("chunk_size and chunks_in_flight must be at least 1.")
        if (exchange is None) != (coordinator is None):
            raise ConfigError("A coordinator needs the workers' exchange function, and the other way round.")
        self.cluster = cluster
        self._build, self._spec, self._process, self._exchange = build, spec, process, exchange
        self.modules = tuple(modules)
        self.chunk_size = chunk_size
        self.chunks_in_flight = chunks_in_flight
        self.start_timeout = start_timeout
        self.chunk_timeout = chunk_timeout
        self.exchanges = Exchanges(coordinator) if coordinator is not None else None
        self.log = log or logger
        self.slots: list[_Slot] = []
        self.stats = PoolStats()
        self._owns_cluster = False
        self._timeouts: Counter[str] = Counter()
        self._closing = False
        self._step = threading.Lock()
        """Held while `run` works between two waits, so that `close()` never pulls Ray from under it."""

    def start(self) -> list[WorkerInfo]:
        """Join or start the cluster, place and check the workers, build their objects; their placement."""
        try:
            return self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> list[WorkerInfo]:
        ray = import_ray()

        self._owns_cluster = self.cluster.local and not ray.is_initialized()
        connect(self.cluster)
        placed = place_workers(self.cluster, self.modules, self.start_timeout)
        self.slots = [_Slot(actor, info) for actor, info in placed]
        set_up(placed, (self._build, self._spec, self._process, self._exchange))
        return [info for _, info in placed]

    def run(self, items: Iterable[Item]) -> Generator[Result, None, None]:
        """Yield `(id, result)` for every item, once each, as chunks finish on the workers."""
        chunks = _chunked(iter(items), self.chunk_size)
        retry: deque[list[Item]] = deque()
        in_flight: dict[Any, _Sent] = {}
        delivered: set[str] = set()
        while True:
            with self._step:
                if self._closing:
                    return
                results = self._next_results(chunks, retry, in_flight)
            if results is None:
                return
            for item_id, result in results:
                if item_id not in delivered:
                    delivered.add(item_id)
                    yield item_id, result

    def close(self) -> None:
        """Stop the workers, and the cluster when this pool started it (a Ray the caller started stays up).

        Safe from another thread while `run` waits: `run` returns at its next tick."""
        import sys

        self._closing = True
        stepping = self._step.acquire(timeout=10 * TICK_SECONDS)
        try:
            ray = sys.modules.get("ray")
            if ray is not None and ray.is_initialized():
                for slot in self.slots:
                    if slot.alive:
                        ray.kill(slot.actor)
            self.slots = []
            if self._owns_cluster:
                shutdown()
        finally:
            if stepping:
                self._step.release()

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _next_results(
        self, chunks: Iterator[list[Item]], retry: deque[list[Item]], in_flight: dict[Any, _Sent]
    ) -> list[Result] | None:
        """Wait up to a tick for a chunk; its results, [] when none came back, None when all work is done."""
        ray = import_ray()

        self._fill(in_flight, retry, chunks)
        if not in_flight:
            return None
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=TICK_SECONDS)
        if self.exchanges is not None:
            self.exchanges.tick(self.slots)
        self._expire(in_flight, retry, exclude=set(ready))
        if not ready:
            return []
        sent = in_flight.pop(ready[0])
        sent.slot.in_flight -= 1
        try:
            results: list[Result] = ray.get(ready[0])
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
            self._lose(sent.slot)
            retry.append(sent.chunk)
            self.stats.redispatched += 1
            return []
        except ray.exceptions.RayTaskError as error:
            raise WorkerPoolError(
                f"The work function failed on worker {sent.slot.info.pid} ({sent.slot.info.host}) for the chunk "
                f"starting with item {sent.chunk[0][0]!r}: {error.cause!r}"
            ) from error.cause
        return results

    def _fill(self, in_flight: dict[Any, _Sent], retry: deque[list[Item]], chunks: Iterator[list[Item]]) -> None:
        """Give every live worker up to `chunks_in_flight` chunks: first the ones to redo, then new ones."""
        live = [slot for slot in self.slots if slot.alive]
        if not live and (retry or in_flight):
            raise WorkerPoolError(
                f"All {len(self.slots)} workers died (process ids {self.stats.lost_workers}); "
                f"{sum(len(chunk) for chunk in retry)} items were not done. The driver's log and "
                "`ray logs` on the nodes say why (often memory: see --worker-memory). Resume the run to finish."
            )
        for slot in sorted(live, key=lambda slot: slot.in_flight):
            while slot.in_flight < self.chunks_in_flight:
                chunk = retry.popleft() if retry else next(chunks, None)
                if chunk is None:
                    return
                in_flight[slot.actor.run.remote(chunk)] = _Sent(slot, chunk, time.monotonic())
                slot.in_flight += 1
                self.stats.chunks += 1

    def _expire(self, in_flight: dict[Any, _Sent], retry: deque[list[Item]], *, exclude: set[Any]) -> None:
        """Hand the chunks older than `chunk_timeout` to other workers and kill the workers that hold them."""
        ray = import_ray()

        now = time.monotonic()
        old = [ref for ref, sent in in_flight.items() if now - sent.at > self.chunk_timeout and ref not in exclude]
        if not old:
            return
        _, hung = ray.wait(old, num_returns=len(old), timeout=0)  # a chunk that just finished is not hung
        for ref in hung:
            sent = in_flight.pop(ref)
            sent.slot.in_flight -= 1
            first = sent.chunk[0][0]
            self._timeouts[first] += 1
            if self._timeouts[first] >= MAX_TIMEOUTS:
                self._kill_hung(sent.slot)
                raise WorkerPoolError(
                    f"The chunk starting with item {first!r} ({len(sent.chunk)} items) was not done within "
                    f"{self.chunk_timeout:g} s on {MAX_TIMEOUTS} workers in turn, which were stopped: some of the "
                    "work hangs (a hung worker holds back every chunk it has, so the culprit may be another item "
                    "it held). Check the model servers, or raise the chunk timeout (limits.chunk_timeout_seconds) "
                    "if the work is only slow; then resume the run."
                )
            retry.append(sent.chunk)
            self.stats.redispatched += 1
            self._kill_hung(sent.slot)

    def _kill_hung(self, slot: _Slot) -> None:
        """Kill a worker that holds a timed-out chunk; its other chunks come back as failed and go elsewhere."""
        ray = import_ray()

        if not slot.alive:
            return
        self.log.warning(
            "worker %d on %s sent no chunk back within %g s: stopping it, its chunks go to the others",
            slot.info.pid, slot.info.host, self.chunk_timeout,
        )  # fmt: skip
        ray.kill(slot.actor, no_restart=True)
        gone = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError)
        with contextlib.suppress(*gone):  # wait until it is gone: what it held (requests in flight) is free then
            ray.get(slot.actor.describe.remote(()), timeout=DEATH_TIMEOUT)
        self.stats.hung_workers.append(slot.info.pid)
        self._lose(slot)

    def _lose(self, slot: _Slot) -> None:
        if slot.alive:
            slot.alive = False
            self.stats.lost_workers.append(slot.info.pid)
            if self.exchanges is not None:
                self.exchanges.lost(self.slots.index(slot))


def _chunked(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk
