"""The driver side: worker actors on a Ray cluster, fed small chunks, each item's result delivered once.

`WorkerPool.start()` joins or starts the cluster, places the workers (an error, not a hang, when the
cluster cannot hold them), checks that every worker imports the user's plug-in modules, then builds
each worker's long-lived object. `WorkerPool.run(items)` keeps `chunks_in_flight` chunks of
`chunk_size` items on every live worker, yields `(id, result)` as chunks finish (`ray.wait`), and hands
the in-flight chunks of a worker that died (killed, node lost) to the others. A dead worker's chunks
return nothing, so an item is done by one worker only; results are still filtered by id, so the
caller can write each id exactly once whatever happens.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from codi_agents.distributed._cluster import ClusterError, ClusterSpec, connect, import_ray, shutdown
from codi_agents.distributed._worker import Item, Process, Result, Worker, WorkerInfo
from codi_agents.errors import ConfigError, RunError

START_TIMEOUT = 120.0
"""Seconds for the workers to be placed and answer; on a busy cluster placing takes a while."""


class WorkerPoolError(RunError):
    """The work could not be finished on the cluster: every worker died, or the work function failed."""


@dataclass
class PoolStats:
    """What happened while running: chunks sent, chunks sent again after a worker died, workers lost."""

    chunks: int = 0
    redispatched: int = 0
    lost_workers: list[int] = field(default_factory=list)
    """Process ids of the workers that died."""


@dataclass
class _Slot:
    """A worker actor, where it runs, and whether it still answers."""

    actor: Any
    info: WorkerInfo
    alive: bool = True
    in_flight: int = 0


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
    ) -> None:
        if chunk_size < 1 or chunks_in_flight < 1:
            raise ConfigError("chunk_size and chunks_in_flight must be at least 1.")
        self.cluster = cluster
        self._build, self._spec, self._process = build, spec, process
        self.modules = tuple(modules)
        self.chunk_size = chunk_size
        self.chunks_in_flight = chunks_in_flight
        self.start_timeout = start_timeout
        self.slots: list[_Slot] = []
        self.stats = PoolStats()
        self._owns_cluster = False

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
        options: dict[str, Any] = {"num_cpus": self.cluster.worker_cpus, "max_restarts": 0}
        if self.cluster.worker_memory:
            options["memory"] = self.cluster.worker_memory
        actors = [ray.remote(Worker).options(**options).remote() for _ in range(self.cluster.workers)]
        try:
            infos: list[WorkerInfo] = ray.get(
                [actor.describe.remote(self.modules) for actor in actors], timeout=self.start_timeout
            )
        except ray.exceptions.GetTimeoutError as error:
            for actor in actors:
                ray.kill(actor)
            raise ClusterError(self._unplaced_message(ray.available_resources())) from error
        self.slots = [_Slot(actor, info) for actor, info in zip(actors, infos, strict=True)]
        _refuse_failed_imports(infos)
        ray.get([slot.actor.setup.remote(self._build, self._spec, self._process) for slot in self.slots])
        return infos

    def run(self, items: Iterable[Item]) -> Generator[Result, None, None]:
        """Yield `(id, result)` for every item, once each, as chunks finish on the workers."""
        ray = import_ray()

        chunks = _chunked(iter(items), self.chunk_size)
        retry: deque[list[Item]] = deque()
        in_flight: dict[Any, tuple[_Slot, list[Item]]] = {}
        delivered: set[str] = set()
        while True:
            self._fill(in_flight, retry, chunks)
            if not in_flight:
                return
            (ready, *_), _ = ray.wait(list(in_flight), num_returns=1)
            slot, chunk = in_flight.pop(ready)
            slot.in_flight -= 1
            try:
                results: list[Result] = ray.get(ready)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
                self._lose(slot)
                retry.append(chunk)
                self.stats.redispatched += 1
                continue
            except ray.exceptions.RayTaskError as error:
                raise WorkerPoolError(
                    f"The work function failed on worker {slot.info.pid} ({slot.info.host}) for the chunk starting "
                    f"with item {chunk[0][0]!r}: {error.cause!r}"
                ) from error.cause
            for item_id, result in results:
                if item_id not in delivered:
                    delivered.add(item_id)
                    yield item_id, result

    def close(self) -> None:
        """Stop the workers, and the cluster when this pool started it (a Ray the caller started stays up)."""
        import sys

        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            for slot in self.slots:
                if slot.alive:
                    ray.kill(slot.actor)
        self.slots = []
        if self._owns_cluster:
            shutdown()

    def __enter__(self) -> WorkerPool:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _fill(
        self, in_flight: dict[Any, tuple[_Slot, list[Item]]], retry: deque[list[Item]], chunks: Iterator[list[Item]]
    ) -> None:
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
                in_flight[slot.actor.run.remote(chunk)] = (slot, chunk)
                slot.in_flight += 1
                self.stats.chunks += 1

    def _lose(self, slot: _Slot) -> None:
        if slot.alive:
            slot.alive = False
            self.stats.lost_workers.append(slot.info.pid)

    def _unplaced_message(self, available: dict[str, float]) -> str:
        wanted = f"{self.cluster.workers} workers of {self.cluster.worker_cpus:g} CPUs"
        if self.cluster.worker_memory:
            wanted += f" and {self.cluster.worker_memory / 2**30:.1f} GiB"
        free = ", ".join(f"{key} {value:g}" for key, value in sorted(available.items()) if "node:" not in key)
        return (
            f"Ray could not place {wanted} each within {self.start_timeout:.0f} s; the cluster has free: "
            f"{free or 'nothing'}. Lower --workers, --worker-cpus or --worker-memory, or add nodes."
        )


def _refuse_failed_imports(infos: Sequence[WorkerInfo]) -> None:
    """A `ConfigError` naming each module a worker cannot import, and where."""
    failures = [(info, module, error) for info in infos for module, error in info.failed_imports.items()]
    if failures:
        lines = "; ".join(f"{module!r} on {info.host} ({info.node_ip}): {error}" for info, module, error in failures)
        raise ConfigError(
            f"Workers cannot import the plug-in task module: {lines}. Install the package that provides it on "
            "every node of the cluster (the same version as here), then start the run again."
        )


def _chunked(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk
